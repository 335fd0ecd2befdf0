"""BAdam on several GPUs: ratio mode is rejected and layer mode needs DeepSpeed ZeRO-3 (LF's messages)."""

from __future__ import annotations

from collections.abc import Iterator

from estimator.llamafactory_rules import BADAM_DISTRIBUTED
from rules.checks import RuleContext, rejection_findings
from rules.report import Finding, Severity

ID = BADAM_DISTRIBUTED
SEVERITY: Severity = "error"


def check(ctx: RuleContext) -> Iterator[Finding]:
    return rejection_findings(ctx, ID, SEVERITY)  # conditions and LF sources: estimator/llamafactory_rules.py
