"""The combinations LLaMA-Factory rejects, as one table.

Each row is LLaMA-Factory's own check: the family (the rule ID that reports it), the key a finding points
at, LLaMA-Factory's message verbatim, the source line, the phase in which LLaMA-Factory raises, and the
condition, a small function of the config's arguments. `rejections(raw, zero_stage, world_size)` returns
every row that applies, in the order LLaMA-Factory checks them. `estimator.plan` refuses a config on the
first one (the run dies before training, so no estimate is given); `rules.checks.llamafactory_rejections`
reports every one as a finding at the key's line. Source lines are LLaMA-Factory v0.9.5's, under
src/llamafactory/.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Phase = Literal["arguments", "model loading", "optimizer creation"]

# Families: rule ID → its one-line documentation (docs/rules.md is generated from these).
FAMILIES: dict[str, str] = {
    "adapter-method": "Quantization or adapter loading with a method that does not take them (LoRA/OFT only).",
    "badam-distributed": "BAdam on several GPUs: ratio mode is rejected and layer mode needs DeepSpeed ZeRO-3.",
    "galore-deepspeed": "GaLore or APOLLO with any DeepSpeed config.",
    "layerwise-optimizer": "Layer-wise GaLore/APOLLO with gradient accumulation or on more than one GPU.",
    "method-options": "Options of another method: LoRA-only keys without LoRA, LoRA + GaLore/APOLLO/BAdam, "
                      "LLaMA Pro + full.",
    "ppo-reward-model": "PPO without a reward model, or with a LoRA reward model on a Freeze/Full run.",
    "pure-bf16-zero3": "pure_bf16 with DeepSpeed ZeRO-3.",
    "quantization-training": "quantization_device_map: auto while training, or fp8 with quantization_bit.",
    "quantization-zero3": "On-the-fly quantization under ZeRO-3 other than bnb 4-bit (8-bit bnb, HQQ, EETQ).",
    "sft-only-options": "SFT-only options (predict_with_generate, neat_packing, train_on_prompt, mask_history) "
                        "with another stage.",
    "zero3-incompatible": "Options that do not work under ZeRO-3: Unsloth, KTransformers, PiSSA init, "
                          "predict_with_generate.",
}
REJECTION_RULES = tuple(FAMILIES)

TRUE_WORDS = ("true", "yes", "on", "1")  # strings HfArgumentParser's string_to_bool reads as true


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
    return default if value is None or isinstance(value, dict | list) else str(value).strip().lower()[:200]


def number(raw: Mapping[str, Any], key: str, default: int) -> int:
    """An integer key; a value that is not an integer counts as the default (the plan reports it)."""
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return default
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return default


@dataclass(frozen=True)
class Arguments:
    """A config's top-level keys as LLaMA-Factory's argument classes read them, plus the launch facts."""

    raw: Mapping[str, Any]
    zero_stage: int
    world_size: int

    def has(self, key: str) -> bool:
        return has(self.raw, key)

    def flag(self, key: str) -> bool:
        return flag(self.raw, key)

    def text(self, key: str, default: str) -> str:
        return text(self.raw, key, default)

    def number(self, key: str, default: int) -> int:
        return number(self.raw, key, default)

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
    def distributed(self) -> bool:
        return self.world_size > 1  # ParallelMode.DISTRIBUTED

    @property
    def uses_deepspeed(self) -> bool:
        return self.raw.get("deepspeed") not in (None, "", False)

    @property
    def optimizers(self) -> list[str]:
        return [key for key in ("use_galore", "use_apollo", "use_badam") if self.flag(key)]


Condition = Callable[[Arguments], bool]
Hint = Callable[[Arguments], str | None]


@dataclass(frozen=True)
class RejectionRule:
    """One check LLaMA-Factory makes: when `applies`, it stops with `message`."""

    family: str  # a key of FAMILIES
    key: str | Callable[[Arguments], str]  # the YAML key a finding points at
    message: str  # LLaMA-Factory's own error text, verbatim (typos included)
    source: str  # file:line in LLaMA-Factory v0.9.5 (src/llamafactory/)
    applies: Condition
    hint: Hint = lambda _: None  # what in this config triggered it, or the way out
    phase: Phase = "arguments"


@dataclass(frozen=True)
class Rejection:
    """A rejection rule that applies to one config."""

    rule: str  # the family / rule ID
    key: str
    message: str
    hint: str | None
    source: str
    phase: Phase

    @property
    def text(self) -> str:
        """LLaMA-Factory's message, then the hint in parentheses."""
        return f"{self.message} ({self.hint})" if self.hint else self.message


def _method_hint(c: Arguments) -> str:
    return f"finetuning_type: {c.method}"


def _stage_hint(c: Arguments) -> str:
    return f"stage: {c.stage}"


def _target_hint(c: Arguments) -> str:
    return f"target: {c.world_size} GPUs"


def _lora_only(key: str) -> RejectionRule:
    """finetuning_args.py:604-615: options of LoRA with another method."""
    present: Condition = (lambda c: c.has(key)) if key == "loraplus_lr_ratio" else (lambda c: c.flag(key))
    return RejectionRule("method-options", key, f"`{key}` is only valid for LoRA training.",
                         "hparams/finetuning_args.py:604-615", lambda c: c.method != "lora" and present(c),
                         _method_hint)


def _layerwise_distributed(name: str, enabled: str, layerwise: str, line: int) -> RejectionRule:
    return RejectionRule("layerwise-optimizer", layerwise,
                         f"Distributed training does not support layer-wise {name}.", f"hparams/parser.py:{line}",
                         lambda c: c.distributed and c.flag(enabled) and c.flag(layerwise), _target_hint)


def _layerwise_accumulation(name: str, enabled: str, layerwise: str, line: int) -> RejectionRule:
    return RejectionRule("layerwise-optimizer", "gradient_accumulation_steps",
                         f"Per-layer {name} does not support gradient accumulation.", f"train/trainer_utils.py:{line}",
                         lambda c: c.number("gradient_accumulation_steps", 1) != 1 and c.flag(enabled)
                         and c.flag(layerwise),
                         lambda c: f"gradient_accumulation_steps: {c.number('gradient_accumulation_steps', 1)}",
                         phase="optimizer creation")


def _zero3_bits(c: Arguments) -> bool:
    return c.zero3 and c.has("quantization_bit")


# In LLaMA-Factory's order: FinetuningArguments.__post_init__ while the arguments parse, then get_train_args,
# then _verify_model_args, then the model loader's quantization checks, then optimizer creation.
TABLE: tuple[RejectionRule, ...] = (
    RejectionRule("ppo-reward-model", "stage", "`reward_model` is necessary for PPO training.",
                  "hparams/finetuning_args.py:580", lambda c: c.stage == "ppo" and not c.has("reward_model")),
    RejectionRule("ppo-reward-model", lambda c: "reward_model_type" if c.has("reward_model_type") else
                  "finetuning_type", "`reward_model_type` cannot be lora for Freeze/Full PPO training.",
                  "hparams/finetuning_args.py:583",
                  lambda c: c.stage == "ppo" and c.text("reward_model_type", "lora") == "lora" and c.method != "lora"),
    RejectionRule("method-options", "use_llama_pro", "`use_llama_pro` is only valid for Freeze or LoRA training.",
                  "hparams/finetuning_args.py:592", lambda c: c.flag("use_llama_pro") and c.method == "full"),
    RejectionRule("method-options", lambda c: c.optimizers[0], "Cannot use LoRA with GaLore, APOLLO or BAdam together.",
                  "hparams/finetuning_args.py:595", lambda c: c.method == "lora" and bool(c.optimizers),
                  lambda c: "finetuning_type defaults to lora: set full or freeze"),
    RejectionRule("method-options", lambda c: c.optimizers[1], "Cannot use GaLore, APOLLO or BAdam together.",
                  "hparams/finetuning_args.py:598", lambda c: len(c.optimizers) > 1),
    *(_lora_only(key) for key in ("loraplus_lr_ratio", "use_rslora", "use_dora", "pissa_init")),
    RejectionRule("sft-only-options", "predict_with_generate",
                  "`predict_with_generate` cannot be set as True except SFT.", "hparams/parser.py:316",
                  lambda c: c.stage != "sft" and c.flag("predict_with_generate"), _stage_hint),
    RejectionRule("sft-only-options", "neat_packing", "`neat_packing` cannot be set as True except SFT.",
                  "hparams/parser.py:319", lambda c: c.stage != "sft" and c.flag("neat_packing"), _stage_hint),
    RejectionRule("sft-only-options", lambda c: "train_on_prompt" if c.flag("train_on_prompt") else "mask_history",
                  "`train_on_prompt` or `mask_history` cannot be set as True except SFT.", "hparams/parser.py:322",
                  lambda c: c.stage != "sft" and (c.flag("train_on_prompt") or c.flag("mask_history")), _stage_hint),
    RejectionRule("zero3-incompatible", "predict_with_generate",
                  "`predict_with_generate` is incompatible with DeepSpeed ZeRO-3.", "hparams/parser.py:368",
                  lambda c: c.flag("predict_with_generate") and c.zero3),
    RejectionRule("quantization-training", "quantization_device_map",
                  "Cannot use device map for quantized models in training.", "hparams/parser.py:374",
                  lambda c: c.text("quantization_device_map", "") == "auto"),
    RejectionRule("zero3-incompatible", "pissa_init",
                  "Please use scripts/pissa_init.py to initialize PiSSA in DeepSpeed ZeRO-3.", "hparams/parser.py:377",
                  lambda c: c.flag("pissa_init") and c.zero3),
    RejectionRule("pure-bf16-zero3", "pure_bf16", "`pure_bf16` is incompatible with DeepSpeed ZeRO-3.",
                  "hparams/parser.py:384", lambda c: c.flag("pure_bf16") and c.zero3,
                  lambda c: "use bf16: true, or ZeRO-2"),
    _layerwise_distributed("GaLore", "use_galore", "galore_layerwise", 388),
    _layerwise_distributed("APOLLO", "use_apollo", "apollo_layerwise", 391),
    RejectionRule("badam-distributed", "badam_mode", "Radio-based BAdam does not yet support distributed training, "
                  "use layer-wise BAdam.", "hparams/parser.py:395",  # "Radio": LLaMA-Factory's own spelling
                  lambda c: c.distributed and c.flag("use_badam") and c.text("badam_mode", "layer") == "ratio",
                  _target_hint),
    RejectionRule("badam-distributed", "use_badam", "Layer-wise BAdam only supports DeepSpeed ZeRO-3 training.",
                  "hparams/parser.py:397",
                  lambda c: c.distributed and c.flag("use_badam") and c.text("badam_mode", "layer") != "ratio"
                  and not c.zero3, lambda c: f"target: {c.world_size} GPUs, ZeRO-{c.zero_stage}"),
    *(RejectionRule("galore-deepspeed", key, "GaLore and APOLLO are incompatible with DeepSpeed yet.",
                    "hparams/parser.py:400", lambda c, key=key: c.uses_deepspeed and c.flag(key))  # type: ignore[misc]
      for key in ("use_galore", "use_apollo")),
    RejectionRule("quantization-training", "fp8",
                  "FP8 training is not compatible with quantization. Please disable one of them.",
                  "hparams/parser.py:403", lambda c: c.flag("fp8") and c.has("quantization_bit")),
    RejectionRule("zero3-incompatible", "use_unsloth", "Unsloth is incompatible with DeepSpeed ZeRO-3.",
                  "hparams/parser.py:409", lambda c: c.flag("use_unsloth") and c.zero3),
    RejectionRule("zero3-incompatible", "use_kt", "KTransformers is incompatible with DeepSpeed ZeRO-3.",
                  "hparams/parser.py:412", lambda c: c.flag("use_kt") and c.zero3),
    RejectionRule("adapter-method", "adapter_name_or_path", "Adapter is only valid for the LoRA method.",
                  "hparams/parser.py:185", lambda c: c.has("adapter_name_or_path") and c.method != "lora",
                  _method_hint),
    RejectionRule("adapter-method", "quantization_bit", "Quantization is only compatible with the LoRA or OFT method.",
                  "hparams/parser.py:189", lambda c: c.has("quantization_bit") and c.method not in ("lora", "oft"),
                  _method_hint),
    RejectionRule("quantization-zero3", "quantization_bit",
                  "Only 4-bit quantized model can use fsdp+qlora or auto device map.",
                  "model/model_utils/quantization.py:186",
                  lambda c: _zero3_bits(c) and c.text("quantization_method", "bnb") == "bnb"
                  and c.number("quantization_bit", 0) != 4,
                  lambda c: f"quantization_bit: {c.number('quantization_bit', 0)} with ZeRO-3", "model loading"),
    RejectionRule("quantization-zero3", "quantization_method",
                  "HQQ quantization is incompatible with DeepSpeed ZeRO-3 or FSDP.",
                  "model/model_utils/quantization.py:199",
                  lambda c: _zero3_bits(c) and c.text("quantization_method", "bnb") == "hqq", phase="model loading"),
    RejectionRule("quantization-zero3", "quantization_method",
                  "EETQ quantization is incompatible with DeepSpeed ZeRO-3 or FSDP.",
                  "model/model_utils/quantization.py:211",
                  lambda c: _zero3_bits(c) and c.text("quantization_method", "bnb") == "eetq", phase="model loading"),
    _layerwise_accumulation("GaLore", "use_galore", "galore_layerwise", 250),
    _layerwise_accumulation("APOLLO", "use_apollo", "apollo_layerwise", 337),
)


def rejections(raw: Mapping[str, Any], zero_stage: int, world_size: int = 1) -> list[Rejection]:
    """Every combination LLaMA-Factory rejects in this config, in the order it checks them.

    `zero_stage` is the DeepSpeed ZeRO stage (0 without DeepSpeed); `world_size` the number of GPUs."""
    args = Arguments(raw, zero_stage, world_size)
    found = []
    for rule in TABLE:
        if rule.applies(args):
            key = rule.key(args) if callable(rule.key) else rule.key
            found.append(Rejection(rule.family, key, rule.message, rule.hint(args), rule.source, rule.phase))
    return found
