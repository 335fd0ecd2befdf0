"""GaLore or APOLLO with any DeepSpeed config, which LLaMA-Factory rejects."""

from __future__ import annotations

from collections.abc import Iterator

from estimator.llamafactory_rules import GALORE_DEEPSPEED
from rules.checks import RuleContext, rejection_findings
from rules.report import Finding, Severity

ID = GALORE_DEEPSPEED
SEVERITY: Severity = "error"


def check(ctx: RuleContext) -> Iterator[Finding]:
    return rejection_findings(ctx, ID, SEVERITY)  # conditions and LF sources: estimator/llamafactory_rules.py
