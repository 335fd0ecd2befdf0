"""Options LLaMA-Factory rejects under ZeRO-3: unsloth, KTransformers, PiSSA init, predict_with_generate."""

from __future__ import annotations

from collections.abc import Iterator

from estimator.llamafactory_rules import ZERO3_INCOMPATIBLE
from rules.checks import RuleContext, rejection_findings
from rules.report import Finding, Severity

ID = ZERO3_INCOMPATIBLE
SEVERITY: Severity = "error"


def check(ctx: RuleContext) -> Iterator[Finding]:
    return rejection_findings(ctx, ID, SEVERITY)  # conditions and LF sources: estimator/llamafactory_rules.py
