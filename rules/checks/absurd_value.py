"""A value no training run can have: cutoff_len beyond 64× the model's position limit, a batch over 65,536."""

from __future__ import annotations

from collections.abc import Iterator

from rules.checks import RuleContext
from rules.report import Finding, Severity

ID = "absurd-value"
SEVERITY: Severity = "warning"

POSITION_FACTOR = 64  # far beyond any RoPE scaling a config applies (YaRN/linear factors are 2-32)
MAX_BATCH = 65_536
BATCH_KEYS = ("per_device_train_batch_size", "per_device_eval_batch_size")


def check(ctx: RuleContext) -> Iterator[Finding]:
    cutoff = _number(ctx.raw.get("cutoff_len"))
    if cutoff is not None and ctx.max_positions and cutoff > POSITION_FACTOR * ctx.max_positions:
        yield ctx.finding(ID, SEVERITY, f"cutoff_len {cutoff:,.0f} is more than {POSITION_FACTOR}× the model's "
                          f"position limit (max_position_embeddings {ctx.max_positions:,}): no sequence gets that "
                          "long, but the estimate assumes cutoff_len tokens per sequence, so its numbers are "
                          "meaningless; likely a typo", "cutoff_len")
    for key in BATCH_KEYS:
        batch = _number(ctx.raw.get(key))
        if batch is not None and batch > MAX_BATCH:
            yield ctx.finding(ID, SEVERITY, f"{key} {batch:,.0f} is over {MAX_BATCH:,} sequences per GPU: the "
                              "estimate holds that many sequences in memory at once, so its numbers are "
                              "meaningless; likely a typo", key)


def _number(value: object) -> float | None:
    """An int or float as written (OmegaConf reads 1e12 as a float); anything else is another rule's business."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
