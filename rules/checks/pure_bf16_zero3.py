"""pure_bf16 with DeepSpeed ZeRO-3, which LLaMA-Factory rejects."""

from __future__ import annotations

from collections.abc import Iterator

from estimator.llamafactory_rules import PURE_BF16_ZERO3
from rules.checks import RuleContext, rejection_findings
from rules.report import Finding, Severity

ID = PURE_BF16_ZERO3
SEVERITY: Severity = "error"


def check(ctx: RuleContext) -> Iterator[Finding]:
    return rejection_findings(ctx, ID, SEVERITY)  # conditions and LF sources: estimator/llamafactory_rules.py
