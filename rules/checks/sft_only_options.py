"""SFT-only options (predict_with_generate, neat_packing, train_on_prompt, mask_history) with another stage."""

from __future__ import annotations

from collections.abc import Iterator

from estimator.llamafactory_rules import SFT_ONLY_OPTIONS
from rules.checks import RuleContext, rejection_findings
from rules.report import Finding, Severity

ID = SFT_ONLY_OPTIONS
SEVERITY: Severity = "error"


def check(ctx: RuleContext) -> Iterator[Finding]:
    return rejection_findings(ctx, ID, SEVERITY)  # conditions and LF sources: estimator/llamafactory_rules.py
