"""TrainingPlan: a LLaMA-Factory training YAML (+ its DeepSpeed JSON) with every memory knob resolved.

Defaults and behaviour are LLaMA-Factory 0.9.5's (src/llamafactory/hparams/*.py, model/adapter.py,
model/model_utils/checkpointing.py); research notes in docs/estimator.md cite the lines.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from estimator import coverage
from estimator.deepspeed import DeepSpeedConfig, parse_deepspeed
from estimator.errors import InputError, RejectedConfig
from estimator.launcher import FsdpConfig, Launcher, fsdp_from_training_args
from estimator.llamafactory_rules import MEGATRON_KEYS, rejections
from estimator.source import YamlDocument, clip, describe, parse_json, parse_yaml, read_bounded
from estimator.versions import Versions

ReadFile = Callable[[str], str]  # repository-relative path -> text; FileNotFoundError when absent
Task = Literal["train", "predict", "eval", "none"]

STAGES = ("pt", "sft", "rm", "ppo", "dpo", "kto")
FINETUNING_TYPES = ("lora", "oft", "freeze", "full")
PAIRWISE_STAGES = ("rm", "dpo")  # PairwiseDataCollatorWithPadding: chosen + rejected rows per example
EIGHT_BIT_OPTIMIZERS = ("adamw_bnb_8bit", "adamw_8bit", "paged_adamw_8bit", "lion_8bit", "paged_lion_8bit",
                        "adamw_torch_8bit")
# LLaMA-Factory's v1 trainer (USE_V1=1, cli.py:19) reads another schema (examples/v1/**)
V1_KEYS = frozenset({"dist_config", "micro_batch_size", "peft_config", "kernel_config", "quant_config", "optim_config",
                     "init_config", "train_dataset", "model_class", "sample_backend", "batching_strategy"})


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
    fsdp: FsdpConfig | None = None
    launcher: Launcher | None = None  # the accelerate config it is launched with, when one is named
    versions: Versions = field(default_factory=Versions)
    task: Task = "train"  # train (do_train), predict (do_predict only), eval (do_eval only), none
    double_quantization: bool = True  # model_args.py: double_quantization default True
    reward_model_quantization_bit: int | None = None
    use_adam_mini: bool = False
    use_muon: bool = False
    apollo_layerwise: bool = False
    oft_rank: int = 0  # finetuning_args.py: oft_rank 0, oft_block_size 32 (PEFT needs exactly one of them)
    oft_block_size: int = 32
    lora_dropout: float = 0.0
    use_kt: bool = False
    kt_num_gpu_experts: int = 0  # kt_config kt_num_gpu_experts (kt-kernel sft/config.py default 0)
    ray_num_workers: int = 1
    use_eaft_loss: bool = False
    router_logits: bool = False  # moe_aux_loss_coef set: output_router_logits keeps every layer's router logits
    freeze_multi_modal_projector: bool = True
    image_max_pixels: int = 768 * 768  # model_args.py:305
    video_max_pixels: int = 256 * 256  # model_args.py:321
    video_maxlen: int = 128  # model_args.py:333
    predict_with_generate: bool = False
    max_new_tokens: int = 1024  # generating_args.py:53
    num_beams: int = 1
    use_kv_cache: bool = True
    not_modelled: tuple[str, ...] = ()  # parts of this setup the estimator does not model (→ verdict unknown)
    raw: Mapping[str, Any] = field(default_factory=dict)
    key_lines: Mapping[str, int] = field(default_factory=dict)
    assumptions: tuple[str, ...] = ()

    # --- derived -------------------------------------------------------------------------------------
    @property
    def zero_stage(self) -> int:
        return self.deepspeed.stage if self.deepspeed else 0

    @property
    def fsdp_loading(self) -> bool:
        """transformers' is_fsdp_enabled() while LLaMA-Factory loads the model: ACCELERATE_USE_FSDP and
        FSDP_CPU_RAM_EFFICIENT_LOADING (integrations/fsdp.py:44-53). Only then LF passes no device_map and rank 0
        loads on the CPU; otherwise every rank loads the whole model onto its GPU (patcher.py:428-434 main)."""
        if self.fsdp is None or not self.fsdp.cpu_ram_efficient_loading:
            return False
        # the YAML's fsdp keys set ACCELERATE_USE_FSDP on transformers 4.x only (4.56 training_args.py:1996)
        return not self.fsdp.from_training_args or self.versions.transformers == 4

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
        without quantization (FSDP was dropped from that exception in v0.9.3, commit 2bfcad239). A model loaded
        only for prediction is not trainable: nothing is cast."""
        if self.pure_bf16 or self.use_badam or self.task != "train":
            return False
        return not (self.quantization_bit is None and self.zero_stage == 3)

    @property
    def mixed_precision(self) -> str:
        """HF TrainingArguments: fp16 / bf16 from the flags, else ACCELERATE_MIXED_PRECISION, i.e. the accelerate
        config's mixed_precision (training_args.py:1614-1618) — so pure_bf16 under an accelerate bf16 launch
        still runs mixed precision."""
        if self.fp16:
            return "fp16"
        if self.bf16:
            return "bf16"
        launched = self.launcher.mixed_precision if self.launcher is not None else None
        return launched if launched in ("bf16", "fp16") else "no"

    @property
    def stored_trainable_fp32(self) -> bool:
        """Trainable parameters stored in fp32: LLaMA-Factory's upcast, or accelerate's under FSDP with mixed
        precision (FSDP2 fsdp_utils.py:813-825 `param.data.to(float32)` for every trainable parameter; FSDP1
        accelerator.py:1998-2037 for each trainable flat parameter), which pure_bf16 does not stop."""
        if self.upcast_trainable_to_fp32:
            return True
        return self.fsdp is not None and self.task == "train" and self.mixed_precision != "no"

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

    @property
    def optimizer_name(self) -> str:
        """The optimizer LLaMA-Factory builds (trainer_utils.py create_custom_optimizer picks the first of GaLore,
        APOLLO, LoRA+, BAdam, Adam-mini, Muon; else HF's `optim`; DeepSpeed's own under a DeepSpeed config)."""
        if self.use_galore:
            return f"GaLore ({self.optim}, rank {self.galore_rank}{', layer-wise' if self.galore_layerwise else ''})"
        if self.use_apollo:
            return f"APOLLO ({self.optim}, rank {self.apollo_rank}{', layer-wise' if self.apollo_layerwise else ''})"
        if self.use_badam:
            return f"BAdam ({self.badam_mode} mode) over {self.optim}"
        if self.use_adam_mini:
            return "Adam-mini"
        if self.use_muon:
            return "Muon (2-D weights) + AdamW (the rest)"
        if self.deepspeed is not None:
            return f"DeepSpeed's {self.optim} on fp32 master weights"
        if "optim" not in self.raw:
            return f"{self.optim} (HF Trainer's default on torch >= 2.8)"
        return self.optim

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
            "fsdp": self.fsdp.to_json() if self.fsdp else None,
            "launcher": self.launcher.to_json() if self.launcher else None,
            "task": self.task, "optimizer": self.optimizer_name, "use_adam_mini": self.use_adam_mini,
            "use_muon": self.use_muon, "oft_block_size": self.oft_block_size, "oft_rank": self.oft_rank,
            "use_kt": self.use_kt, "llamafactory": self.versions.llamafactory,
            "transformers": self.versions.transformers,
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


def parse_plan(text: str, path: str, read_file: ReadFile | None = None, world_size: int | None = None, *,
               versions: Versions | None = None, launcher: Launcher | None = None) -> TrainingPlan:
    """Resolve a LLaMA-Factory YAML. `read_file(repo_path)` reads the DeepSpeed JSON it references; `launcher` is
    the accelerate config it is launched with, when one is named (estimator/launcher.py)."""
    return plan_from_document(parse_yaml(text, path), read_file, world_size, versions=versions, launcher=launcher)


def _task(raw: Mapping[str, Any], path: str, lines: Mapping[str, int], notes: list[str]) -> Task:
    """What `llamafactory-cli train` runs: HF's do_train / do_eval / do_predict (all default False; LF's
    workflows check them, e.g. train/sft/workflow.py). A YAML with none of them is taken as a training config."""
    flags = {key: _bool(raw, key, False, path, lines) for key in ("do_train", "do_eval", "do_predict")}
    if flags["do_train"]:
        return "train"
    if flags["do_predict"]:
        return "predict"
    if flags["do_eval"]:
        return "eval"
    if not any(key in raw for key in flags):
        if "export_dir" in raw or "infer_backend" in raw:
            return "none"  # an export (llamafactory-cli export) or chat/API (llamafactory-cli chat) config
        notes.append("do_train not set: estimated as a training run (LLaMA-Factory trains only with do_train: true)")
        return "train"
    return "none"


def _float(raw: Mapping[str, Any], key: str, default: float, path: str, lines: Mapping[str, int]) -> float:
    value = raw.get(key, default)
    if value is None:
        return default
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"'{key}' must be a number, got {describe(value)}", file=path, key=key,
                         line=lines.get(key)) from None


def _kt_config(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    value = raw.get("kt_config")
    return value if isinstance(value, Mapping) else {}


def plan_from_document(document: YamlDocument, read_file: ReadFile | None = None, world_size: int | None = None, *,
                       versions: Versions | None = None, launcher: Launcher | None = None) -> TrainingPlan:
    """Resolve an already-parsed LLaMA-Factory YAML (the pipeline parses each file once)."""
    versions = versions or Versions()
    path = document.path
    raw = document.mapping("a mapping of LLaMA-Factory keys")
    lines = document.top_level_lines
    notes: list[str] = []
    unmodelled: list[str] = []
    model = raw.get("model_name_or_path")
    if not model and V1_KEYS & set(raw) and isinstance(raw.get("model"), str):
        model = raw["model"]  # v1 schema: reported as not modelled below
    if not model or not isinstance(model, str):
        raise InputError("Please provide model_name_or_path.", file=path, key="model_name_or_path")

    deepspeed = _load_deepspeed(raw, path, lines, read_file, notes)
    fsdp = fsdp_from_training_args(raw, path, read_file, versions.transformers)
    if launcher is not None:
        unmodelled += launcher.not_modelled()
        if deepspeed is None and launcher.deepspeed is not None:
            deepspeed = launcher.deepspeed
        if fsdp is None:
            fsdp = launcher.fsdp
        elif launcher.fsdp is not None:
            notes.append(f"fsdp keys in the YAML override the FSDP settings of {launcher.path} "
                         "(HF TrainingArguments builds the plugin)")
    if deepspeed is not None and fsdp is not None:
        unmodelled.append("DeepSpeed and FSDP configured together")
    bf16 = _bool(raw, "bf16", False, path, lines)
    fp16 = _bool(raw, "fp16", False, path, lines)
    if deepspeed is not None:
        deepspeed = deepspeed.resolve_auto(bf16=bf16, fp16=fp16)
    zero_stage = deepspeed.stage if deepspeed else 0
    fsdp_loading = fsdp is not None and fsdp.cpu_ram_efficient_loading and (
        not fsdp.from_training_args or versions.transformers == 4)
    # The first combination LLaMA-Factory stops on — while parsing its arguments, or (quantization.py's ZeRO-3
    # checks) when it loads the model: either way the run dies before training, so no estimate is given.
    blocking = rejections(raw, zero_stage, world_size or 1, version=versions.llamafactory, fsdp_loading=fsdp_loading)
    if blocking:
        first = blocking[0]
        raise RejectedConfig(f"LLaMA-Factory rejects this config: {first.text}", file=path, key=first.key,
                             line=lines.get(first.key))

    task = _task(raw, path, lines, notes)
    stage = _choice(raw, "stage", "sft", STAGES, path, lines)
    attention, attention_note = _attention(raw, path, lines)
    if attention_note:
        notes.append(attention_note)
    disable_gc = _bool(raw, "disable_gradient_checkpointing", False, path, lines)
    hf_gc = _bool(raw, "gradient_checkpointing", False, path, lines)  # HF Trainer enables GC on every layer
    if task == "train" and not disable_gc:
        notes.append("gradient checkpointing: on (LLaMA-Factory default)")
    elif task == "train" and hf_gc:
        notes.append("gradient checkpointing: on (HF gradient_checkpointing: true)")
    packing_default = stage == "pt"  # data_args.py: packing None → True for pt
    neat_packing = _bool(raw, "neat_packing", False, path, lines)
    optim = str(raw.get("optim") or "adamw_torch_fused").strip().lower()
    if "per_device_train_batch_size" not in raw and task == "train":
        notes.append("per_device_train_batch_size: 8 (HF TrainingArguments default)")
    evaluates = (_bool(raw, "do_eval", False, path, lines) or _float(raw, "val_size", 0.0, path, lines) > 1e-6
                 or bool(raw.get("eval_dataset")))
    finetuning_type = _choice(raw, "finetuning_type", "lora", FINETUNING_TYPES, path, lines)
    if "finetuning_type" not in raw:
        notes.append("finetuning_type: lora (LLaMA-Factory default)")
    quant = _optional_int(raw, "quantization_bit", path, lines)
    if quant is not None and quant not in (1, 2, 3, 4, 5, 6, 8):
        raise InputError(f"'quantization_bit' must be 4 or 8 (bnb), 1-6 or 8 (hqq); got {describe(quant)}", file=path,
                         key="quantization_bit", line=lines.get("quantization_bit"))
    quant_method = str(raw.get("quantization_method") or "bnb").strip().lower()
    if quant is not None and quant_method not in ("bnb", "hqq", "eetq"):
        # quantization.py quantizes on the fly only with bnb, hqq and eetq; others need a PTQ checkpoint
        notes.append(f"quantization_method {quant_method} quantizes nothing on the fly (LLaMA-Factory has no such "
                     "branch); weights stay in the checkpoint's format")
    if not (bf16 or fp16 or _bool(raw, "pure_bf16", False, path, lines)):
        notes.append("precision: fp32 (no bf16/fp16/pure_bf16 key)")
    use_unsloth = _bool(raw, "use_unsloth", False, path, lines)
    additional = _names(raw, "additional_target", ())
    if not additional and finetuning_type in ("lora", "oft") and (
            _bool(raw, "resize_vocab", False, path, lines) or raw.get("add_tokens") or raw.get("add_special_tokens")):
        # adapter.py:222-230: a resized vocabulary makes the embeddings and the output layer trainable copies
        additional = ("embed_tokens", "lm_head")
        notes.append("resized vocabulary: embed_tokens and lm_head train as full copies (LLaMA-Factory adapter.py)")
    kt = _kt_config(raw)
    use_kt = _bool(raw, "use_kt", False, path, lines)
    ray_workers = _int(raw, "ray_num_workers", 1, path, lines)

    if V1_KEYS & set(raw):
        unmodelled.append("LLaMA-Factory v1 schema (USE_V1=1: dist_config, micro_batch_size, ...): only the v0 "
                          "training arguments are modelled")
    if MEGATRON_KEYS & set(raw):
        unmodelled.append("Megatron-core training (USE_MCA=1 / USE_MEGATRON_BRIDGE=1: tensor, pipeline and expert "
                          "parallel sharding of states and activations)")
    if task == "none" and raw.get("export_dir"):
        unmodelled.append("an export config (llamafactory-cli export: merging or quantizing a model), not a "
                          "training run")
    elif task == "none" and "infer_backend" in raw:
        unmodelled.append(f"an inference config (llamafactory-cli chat/api, infer_backend "
                          f"{str(raw.get('infer_backend'))[:40]}), not a training run")
    elif task == "none":
        unmodelled.append("do_train, do_eval and do_predict are all off: nothing runs on the GPU")
    if task == "train" and raw.get("tokenized_path"):
        notes.append("tokenized_path: LLaMA-Factory saves the tokenized data and then trains (it no longer exits "
                     "after preprocessing, since 2025-03)")
    if task == "train" and (_bool(raw, "do_predict", False, path, lines) or
                            _bool(raw, "predict_with_generate", False, path, lines)):
        notes.append("prediction after training (do_predict) is not in this peak: the training step is estimated")
    unmodelled += coverage.unmodelled(raw, versions, deepspeed=deepspeed, fsdp=fsdp, task=task,
                                      finetuning_type=finetuning_type)

    return TrainingPlan(
        path=path,
        model_name_or_path=model.strip(),
        stage=stage,
        finetuning_type=finetuning_type,
        bf16=bf16,
        fp16=fp16,
        pure_bf16=_bool(raw, "pure_bf16", False, path, lines),
        quantization_bit=quant if quant_method in ("bnb", "hqq", "eetq") or quant is None else None,
        quantization_method=quant_method,
        # FSDP's own activation checkpointing wraps every unit in checkpoint_wrapper (accelerate
        # accelerator.py:1972-1986, fsdp_utils fsdp2_apply_ac): the same saved inputs as one checkpointing
        gradient_checkpointing=task == "train" and (not disable_gc or hf_gc
                                                    or (fsdp is not None and fsdp.activation_checkpointing)),
        unsloth_gc=_bool(raw, "use_unsloth_gc", False, path, lines),
        attention=attention,
        liger=_bool(raw, "enable_liger_kernel", False, path, lines),
        use_unsloth=use_unsloth,
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
        apollo_layerwise=_bool(raw, "apollo_layerwise", False, path, lines),
        use_badam=_bool(raw, "use_badam", False, path, lines),
        badam_mode=str(raw.get("badam_mode") or "layer").lower(),
        lora_rank=_int(raw, "lora_rank", 8, path, lines),
        lora_target=_names(raw, "lora_target", ("all",)),
        lora_dropout=_float(raw, "lora_dropout", 0.0, path, lines),
        use_dora=_bool(raw, "use_dora", False, path, lines),
        additional_target=additional,
        freeze_trainable_layers=_int(raw, "freeze_trainable_layers", 2, path, lines, minimum=None),
        freeze_trainable_modules=_names(raw, "freeze_trainable_modules", ("all",)),
        freeze_extra_modules=_names(raw, "freeze_extra_modules", ()),
        freeze_vision_tower=_bool(raw, "freeze_vision_tower", True, path, lines),
        freeze_multi_modal_projector=_bool(raw, "freeze_multi_modal_projector", True, path, lines),
        pref_loss=str(raw.get("pref_loss") or "sigmoid").lower(),
        ref_model=str(raw["ref_model"]) if raw.get("ref_model") else None,
        ref_model_quantization_bit=_optional_int(raw, "ref_model_quantization_bit", path, lines),
        reward_model=str(raw["reward_model"]) if raw.get("reward_model") else None,
        reward_model_type=str(raw.get("reward_model_type") or "lora").lower(),
        reward_model_quantization_bit=_optional_int(raw, "reward_model_quantization_bit", path, lines),
        use_asft_loss=_bool(raw, "use_asft_loss", False, path, lines),
        use_eaft_loss=_bool(raw, "use_eaft_loss", False, path, lines),
        upcast_layernorm=_bool(raw, "upcast_layernorm", False, path, lines),
        deepspeed=deepspeed,
        fsdp=fsdp,
        launcher=launcher,
        versions=versions,
        task=task,
        double_quantization=_bool(raw, "double_quantization", True, path, lines),
        use_adam_mini=_bool(raw, "use_adam_mini", False, path, lines),
        use_muon=_bool(raw, "use_muon", False, path, lines),
        oft_rank=_int(raw, "oft_rank", 0, path, lines, minimum=0),
        oft_block_size=_int(raw, "oft_block_size", 32, path, lines, minimum=0),
        use_kt=use_kt,
        kt_num_gpu_experts=_int(kt, "kt_num_gpu_experts", 0, path, lines, minimum=0) if use_kt else 0,
        ray_num_workers=ray_workers,
        router_logits=raw.get("moe_aux_loss_coef") is not None,
        image_max_pixels=_int(raw, "image_max_pixels", 768 * 768, path, lines),
        video_max_pixels=_int(raw, "video_max_pixels", 256 * 256, path, lines),
        video_maxlen=_int(raw, "video_maxlen", 128, path, lines),
        predict_with_generate=_bool(raw, "predict_with_generate", False, path, lines),
        max_new_tokens=_int(raw, "max_new_tokens", 1024, path, lines, minimum=0),
        num_beams=_int(raw, "num_beams", 1, path, lines),
        use_kv_cache=_bool(raw, "use_kv_cache", True, path, lines),
        not_modelled=tuple(dict.fromkeys(unmodelled)),
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


def load_plan(path: Path, repo_root: Path | None = None, world_size: int | None = None, *,
              versions: Versions | None = None) -> TrainingPlan:
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

    plan = parse_plan(text, relative, read, world_size, versions=versions)
    return replace(plan, path=str(path))
