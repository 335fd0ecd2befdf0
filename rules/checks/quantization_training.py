"""quantization_device_map: auto while training, or fp8 with quantization_bit (LF rejects both)."""

from __future__ import annotations

from collections.abc import Iterator

from estimator.llamafactory_rules import QUANTIZATION_TRAINING
from rules.checks import RuleContext, rejection_findings
from rules.report import Finding, Severity

ID = QUANTIZATION_TRAINING
SEVERITY: Severity = "error"


def check(ctx: RuleContext) -> Iterator[Finding]:
    return rejection_findings(ctx, ID, SEVERITY)  # conditions and LF sources: estimator/llamafactory_rules.py
