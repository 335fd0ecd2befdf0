"""PPO without a reward model, or with a LoRA reward model on a Freeze/Full run (LF rejects both)."""

from __future__ import annotations

from collections.abc import Iterator

from estimator.llamafactory_rules import PPO_REWARD_MODEL
from rules.checks import RuleContext, rejection_findings
from rules.report import Finding, Severity

ID = PPO_REWARD_MODEL
SEVERITY: Severity = "error"


def check(ctx: RuleContext) -> Iterator[Finding]:
    return rejection_findings(ctx, ID, SEVERITY)  # conditions and LF sources: estimator/llamafactory_rules.py
