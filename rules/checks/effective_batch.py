"""The pull request changes the effective batch size (per-device batch × accumulation × GPUs)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from rules.checks import RuleContext
from rules.report import Finding, Severity

ID = "effective-batch-changed"
SEVERITY: Severity = "info"

_BATCH = "per_device_train_batch_size"
_ACCUMULATION = "gradient_accumulation_steps"
_HF_DEFAULT_BATCH = 8  # transformers TrainingArguments.per_device_train_batch_size default


def _factor(raw: Mapping[str, Any], key: str, default: int) -> int:
    value = raw.get(key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def check(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.base_raw is None:
        return
    # Global batch = per_device_train_batch_size × gradient_accumulation_steps × world size; the same
    # world size is assumed for both versions (the pool does not change with the pull request).
    before = (_factor(ctx.base_raw, _BATCH, _HF_DEFAULT_BATCH), _factor(ctx.base_raw, _ACCUMULATION, 1))
    after = (_factor(ctx.raw, _BATCH, _HF_DEFAULT_BATCH), _factor(ctx.raw, _ACCUMULATION, 1))
    old, new = before[0] * before[1] * ctx.world_size, after[0] * after[1] * ctx.world_size
    if old == new:
        return
    key = _BATCH if before[0] != after[0] else _ACCUMULATION
    gpus = ctx.world_size
    yield ctx.finding(ID, SEVERITY, f"effective batch size {old} → {new} sequences per optimizer step "
                      f"({before[0]}×{before[1]}×{gpus} GPUs → {after[0]}×{after[1]}×{gpus}); "
                      "learning rate and schedule may need retuning", key)
