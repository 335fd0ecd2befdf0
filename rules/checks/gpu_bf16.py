"""bf16 or pure_bf16 on a GPU without bfloat16 (sm < 80: V100, T4); the run stops at argument parsing."""

from __future__ import annotations

from collections.abc import Iterator

from rules.checks import RuleContext
from rules.report import Finding, Severity

ID = "gpu-bf16"
SEVERITY: Severity = "error"


def check(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.gpu is None or ctx.gpu.bf16 is not False:
        return
    where = f"{ctx.gpu.name} has no bfloat16 support; use fp16: true"
    if ctx.flag("pure_bf16"):  # hparams/parser.py get_train_args (v0.9.5)
        yield ctx.finding(ID, SEVERITY, f"This device does not support `pure_bf16`. ({where})", "pure_bf16")
    if ctx.flag("bf16"):  # transformers TrainingArguments.__post_init__
        yield ctx.finding(ID, SEVERITY, f"Your setup doesn't support bf16/gpu. ({where})", "bf16")
