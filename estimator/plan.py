"""TrainingPlan: a LLaMA-Factory training YAML (+ its DeepSpeed JSON) with every memory knob resolved.

Defaults and behaviour are LLaMA-Factory 0.9.5's (src/llamafactory/hparams/*.py, model/adapter.py,
model/model_utils/checkpointing.py); research notes in docs/estimator.md cite the lines.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from estimator.deepspeed import DeepSpeedConfig, parse_deepspeed
from estimator.errors import InputError, RejectedConfig
from estimator.llamafactory_rules import rejections
from estimator.source import YamlDocument, clip, describe, parse_json, parse_yaml, read_bounded

ReadFile = Callable[[str], str]  # repository-relative path -> text; FileNotFoundError when absent

STAGES = ("pt", "sft", "rm", "ppo", "dpo", "kto")
FINETUNING_TYPES = ("lora", "oft", "freeze", "full")
PAIRWISE_STAGES = ("rm", "dpo")  # PairwiseDataCollatorWithPadding: chosen + rejected rows per example
EIGHT_BIT_OPTIMIZERS = ("adamw_bnb_8bit", "adamw_8bit", "paged_adamw_8bit", "lion_8bit", "paged_lion_8bit",
                        "adamw_torch_8bit")


@dataclass(frozen=True)
class TrainingPlan:
    """Every memory-relevant knob of one training run, resolved to a value."""

    path: str
    model_name_or_path: str
    stage: str = "sft"  # finetuning_args.py: stage default "sft"
    finetuning_type: str = "lora"  # finetuning_args.py: finetuning_type default "lora"
    bf16: bool = False
    fp16: bool = False
    pure_bf16: bool = False
    quantization_bit: int | None = None
    quantization_method: str = "bnb"
    gradient_checkpointing: bool = True  # model_args.py: disable_gradient_checkpointing default False
    unsloth_gc: bool = False
    attention: str = "sdpa"  # flash_attn "auto" leaves transformers' default, SDPA
    liger: bool = False
    use_unsloth: bool = False
    packing: bool = False
    neat_packing: bool = False
    cutoff_len: int = 2048  # data_args.py: cutoff_len default 2048
    per_device_train_batch_size: int = 8  # HF TrainingArguments default
    gradient_accumulation_steps: int = 1
    per_device_eval_batch_size: int = 8
    evaluates: bool = False
    optim: str = "adamw_torch_fused"  # HF default on torch >= 2.8
    use_galore: bool = False
    galore_rank: int = 16
    galore_layerwise: bool = False
    use_apollo: bool = False
    apollo_rank: int = 16
    use_badam: bool = False
    badam_mode: str = "layer"
    lora_rank: int = 8
    lora_target: tuple[str, ...] = ("all",)
    use_dora: bool = False
    additional_target: tuple[str, ...] = ()
    freeze_trainable_layers: int = 2
    freeze_trainable_modules: tuple[str, ...] = ("all",)
    freeze_extra_modules: tuple[str, ...] = ()
    freeze_vision_tower: bool = True
    pref_loss: str = "sigmoid"
    ref_model: str | None = None
    ref_model_quantization_bit: int | None = None
    reward_model: str | None = None
    reward_model_type: str = "lora"
    use_asft_loss: bool = False
    upcast_layernorm: bool = False
    deepspeed: DeepSpeedConfig | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    key_lines: Mapping[str, int] = field(default_factory=dict)
    assumptions: tuple[str, ...] = ()

    # --- derived -------------------------------------------------------------------------------------
    @property
    def zero_stage(self) -> int:
        return self.deepspeed.stage if self.deepspeed else 0

    @property
    def compute_dtype(self) -> str:
        """parser.py: bf16 or pure_bf16 → bfloat16; fp16 → float16; else the checkpoint's (fp32 here)."""
        if self.bf16 or self.pure_bf16:
            return "bfloat16"
        if self.fp16:
            return "float16"
        return "float32"

    @property
    def upcast_trainable_to_fp32(self) -> bool:
        """model/adapter.py::init_adapter: cast trainable params to fp32 unless pure_bf16, BAdam, or ZeRO-3
        without quantization."""
        if self.pure_bf16 or self.use_badam:
            return False
        return not (self.quantization_bit is None and self.zero_stage == 3)

    @property
    def uses_ref_model(self) -> bool:
        """finetuning_args.py l.593 (dpo unless orpo/simpo), kto always, ppo, sft with use_asft_loss."""
        if self.stage == "dpo":
            return self.pref_loss not in ("orpo", "simpo")
        return self.stage in ("kto", "ppo") or (self.stage == "sft" and self.use_asft_loss)

    @property
    def ref_model_is_extra_copy(self) -> bool:
        """trainer_utils.py::create_ref_model: LoRA without ref_model reuses the policy with adapters off."""
        return self.uses_ref_model and (self.ref_model is not None or self.finetuning_type != "lora")

    @property
    def sequences_per_micro_batch(self) -> int:
        """Pairwise stages carry chosen + rejected rows (§4 of the LF notes); KTO adds a no-grad KL batch."""
        factor = 2 if self.stage in PAIRWISE_STAGES else 1
        return self.per_device_train_batch_size * factor

    @property
    def eight_bit_optimizer(self) -> bool:
        return self.optim in EIGHT_BIT_OPTIMIZERS

    def effective_batch_size(self, world_size: int) -> int:
        return self.per_device_train_batch_size * self.gradient_accumulation_steps * world_size

    def line_of(self, key: str) -> int | None:
        return self.key_lines.get(key)

    def to_json(self) -> dict[str, Any]:
        """Every resolved knob (DESIGN.md JSON `plan`)."""
        return {
            "stage": self.stage, "finetuning_type": self.finetuning_type, "compute_dtype": self.compute_dtype,
            "bf16": self.bf16, "fp16": self.fp16, "pure_bf16": self.pure_bf16,
            "upcast_trainable_to_fp32": self.upcast_trainable_to_fp32,
            "quantization_bit": self.quantization_bit, "quantization_method": self.quantization_method,
            "gradient_checkpointing": self.gradient_checkpointing, "unsloth_gc": self.unsloth_gc,
            "attention": self.attention, "liger": self.liger, "use_unsloth": self.use_unsloth,
            "packing": self.packing, "neat_packing": self.neat_packing, "cutoff_len": self.cutoff_len,
            "per_device_train_batch_size": self.per_device_train_batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "per_device_eval_batch_size": self.per_device_eval_batch_size, "evaluates": self.evaluates,
            "sequences_per_micro_batch": self.sequences_per_micro_batch, "optim": self.optim,
            "use_galore": self.use_galore, "galore_rank": self.galore_rank, "use_apollo": self.use_apollo,
            "use_badam": self.use_badam, "lora_rank": self.lora_rank, "lora_target": list(self.lora_target),
            "use_dora": self.use_dora, "additional_target": list(self.additional_target),
            "freeze_trainable_layers": self.freeze_trainable_layers,
            "uses_ref_model": self.uses_ref_model, "ref_model_is_extra_copy": self.ref_model_is_extra_copy,
            "reward_model_type": self.reward_model_type if self.stage == "ppo" else None,
            "zero_stage": self.zero_stage,
            "deepspeed": self.deepspeed.to_json() if self.deepspeed else None,
        }


# --- reading the YAML ---------------------------------------------------------------------------------


def _bool(raw: Mapping[str, Any], key: str, default: bool, path: str, lines: Mapping[str, int]) -> bool:
    value = raw.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InputError(f"'{key}' must be true or false, got {describe(value)}", file=path, key=key, line=lines.get(key))


def _int(raw: Mapping[str, Any], key: str, default: int, path: str, lines: Mapping[str, int],
         minimum: int | None = 1) -> int:
    value = raw.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InputError(f"'{key}' must be an integer, got {describe(value)}", file=path, key=key, line=lines.get(key))
    try:
        number = int(value)
    except ValueError:
        raise InputError(f"'{key}' must be an integer, got {describe(value)}", file=path, key=key,
                         line=lines.get(key)) from None
    if isinstance(value, float) and value != number:
        raise InputError(f"'{key}' must be an integer, got {describe(value)}", file=path, key=key, line=lines.get(key))
    if minimum is not None and number < minimum:
        raise InputError(f"'{key}' must be at least {minimum}, got {describe(number)}", file=path, key=key,
                         line=lines.get(key))
    return number


def _fraction(raw: Mapping[str, Any], key: str, path: str, lines: Mapping[str, int]) -> float:
    """A number such as val_size (a fraction, or a count of samples above 1)."""
    value = raw.get(key)
    if value is None:
        return 0.0
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"'{key}' must be a number, got {describe(value)}", file=path, key=key,
                         line=lines.get(key)) from None


def _optional_int(raw: Mapping[str, Any], key: str, path: str, lines: Mapping[str, int]) -> int | None:
    return None if raw.get(key) is None else _int(raw, key, 0, path, lines)


def _choice(raw: Mapping[str, Any], key: str, default: str, choices: tuple[str, ...], path: str,
            lines: Mapping[str, int]) -> str:
    written = raw.get(key, default)
    value = default if written is None else str(written).strip().lower() if _scalar(written) else None
    if value is None or value not in choices:
        raise InputError(f"'{key}' must be one of {', '.join(choices)}; got {describe(written)}", file=path,
                         key=key, line=lines.get(key))
    return value


def _scalar(value: object) -> bool:
    """A value a YAML scalar gives (never str() a list or a mapping: it may be large)."""
    return isinstance(value, str | int | float | bool)


def _names(raw: Mapping[str, Any], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:
        return default
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(part.strip() for part in str(value).split(",") if part.strip())


def _attention(raw: Mapping[str, Any], path: str, lines: Mapping[str, int]) -> tuple[str, str | None]:
    """model_args.py flash_attn: auto (transformers' default, SDPA), disabled → eager, sdpa, fa2, fa3."""
    written = raw.get("flash_attn", "auto") or "auto"
    value = str(written).strip().lower() if _scalar(written) else ""
    mapping = {"auto": "sdpa", "sdpa": "sdpa", "disabled": "eager", "eager": "eager", "fa2": "fa2",
               "flash_attention_2": "fa2", "fa3": "fa3"}
    if value not in mapping:
        raise InputError(f"'flash_attn' must be one of auto, disabled, sdpa, fa2, fa3; got {describe(written)}",
                         file=path, key="flash_attn", line=lines.get("flash_attn"))
    note = "attention: SDPA (flash_attn: auto keeps transformers' default)" if value == "auto" else None
    return mapping[value], note


def parse_plan(text: str, path: str, read_file: ReadFile | None = None,
               world_size: int | None = None) -> TrainingPlan:
    """Resolve a LLaMA-Factory YAML. `read_file(repo_path)` reads the DeepSpeed JSON it references."""
    return plan_from_document(parse_yaml(text, path), read_file, world_size)


def plan_from_document(document: YamlDocument, read_file: ReadFile | None = None,
                       world_size: int | None = None) -> TrainingPlan:
    """Resolve an already-parsed LLaMA-Factory YAML (the pipeline parses each file once)."""
    path = document.path
    raw = document.mapping("a mapping of LLaMA-Factory keys")
    lines = document.top_level_lines
    notes: list[str] = []
    model = raw.get("model_name_or_path")
    if not model or not isinstance(model, str):
        raise InputError("Please provide model_name_or_path.", file=path, key="model_name_or_path")

    deepspeed = _load_deepspeed(raw, path, lines, read_file, notes)
    bf16 = _bool(raw, "bf16", False, path, lines)
    fp16 = _bool(raw, "fp16", False, path, lines)
    if deepspeed is not None:
        deepspeed = deepspeed.resolve_auto(bf16=bf16, fp16=fp16)
    zero_stage = deepspeed.stage if deepspeed else 0
    # The first combination LLaMA-Factory stops on — while parsing its arguments, or (quantization.py's ZeRO-3
    # checks) when it loads the model: either way the run dies before training, so no estimate is given.
    blocking = rejections(raw, zero_stage, world_size or 1)
    if blocking:
        first = blocking[0]
        raise RejectedConfig(f"LLaMA-Factory rejects this config: {first.text}", file=path, key=first.key,
                             line=lines.get(first.key))

    stage = _choice(raw, "stage", "sft", STAGES, path, lines)
    attention, attention_note = _attention(raw, path, lines)
    if attention_note:
        notes.append(attention_note)
    disable_gc = _bool(raw, "disable_gradient_checkpointing", False, path, lines)
    if not disable_gc:
        notes.append("gradient checkpointing: on (LLaMA-Factory default)")
    packing_default = stage == "pt"  # data_args.py: packing None → True for pt
    neat_packing = _bool(raw, "neat_packing", False, path, lines)
    optim = str(raw.get("optim") or "adamw_torch_fused").strip().lower()
    if "optim" not in raw:
        notes.append("optimizer: fused AdamW (HF Trainer default on torch >= 2.8)")
    if "per_device_train_batch_size" not in raw:
        notes.append("per_device_train_batch_size: 8 (HF TrainingArguments default)")
    evaluates = (_bool(raw, "do_eval", False, path, lines) or _fraction(raw, "val_size", path, lines) > 1e-6
                 or bool(raw.get("eval_dataset")))
    finetuning_type = _choice(raw, "finetuning_type", "lora", FINETUNING_TYPES, path, lines)
    if "finetuning_type" not in raw:
        notes.append("finetuning_type: lora (LLaMA-Factory default)")
    quant = _optional_int(raw, "quantization_bit", path, lines)
    if quant is not None and quant not in (2, 3, 4, 5, 6, 8):
        raise InputError(f"'quantization_bit' must be 4 or 8 (bnb), 2-8 (hqq); got {describe(quant)}", file=path,
                         key="quantization_bit", line=lines.get("quantization_bit"))
    if not (bf16 or fp16 or _bool(raw, "pure_bf16", False, path, lines)):
        notes.append("precision: fp32 (no bf16/fp16/pure_bf16 key)")

    return TrainingPlan(
        path=path,
        model_name_or_path=model.strip(),
        stage=stage,
        finetuning_type=finetuning_type,
        bf16=bf16,
        fp16=fp16,
        pure_bf16=_bool(raw, "pure_bf16", False, path, lines),
        quantization_bit=quant,
        quantization_method=str(raw.get("quantization_method") or "bnb").lower(),
        gradient_checkpointing=not disable_gc,
        unsloth_gc=_bool(raw, "use_unsloth_gc", False, path, lines),
        attention=attention,
        liger=_bool(raw, "enable_liger_kernel", False, path, lines),
        use_unsloth=_bool(raw, "use_unsloth", False, path, lines),
        packing=_bool(raw, "packing", packing_default, path, lines) or neat_packing,
        neat_packing=neat_packing,
        cutoff_len=_int(raw, "cutoff_len", 2048, path, lines),
        per_device_train_batch_size=_int(raw, "per_device_train_batch_size", 8, path, lines),
        gradient_accumulation_steps=_int(raw, "gradient_accumulation_steps", 1, path, lines),
        per_device_eval_batch_size=_int(raw, "per_device_eval_batch_size", 8, path, lines),
        evaluates=evaluates,
        optim=optim,
        use_galore=_bool(raw, "use_galore", False, path, lines),
        galore_rank=_int(raw, "galore_rank", 16, path, lines),
        galore_layerwise=_bool(raw, "galore_layerwise", False, path, lines),
        use_apollo=_bool(raw, "use_apollo", False, path, lines),
        apollo_rank=_int(raw, "apollo_rank", 16, path, lines),
        use_badam=_bool(raw, "use_badam", False, path, lines),
        badam_mode=str(raw.get("badam_mode") or "layer").lower(),
        lora_rank=_int(raw, "lora_rank", 8, path, lines),
        lora_target=_names(raw, "lora_target", ("all",)),
        use_dora=_bool(raw, "use_dora", False, path, lines),
        additional_target=_names(raw, "additional_target", ()),
        freeze_trainable_layers=_int(raw, "freeze_trainable_layers", 2, path, lines, minimum=None),
        freeze_trainable_modules=_names(raw, "freeze_trainable_modules", ("all",)),
        freeze_extra_modules=_names(raw, "freeze_extra_modules", ()),
        freeze_vision_tower=_bool(raw, "freeze_vision_tower", True, path, lines),
        pref_loss=str(raw.get("pref_loss") or "sigmoid").lower(),
        ref_model=str(raw["ref_model"]) if raw.get("ref_model") else None,
        ref_model_quantization_bit=_optional_int(raw, "ref_model_quantization_bit", path, lines),
        reward_model=str(raw["reward_model"]) if raw.get("reward_model") else None,
        reward_model_type=str(raw.get("reward_model_type") or "lora").lower(),
        use_asft_loss=_bool(raw, "use_asft_loss", False, path, lines),
        upcast_layernorm=_bool(raw, "upcast_layernorm", False, path, lines),
        deepspeed=deepspeed,
        raw=raw,
        key_lines=lines,
        assumptions=tuple(notes),
    )


# --- DeepSpeed file resolution ---------------------------------------------------------------------------

BUNDLED_DEEPSPEED = Path(__file__).parent / "catalog" / "deepspeed"


def _load_deepspeed(raw: Mapping[str, Any], path: str, lines: Mapping[str, int],
                    read_file: ReadFile | None, notes: list[str]) -> DeepSpeedConfig | None:
    value = raw.get("deepspeed")
    if value is None or value == "" or value is False:
        return None
    line = lines.get("deepspeed")
    if isinstance(value, dict):  # HF TrainingArguments accepts an inline dict
        return parse_deepspeed(value, f"{path} (inline deepspeed)")
    if not isinstance(value, str):
        raise InputError(f"'deepspeed' must be a path to a JSON file, got {describe(value)}", file=path,
                         key="deepspeed", line=line)
    ds_path = value.strip()
    for candidate in _candidates(ds_path, path):
        if read_file is None:
            break
        try:
            text = read_file(candidate)
        except (FileNotFoundError, IsADirectoryError):
            continue
        try:
            data = parse_json(text, candidate)
        except InputError as error:
            raise InputError(f"DeepSpeed config '{clip(candidate, 200)}': {error.message}", file=path, key="deepspeed",
                             line=line) from None
        return parse_deepspeed(data, candidate)
    bundled = BUNDLED_DEEPSPEED / posixpath.basename(ds_path)
    if posixpath.dirname(ds_path).endswith("examples/deepspeed") and bundled.is_file():
        notes.append(f"deepspeed: '{clip(ds_path, 200)}' is not in this repository; used LLaMA-Factory's shipped copy")
        return parse_deepspeed(parse_json(bundled.read_text(encoding="utf-8"), ds_path), ds_path)
    if not _candidates(ds_path, path):  # absolute, ~, or .. out of the repository: never read
        raise InputError(f"DeepSpeed config '{clip(ds_path, 200)}' is outside the repository; vram-check reads only "
                         "files in the repository (at the version under review): commit the JSON and point "
                         "deepspeed: at it with a path relative to the repository root", file=path, key="deepspeed",
                         line=line)
    raise InputError(f"DeepSpeed config '{clip(ds_path, 200)}' not found (looked next to the YAML and at the "
                     "repository root)", file=path, key="deepspeed", line=line)


def _candidates(ds_path: str, yaml_path: str) -> list[str]:
    """Repository-relative paths to try: next to the YAML, then from the repository root (LF's CWD)."""
    if posixpath.isabs(ds_path) or ds_path.startswith("~"):
        return []
    found: list[str] = []
    for base in (posixpath.dirname(yaml_path), ""):
        joined = posixpath.normpath(posixpath.join(base, ds_path))
        if joined == ".." or joined.startswith("../"):
            continue  # never outside the repository
        if joined not in found:
            found.append(joined)
    return found


def load_plan(path: Path, repo_root: Path | None = None, world_size: int | None = None) -> TrainingPlan:
    """Read a training YAML from disk; DeepSpeed paths resolve inside `repo_root` (default: the YAML's dir)."""
    root = (repo_root or path.parent).resolve()
    try:
        text = read_bounded(path)
    except FileNotFoundError:
        raise InputError("file not found", file=str(path)) from None
    try:
        relative = path.resolve().relative_to(root).as_posix()
    except ValueError:
        root = path.parent.resolve()
        relative = path.name

    def read(repo_path: str) -> str:
        target = (root / repo_path).resolve()
        if not target.is_relative_to(root):
            raise FileNotFoundError(repo_path)
        return read_bounded(target, name=repo_path)

    plan = parse_plan(text, relative, read, world_size)
    return replace(plan, path=str(path))
