"""A key written twice: YAML keeps the last value silently (LLaMA-Factory too); the first is dead text."""

from __future__ import annotations

from collections.abc import Iterator

from estimator.source import describe
from rules.checks import RuleContext
from rules.report import Finding, Severity

ID = "duplicate-key"
SEVERITY: Severity = "warning"


def check(ctx: RuleContext) -> Iterator[Finding]:
    for duplicate in ctx.document.duplicates:
        yield Finding(rule=ID, severity=SEVERITY, line=duplicate.first_line,
                      message=f"{describe(duplicate.key)} is set again on line {duplicate.line}, and that later "
                              f"value is the one used: this line (line {duplicate.first_line}) has no effect")
