"""A key written twice: LLaMA-Factory stops, its YAML loader (OmegaConf) refuses duplicate keys."""

from __future__ import annotations

from collections.abc import Iterator

from estimator.source import clip, describe
from rules.checks import RuleContext
from rules.report import Finding, Severity

ID = "duplicate-key"
SEVERITY: Severity = "error"


def check(ctx: RuleContext) -> Iterator[Finding]:
    # LLaMA-Factory reads the YAML with OmegaConf.load (hparams/parser.py read_args), whose loader raises
    # "found duplicate key" (omegaconf/_yaml.py, 2.3 and 2.4); plain yaml.safe_load would keep the last value.
    for duplicate in ctx.document.duplicates:
        key = clip(duplicate.key, 60)
        yield Finding(rule=ID, severity=SEVERITY, line=duplicate.first_line,
                      message=f"{describe(duplicate.key)} is set twice, on line {duplicate.first_line} and again on "
                              f"line {duplicate.line}: LLaMA-Factory stops before training (its YAML loader, "
                              f"OmegaConf, refuses a duplicate key: \"found duplicate key {key}\"); keep one. The "
                              "estimate uses the later value")
