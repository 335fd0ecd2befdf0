"""Method options LF rejects: LoRA-only options without LoRA, LoRA + GaLore/APOLLO/BAdam, two of those."""

from __future__ import annotations

from collections.abc import Iterator

from estimator.llamafactory_rules import METHOD_OPTIONS
from rules.checks import RuleContext, rejection_findings
from rules.report import Finding, Severity

ID = METHOD_OPTIONS
SEVERITY: Severity = "error"


def check(ctx: RuleContext) -> Iterator[Finding]:
    return rejection_findings(ctx, ID, SEVERITY)  # conditions and LF sources: estimator/llamafactory_rules.py
