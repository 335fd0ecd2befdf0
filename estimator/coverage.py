"""Every LLaMA-Factory key that can change GPU memory: modelled, flagged unknown, or no effect.

One row per key: what the key does to memory, where LLaMA-Factory reads it (src/llamafactory/ of v0.9.5,
7af9095, unless the row says main, ff6d4d1), the versions that have it, and how vram-check treats it:

* modelled   — the estimate follows the key (the row's `expect` says which way against the default);
* unknown    — the estimator does not model it: a config that sets it (to anything but the default) gets
               `"modelled": false`, the key in `not_modelled`, and the verdict `unknown`;
* no effect  — the key does not change the per-GPU peak (host memory, logging, numerics only, or below
               1 MiB), so the estimate ignores it.

`unmodelled(raw, ...)` lists the unknown rows a config triggers (estimator/plan.py calls it).
docs/coverage.md is generated from this table: `python -m estimator.coverage > docs/coverage.md`;
tests/test_coverage.py regenerates and compares it, and runs each row's example through the pipeline.
Research: /work/notes/lf_memory_keys.md (the keys, with LF lines), methods.md (the formulas).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from estimator.versions import LLAMAFACTORY_VERSIONS, Versions

if TYPE_CHECKING:
    from estimator.deepspeed import DeepSpeedConfig
    from estimator.launcher import FsdpConfig

Status = Literal["modelled", "unknown", "no effect"]
Expect = Literal["more", "less", "same", "changes", "unknown"]
BOTH = LLAMAFACTORY_VERSIONS

LLAMA = "meta-llama/Meta-Llama-3-8B"
QWEN_MOE = "Qwen/Qwen3-30B-A3B"
QWEN_VL = "Qwen/Qwen2-VL-7B-Instruct"
SMALL = "Qwen/Qwen2.5-0.5B"
DEEPSEEK_MOE = "deepseek-ai/DeepSeek-V2-Lite"


@dataclass(frozen=True)
class Row:
    """One key, as LLaMA-Factory reads it and as vram-check treats it."""

    key: str
    status: Status
    effect: str  # what the key does to memory and what the estimate does with it
    source: str  # where LLaMA-Factory reads it (file:line under src/llamafactory/, or the library)
    example: Any  # a value that is not the default (the per-row test sets it)
    expect: Expect  # what the example does to the estimate against the same config without the key
    context: str = "do_train: true\nfinetuning_type: lora\nbf16: true\nper_device_train_batch_size: 1\n" \
                   "cutoff_len: 1024\n"  # the rest of the test config
    model: str = LLAMA
    versions: tuple[str, ...] = BOTH
    default: Any = None  # LF's default: an unknown row applies when the key is set to anything else
    gpus: int = 1  # the test's target (0: the whole test pool, 8 GPUs)
    active: Callable[[Mapping[str, Any]], bool] | None = field(default=None, compare=False)

    def applies(self, raw: Mapping[str, Any]) -> bool:
        """Whether a config sets this key to something that is not LF's default."""
        if self.active is not None:
            return bool(self.active(raw))
        if self.key not in raw or raw[self.key] is None:
            return False
        return bool(_normal(raw[self.key]) != _normal(self.default))


def _normal(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip().lower()
        return {"true": True, "false": False, "none": None, "null": None}.get(text, text)
    return value


def _truthy(raw: Mapping[str, Any], key: str) -> bool:
    return _normal(raw.get(key)) in (True, 1)


FULL = "do_train: true\nfinetuning_type: full\nbf16: true\nper_device_train_batch_size: 1\ncutoff_len: 1024\n"
FREEZE = "do_train: true\nfinetuning_type: freeze\nbf16: true\nper_device_train_batch_size: 1\ncutoff_len: 1024\n"
QLORA = "do_train: true\nfinetuning_type: lora\nbf16: true\nquantization_bit: 4\nper_device_train_batch_size: 1\n" \
        "cutoff_len: 1024\n"
PREDICT = "do_predict: true\npredict_with_generate: true\nfinetuning_type: lora\nbf16: true\n" \
          "per_device_eval_batch_size: 2\ncutoff_len: 1024\neval_dataset: alpaca_en_demo\n"
DPO = "do_train: true\nstage: dpo\nfinetuning_type: full\nbf16: true\nper_device_train_batch_size: 1\n" \
      "cutoff_len: 1024\n"
Z3 = "deepspeed: examples/deepspeed/ds_z3_config.json\n"

ROWS: tuple[Row, ...] = (
    # --- model loading and precision -------------------------------------------------------------------
    Row("bf16", "modelled", "AMP in bf16: matmul outputs and saved activations in 2 bytes; weights keep their "
        "load dtype", "hparams/parser.py:512-515 (compute_dtype)", True, "less",
        "do_train: true\nfinetuning_type: full\nper_device_train_batch_size: 1\ncutoff_len: 4096\n"
        "disable_gradient_checkpointing: true\n", model=SMALL),
    Row("fp16", "modelled", "AMP in fp16: as bf16", "hparams/parser.py:512-515", True, "less",
        "do_train: true\nfinetuning_type: full\nper_device_train_batch_size: 1\ncutoff_len: 4096\n"
        "disable_gradient_checkpointing: true\n", model=SMALL),
    Row("pure_bf16", "modelled", "no fp32 upcast of trainable parameters: weights, gradients and optimizer states "
        "in the load dtype", "hparams/finetuning_args.py:456; model/adapter.py:319", True, "less", FULL),
    Row("infer_dtype", "modelled", "dtype of a model loaded only for prediction (do_predict); training loads the "
        "checkpoint's dtype", "hparams/model_args.py:181; model/patcher.py:322-325", "float32", "more", PREDICT,
        default="auto"),
    Row("low_cpu_mem_usage", "no effect", "host-side loading only: every rank still ends with the whole model on "
        "its GPU (device_map) before training", "hparams/model_args.py:109; model/patcher.py:370-376", False,
        "same"),
    Row("train_from_scratch", "no effect", "random initialisation of the same architecture: same sizes",
        "hparams/model_args.py:161", True, "same"),
    Row("resize_vocab", "modelled", "LoRA/OFT: the embeddings and the output layer become trainable full copies "
        "(modules_to_save)", "model/adapter.py:222-230", True, "more"),
    Row("add_tokens", "modelled", "sets resize_vocab (model/patcher.py:279-284): embeddings and output layer train",
        "hparams/model_args.py:73", "<tool_call>", "more"),
    Row("add_special_tokens", "modelled", "sets resize_vocab (model/patcher.py:287-293)",
        "hparams/model_args.py:79", "<think>", "more"),
    Row("upcast_layernorm", "no effect", "1-D norm weights in fp32: under 1 MiB for an 8B model; the norm math is "
        "fp32 already", "model/model_utils/checkpointing.py:151-155", True, "same"),
    Row("upcast_lmhead_output", "modelled", "fp32 logits from a hook: the bf16 logits are not kept, so the modelled "
        "logits (bf16 copy + fp32 copy + log-softmax) remain an upper bound", "model/model_utils/checkpointing.py:"
        "180-184", True, "same"),
    Row("mixture_of_depths", "unknown", "Mixture-of-Depths conversion of the decoder (routers, skipped tokens)",
        "model/loader.py:177", "convert", "unknown"),
    Row("moe_aux_loss_coef", "modelled", "output_router_logits: every MoE layer's router logits (tokens × experts) "
        "stay until the loss", "model/model_utils/moe.py:160-186", 0.001, "more", model=QWEN_MOE),
    Row("use_kv_cache", "modelled", "KV cache of a prediction run (do_predict); training turns it off",
        "hparams/model_args.py:173; model/model_utils/kv_cache.py:29-44", False, "less", PREDICT, default=True),
    Row("shift_attn", "unknown", "LongLoRA S²-attention (grouped shifted attention)", "hparams/model_args.py:121",
        True, "unknown", default=False),
    Row("rope_scaling", "no effect", "RoPE scaling factors: no tensor of another size", "hparams/model_args.py:113",
        "linear", "same"),
    Row("flash_attn", "modelled", "eager keeps the B·H·L² softmax; sdpa/fa2 keep the log-sum-exp only; fa3 is "
        "rejected by 0.9.5 (attention.py:86)", "hparams/model_args.py:117; model/model_utils/attention.py",
        "disabled", "more", default="auto"),
    Row("enable_liger_kernel", "modelled", "fused RMSNorm/SwiGLU/RoPE and, for pt/sft, fused linear "
        "cross-entropy: no full logits", "model/model_utils/liger_kernel.py:94-96", True, "less"),
    Row("use_v1_kernels", "unknown", "LLaMA-Factory's v1 kernel patches (fused RMSNorm, RoPE, MoE kernels)",
        "hparams/model_args.py:177; model/loader.py:224", True, "unknown", default=False),
    Row("disable_gradient_checkpointing", "modelled", "all layer activations kept instead of one hidden state per "
        "layer", "hparams/model_args.py:145; model/model_utils/checkpointing.py:164-178", True, "more"),
    Row("gradient_checkpointing", "modelled", "HF's own checkpointing: on even with disable_gradient_checkpointing",
        "transformers TrainingArguments", True, "less",
        "do_train: true\nfinetuning_type: lora\nbf16: true\nper_device_train_batch_size: 1\ncutoff_len: 1024\n"
        "disable_gradient_checkpointing: true\n"),
    Row("use_reentrant_gc", "no effect", "reentrant vs non-reentrant checkpointing keep the same tensors "
        "(LF: \"might increase VRAM usage (have not been empirically verified yet)\")",
        "hparams/model_args.py:149; model/model_utils/checkpointing.py:157-168", False, "same", default=True),
    Row("use_unsloth", "modelled", "Unsloth: weights in the compute dtype (8-bit not honoured), hidden states "
        "offloaded to pinned CPU memory, chunked fused cross-entropy (≤ 4 GiB fp32 chunks)",
        "model/model_utils/unsloth.py:36-48; unsloth_zoo gradient_checkpointing.py, fused_losses", True, "less"),
    Row("use_unsloth_gc", "modelled", "LLaMA-Factory's Unsloth-style checkpointing: checkpointed hidden states on "
        "the CPU", "model/model_utils/checkpointing.py:43-77", True, "less"),
    # --- quantization ------------------------------------------------------------------------------------
    Row("quantization_bit", "modelled", "frozen nn.Linear weights in 4 or 8 bits (bnb), 1-8 (HQQ), 8 (EETQ); "
        "embeddings, norms, lm_head and (transformers 5) fused MoE experts stay 16-bit",
        "model/model_utils/quantization.py:166-220", 4, "less"),
    Row("quantization_method", "modelled", "bnb / hqq / eetq storage formats (see docs/estimator.md)",
        "hparams/model_args.py:279", "hqq", "more", QLORA, default="bnb"),
    Row("quantization_type", "no effect", "nf4 and fp4 have the same storage (a 16-entry code table differs)",
        "hparams/model_args.py:287", "fp4", "same", QLORA, default="nf4"),
    Row("double_quantization", "modelled", "8-bit absmax per 64 weights + fp32 per 256 blocks (0.516 B/param) "
        "instead of fp32 absmax per 64 (0.5625 B/param)", "hparams/model_args.py:291", False, "more", QLORA,
        default=True),
    Row("quantization_device_map", "unknown", "device_map auto spreads a prediction model over the GPUs "
        "(rejected in training)", "hparams/model_args.py:295; hparams/parser.py:374", "auto", "unknown", PREDICT),
    Row("export_quantization_bit", "no effect", "export only (llamafactory-cli export)", "hparams/model_args.py:370",
        4, "same"),
    # --- method and adapters -----------------------------------------------------------------------------
    Row("finetuning_type", "modelled", "which parameters train (full / freeze / lora / oft)",
        "hparams/finetuning_args.py:464", "full", "more", default="lora"),
    Row("stage", "modelled", "pairwise stages (rm, dpo) double the micro-batch; dpo/kto/ppo add a reference model; "
        "ppo is not modelled", "hparams/finetuning_args.py:460", "dpo", "more", default="sft"),
    Row("lora_rank", "modelled", "adapter size: r·(in + out) per targeted linear", "hparams/finetuning_args.py:77",
        64, "more", default=8),
    Row("lora_target", "modelled", "which linears get adapters (all = every nn.Linear but lm_head; MoE experts only "
        "under transformers 4)", "hparams/finetuning_args.py:81; model/model_utils/misc.py:28-52", "q_proj,v_proj",
        "less", default="all"),
    Row("lora_dropout", "modelled", "a dropout output (compute dtype) and its mask (1 byte) per adapter input",
        "hparams/finetuning_args.py:73", 0.1, "more",
        "do_train: true\nfinetuning_type: lora\nbf16: true\nper_device_train_batch_size: 1\ncutoff_len: 1024\n"
        "disable_gradient_checkpointing: true\n", default=0.0),
    Row("lora_alpha", "no effect", "scaling only", "hparams/finetuning_args.py:69", 64, "same"),
    Row("use_rslora", "no effect", "scaling only", "hparams/finetuning_args.py:99", True, "same"),
    Row("use_dora", "modelled", "a magnitude vector per targeted linear", "hparams/finetuning_args.py:103", True,
        "more"),
    Row("pissa_init", "no effect", "SVD initialisation at load time, below the training peak",
        "hparams/finetuning_args.py:107", True, "same"),
    Row("additional_target", "modelled", "modules trained as full copies (modules_to_save)",
        "hparams/finetuning_args.py:59", "embed_tokens", "more"),
    Row("oft_block_size", "modelled", "OFT rotation parameters: in·(b−1)/2 per targeted linear",
        "hparams/finetuning_args.py:147; peft tuners/oft/layer.py:466-474", 64, "more",
        "do_train: true\nfinetuning_type: oft\nbf16: true\nper_device_train_batch_size: 1\ncutoff_len: 1024\n",
        default=32),
    Row("oft_rank", "modelled", "OFT blocks by their number instead of their size (with oft_block_size: 0)",
        "hparams/finetuning_args.py:143", 8, "changes",
        "do_train: true\nfinetuning_type: oft\noft_block_size: 0\nbf16: true\nper_device_train_batch_size: 1\n"
        "cutoff_len: 1024\n", default=0),
    Row("oft_target", "no effect", "parsed but unused: OFT targets come from lora_target (adapter.py:229-232)",
        "hparams/finetuning_args.py:151", "q_proj", "same",
        "do_train: true\nfinetuning_type: oft\nbf16: true\nper_device_train_batch_size: 1\ncutoff_len: 1024\n",
        default="all"),
    Row("module_dropout", "no effect", "drops whole OFT modules: no saved tensor", "hparams/finetuning_args.py:139",
        0.1, "same", default=0.0),
    Row("freeze_trainable_layers", "modelled", "how many layers train; a negative count trains the first layers, "
        "and the frozen layers above them keep activations (not modelled)", "hparams/finetuning_args.py:23", 4,
        "more", FREEZE, default=2),
    Row("freeze_trainable_modules", "modelled", "which modules of those layers train",
        "hparams/finetuning_args.py:33", "all", "same", FREEZE, default="all"),
    Row("freeze_extra_modules", "modelled", "extra modules (embed_tokens, lm_head) that train",
        "hparams/finetuning_args.py:43", "embed_tokens", "more", FREEZE),
    Row("use_llama_pro", "unknown", "LLaMA Pro: trainable blocks interleaved with frozen ones that keep "
        "activations", "hparams/finetuning_args.py:468", True, "unknown", FREEZE, default=False),
    Row("freeze_vision_tower", "modelled", "the vision tower trains: its parameters, gradients, optimizer states "
        "and activations", "hparams/finetuning_args.py:527; model/model_utils/visual.py:173-190", False, "more",
        FULL, model=QWEN_VL, default=True),
    Row("freeze_multi_modal_projector", "unknown", "the projector trains (its share of the vision parameters)",
        "hparams/finetuning_args.py:531", False, "unknown", FULL, model=QWEN_VL, default=True),
    Row("freeze_language_model", "unknown", "only the vision side trains", "hparams/finetuning_args.py:535", True,
        "unknown", FULL, model=QWEN_VL, default=False),
    Row("pref_loss", "modelled", "orpo/simpo need no reference model", "hparams/finetuning_args.py:183", "orpo",
        "less", DPO, default="sigmoid"),
    Row("ref_model", "modelled", "a separate reference model (also for LoRA)", "train/trainer_utils.py:116-148",
        LLAMA, "more", "do_train: true\nstage: dpo\nfinetuning_type: lora\nbf16: true\n"
        "per_device_train_batch_size: 1\ncutoff_len: 1024\n"),
    Row("ref_model_quantization_bit", "modelled", "the separate reference model in 4/8 bits",
        "train/trainer_utils.py:124-129", 4, "less", DPO.replace("full", "lora") + f"ref_model: {LLAMA}\n"),
    Row("reward_model_quantization_bit", "unknown", "PPO's full reward model in 4/8 bits (PPO is not modelled)",
        "train/trainer_utils.py:177-182", 4, "unknown"),
    Row("use_asft_loss", "modelled", "ASFT loads a reference model in SFT", "train/sft/workflow.py:56-57", True,
        "more", FULL),
    Row("use_dft_loss", "no effect", "per-token reweighting of the cross-entropy", "train/trainer_utils.py:639-670",
        True, "same", FULL),
    Row("use_eaft_loss", "modelled", "entropy weights: a masked fp32 copy of the logits (tokens × vocab)",
        "train/trainer_utils.py:786-810", True, "more"),
    Row("use_galore", "modelled", "GaLore: Adam states on rank-r projections of the targeted matrices",
        "train/trainer_utils.py:200-285", True, "less", FULL + "optim: adamw_torch\n"),
    Row("galore_rank", "modelled", "projection rank", "hparams/finetuning_args.py:279", 64, "more",
        FULL + "optim: adamw_torch\nuse_galore: true\n", default=16),
    Row("galore_layerwise", "modelled", "one optimizer per parameter stepped in a gradient hook: only the largest "
        "gradient is ever live", "train/trainer_utils.py:248-285", True, "less",
        FULL + "optim: adamw_torch\nuse_galore: true\n"),
    Row("galore_target", "modelled", "which linears are projected (all = every decoder linear)",
        "hparams/finetuning_args.py:270", "mlp", "more", FULL + "optim: adamw_torch\nuse_galore: true\n",
        default="all"),
    Row("galore_proj_type", "unknown", "projector shapes other than std (full, reverse_std, left, right)",
        "hparams/finetuning_args.py:291", "full", "unknown", FULL + "optim: adamw_torch\nuse_galore: true\n",
        default="std"),
    Row("use_apollo", "modelled", "APOLLO: like GaLore with a random projection", "train/trainer_utils.py:288-370",
        True, "less", FULL + "optim: adamw_torch\n"),
    Row("apollo_rank", "modelled", "projection rank", "hparams/finetuning_args.py:318", 64, "more",
        FULL + "optim: adamw_torch\nuse_apollo: true\n", default=16),
    Row("apollo_layerwise", "modelled", "per-parameter optimizer hooks: only the largest gradient is live",
        "train/trainer_utils.py:335-360", True, "less", FULL + "optim: adamw_torch\nuse_apollo: true\n"),
    Row("use_badam", "modelled", "BAdam layer mode: one block trains at a time; no fp32 upcast",
        "train/trainer_utils.py:412-470; model/adapter.py:319", True, "less", FULL),
    Row("badam_mode", "unknown", "ratio mode: a sparse update of the whole model", "hparams/finetuning_args.py:360",
        "ratio", "unknown", FULL + "use_badam: true\n", default="layer"),
    Row("use_adam_mini", "modelled", "Adam-mini: full first moment, one second-moment value per block",
        "train/trainer_utils.py:473-495; adam-mini 1.1.1 adam_mini.py", True, "less", FULL),
    Row("use_muon", "modelled", "Muon: one momentum buffer for 2-D weights, AdamW for the rest",
        "train/trainer_utils.py:498-524; third_party/muon/muon.py", True, "less", FULL),
    Row("optim", "modelled", "the optimizer's state bytes (AdamW 2 states, 8-bit 2 bytes, Adafactor factored, SGD "
        "none, ...)", "transformers TrainingArguments.optim", "adamw_8bit", "less", FULL,
        default="adamw_torch_fused"),
    Row("loraplus_lr_ratio", "no effect", "learning rates only", "train/trainer_utils.py:372-409", 16.0, "same"),
    # --- distributed ----------------------------------------------------------------------------------
    Row("deepspeed", "modelled", "ZeRO-0/1/2/3 sharding, offload and buckets", "transformers TrainingArguments",
        "examples/deepspeed/ds_z3_config.json", "less", FULL, gpus=4),
    Row("fsdp", "modelled", "FSDP through HF's keys (transformers 5: FSDP2 by default)",
        "transformers training_args.py:2775-2930", "full_shard auto_wrap", "less", FULL, gpus=4),
    Row("fsdp_config", "modelled", "FSDP settings (version, reshard_after_forward, cpu_offload, "
        "cpu_ram_efficient_loading — which only transformers 4 honours for these keys)",
        "transformers training_args.py:2775-2930", {"reshard_after_forward": False}, "more",
        FULL + "fsdp: full_shard auto_wrap\n", gpus=4),
    Row("ray_num_workers", "modelled", "USE_RAY=1: one GPU per worker, world size = ray_num_workers (like torchrun): "
        "the GPU count of the check, per-GPU memory as DDP", "hparams/training_args.py:43; "
        "train/trainer_utils.py:894-903", 4, "same", gpus=0, default=1),
    Row("fp8", "unknown", "FP8 matmuls (torchao / Transformer Engine) keep fp8 copies of inputs and weights",
        "hparams/training_args.py:123; train/fp8_utils.py", True, "unknown", FULL, default=False),
    Row("use_kt", "modelled", "KTransformers: routed experts and their LoRA on the CPU; the GPU holds the rest",
        "hparams/model_args.py:469; kt-kernel sft/wrapper.py:180-240", True, "less", model=DEEPSEEK_MOE,
        default=False),
    Row("kt_use_lora_experts", "unknown", "extra GPU LoRA experts of KTransformers", "hparams/model_args.py:481",
        True, "unknown", "do_train: true\nfinetuning_type: lora\nbf16: true\nuse_kt: true\n"
        "per_device_train_batch_size: 1\ncutoff_len: 1024\n", model=DEEPSEEK_MOE, default=False),
    Row("kt_cpu_activation", "no effect", "where KTransformers keeps expert activations: host memory only",
        "hparams/model_args.py:473 (main)", "retain", "same", "do_train: true\nfinetuning_type: lora\nbf16: true\n"
        "use_kt: true\nper_device_train_batch_size: 1\ncutoff_len: 1024\n", model=DEEPSEEK_MOE, versions=("main",)),
    Row("use_mca", "unknown", "Megatron-core training through mcore_adapter (USE_MCA=1)",
        "hparams/finetuning_args.py:476", True, "unknown", FULL, default=False),
    Row("tensor_model_parallel_size", "unknown", "Megatron tensor parallelism (USE_MCA=1 or USE_MEGATRON_BRIDGE=1)",
        "mcore_adapter TrainingArguments; hparams/megatron_bridge_args.py:32 (main)", 2, "unknown", FULL,
        active=lambda raw: False),  # reported once, by the Megatron check in estimator/plan.py
    Row("use_hyper_parallel", "unknown", "HyperParallel's fully_shard instead of accelerate's FSDP2",
        "hparams/finetuning_args.py:485; train/hyper_parallel/trainer.py", True, "unknown", FULL, default=False),
    Row("hyper_parallel_cp_size", "unknown", "HyperParallel context parallelism", "hparams/finetuning_args.py:518",
        2, "unknown", FULL, versions=("main",), default=1),
    Row("torch_compile", "unknown", "torch.compile changes which tensors are kept (usually fewer, not always)",
        "transformers TrainingArguments", True, "unknown", default=False),
    Row("use_cpu", "unknown", "training on the CPU", "transformers TrainingArguments", True, "unknown",
        default=False),
    Row("optim_target_modules", "unknown", "HF's own GaLore/APOLLO targets (outside LLaMA-Factory's GaLore)",
        "transformers TrainingArguments", ["q_proj"], "unknown", FULL),
    # --- data and batch -----------------------------------------------------------------------------------
    Row("cutoff_len", "modelled", "the longest sequence (LLaMA-Factory pads each batch to its longest row)",
        "hparams/data_args.py:46", 4096, "more", default=2048),
    Row("per_device_train_batch_size", "modelled", "sequences per micro-batch (HF default 8)",
        "transformers TrainingArguments", 4, "less",
        "do_train: true\nfinetuning_type: lora\nbf16: true\ncutoff_len: 1024\n", default=8),
    Row("gradient_accumulation_steps", "modelled", "gradients of earlier micro-batches stay during the next",
        "transformers TrainingArguments", 8, "more", FULL, default=1),
    Row("packing", "modelled", "rows of exactly cutoff_len (already the modelled worst case); fixed batch shapes "
        "take the runtime layer's fixed-shape allocator slack (estimator/runtime.py, fitted)",
        "hparams/data_args.py:108", True, "changes"),
    Row("neat_packing", "modelled", "packing without cross-attention: a (B,1,L,L) mask unless FlashAttention-2",
        "hparams/data_args.py:112; data/collator.py:93", True, "more"),
    Row("do_train", "modelled", "training; without it do_predict / do_eval run inference only",
        "transformers TrainingArguments", True, "more", "do_predict: true\npredict_with_generate: true\n"
        "eval_dataset: x\nbf16: true\nper_device_eval_batch_size: 1\nper_device_train_batch_size: 1\n"
        "cutoff_len: 1024\n"),
    Row("per_device_eval_batch_size", "modelled", "batch of evaluation and prediction", "transformers "
        "TrainingArguments", 8, "more", PREDICT, default=8),
    Row("val_size", "modelled", "evaluation during training: a forward of per_device_eval_batch_size sequences",
        "hparams/data_args.py:100", 0.1, "more", "do_train: true\nfinetuning_type: lora\nbf16: true\n"
        "per_device_train_batch_size: 1\nper_device_eval_batch_size: 16\ncutoff_len: 1024\n"),
    Row("max_new_tokens", "modelled", "generated tokens per prompt: the KV cache grows to prompt + new tokens",
        "hparams/generating_args.py:53", 4096, "more", PREDICT, default=1024),
    Row("num_beams", "modelled", "beams multiply the KV cache and the batch of generation",
        "hparams/generating_args.py:45", 4, "more", PREDICT, default=1),
    Row("image_max_pixels", "modelled", "pixels of the largest image: patches through the vision tower, tokens in "
        "the merged sequence (bounded by cutoff_len)", "hparams/model_args.py:305; data/mm_plugin.py:218-235",
        4096 * 4096, "more", "do_train: true\nfinetuning_type: lora\nbf16: true\nper_device_train_batch_size: 1\n"
        "cutoff_len: 8192\nfreeze_vision_tower: false\n", model=QWEN_VL, default=768 * 768),
    Row("video_max_pixels", "modelled", "pixels of each video frame", "hparams/model_args.py:321", 768 * 768, "more",
        FULL.replace("cutoff_len: 1024", "cutoff_len: 16384") + "freeze_vision_tower: false\n", model=QWEN_VL,
        default=256 * 256),
    Row("video_maxlen", "modelled", "frames per video", "hparams/model_args.py:333", 512, "more",
        FULL.replace("cutoff_len: 1024", "cutoff_len: 32768") + "freeze_vision_tower: false\n", model=QWEN_VL,
        default=128),
    Row("video_fps", "no effect", "frames sampled per second, capped by video_maxlen (the estimate assumes the cap)",
        "hparams/model_args.py:329", 8.0, "same", model=QWEN_VL, default=2.0),
    Row("image_min_pixels", "no effect", "upscales small images only (the estimate assumes the largest)",
        "hparams/model_args.py:309", 64 * 64, "same", model=QWEN_VL, default=32 * 32),
    Row("image_do_pan_and_scan", "unknown", "Gemma-3 pan-and-scan crops: more images per image",
        "hparams/model_args.py:313", True, "unknown", default=False),
    Row("crop_to_patches", "unknown", "InternVL crops: more images per image", "hparams/model_args.py:317", True,
        "unknown", default=False),
    Row("use_audio_in_video", "unknown", "audio tokens of videos (Qwen2.5-Omni)", "hparams/model_args.py:337", True,
        "unknown", default=False),
    Row("tokenized_path", "no effect", "the tokenized data is saved, then training goes on (no exit since 2025-03)",
        "hparams/data_args.py:132; data/loader.py:330-334", "saves/tokenized", "same"),
    Row("streaming", "no effect", "host-side data loading", "hparams/data_args.py:58", True, "same"),
    Row("compute_accuracy", "no effect", "keeps the argmax only", "hparams/finetuning_args.py:539", True, "same"),
    Row("torch_empty_cache_steps", "no effect", "periodic empty_cache: the peak stays", "transformers "
        "TrainingArguments", 10, "same"),
)


def rows(version: str | None = None) -> tuple[Row, ...]:
    return tuple(row for row in ROWS if version is None or version in row.versions)


def _autotp(deepspeed: DeepSpeedConfig | None) -> bool:
    return deepspeed is not None and deepspeed.autotp_size > 1


def unmodelled(raw: Mapping[str, Any], versions: Versions, *, deepspeed: DeepSpeedConfig | None = None,
               fsdp: FsdpConfig | None = None, task: str = "train", finetuning_type: str = "lora") -> list[str]:
    """The parts of this config the estimator does not model, each with the key and why."""
    found = [f"{row.key}: {row.effect}" for row in ROWS
             if row.status == "unknown" and versions.llamafactory in row.versions and row.applies(raw)]
    if _autotp(deepspeed):
        found.append("DeepSpeed AutoTP (tensor_parallel.autotp_size): tensor-parallel sharding of the weights")
    if deepspeed is not None and deepspeed.offload_param and deepspeed.stage != 3:
        found.append("offload_param outside ZeRO-3 (DeepSpeed offloads parameters only in stage 3)")
    if finetuning_type == "freeze" and _number(raw, "freeze_trainable_layers", 2) < 0:
        found.append("freeze_trainable_layers < 0 (the first layers train): the frozen layers above them keep "
                     "activations")
    if fsdp is not None and fsdp.wrap_policy == "SIZE_BASED_WRAP" and fsdp.min_num_params <= 0:
        found.append(f"FSDP SIZE_BASED_WRAP without min_num_params ({fsdp.source})")
    if task == "train" and _normal(raw.get("stage")) == "ppo":
        found.append("stage ppo: rollouts (generation with a KV cache), the value head and the reward model's "
                     "forward are not modelled")
    return found


def _number(raw: Mapping[str, Any], key: str, default: int) -> int:
    value = raw.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def markdown() -> str:
    """docs/coverage.md."""
    lines = [
        "# Coverage: every LLaMA-Factory key that changes GPU memory",
        "",
        "Generated by `python -m estimator.coverage > docs/coverage.md` from `estimator/coverage.py`; "
        "`tests/test_coverage.py` regenerates it and fails when it differs, and runs one test per row (the "
        "row's example through the pipeline, against the same config without the key).",
        "",
        "* **modelled**: the estimate follows the key;",
        "* **unknown**: a config that sets it gets `\"modelled\": false`, the key in `not_modelled` and the "
        "verdict `unknown` (❔) — no number is claimed for it;",
        "* **no effect**: the key does not change the per-GPU peak.",
        "",
        "Sources are LLaMA-Factory v0.9.5 (`7af9095`, src/llamafactory/) unless marked main (`ff6d4d1`); "
        "`versions` lists the LLaMA-Factory versions that accept the key. Beyond the keys, these setups are "
        "flagged unknown: the v1 schema (`USE_V1=1`), Megatron (`USE_MCA=1`, `USE_MEGATRON_BRIDGE=1`), PPO "
        "rollouts, DeepSpeed AutoTP, accelerate launchers other than "
        "NO / MULTI_GPU / FSDP / DEEPSPEED, pre-quantized checkpoints of other formats than GPTQ, AWQ, AQLM, "
        "HQQ, EETQ, bitsandbytes, FP8 and MXFP4, and models whose vision tower vram-check cannot read.",
        "",
        "| key | status | example → estimate | what it does to memory | read from | versions |",
        "|---|---|---|---|---|---|",
    ]
    for row in ROWS:
        example = f"`{row.example}` → {row.expect}"
        lines.append(f"| `{row.key}` | {row.status} | {example} | {row.effect.replace('|', '/')} | "
                     f"{row.source} | {', '.join(row.versions)} |")
    counts = {status: sum(1 for row in ROWS if row.status == status) for status in ("modelled", "unknown",
                                                                                    "no effect")}
    lines += ["", f"{len(ROWS)} keys: {counts['modelled']} modelled, {counts['unknown']} unknown, "
                  f"{counts['no effect']} no effect.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
