"""The combinations LLaMA-Factory v0.9.5 rejects, in one place.

`rejections(raw, zero_stage, world_size)` reads a training YAML's top-level mapping as LLaMA-Factory's
HfArgumentParser would and returns every combination LLaMA-Factory stops on, in the order it checks
them, each with its own error text. `estimator.plan.parse_plan` raises on the first one (issue 2);
`rules.checks` reports all of them as findings at the key's line, one rule ID per family.
Line numbers are LLaMA-Factory v0.9.5's, under src/llamafactory/.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Phase = Literal["arguments", "model loading", "optimizer creation"]

# Rule IDs (docs/rules.md): each family is reported by the rule module of the same name in rules/checks/.
ADAPTER_METHOD = "adapter-method"
BADAM_DISTRIBUTED = "badam-distributed"
GALORE_DEEPSPEED = "galore-deepspeed"
LAYERWISE_OPTIMIZER = "layerwise-optimizer"
METHOD_OPTIONS = "method-options"
PPO_REWARD_MODEL = "ppo-reward-model"
PURE_BF16_ZERO3 = "pure-bf16-zero3"
QUANTIZATION_TRAINING = "quantization-training"
QUANTIZATION_ZERO3 = "quantization-zero3"
SFT_ONLY_OPTIONS = "sft-only-options"
ZERO3_INCOMPATIBLE = "zero3-incompatible"
REJECTION_RULES = (ADAPTER_METHOD, BADAM_DISTRIBUTED, GALORE_DEEPSPEED, LAYERWISE_OPTIMIZER, METHOD_OPTIONS,
                   PPO_REWARD_MODEL, PURE_BF16_ZERO3, QUANTIZATION_TRAINING, QUANTIZATION_ZERO3, SFT_ONLY_OPTIONS,
                   ZERO3_INCOMPATIBLE)

TRUE_WORDS = ("true", "yes", "on", "1")  # strings HfArgumentParser's string_to_bool reads as true


@dataclass(frozen=True)
class Rejection:
    """One combination LLaMA-Factory stops on."""

    rule: str  # the rule ID that reports it (REJECTION_RULES)
    key: str  # the top-level YAML key a finding points at
    message: str  # LLaMA-Factory's own error text, verbatim (typos included)
    hint: str | None = None  # what in this config triggered it, or the way out
    phase: Phase = "arguments"  # when LLaMA-Factory raises: parsing arguments, loading the model, or later

    @property
    def text(self) -> str:
        """LLaMA-Factory's message, then the hint in parentheses."""
        return f"{self.message} ({self.hint})" if self.hint else self.message


# --- reading keys as HfArgumentParser does -------------------------------------------------------------


def has(raw: Mapping[str, Any], key: str) -> bool:
    """The key is set to something other than null."""
    return raw.get(key) is not None


def flag(raw: Mapping[str, Any], key: str) -> bool:
    """A boolean key: YAML true, or one of the strings true/yes/on/1."""
    value = raw.get(key)
    if isinstance(value, str):
        return value.strip().lower() in TRUE_WORDS
    return bool(value)


def text(raw: Mapping[str, Any], key: str, default: str) -> str:
    """A string key, stripped and lower-cased, with LLaMA-Factory's default when absent."""
    value = raw.get(key)
    return default if value is None else str(value).strip().lower()


def number(raw: Mapping[str, Any], key: str, default: int) -> int:
    """An integer key; a value that is not an integer counts as the default (the plan reports it)."""
    value = raw.get(key)
    if isinstance(value, bool) or value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True)
class _Config:
    raw: Mapping[str, Any]
    zero_stage: int
    world_size: int

    def has(self, key: str) -> bool:
        return has(self.raw, key)

    def flag(self, key: str) -> bool:
        return flag(self.raw, key)

    def text(self, key: str, default: str) -> str:
        return text(self.raw, key, default)

    @property
    def method(self) -> str:
        return self.text("finetuning_type", "lora")  # finetuning_args.py default

    @property
    def stage(self) -> str:
        return self.text("stage", "sft")  # finetuning_args.py default

    @property
    def zero3(self) -> bool:
        return self.zero_stage == 3

    @property
    def uses_deepspeed(self) -> bool:
        return self.raw.get("deepspeed") not in (None, "", False)


def rejections(raw: Mapping[str, Any], zero_stage: int, world_size: int = 1) -> list[Rejection]:
    """Every combination LLaMA-Factory v0.9.5 rejects in this config, in the order it checks them.

    `zero_stage` is the DeepSpeed ZeRO stage (0 without DeepSpeed); `world_size` the number of GPUs (more
    than one is LLaMA-Factory's ParallelMode.DISTRIBUTED)."""
    config = _Config(raw, zero_stage, world_size)
    found: list[Rejection] = []
    for family in (_finetuning_arguments, _train_arguments, _model_arguments, _quantization, _optimizer):
        found.extend(family(config))
    return found


def _finetuning_arguments(c: _Config) -> Iterator[Rejection]:
    """hparams/finetuning_args.py FinetuningArguments.__post_init__, run while the arguments parse."""
    if c.stage == "ppo" and not c.has("reward_model"):  # finetuning_args.py:580
        yield Rejection(PPO_REWARD_MODEL, "stage", "`reward_model` is necessary for PPO training.")
    if c.stage == "ppo" and c.text("reward_model_type", "lora") == "lora" and c.method != "lora":  # :583
        key = "reward_model_type" if c.has("reward_model_type") else "finetuning_type"
        yield Rejection(PPO_REWARD_MODEL, key, "`reward_model_type` cannot be lora for Freeze/Full PPO training.")
    if c.flag("use_llama_pro") and c.method == "full":  # finetuning_args.py:592
        yield Rejection(METHOD_OPTIONS, "use_llama_pro", "`use_llama_pro` is only valid for Freeze or LoRA training.")
    optimizers = [key for key in ("use_galore", "use_apollo", "use_badam") if c.flag(key)]
    if c.method == "lora" and optimizers:  # finetuning_args.py:595
        yield Rejection(METHOD_OPTIONS, optimizers[0], "Cannot use LoRA with GaLore, APOLLO or BAdam together.",
                        "finetuning_type defaults to lora: set full or freeze")
    if len(optimizers) > 1:  # finetuning_args.py:598
        yield Rejection(METHOD_OPTIONS, optimizers[1], "Cannot use GaLore, APOLLO or BAdam together.")
    if c.method != "lora":  # finetuning_args.py:604-615, in LLaMA-Factory's order
        for key in ("loraplus_lr_ratio", "use_rslora", "use_dora", "pissa_init"):
            if c.has(key) if key == "loraplus_lr_ratio" else c.flag(key):
                yield Rejection(METHOD_OPTIONS, key, f"`{key}` is only valid for LoRA training.",
                                f"finetuning_type: {c.method}")


def _train_arguments(c: _Config) -> Iterator[Rejection]:
    """hparams/parser.py get_train_args, in its order."""
    if c.stage != "sft":  # parser.py:316-324
        if c.flag("predict_with_generate"):
            yield Rejection(SFT_ONLY_OPTIONS, "predict_with_generate",
                            "`predict_with_generate` cannot be set as True except SFT.", f"stage: {c.stage}")
        if c.flag("neat_packing"):
            yield Rejection(SFT_ONLY_OPTIONS, "neat_packing", "`neat_packing` cannot be set as True except SFT.",
                            f"stage: {c.stage}")
        prompt_keys = [key for key in ("train_on_prompt", "mask_history") if c.flag(key)]
        if prompt_keys:
            yield Rejection(SFT_ONLY_OPTIONS, prompt_keys[0],
                            "`train_on_prompt` or `mask_history` cannot be set as True except SFT.",
                            f"stage: {c.stage}")
    if c.flag("predict_with_generate") and c.zero3:  # parser.py:368
        yield Rejection(ZERO3_INCOMPATIBLE, "predict_with_generate",
                        "`predict_with_generate` is incompatible with DeepSpeed ZeRO-3.")
    if c.text("quantization_device_map", "") == "auto":  # parser.py:374 (do_train: every config here trains)
        yield Rejection(QUANTIZATION_TRAINING, "quantization_device_map",
                        "Cannot use device map for quantized models in training.")
    if c.flag("pissa_init") and c.zero3:  # parser.py:377
        yield Rejection(ZERO3_INCOMPATIBLE, "pissa_init",
                        "Please use scripts/pissa_init.py to initialize PiSSA in DeepSpeed ZeRO-3.")
    if c.flag("pure_bf16") and c.zero3:  # parser.py:384
        yield Rejection(PURE_BF16_ZERO3, "pure_bf16", "`pure_bf16` is incompatible with DeepSpeed ZeRO-3.",
                        "use bf16: true, or ZeRO-2")
    if c.world_size > 1:  # parser.py:387-398, ParallelMode.DISTRIBUTED
        yield from _distributed(c)
    if c.uses_deepspeed:  # parser.py:400
        for key in ("use_galore", "use_apollo"):
            if c.flag(key):
                yield Rejection(GALORE_DEEPSPEED, key, "GaLore and APOLLO are incompatible with DeepSpeed yet.")
    if c.flag("fp8") and c.has("quantization_bit"):  # parser.py:403
        yield Rejection(QUANTIZATION_TRAINING, "fp8",
                        "FP8 training is not compatible with quantization. Please disable one of them.")
    if c.flag("use_unsloth") and c.zero3:  # parser.py:409
        yield Rejection(ZERO3_INCOMPATIBLE, "use_unsloth", "Unsloth is incompatible with DeepSpeed ZeRO-3.")
    if c.flag("use_kt") and c.zero3:  # parser.py:412
        yield Rejection(ZERO3_INCOMPATIBLE, "use_kt", "KTransformers is incompatible with DeepSpeed ZeRO-3.")


def _distributed(c: _Config) -> Iterator[Rejection]:
    """parser.py:387-398: layer-wise GaLore/APOLLO and BAdam on more than one GPU."""
    target = f"target: {c.world_size} GPUs"
    for layerwise, enabled, name in (("galore_layerwise", "use_galore", "GaLore"),
                                     ("apollo_layerwise", "use_apollo", "APOLLO")):
        if c.flag(enabled) and c.flag(layerwise):  # parser.py:388 / :391
            yield Rejection(LAYERWISE_OPTIMIZER, layerwise,
                            f"Distributed training does not support layer-wise {name}.", target)
    if c.flag("use_badam"):
        if c.text("badam_mode", "layer") == "ratio":  # parser.py:395; "Radio" is LLaMA-Factory's own spelling
            yield Rejection(BADAM_DISTRIBUTED, "badam_mode", "Radio-based BAdam does not yet support distributed "
                            "training, use layer-wise BAdam.", target)
        elif not c.zero3:  # parser.py:397
            yield Rejection(BADAM_DISTRIBUTED, "use_badam", "Layer-wise BAdam only supports DeepSpeed ZeRO-3 training.",
                            f"{target}, ZeRO-{c.zero_stage}")


def _model_arguments(c: _Config) -> Iterator[Rejection]:
    """hparams/parser.py _verify_model_args (called from get_train_args, parser.py:416)."""
    if c.has("adapter_name_or_path") and c.method != "lora":  # parser.py:185
        yield Rejection(ADAPTER_METHOD, "adapter_name_or_path", "Adapter is only valid for the LoRA method.",
                        f"finetuning_type: {c.method}")
    if c.has("quantization_bit") and c.method not in ("lora", "oft"):  # parser.py:189
        yield Rejection(ADAPTER_METHOD, "quantization_bit", "Quantization is only compatible with the LoRA or OFT "
                        "method.", f"finetuning_type: {c.method}")


def _quantization(c: _Config) -> Iterator[Rejection]:
    """model/model_utils/quantization.py configure_quantization: on-the-fly quantization under ZeRO-3,
    checked when LLaMA-Factory loads the model."""
    if not (c.zero3 and c.has("quantization_bit")):
        return
    bits = number(c.raw, "quantization_bit", 0)
    method = c.text("quantization_method", "bnb")
    if method == "bnb" and bits != 4:  # quantization.py:186-188
        yield Rejection(QUANTIZATION_ZERO3, "quantization_bit",
                        "Only 4-bit quantized model can use fsdp+qlora or auto device map.",
                        f"quantization_bit: {bits} with ZeRO-3", phase="model loading")
    elif method == "hqq":  # quantization.py:199
        yield Rejection(QUANTIZATION_ZERO3, "quantization_method",
                        "HQQ quantization is incompatible with DeepSpeed ZeRO-3 or FSDP.", phase="model loading")
    elif method == "eetq":  # quantization.py:211
        yield Rejection(QUANTIZATION_ZERO3, "quantization_method",
                        "EETQ quantization is incompatible with DeepSpeed ZeRO-3 or FSDP.", phase="model loading")


def _optimizer(c: _Config) -> Iterator[Rejection]:
    """train/trainer_utils.py _create_galore_optimizer / _create_apollo_optimizer: layer-wise optimizers
    step inside the backward hooks, so they cannot accumulate gradients."""
    steps = number(c.raw, "gradient_accumulation_steps", 1)
    if steps == 1:
        return
    for layerwise, enabled, name in (("galore_layerwise", "use_galore", "GaLore"),
                                     ("apollo_layerwise", "use_apollo", "APOLLO")):
        if c.flag(enabled) and c.flag(layerwise):  # trainer_utils.py:250 / :337
            yield Rejection(LAYERWISE_OPTIMIZER, "gradient_accumulation_steps",
                            f"Per-layer {name} does not support gradient accumulation.",
                            f"gradient_accumulation_steps: {steps}", phase="optimizer creation")
