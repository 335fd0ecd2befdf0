"""The combinations LLaMA-Factory stops on, reported at the key's line with LLaMA-Factory's own message.

The conditions, messages and LLaMA-Factory source lines are one table, `estimator/llamafactory_rules.py`,
which the estimator also uses to refuse such a config. Each family of that table is one rule ID here.
"""

from __future__ import annotations

from collections.abc import Iterator

from estimator.llamafactory_rules import FAMILIES
from rules.checks import RuleContext
from rules.report import Finding, Severity

RULES: dict[str, tuple[Severity, str]] = {family: ("error", doc) for family, doc in FAMILIES.items()}


def check(ctx: RuleContext) -> Iterator[Finding]:
    for rejection in ctx.rejections:
        yield ctx.finding(rejection.rule, "error", rejection.text, rejection.key)
