"""Quantization or adapter loading with a method that does not take them (LoRA/OFT only; LF's message)."""

from __future__ import annotations

from collections.abc import Iterator

from estimator.llamafactory_rules import ADAPTER_METHOD
from rules.checks import RuleContext, rejection_findings
from rules.report import Finding, Severity

ID = ADAPTER_METHOD
SEVERITY: Severity = "error"


def check(ctx: RuleContext) -> Iterator[Finding]:
    return rejection_findings(ctx, ID, SEVERITY)  # conditions and LF sources: estimator/llamafactory_rules.py
