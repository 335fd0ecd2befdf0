"""GaLore or APOLLO with any DeepSpeed config, which LLaMA-Factory rejects."""

from __future__ import annotations

from collections.abc import Iterator

from rules.checks import RuleContext
from rules.report import Finding, Severity

ID = "galore-deepspeed"
SEVERITY: Severity = "error"


def check(ctx: RuleContext) -> Iterator[Finding]:
    if not ctx.uses_deepspeed:
        return
    for key in ("use_galore", "use_apollo"):  # hparams/parser.py get_train_args (v0.9.5)
        if ctx.flag(key):
            yield ctx.finding(ID, SEVERITY, "GaLore and APOLLO are incompatible with DeepSpeed yet.", key)
