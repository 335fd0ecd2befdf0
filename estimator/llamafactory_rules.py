"""The combinations LLaMA-Factory rejects, as one table, keyed by LLaMA-Factory version.

Each row is LLaMA-Factory's own check: the family (the rule ID that reports it), the key a finding points
at, LLaMA-Factory's message verbatim, the source line of the `raise` in each version it exists in, the
phase in which LLaMA-Factory raises, and the condition, a small function of the config's arguments.
`rejections(raw, zero_stage, world_size, version=...)` returns every row that applies to that version, in
the order LLaMA-Factory checks them. `estimator.plan` refuses a config on the first one (the run dies before
training, so no estimate is given); `rules.checks.llamafactory_rejections` reports every one as a finding
at the key's line. Sources are under src/llamafactory/ of v0.9.5 (7af9095) and main (ff6d4d1); the
research behind each row is /work/notes/lf_versions.md §(a).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from estimator.versions import LATEST_RELEASE, LLAMAFACTORY_VERSIONS

Phase = Literal["arguments", "model loading", "optimizer creation"]

# Families: rule ID → its one-line documentation (docs/rules.md is generated from these).
FAMILIES: dict[str, str] = {
    "adapter-method": "Quantization or adapters with a method that does not take them; OFT with Unsloth or KT.",
    "attention-implementation": "flash_attn: fa3 on LLaMA-Factory 0.9.5 (main accepts it).",
    "badam-distributed": "BAdam on several GPUs: ratio mode is rejected and layer mode needs DeepSpeed ZeRO-3.",
    "galore-deepspeed": "GaLore or APOLLO with any DeepSpeed config.",
    "galore-optim": "GaLore/APOLLO with an optim they lack (HF's torch >= 2.8 default adamw_torch_fused too).",
    "ktransformers-options": "KTransformers (main) with HF checkpointing keys, Unsloth or freeze tuning; "
                             "kt_cpu_activation without it.",
    "layerwise-optimizer": "Layer-wise GaLore/APOLLO with gradient accumulation or on more than one GPU.",
    "method-options": "Options of another method: LoRA-only keys without LoRA, LoRA + GaLore/APOLLO/BAdam, "
                      "LLaMA Pro + full, ...",
    "ppo-reward-model": "PPO without a reward model, or with a LoRA/OFT reward model it cannot use.",
    "predict-options": "do_predict without predict_with_generate, or predict_with_generate with compute_accuracy.",
    "pure-bf16-zero3": "pure_bf16 with DeepSpeed ZeRO-3.",
    "quantization-bits": "A quantization_bit the quantization method does not have (bnb 4/8, HQQ 1-6/8, EETQ 8).",
    "quantization-training": "quantization_device_map: auto while training, or fp8 with quantization_bit.",
    "quantization-zero3": "Quantization under ZeRO-3 or FSDP other than bnb 4-bit (8-bit bnb, HQQ, EETQ, PTQ).",
    "quantized-model-options": "What a quantized model cannot take: PiSSA init, resize_vocab, new or several "
                               "adapters.",
    "sft-only-options": "SFT-only options (predict_with_generate, neat_packing, train_on_prompt, mask_history) "
                        "with another stage.",
    "zero3-incompatible": "Options that do not work under ZeRO-3: Unsloth, KTransformers, PiSSA init, "
                          "predict_with_generate.",
}
REJECTION_RULES = tuple(FAMILIES)

TRUE_WORDS = ("true", "yes", "on", "1")  # strings HfArgumentParser's string_to_bool reads as true
# mcore_adapter's arguments (USE_MCA=1): such a YAML is parsed by another class (parser.py:73-90)
MEGATRON_KEYS = frozenset({"tensor_model_parallel_size", "pipeline_model_parallel_size", "expert_model_parallel_size",
                           "sequence_parallel", "use_distributed_optimizer", "context_parallel_size",
                           "virtual_pipeline_model_parallel_size", "recompute_granularity"})


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


def fraction(raw: Mapping[str, Any], key: str, default: float) -> float:
    """A float key; a value that is not a number counts as the default."""
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return default
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return default


@dataclass(frozen=True)
class Arguments:
    """A config's top-level keys as LLaMA-Factory's argument classes read them, plus the launch facts."""

    raw: Mapping[str, Any]
    zero_stage: int
    world_size: int
    version: str = LATEST_RELEASE
    fsdp_loading: bool = False  # transformers' is_fsdp_enabled() at load: FSDP with cpu_ram_efficient_loading

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
    def megatron(self) -> bool:
        """USE_MCA=1 (mcore_adapter's keys): LLaMA-Factory's own argument checks partly do not run."""
        return bool(MEGATRON_KEYS & set(self.raw))

    @property
    def optimizers(self) -> list[str]:
        return [key for key in ("use_galore", "use_apollo", "use_badam") if self.flag(key)]

    @property
    def adapters(self) -> list[str]:
        value = self.raw.get("adapter_name_or_path")
        if value is None:
            return []
        names = value if isinstance(value, list) else str(value).split(",")
        return [str(name).strip() for name in names if str(name).strip()]


Condition = Callable[[Arguments], bool]
Hint = Callable[[Arguments], str | None]


@dataclass(frozen=True)
class RejectionRule:
    """One check LLaMA-Factory makes: when `applies`, it stops with `message`."""

    family: str  # a key of FAMILIES
    key: str | Callable[[Arguments], str]  # the YAML key a finding points at
    message: str  # LLaMA-Factory's own error text, verbatim (typos included)
    source: str  # file under src/llamafactory/
    lines: Mapping[str, int]  # version → line of the raise; a version absent here does not have the check
    applies: Condition
    hint: Hint = lambda _: None  # what in this config triggered it, or the way out
    phase: Phase = "arguments"

    def where(self, version: str) -> str:
        return f"{self.source}:{self.lines[version]}"


@dataclass(frozen=True)
class Rejection:
    """A rejection rule that applies to one config."""

    rule: str  # the family / rule ID
    key: str
    message: str
    hint: str | None
    source: str  # file:line in the version checked
    phase: Phase

    @property
    def text(self) -> str:
        """LLaMA-Factory's message, then the hint in parentheses."""
        return f"{self.message} ({self.hint})" if self.hint else self.message


def _both(v095: int, main: int) -> dict[str, int]:
    return {"0.9.5": v095, "main": main}


def _main_only(main: int) -> dict[str, int]:
    return {"main": main}


def _method_hint(c: Arguments) -> str:
    return f"finetuning_type: {c.method}"


def _stage_hint(c: Arguments) -> str:
    return f"stage: {c.stage}"


def _target_hint(c: Arguments) -> str:
    return f"target: {c.world_size} GPUs"


FINETUNING_ARGS = "hparams/finetuning_args.py"
PARSER = "hparams/parser.py"
MODEL_ARGS = "hparams/model_args.py"
QUANTIZATION = "model/model_utils/quantization.py"
TRAINER_UTILS = "train/trainer_utils.py"
ADAPTER = "model/adapter.py"


def _lora_only(key: str, v095: int, main: int) -> RejectionRule:
    """FinetuningArguments.__post_init__: options of LoRA with another method."""
    present: Condition = (lambda c: c.has(key)) if key == "loraplus_lr_ratio" else (lambda c: c.flag(key))
    return RejectionRule("method-options", key, f"`{key}` is only valid for LoRA training.", FINETUNING_ARGS,
                         _both(v095, main), lambda c: c.method != "lora" and present(c), _method_hint)


def _layerwise_distributed(name: str, enabled: str, layerwise: str, v095: int, main: int) -> RejectionRule:
    return RejectionRule("layerwise-optimizer", layerwise,
                         f"Distributed training does not support layer-wise {name}.", PARSER, _both(v095, main),
                         lambda c: c.distributed and c.flag(enabled) and c.flag(layerwise), _target_hint)


def _layerwise_accumulation(name: str, enabled: str, layerwise: str, line: int) -> RejectionRule:
    return RejectionRule("layerwise-optimizer", "gradient_accumulation_steps",
                         f"Per-layer {name} does not support gradient accumulation.", TRAINER_UTILS, _both(line, line),
                         lambda c: c.number("gradient_accumulation_steps", 1) != 1 and c.flag(enabled)
                         and c.flag(layerwise),
                         lambda c: f"gradient_accumulation_steps: {c.number('gradient_accumulation_steps', 1)}",
                         phase="optimizer creation")


def _on_the_fly(c: Arguments, method: str) -> bool:
    """quantization.py quantizes on the fly only with quantization_bit and that method (and not for a PTQ
    checkpoint, which the model check in estimator/memory.py handles)."""
    return c.has("quantization_bit") and c.text("quantization_method", "bnb") == method


def _sharded_load(c: Arguments) -> bool:
    """quantization.py: `is_deepspeed_zero3_enabled() or is_fsdp_enabled()`."""
    return c.zero3 or c.fsdp_loading


def _sharded_hint(c: Arguments) -> str:
    return "with ZeRO-3" if c.zero3 else "with FSDP (cpu_ram_efficient_loading)"


def _optim(c: Arguments) -> str:
    return c.text("optim", "adamw_torch_fused")  # HF TrainingArguments default on torch >= 2.8


GALORE_OPTIMS = ("adamw_torch", "adamw_bnb_8bit", "adamw_8bit", "paged_adamw_8bit", "adafactor")


def _optim_hint(c: Arguments) -> str:
    if not c.has("optim"):
        return "no optim: HF's default on torch >= 2.8 is adamw_torch_fused; set optim: adamw_torch"
    return f"optim: {_optim(c)}"


# In LLaMA-Factory's order: FinetuningArguments / ModelArguments __post_init__ while the arguments parse, then
# get_train_args, then _verify_model_args, then the model loader's checks, then optimizer creation.
TABLE: tuple[RejectionRule, ...] = (
    RejectionRule("ppo-reward-model", "stage", "`reward_model` is necessary for PPO training.", FINETUNING_ARGS,
                  _both(581, 601), lambda c: c.stage == "ppo" and not c.has("reward_model")),
    RejectionRule("ppo-reward-model", lambda c: "reward_model_type" if c.has("reward_model_type") else
                  "finetuning_type", "`reward_model_type` cannot be lora for Freeze/Full PPO training.",
                  FINETUNING_ARGS, _both(584, 604),
                  lambda c: c.stage == "ppo" and c.text("reward_model_type", "lora") == "lora" and c.method != "lora"),
    RejectionRule("ppo-reward-model", "reward_model_type",
                  "`reward_model_type` cannot be oft for Freeze/Full PPO training.", FINETUNING_ARGS, _both(587, 607),
                  lambda c: c.stage == "ppo" and c.text("reward_model_type", "lora") == "oft" and c.method != "oft"),
    RejectionRule("method-options", "dpo_label_smoothing",
                  "`dpo_label_smoothing` is only valid for sigmoid loss function.", FINETUNING_ARGS, _both(590, 610),
                  lambda c: c.stage == "dpo" and c.text("pref_loss", "sigmoid") != "sigmoid"
                  and fraction(c.raw, "dpo_label_smoothing", 0.0) > 1e-6),
    RejectionRule("method-options", "use_llama_pro", "`use_llama_pro` is only valid for Freeze or LoRA training.",
                  FINETUNING_ARGS, _both(593, 613), lambda c: c.flag("use_llama_pro") and c.method == "full"),
    RejectionRule("method-options", lambda c: c.optimizers[0], "Cannot use LoRA with GaLore, APOLLO or BAdam together.",
                  FINETUNING_ARGS, _both(596, 616), lambda c: c.method == "lora" and bool(c.optimizers),
                  lambda c: "finetuning_type defaults to lora: set full or freeze"),
    RejectionRule("method-options", lambda c: c.optimizers[1], "Cannot use GaLore, APOLLO or BAdam together.",
                  FINETUNING_ARGS, _both(599, 619), lambda c: len(c.optimizers) > 1),
    RejectionRule("method-options", "pissa_init", "Cannot use PiSSA for current training stage.", FINETUNING_ARGS,
                  _both(602, 622),
                  lambda c: c.flag("pissa_init") and (c.stage in ("ppo", "kto") or (
                      c.stage == "dpo" and c.text("pref_loss", "sigmoid") not in ("orpo", "simpo"))), _stage_hint),
    _lora_only("loraplus_lr_ratio", 606, 626),
    _lora_only("use_rslora", 609, 629),
    _lora_only("use_dora", 612, 632),
    _lora_only("pissa_init", 615, 635),
    RejectionRule("ktransformers-options", "kt_cpu_activation",
                  "`kt_cpu_activation` is only valid when `use_kt: true`.", MODEL_ARGS,
                  _main_only(533), lambda c: c.has("kt_cpu_activation") and not c.flag("use_kt")),
    RejectionRule("adapter-method", "adapter_name_or_path", "Adapter is only valid for the LoRA method.", PARSER,
                  _both(186, 233), lambda c: c.has("adapter_name_or_path") and c.method != "lora", _method_hint),
    RejectionRule("adapter-method", "quantization_bit", "Quantization is only compatible with the LoRA or OFT method.",
                  PARSER, _both(190, 237), lambda c: c.has("quantization_bit") and c.method not in ("lora", "oft"),
                  _method_hint),
    RejectionRule("quantized-model-options", "pissa_init",
                  "Please use scripts/pissa_init.py to initialize PiSSA for a quantized model.", PARSER,
                  _both(193, 240), lambda c: c.has("quantization_bit") and c.flag("pissa_init")),
    RejectionRule("quantized-model-options", "resize_vocab", "Cannot resize embedding layers of a quantized model.",
                  PARSER, _both(196, 243), lambda c: c.has("quantization_bit") and c.flag("resize_vocab")),
    RejectionRule("quantized-model-options", "create_new_adapter", "Cannot create new adapter upon a quantized model.",
                  PARSER, _both(199, 246),
                  lambda c: c.has("quantization_bit") and bool(c.adapters) and c.flag("create_new_adapter")),
    RejectionRule("quantized-model-options", "adapter_name_or_path",
                  "Quantized model only accepts a single adapter. Merge them first.", PARSER, _both(202, 249),
                  lambda c: c.has("quantization_bit") and len(c.adapters) > 1),
    RejectionRule("sft-only-options", "predict_with_generate",
                  "`predict_with_generate` cannot be set as True except SFT.", PARSER, _both(318, 420),
                  lambda c: c.stage != "sft" and c.flag("predict_with_generate"), _stage_hint),
    RejectionRule("sft-only-options", "neat_packing", "`neat_packing` cannot be set as True except SFT.", PARSER,
                  _both(321, 423), lambda c: c.stage != "sft" and c.flag("neat_packing"), _stage_hint),
    RejectionRule("sft-only-options", lambda c: "train_on_prompt" if c.flag("train_on_prompt") else "mask_history",
                  "`train_on_prompt` or `mask_history` cannot be set as True except SFT.", PARSER, _both(324, 426),
                  lambda c: c.stage != "sft" and (c.flag("train_on_prompt") or c.flag("mask_history")), _stage_hint),
    RejectionRule("predict-options", "do_predict", "Please enable `predict_with_generate` to save model predictions.",
                  PARSER, _both(327, 429),
                  lambda c: c.stage == "sft" and c.flag("do_predict") and not c.flag("predict_with_generate")),
    RejectionRule("ppo-reward-model", "use_kt", "KTransformers does not support lora reward model.", PARSER,
                  _both(340, 458), lambda c: c.stage == "ppo" and c.text("reward_model_type", "lora") == "lora"
                  and c.flag("use_kt")),
    RejectionRule("ppo-reward-model", "use_unsloth", "Unsloth does not support lora reward model.", PARSER,
                  _both(343, 461), lambda c: c.stage == "ppo" and c.text("reward_model_type", "lora") == "lora"
                  and c.flag("use_unsloth")),
    RejectionRule("zero3-incompatible", "predict_with_generate",
                  "`predict_with_generate` is incompatible with DeepSpeed ZeRO-3.", PARSER, _both(369, 487),
                  lambda c: c.flag("predict_with_generate") and c.zero3),
    RejectionRule("predict-options", "compute_accuracy",
                  "Cannot use `predict_with_generate` and `compute_accuracy` together.", PARSER, _both(372, 490),
                  lambda c: c.flag("predict_with_generate") and c.flag("compute_accuracy")),
    RejectionRule("quantization-training", "quantization_device_map",
                  "Cannot use device map for quantized models in training.", PARSER, _both(375, 493),
                  lambda c: c.flag("do_train") and c.text("quantization_device_map", "") == "auto"),
    RejectionRule("zero3-incompatible", "pissa_init",
                  "Please use scripts/pissa_init.py to initialize PiSSA in DeepSpeed ZeRO-3.", PARSER, _both(378, 496),
                  lambda c: c.flag("pissa_init") and c.zero3),
    RejectionRule("pure-bf16-zero3", "pure_bf16", "`pure_bf16` is incompatible with DeepSpeed ZeRO-3.", PARSER,
                  _both(385, 503), lambda c: c.flag("pure_bf16") and c.zero3, lambda c: "use bf16: true, or ZeRO-2"),
    _layerwise_distributed("GaLore", "use_galore", "galore_layerwise", 389, 507),
    _layerwise_distributed("APOLLO", "use_apollo", "apollo_layerwise", 392, 510),
    RejectionRule("badam-distributed", "badam_mode", "Radio-based BAdam does not yet support distributed training, "
                  "use layer-wise BAdam.", PARSER, _both(396, 514),  # "Radio": LLaMA-Factory's own spelling
                  lambda c: c.distributed and c.flag("use_badam") and c.text("badam_mode", "layer") == "ratio",
                  _target_hint),
    RejectionRule("badam-distributed", "use_badam", "Layer-wise BAdam only supports DeepSpeed ZeRO-3 training.",
                  PARSER, _both(398, 516),
                  lambda c: c.distributed and c.flag("use_badam") and c.text("badam_mode", "layer") != "ratio"
                  and not c.zero3, lambda c: f"target: {c.world_size} GPUs, ZeRO-{c.zero_stage}"),
    *(RejectionRule("galore-deepspeed", key, "GaLore and APOLLO are incompatible with DeepSpeed yet.", PARSER,
                    _both(401, 519), lambda c, key=key: c.uses_deepspeed and c.flag(key))  # type: ignore[misc]
      for key in ("use_galore", "use_apollo")),
    RejectionRule("quantization-training", "fp8",
                  "FP8 training is not compatible with quantization. Please disable one of them.", PARSER,
                  _both(404, 527), lambda c: not c.megatron and c.flag("fp8") and c.has("quantization_bit")),
    RejectionRule("zero3-incompatible", "use_unsloth", "Unsloth is incompatible with DeepSpeed ZeRO-3.", PARSER,
                  _both(410, 533), lambda c: c.flag("use_unsloth") and c.zero3),
    RejectionRule("zero3-incompatible", "use_kt", "KTransformers is incompatible with DeepSpeed ZeRO-3.", PARSER,
                  _both(413, 536), lambda c: c.flag("use_kt") and c.zero3),
    RejectionRule("ktransformers-options", lambda c: "use_unsloth" if c.flag("use_unsloth") else "use_unsloth_gc",
                  "KTransformers cannot be combined with Unsloth checkpoint wrapping.", MODEL_ARGS, _main_only(589),
                  lambda c: c.flag("use_kt") and (c.flag("use_unsloth") or c.flag("use_unsloth_gc"))),
    RejectionRule("ktransformers-options", "gradient_checkpointing",
                  "KTransformers uses LLaMA-Factory's `disable_gradient_checkpointing`; remove "
                  "`gradient_checkpointing: true`.", MODEL_ARGS, _main_only(591),
                  lambda c: c.flag("use_kt") and c.flag("gradient_checkpointing")),
    RejectionRule("ktransformers-options", "gradient_checkpointing_kwargs",
                  "KTransformers supplies its checkpoint context; remove `gradient_checkpointing_kwargs`.", MODEL_ARGS,
                  _main_only(596), lambda c: c.flag("use_kt") and c.has("gradient_checkpointing_kwargs")),
    RejectionRule("ktransformers-options", "finetuning_type", "KTransformers supports LoRA and full-parameter "
                  "finetuning.", MODEL_ARGS, _main_only(619), lambda c: c.flag("use_kt") and c.method == "freeze"),
    RejectionRule("attention-implementation", "flash_attn", "Unknown attention type: fa3",
                  "model/model_utils/attention.py", {"0.9.5": 86}, lambda c: c.text("flash_attn", "auto") == "fa3",
                  lambda c: "LLaMA-Factory 0.9.5 has no FA3 path; main has", "model loading"),
    RejectionRule("quantization-bits", "quantization_bit", "Bitsandbytes only accepts 4-bit or 8-bit quantization.",
                  QUANTIZATION, _both(181, 192),
                  lambda c: _on_the_fly(c, "bnb") and c.number("quantization_bit", 0) not in (4, 8),
                  lambda c: f"quantization_bit: {c.number('quantization_bit', 0)}", "model loading"),
    RejectionRule("quantization-zero3", "quantization_bit",
                  "Only 4-bit quantized model can use fsdp+qlora or auto device map.", QUANTIZATION, _both(188, 199),
                  lambda c: _on_the_fly(c, "bnb") and c.number("quantization_bit", 0) == 8 and (
                      _sharded_load(c) or c.text("quantization_device_map", "") == "auto"),
                  lambda c: f"quantization_bit: 8 {_sharded_hint(c)}" if _sharded_load(c) else
                  "quantization_bit: 8 with quantization_device_map: auto", "model loading"),
    RejectionRule("quantization-bits", "quantization_bit", "HQQ only accepts 1/2/3/4/5/6/8-bit quantization.",
                  QUANTIZATION, _both(197, 208),
                  lambda c: _on_the_fly(c, "hqq") and c.number("quantization_bit", 0) not in (1, 2, 3, 4, 5, 6, 8),
                  phase="model loading"),
    RejectionRule("quantization-zero3", "quantization_method",
                  "HQQ quantization is incompatible with DeepSpeed ZeRO-3 or FSDP.", QUANTIZATION, _both(200, 211),
                  lambda c: _on_the_fly(c, "hqq") and _sharded_load(c), _sharded_hint, "model loading"),
    RejectionRule("quantization-bits", "quantization_bit", "EETQ only accepts 8-bit quantization.", QUANTIZATION,
                  _both(209, 220), lambda c: _on_the_fly(c, "eetq") and c.number("quantization_bit", 0) != 8,
                  phase="model loading"),
    RejectionRule("quantization-zero3", "quantization_method",
                  "EETQ quantization is incompatible with DeepSpeed ZeRO-3 or FSDP.", QUANTIZATION, _both(212, 223),
                  lambda c: _on_the_fly(c, "eetq") and _sharded_load(c), _sharded_hint, "model loading"),
    RejectionRule("adapter-method", "use_kt", "KTransformers only supports LoRA finetuning.", ADAPTER, _both(254, 278),
                  lambda c: c.flag("use_kt") and c.method == "oft", _method_hint, "model loading"),
    RejectionRule("adapter-method", "use_unsloth", "Unsloth is currently not supported for OFT.", ADAPTER,
                  _both(260, 284), lambda c: c.flag("use_unsloth") and c.method == "oft", _method_hint,
                  "model loading"),
    RejectionRule("galore-optim", lambda c: "optim" if c.has("optim") else "use_galore",
                  "Unknown optim: {optim}.", TRAINER_UTILS, _both(246, 246),
                  lambda c: c.flag("use_galore") and _optim(c) not in GALORE_OPTIMS, _optim_hint,
                  "optimizer creation"),
    _layerwise_accumulation("GaLore", "use_galore", "galore_layerwise", 251),
    RejectionRule("galore-optim", lambda c: "optim" if c.has("optim") else "use_apollo",
                  "Unknown optim: {optim}.", TRAINER_UTILS, _both(333, 333),
                  lambda c: c.flag("use_apollo") and not c.flag("use_galore") and _optim(c) != "adamw_torch",
                  _optim_hint, "optimizer creation"),
    _layerwise_accumulation("APOLLO", "use_apollo", "apollo_layerwise", 338),
)


def rejections(raw: Mapping[str, Any], zero_stage: int, world_size: int = 1, *, version: str = LATEST_RELEASE,
               fsdp_loading: bool = False) -> list[Rejection]:
    """Every combination LLaMA-Factory `version` rejects in this config, in the order it checks them.

    `zero_stage` is the DeepSpeed ZeRO stage (0 without DeepSpeed); `world_size` the number of GPUs;
    `fsdp_loading` whether transformers' is_fsdp_enabled() holds while the model loads."""
    if version not in LLAMAFACTORY_VERSIONS:
        raise ValueError(f"unknown LLaMA-Factory version {version!r}")
    args = Arguments(raw, zero_stage, world_size, version, fsdp_loading)
    found = []
    for rule in TABLE:
        if version in rule.lines and rule.applies(args):
            key = rule.key(args) if callable(rule.key) else rule.key
            message = rule.message.replace("{optim}", _optim(args))
            found.append(Rejection(rule.family, key, message, rule.hint(args), rule.where(version), rule.phase))
    return found


# --- checks that need the checkpoint's config.json (model loading, after the arguments parse) ------------


@dataclass(frozen=True)
class CheckpointFacts:
    """What LLaMA-Factory's loader sees of the checkpoint."""

    quant_method: str | None  # config.json quantization_config.quant_method (a pre-quantized checkpoint)


def checkpoint_rejections(raw: Mapping[str, Any], facts: CheckpointFacts, zero_stage: int, *,
                          version: str = LATEST_RELEASE, fsdp_loading: bool = False) -> list[Rejection]:
    """model_utils/quantization.py:94-105 and model/adapter.py: pre-quantized (PTQ) checkpoints under ZeRO-3 or
    FSDP, with full/freeze tuning, with DoRA. FP8 and MXFP4 load dequantized and pass."""
    method = (facts.quant_method or "").lower()
    if not method:
        return []
    args = Arguments(raw, zero_stage, 1, version, fsdp_loading)
    lines = {"0.9.5": (101, 308, 220), "main": (105, 332, 244)}[version]
    found = []
    if method not in ("mxfp4", "fp8") and (args.zero3 or fsdp_loading):
        found.append(Rejection("quantization-zero3", "deepspeed" if args.zero3 else "model_name_or_path",
                               "DeepSpeed ZeRO-3 or FSDP is incompatible with PTQ-quantized models.",
                               f"a {method} checkpoint", f"{QUANTIZATION}:{lines[0]}", "model loading"))
    if method not in ("mxfp4", "fp8") and args.method in ("full", "freeze"):
        found.append(Rejection("adapter-method", "finetuning_type",
                               "Quantized models can only be used for the LoRA or OFT tuning.",
                               f"a {method} checkpoint with finetuning_type: {args.method}",
                               f"{ADAPTER}:{lines[1]}", "model loading"))
    if method not in ("bitsandbytes", "mxfp4", "fp8") and args.flag("use_dora") and args.method == "lora":
        found.append(Rejection("method-options", "use_dora", "DoRA is not compatible with PTQ-quantized models.",
                               f"a {method} checkpoint", f"{ADAPTER}:{lines[2]}", "model loading"))
    return found
