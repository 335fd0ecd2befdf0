"""Layer-wise GaLore/APOLLO with gradient accumulation or on more than one GPU (LF rejects both)."""

from __future__ import annotations

from collections.abc import Iterator

from estimator.llamafactory_rules import LAYERWISE_OPTIMIZER
from rules.checks import RuleContext, rejection_findings
from rules.report import Finding, Severity

ID = LAYERWISE_OPTIMIZER
SEVERITY: Severity = "error"


def check(ctx: RuleContext) -> Iterator[Finding]:
    return rejection_findings(ctx, ID, SEVERITY)  # conditions and LF sources: estimator/llamafactory_rules.py
