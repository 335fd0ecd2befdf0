"""pure_bf16 with DeepSpeed ZeRO-3, which LLaMA-Factory rejects."""

from __future__ import annotations

from collections.abc import Iterator

from rules.checks import RuleContext
from rules.report import Finding, Severity

ID = "pure-bf16-zero3"
SEVERITY: Severity = "error"


def check(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.flag("pure_bf16") and ctx.zero_stage == 3:  # hparams/parser.py get_train_args (v0.9.5)
        yield ctx.finding(ID, SEVERITY, "`pure_bf16` is incompatible with DeepSpeed ZeRO-3. "
                          "(use bf16: true, or ZeRO-2)", "pure_bf16")
