"""Each validation rule: a config that triggers it (at the right line, with LLaMA-Factory's message)
and a close config that does not. Messages are LLaMA-Factory v0.9.5's own (hparams/parser.py,
hparams/finetuning_args.py, model/model_utils/quantization.py, train/trainer_utils.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from rules.checks import RuleContext, run_rules
from rules.gpus import GPU, find_gpu

HEAD = "model_name_or_path: Qwen/Qwen2.5-7B\ndo_train: true\n"
Z3 = "deepspeed: examples/deepspeed/ds_z3_config.json\n"
Z2 = "deepspeed: examples/deepspeed/ds_z2_config.json\n"


@dataclass(frozen=True)
class Case:
    rule: str
    body: str  # YAML after HEAD
    key: str | None  # the key the finding must point at; None: the rule must stay silent
    message: str = ""  # a part of the expected message
    gpu: GPU | None = None
    world_size: int = 1
    extra: dict[str, object] = field(default_factory=dict)


CASES = [
    # adapter-method
    Case("adapter-method", "finetuning_type: full\nquantization_bit: 4\n", "quantization_bit",
         "Quantization is only compatible with the LoRA or OFT method."),
    Case("adapter-method", "finetuning_type: oft\nquantization_bit: 4\n", None),
    Case("adapter-method", "quantization_bit: 4\n", None),  # finetuning_type defaults to lora
    Case("adapter-method", "finetuning_type: freeze\nadapter_name_or_path: saves/x\n", "adapter_name_or_path",
         "Adapter is only valid for the LoRA method."),
    # pure-bf16-zero3
    Case("pure-bf16-zero3", "finetuning_type: full\npure_bf16: true\n" + Z3, "pure_bf16",
         "`pure_bf16` is incompatible with DeepSpeed ZeRO-3."),
    Case("pure-bf16-zero3", "finetuning_type: full\npure_bf16: true\n" + Z2, None),
    Case("pure-bf16-zero3", "finetuning_type: full\npure_bf16: true\n"
         "deepspeed: {zero_optimization: {stage: 3}}\n", "pure_bf16"),  # inline DeepSpeed dict
    # galore-deepspeed
    Case("galore-deepspeed", "finetuning_type: full\nuse_galore: true\n" + Z2, "use_galore",
         "GaLore and APOLLO are incompatible with DeepSpeed yet."),
    Case("galore-deepspeed", "finetuning_type: full\nuse_apollo: true\n" + Z3, "use_apollo"),
    Case("galore-deepspeed", "finetuning_type: full\nuse_galore: true\n", None),
    # layerwise-optimizer
    Case("layerwise-optimizer", "finetuning_type: full\nuse_galore: true\ngalore_layerwise: true\n"
         "gradient_accumulation_steps: 4\n", "gradient_accumulation_steps",
         "Per-layer GaLore does not support gradient accumulation."),
    Case("layerwise-optimizer", "finetuning_type: full\nuse_apollo: true\napollo_layerwise: true\n", "apollo_layerwise",
         "Distributed training does not support layer-wise APOLLO.", world_size=2),
    Case("layerwise-optimizer", "finetuning_type: full\nuse_galore: true\ngalore_layerwise: true\n"
         "gradient_accumulation_steps: 1\n", None),
    Case("layerwise-optimizer", "finetuning_type: full\nuse_galore: true\ngradient_accumulation_steps: 8\n", None,
         world_size=8),  # not layer-wise: accumulation and DDP are fine
    # badam-distributed
    Case("badam-distributed", "finetuning_type: full\nuse_badam: true\nbadam_mode: ratio\n", "badam_mode",
         "Radio-based BAdam does not yet support distributed training", world_size=4),
    Case("badam-distributed", "finetuning_type: full\nuse_badam: true\n" + Z2, "use_badam",
         "Layer-wise BAdam only supports DeepSpeed ZeRO-3 training.", world_size=4),
    Case("badam-distributed", "finetuning_type: full\nuse_badam: true\n" + Z3, None, world_size=4),
    Case("badam-distributed", "finetuning_type: full\nuse_badam: true\nbadam_mode: ratio\n", None),  # one GPU
    # zero3-incompatible
    Case("zero3-incompatible", "use_unsloth: true\n" + Z3, "use_unsloth",
         "Unsloth is incompatible with DeepSpeed ZeRO-3."),
    Case("zero3-incompatible", "use_unsloth: true\n" + Z2, None),
    Case("zero3-incompatible", "pissa_init: true\n" + Z3, "pissa_init", "scripts/pissa_init.py"),
    Case("zero3-incompatible", "use_kt: true\n" + Z3, "use_kt", "KTransformers is incompatible with DeepSpeed ZeRO-3."),
    Case("zero3-incompatible", "do_eval: true\npredict_with_generate: true\n" + Z3, "predict_with_generate",
         "`predict_with_generate` is incompatible with DeepSpeed ZeRO-3."),
    # method-options
    Case("method-options", "finetuning_type: full\nuse_dora: true\n", "use_dora",
         "`use_dora` is only valid for LoRA training."),
    Case("method-options", "finetuning_type: freeze\nloraplus_lr_ratio: 16.0\n", "loraplus_lr_ratio"),
    Case("method-options", "finetuning_type: lora\nuse_dora: true\nuse_rslora: true\n", None),
    Case("method-options", "use_galore: true\n", "use_galore",
         "Cannot use LoRA with GaLore, APOLLO or BAdam together."),  # lora is the default method
    Case("method-options", "finetuning_type: full\nuse_galore: true\nuse_badam: true\n", "use_badam",
         "Cannot use GaLore, APOLLO or BAdam together."),
    Case("method-options", "finetuning_type: full\nuse_llama_pro: true\n", "use_llama_pro",
         "`use_llama_pro` is only valid for Freeze or LoRA training."),
    Case("method-options", "finetuning_type: full\nuse_badam: true\n", None),
    # ppo-reward-model
    Case("ppo-reward-model", "stage: ppo\n", "stage", "`reward_model` is necessary for PPO training."),
    Case("ppo-reward-model", "stage: ppo\nfinetuning_type: full\nreward_model: saves/rm\n", "finetuning_type",
         "`reward_model_type` cannot be lora for Freeze/Full PPO training."),
    Case("ppo-reward-model", "stage: ppo\nreward_model: saves/rm\n", None),
    Case("ppo-reward-model", "stage: ppo\nfinetuning_type: full\nreward_model: saves/rm\n"
         "reward_model_type: full\n", None),
    # gpu-bf16
    Case("gpu-bf16", "bf16: true\n", "bf16", "doesn't support bf16/gpu", gpu=find_gpu("Tesla T4")),
    Case("gpu-bf16", "finetuning_type: full\npure_bf16: true\n", "pure_bf16",
         "This device does not support `pure_bf16`.", gpu=find_gpu("V100-16GB")),
    Case("gpu-bf16", "fp16: true\n", None, gpu=find_gpu("Tesla T4")),
    Case("gpu-bf16", "bf16: true\n", None, gpu=find_gpu("A10G")),
    Case("gpu-bf16", "bf16: true\n", None),  # no target GPU known
    # gpu-flash-attention
    Case("gpu-flash-attention", "flash_attn: fa2\n", "flash_attn", "does not run on V100-32GB",
         gpu=find_gpu("V100-32GB")),
    Case("gpu-flash-attention", "flash_attn: sdpa\n", None, gpu=find_gpu("V100-32GB")),
    Case("gpu-flash-attention", "flash_attn: fa2\n", None, gpu=find_gpu("RTX-4090")),
    # quantization-zero3
    Case("quantization-zero3", "quantization_bit: 8\nbf16: true\n" + Z3, "quantization_bit",
         "Only 4-bit quantized model can use fsdp+qlora or auto device map."),
    Case("quantization-zero3", "quantization_bit: 4\nquantization_method: hqq\nbf16: true\n" + Z3,
         "quantization_method", "HQQ quantization is incompatible with DeepSpeed ZeRO-3 or FSDP."),
    # quantization-storage
    Case("quantization-storage", "quantization_bit: 4\n" + Z3, "quantization_bit", "neither bf16 nor fp16"),
    Case("quantization-storage", "quantization_bit: 4\nbf16: true\n" + Z3, None),
    Case("quantization-zero3", "quantization_bit: 4\nbf16: true\n" + Z3, None),
    Case("quantization-zero3", "quantization_bit: 8\n" + Z2, None),
    Case("quantization-zero3", "quantization_bit: 8\nquantization_method: eetq\nbf16: true\n" + Z3,
         "quantization_method", "EETQ quantization is incompatible with DeepSpeed ZeRO-3 or FSDP."),
    # quantization-training
    Case("quantization-training", "quantization_bit: 4\nquantization_device_map: auto\n", "quantization_device_map",
         "Cannot use device map for quantized models in training."),
    Case("quantization-training", "quantization_bit: 4\nfp8: true\n", "fp8",
         "FP8 training is not compatible with quantization."),
    Case("quantization-training", "fp8: true\n", None),
    Case("quantization-training", "quantization_bit: 4\nquantization_device_map: cpu\n", None),
    # sft-only-options
    Case("sft-only-options", "stage: dpo\nneat_packing: true\n", "neat_packing",
         "`neat_packing` cannot be set as True except SFT."),
    Case("sft-only-options", "stage: kto\nmask_history: true\n", "mask_history",
         "`train_on_prompt` or `mask_history` cannot be set as True except SFT."),
    Case("sft-only-options", "stage: rm\npredict_with_generate: true\n", "predict_with_generate",
         "`predict_with_generate` cannot be set as True except SFT."),
    Case("sft-only-options", "stage: sft\nneat_packing: true\ntrain_on_prompt: true\n", None),
    # duplicate-key
    Case("duplicate-key", "cutoff_len: 512\nbf16: true\ncutoff_len: 1024\n", "cutoff_len",
         "'cutoff_len' is set twice, on line 3 and again on line 5: LLaMA-Factory stops"),
    Case("duplicate-key", "cutoff_len: 512\nbf16: true\n", None),
    # absurd-value (cutoff_len 1e12 is a number for LLaMA-Factory: OmegaConf reads it as a float)
    Case("absurd-value", "cutoff_len: 1e12\n", "cutoff_len",
         "cutoff_len 1,000,000,000,000 is more than 64× the model's position limit (max_position_embeddings 131,072)",
         extra={"max_positions": 131072}),
    Case("absurd-value", "per_device_train_batch_size: 100000\n", "per_device_train_batch_size",
         "per_device_train_batch_size 100,000 is over 65,536 sequences per GPU"),
    Case("absurd-value", "cutoff_len: 262144\nper_device_train_batch_size: 65536\n", None,
         extra={"max_positions": 4096}),
    # deepspeed-file
    Case("deepspeed-file", Z3, "deepspeed", "not found",
         extra={"deepspeed_error": "DeepSpeed config 'examples/deepspeed/ds_z3_config.json' not found"}),
    Case("deepspeed-file", "deepspeed: 3\n", "deepspeed", "must be a path to a JSON file"),
    Case("deepspeed-file", Z3, None),
]


def case_id(case: Case) -> str:
    return f"{case.rule}:{'fires' if case.key else 'silent'}:{case.body.splitlines()[0]}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_rule(case: Case) -> None:
    text = HEAD + case.body
    ctx = RuleContext.from_yaml(text, "configs/c.yaml", gpu=case.gpu, world_size=case.world_size,
                                **case.extra)  # type: ignore[arg-type]
    mine = [finding for finding in run_rules(ctx) if finding.rule == case.rule]
    if case.key is None:
        assert mine == []
        return
    expected_line = next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith(f"{case.key}:"))
    assert [(f.line, f.severity in ("error", "warning")) for f in mine] == [(expected_line, True)]
    assert case.message in mine[0].message


def test_every_rule_has_a_firing_and_a_silent_case() -> None:
    from rules.checks import rule_docs

    for rule, _, _ in rule_docs():
        if rule in ("unknown-key", "effective-batch-changed"):
            continue  # tested in their own modules
        assert any(c.rule == rule and c.key for c in CASES), rule
        assert any(c.rule == rule and c.key is None for c in CASES), rule


def test_zero_stage_from_the_deepspeed_json_wins_over_the_file_name() -> None:
    text = HEAD + "finetuning_type: full\npure_bf16: true\ndeepspeed: configs/my_ds.json\n"
    silent = RuleContext.from_yaml(text, "c.yaml")  # name says nothing: ZeRO stage unknown → 0
    assert [f for f in run_rules(silent) if f.rule == "pure-bf16-zero3"] == []
    known = RuleContext.from_yaml(text, "c.yaml", deepspeed_stage=3)
    assert [f.rule for f in run_rules(known)] == ["pure-bf16-zero3"]
