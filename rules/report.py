"""Report dataclasses. Minimal placeholder with Finding only (created by the rules engineer; the lead
owns this module and will add Verdict, Suggestion, ConfigReport, RunReport)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Finding:
    """One problem a validation rule found in a config, at a 1-based line (None: the whole file)."""

    rule: str
    severity: Severity
    message: str
    line: int | None
