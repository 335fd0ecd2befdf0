"""Methods and optimizers beyond LoRA + AdamW, each against a value derived from the method's source
(peft, adam-mini, LF's Muon, galore-torch, apollo-torch, unsloth, kt-kernel; /work/notes/methods.md)."""

from __future__ import annotations

from typing import Any

from estimator.hub import ModelResolver
from estimator.memory import World, estimate, gradient_bytes, kv_cache_bytes, optimizer_bytes
from estimator.plan import TrainingPlan, parse_plan
from estimator.trainable import decoder_linears, trainable
from estimator.versions import Versions
from estimator.vision import vision_patches

RESOLVER = ModelResolver(offline=True)
LLAMA = RESOLVER.resolve("meta-llama/Meta-Llama-3-8B")
QWEN_MOE = RESOLVER.resolve("Qwen/Qwen3-30B-A3B")
MIXTRAL = RESOLVER.resolve("mistralai/Mixtral-8x7B-v0.1")
DEEPSEEK = RESOLVER.resolve("deepseek-ai/DeepSeek-V2-Lite")
QWEN_VL = RESOLVER.resolve("Qwen/Qwen2-VL-7B-Instruct")


def plan(text: str, **kwargs: Any) -> TrainingPlan:
    return parse_plan("model_name_or_path: x\ndo_train: true\nper_device_train_batch_size: 1\n" + text,
                      "c.yaml", **kwargs)


# --- OFT and LoRA on MoE experts -----------------------------------------------------------------------


def test_oft_trains_in_times_block_minus_one_over_two_per_linear() -> None:
    # peft OFTRotationModule: r = in/b blocks of b(b−1)/2 each → in·(b−1)/2, whatever the output width
    in_widths = 6 * 4096 + 14336  # q, k, v, o (in 4096), gate, up (4096), down (14336)
    assert trainable(LLAMA, plan("finetuning_type: oft\n")).params == 32 * in_widths * 31 // 2  # 19,300,352
    assert trainable(LLAMA, plan("finetuning_type: oft\noft_block_size: 64\n")).params == 32 * in_widths * 63 // 2
    # oft_rank with oft_block_size 0: b = in / r
    by_rank = trainable(LLAMA, plan("finetuning_type: oft\noft_block_size: 0\noft_rank: 128\n")).params
    assert by_rank == 32 * (6 * 128 * (32 * 31 // 2) + 128 * (112 * 111 // 2))


def test_lora_reaches_moe_experts_under_transformers_4_only() -> None:
    # transformers 4: experts are nn.ModuleList of nn.Linear and the router an nn.Linear (LF's
    # find_all_linear_modules targets them); transformers 5 fuses them into 3-D parameters
    h, e, i, layers = 2048, 128, 768, 48
    attention = 8 * (h + 4096) + 2 * 8 * (h + 512) + 8 * (4096 + h)  # q, k, v, o of Qwen3-30B-A3B
    tf5 = trainable(QWEN_MOE, plan("")).params
    tf4 = trainable(QWEN_MOE, plan("", versions=Versions(transformers=4))).params
    assert tf5 == layers * attention == 6_684_672
    assert tf4 == layers * (attention + e * 3 * 8 * (h + i) + 8 * (h + e)) == 422_756_352
    mixtral4 = trainable(MIXTRAL, plan("", versions=Versions(transformers=4))).params
    mixtral_attention = 8 * (2 * (4096 + 4096) + 2 * (4096 + 1024))
    assert mixtral4 == 32 * (mixtral_attention + 8 * 3 * 8 * (4096 + 14336) + 8 * (4096 + 8)) == 121_112_576


# --- optimizers ----------------------------------------------------------------------------------------


def test_adam_mini_keeps_one_moment_and_a_second_moment_per_row() -> None:
    p = plan("finetuning_type: full\nbf16: true\nuse_adam_mini: true\n")
    t = trainable(LLAMA, p)
    rows = sum(lin.count * lin.n_out for lin in decoder_linears(LLAMA)) + 2 * LLAMA.vocab
    assert optimizer_bytes(LLAMA, p, World(), t) == 4 * t.params + 4 * rows


def test_muon_keeps_momentum_for_2d_weights_and_adamw_for_the_rest() -> None:
    p = plan("finetuning_type: full\nbf16: true\nuse_muon: true\n")
    t = trainable(LLAMA, p)
    matrices = LLAMA.parts["attention"] + LLAMA.parts["mlp"]  # 2-D, no embed/lm_head in the name
    assert optimizer_bytes(LLAMA, p, World(), t) == 4 * matrices + 8 * (t.params - matrices)


def test_layerwise_galore_and_apollo_hold_only_the_largest_gradient() -> None:
    # per-parameter optimizers stepped in post-accumulate-grad hooks: the embedding (V·h, bf16 under
    # pure_bf16) is the largest tensor that is ever live as a gradient
    for key in ("use_galore: true\ngalore_layerwise: true\n", "use_apollo: true\napollo_layerwise: true\n"):
        p = plan(f"finetuning_type: full\npure_bf16: true\noptim: adamw_torch\n{key}")
        assert gradient_bytes(LLAMA, p, World(), trainable(LLAMA, p)) == 2 * LLAMA.vocab * LLAMA.hidden


def test_galore_projector_is_stored_in_the_parameter_dtype() -> None:
    rank = 128
    p = plan(f"finetuning_type: full\npure_bf16: true\noptim: adamw_torch\nuse_galore: true\ngalore_rank: {rank}\n")
    t = trainable(LLAMA, p)
    projected = 0
    states = 0
    for lin in decoder_linears(LLAMA):
        projected += lin.count * lin.n_in * lin.n_out
        states += lin.count * (2 * 2 * rank * max(lin.n_in, lin.n_out) + 2 * rank * min(lin.n_in, lin.n_out))
    assert optimizer_bytes(LLAMA, p, World(), t) == states + 2 * 2 * (t.params - projected)


# --- Unsloth and KTransformers -------------------------------------------------------------------------


def test_unsloth_offloads_hidden_states_and_chunks_the_cross_entropy() -> None:
    tokens, cutoff = 4 * 2048, 2048
    plain = plan(f"bf16: true\nper_device_train_batch_size: 4\ncutoff_len: {cutoff}\n")
    unsloth = plan(f"bf16: true\nper_device_train_batch_size: 4\ncutoff_len: {cutoff}\nuse_unsloth: true\n")
    e = estimate(LLAMA, unsloth, World())
    # logits: 4·ceil(4TV / 16 GiB) chunks — here 4 — of which three are live (the chunk's logits, their
    # gradient, a softmax temporary), + grad_inputs (T·h bf16)
    assert e.phases["forward"] < estimate(LLAMA, plain, World()).phases["forward"]
    from estimator.memory import _logits
    assert _logits(LLAMA, unsloth, tokens).forward == 3 * (4 * tokens * LLAMA.vocab // 4) \
        + 2 * tokens * LLAMA.hidden
    # 8-bit is not honoured (unsloth.py passes load_in_4bit only): 16-bit weights
    eight = estimate(LLAMA, plan("bf16: true\nuse_unsloth: true\nquantization_bit: 8\n"), World())
    assert eight.components["weights"] >= 2 * LLAMA.total_params


def test_ktransformers_keeps_routed_experts_off_the_gpu() -> None:
    p = plan("bf16: true\nuse_kt: true\n")
    e = estimate(DEEPSEEK, p, World())
    on_gpu = DEEPSEEK.total_params - DEEPSEEK.parts["experts"]
    assert e.components["weights"] == 2 * on_gpu + 4 * e.trainable_params
    kept = plan("bf16: true\nuse_kt: true\nkt_config: {kt_num_gpu_experts: 2}\n")
    per_expert = DEEPSEEK.parts["experts"] // DEEPSEEK.experts
    assert estimate(DEEPSEEK, kept, World()).components["weights"] == \
        e.components["weights"] + 2 * 2 * per_expert


# --- prediction, evaluation and vision ---------------------------------------------------------------------


def test_prediction_holds_weights_and_the_kv_cache_of_prompt_plus_new_tokens() -> None:
    p = parse_plan("model_name_or_path: x\ndo_predict: true\npredict_with_generate: true\neval_dataset: x\n"
                   "bf16: true\nper_device_eval_batch_size: 8\ncutoff_len: 2048\n", "c.yaml")
    assert p.task == "predict" and not p.upcast_trainable_to_fp32
    # Llama-3-8B: 2 (K, V) × 32 layers × 8 kv heads × 128 × 2 B = 128 KiB per token; 8 × (2048 + 1024) tokens
    assert kv_cache_bytes(LLAMA, p, 8, 2048 + 1024) == 8 * 3072 * 128 * 1024 == 3 << 30
    e = estimate(LLAMA, p, World())
    assert e.components["weights"] == 2 * LLAMA.total_params
    assert e.components["gradients"] == e.components["optimizer"] == 0
    assert e.allocated_bytes >= 2 * LLAMA.total_params + (3 << 30)


def test_vision_patches_follow_image_max_pixels_within_cutoff() -> None:
    # Qwen2-VL: 14 px patches, 2×2 merged into a token; the largest image (or video) per sequence, within
    # the merged sequence's cutoff_len (merge² patches per token)
    small = plan("bf16: true\nimage_max_pixels: 262144\nvideo_max_pixels: 16384\nvideo_maxlen: 2\n")
    assert 262144 / 196 <= vision_patches(QWEN_VL, small) <= 1.07 * 262144 / 196 + 4
    capped = plan("bf16: true\nimage_max_pixels: 16777216\ncutoff_len: 1024\n")
    assert vision_patches(QWEN_VL, capped) == 4 * 1024
    frozen = estimate(QWEN_VL, plan("finetuning_type: full\nbf16: true\ncutoff_len: 8192\n"), World())
    trained = estimate(QWEN_VL, plan("finetuning_type: full\nbf16: true\ncutoff_len: 8192\n"
                                     "freeze_vision_tower: false\n"), World())
    assert trained.trainable_params - frozen.trainable_params == QWEN_VL.vision_params


def test_evaluation_only_is_a_forward_with_the_loss_over_the_eval_batch() -> None:
    p = parse_plan("model_name_or_path: x\ndo_eval: true\neval_dataset: x\nbf16: true\n"
                   "per_device_eval_batch_size: 4\ncutoff_len: 1024\n", "c.yaml")
    e = estimate(LLAMA, p, World())
    tokens = 4 * 1024
    assert p.task == "eval" and e.peak_phase == "evaluation"
    # bf16 logits, their fp32 copy and the log-softmax (2 + 4 + 4 bytes per token and vocabulary entry)
    assert e.components["logits"] == 10 * tokens * LLAMA.vocab
    assert e.components["weights"] == 2 * LLAMA.total_params


def test_a_prediction_run_gets_a_verdict_but_no_training_suggestions(tmp_path: Any) -> None:
    from rules.pipeline import CheckOptions, check_config
    from rules.policy import load_policy
    from rules.sources import ParsedFiles, WorkingTree

    (tmp_path / "predict.yaml").write_text(
        "model_name_or_path: meta-llama/Meta-Llama-3-8B\ndo_predict: true\npredict_with_generate: true\n"
        "eval_dataset: x\nbf16: true\nper_device_eval_batch_size: 64\ncutoff_len: 4096\n")
    policy = load_policy("pools:\n  - {name: dev, gpu: RTX-4090, per_node: 1}\n")
    report = check_config("predict.yaml", ParsedFiles(WorkingTree(tmp_path)), policy, RESOLVER,
                          options=CheckOptions())
    assert report.target is not None and report.target.verdict == "no-fit"
    assert report.suggestions == () and report.target.max_batch_size is None
