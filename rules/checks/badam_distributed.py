"""BAdam on several GPUs: ratio mode is rejected and layer mode needs DeepSpeed ZeRO-3 (LF's messages)."""

from __future__ import annotations

from collections.abc import Iterator

from rules.checks import RuleContext
from rules.report import Finding, Severity

ID = "badam-distributed"
SEVERITY: Severity = "error"


def check(ctx: RuleContext) -> Iterator[Finding]:
    if not ctx.flag("use_badam") or ctx.world_size <= 1:
        return
    # hparams/parser.py get_train_args (v0.9.5); "Radio" is LLaMA-Factory's own spelling.
    if ctx.text("badam_mode", "layer") == "ratio":
        yield ctx.finding(ID, SEVERITY, "Radio-based BAdam does not yet support distributed training, "
                          f"use layer-wise BAdam. (target: {ctx.world_size} GPUs)", "badam_mode")
    elif ctx.zero_stage != 3:
        yield ctx.finding(ID, SEVERITY, "Layer-wise BAdam only supports DeepSpeed ZeRO-3 training. "
                          f"(target: {ctx.world_size} GPUs, ZeRO-{ctx.zero_stage})", "use_badam")
