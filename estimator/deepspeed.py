"""DeepSpeed JSON → the ZeRO settings that decide memory, with HF Trainer's "auto" resolution."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from estimator.errors import InputError
from estimator.source import describe

# deepspeed/runtime/zero/config.py defaults
DEFAULT_REDUCE_BUCKET = 500_000_000
DEFAULT_ALLGATHER_BUCKET = 500_000_000
DEFAULT_PREFETCH_BUCKET = 50_000_000
DEFAULT_MAX_LIVE_PARAMETERS = 1_000_000_000
DEFAULT_PERSISTENCE_THRESHOLD = 100_000
DEFAULT_SUB_GROUP_SIZE = 1_000_000_000


@dataclass(frozen=True)
class DeepSpeedConfig:
    """ZeRO settings; bucket sizes in elements. None = "auto", filled from the model by `buckets_for`."""

    path: str
    stage: int
    offload_optimizer: str | None = None  # "cpu" / "nvme"
    offload_param: str | None = None
    overlap_comm: bool = False
    contiguous_gradients: bool = True
    reduce_bucket_size: int | None = DEFAULT_REDUCE_BUCKET
    allgather_bucket_size: int = DEFAULT_ALLGATHER_BUCKET
    prefetch_bucket_size: int | None = DEFAULT_PREFETCH_BUCKET
    max_live_parameters: int = DEFAULT_MAX_LIVE_PARAMETERS
    param_persistence_threshold: int | None = DEFAULT_PERSISTENCE_THRESHOLD
    sub_group_size: int = DEFAULT_SUB_GROUP_SIZE
    bf16: bool | None = None  # None = "auto" until resolved against the YAML's bf16 / fp16
    fp16: bool | None = None
    autotp_size: int = 1  # "tensor_parallel": {"autotp_size": N} (DeepSpeed AutoTP; not modelled)

    def resolve_auto(self, *, bf16: bool, fp16: bool) -> DeepSpeedConfig:
        """transformers integrations/deepspeed.py trainer_config_process: fp16/bf16 "auto" ← the YAML's flags."""
        return replace(self, bf16=bf16 if self.bf16 is None else self.bf16,
                       fp16=fp16 if self.fp16 is None else self.fp16)

    def reduce_bucket(self, hidden: int) -> int:
        """HF "auto": reduce_bucket_size = hidden² (trainer_config_finalize)."""
        return self.reduce_bucket_size if self.reduce_bucket_size is not None else hidden * hidden

    def prefetch_bucket(self, hidden: int) -> int:
        """HF "auto": stage3_prefetch_bucket_size = 0.9 · hidden²."""
        return self.prefetch_bucket_size if self.prefetch_bucket_size is not None else int(0.9 * hidden * hidden)

    def persistence_threshold(self, hidden: int) -> int:
        """HF "auto": stage3_param_persistence_threshold = 10 · hidden."""
        return self.param_persistence_threshold if self.param_persistence_threshold is not None else 10 * hidden

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path, "stage": self.stage, "offload_optimizer": self.offload_optimizer,
            "offload_param": self.offload_param, "overlap_comm": self.overlap_comm,
            "reduce_bucket_size": self.reduce_bucket_size, "allgather_bucket_size": self.allgather_bucket_size,
            "stage3_prefetch_bucket_size": self.prefetch_bucket_size,
            "stage3_max_live_parameters": self.max_live_parameters, "sub_group_size": self.sub_group_size,
            "bf16": self.bf16, "fp16": self.fp16,
        }


def _size(section: Mapping[str, Any], key: str, default: int, path: str) -> int | None:
    value = section.get(key, default)
    if value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"DeepSpeed '{key}' must be a number or \"auto\", got {describe(value)}", file=path)
    return int(value)


def _flag(section: Any) -> bool | None:
    if not isinstance(section, Mapping):
        return False
    enabled = section.get("enabled", False)
    return None if enabled == "auto" else bool(enabled)


def _offload(section: Any) -> str | None:
    if not isinstance(section, Mapping):
        return None
    device = str(section.get("device", "none") or "none").lower()
    return None if device == "none" else device


def parse_deepspeed(data: Any, path: str) -> DeepSpeedConfig:
    """Read the parts of a DeepSpeed config that decide GPU memory."""
    if not isinstance(data, Mapping):
        raise InputError("DeepSpeed config must be a JSON object", file=path)
    zero = data.get("zero_optimization", {}) or {}
    if not isinstance(zero, Mapping):
        raise InputError("'zero_optimization' must be an object", file=path)
    stage = zero.get("stage", 0)
    if stage not in (0, 1, 2, 3):
        raise InputError(f"zero_optimization.stage must be 0, 1, 2 or 3, got {describe(stage)}", file=path)
    # overlap_comm defaults to True for stage 3 only (zero/config.py overlap_comm_valid)
    overlap = bool(zero.get("overlap_comm", stage == 3))
    reduce_bucket = _size(zero, "reduce_bucket_size", DEFAULT_REDUCE_BUCKET, path)
    allgather = _size(zero, "allgather_bucket_size", DEFAULT_ALLGATHER_BUCKET, path)
    return DeepSpeedConfig(
        path=path,
        stage=int(stage),
        offload_optimizer=_offload(zero.get("offload_optimizer")),
        offload_param=_offload(zero.get("offload_param")),
        overlap_comm=overlap,
        contiguous_gradients=bool(zero.get("contiguous_gradients", True)),
        reduce_bucket_size=reduce_bucket,
        allgather_bucket_size=allgather if allgather is not None else DEFAULT_ALLGATHER_BUCKET,
        prefetch_bucket_size=_size(zero, "stage3_prefetch_bucket_size", DEFAULT_PREFETCH_BUCKET, path),
        max_live_parameters=_size(zero, "stage3_max_live_parameters", DEFAULT_MAX_LIVE_PARAMETERS, path)
        or DEFAULT_MAX_LIVE_PARAMETERS,
        param_persistence_threshold=_size(zero, "stage3_param_persistence_threshold",
                                          DEFAULT_PERSISTENCE_THRESHOLD, path),
        sub_group_size=_size(zero, "sub_group_size", DEFAULT_SUB_GROUP_SIZE, path) or DEFAULT_SUB_GROUP_SIZE,
        bf16=_flag(data.get("bf16", data.get("bfloat16"))),
        fp16=_flag(data.get("fp16")),
        autotp_size=_autotp(data.get("tensor_parallel")),
    )


def _autotp(section: Any) -> int:
    if not isinstance(section, Mapping):
        return 1
    size = section.get("autotp_size", section.get("tp_size", 1))
    return int(size) if isinstance(size, int) and not isinstance(size, bool) and size > 0 else 1
