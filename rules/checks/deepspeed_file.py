"""The `deepspeed:` file is missing or not valid JSON."""

from __future__ import annotations

from collections.abc import Iterator

from estimator.source import describe
from rules.checks import RuleContext
from rules.report import Finding, Severity

ID = "deepspeed-file"
SEVERITY: Severity = "error"


def check(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.deepspeed_error is not None:
        yield ctx.finding(ID, SEVERITY, ctx.deepspeed_error, "deepspeed")
        return
    value = ctx.raw.get("deepspeed")
    if ctx.uses_deepspeed and not isinstance(value, (str, dict)):
        yield ctx.finding(ID, SEVERITY, f"'deepspeed' must be a path to a JSON file, got {describe(value)}",
                          "deepspeed")
