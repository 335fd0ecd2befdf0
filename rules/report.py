"""The report every front renders: per config, its estimate, verdicts per pool, findings and suggestions.

`RunReport.to_json()` is the JSON contract of DESIGN.md (schema 1; sizes in bytes; fields may be added,
never removed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from estimator.errors import MAX_MESSAGE_CHARS
from estimator.memory import Estimate

Severity = Literal["error", "warning", "info"]
VerdictName = Literal["fit", "tight", "no-fit", "unknown"]
Status = Literal["fit", "tight", "unknown", "no-fit", "error"]  # a config's outcome on its target pool
STATUS_ORDER: tuple[Status, ...] = ("fit", "tight", "unknown", "no-fit", "error")  # best to worst
SCHEMA = 1


@dataclass(frozen=True)
class Finding:
    """One problem a validation rule found in a config, at a 1-based line (None: the whole file)."""

    rule: str
    severity: Severity
    message: str
    line: int | None

    def __post_init__(self) -> None:  # a backstop: rules describe() the values they quote
        if len(self.message) > MAX_MESSAGE_CHARS:
            object.__setattr__(self, "message", self.message[: MAX_MESSAGE_CHARS - 1] + "…")

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity, "message": self.message, "line": self.line}


@dataclass(frozen=True)
class Verdict:
    pool: str
    gpu: str
    gpus: int
    capacity_bytes: int  # usable memory of one GPU
    peak_bytes: int  # estimated device memory in use per GPU at the peak
    verdict: VerdictName
    min_gpus: int | None  # fewest GPUs of this pool on which the config fits as written; None: not in the pool
    max_batch_size: int | None = None  # largest per_device_train_batch_size that still fits (None: not even 1)
    max_cutoff_len: int | None = None  # largest cutoff_len that still fits at this batch size
    headroom_bytes: int = 0  # usable memory left at the peak (negative: missing)
    peak_range_bytes: tuple[int, int] = (0, 0)  # the error band the verdict was judged on

    def to_json(self) -> dict[str, Any]:
        return {"pool": self.pool, "gpu": self.gpu, "gpus": self.gpus, "capacity_bytes": self.capacity_bytes,
                "peak_bytes": self.peak_bytes, "peak_range_bytes": list(self.peak_range_bytes),
                "verdict": self.verdict, "min_gpus": self.min_gpus,
                "max_batch_size": self.max_batch_size, "max_cutoff_len": self.max_cutoff_len,
                "headroom_bytes": self.headroom_bytes}


@dataclass(frozen=True)
class YamlEdit:
    """Replace line `line` (1-based) of `file`, whose text is `old`, by `new` (old None: append `new`)."""

    file: str
    line: int | None
    old: str | None
    new: str

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class Suggestion:
    changes: Mapping[str, Any]  # YAML keys → new values (or a target: "gpus", "pool")
    peak_bytes: int
    verdict: VerdictName
    why: str  # what the change does to memory
    cost: str  # what it costs in speed, numerics or semantics
    edits: tuple[YamlEdit, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"changes": dict(self.changes), "peak_bytes": self.peak_bytes, "verdict": self.verdict,
                "why": self.why, "cost": self.cost, "edits": [e.to_json() for e in self.edits]}


@dataclass(frozen=True)
class Parameters:
    total: int
    trainable: int


@dataclass(frozen=True)
class ConfigReport:
    """One config: its estimate, the verdict on its target pool and, for comparison, on the other pools."""

    path: str
    model_id: str | None = None
    model_source: str | None = None  # where the model's config.json came from
    parameters: Parameters | None = None
    plan: Mapping[str, Any] = field(default_factory=dict)
    estimate: Estimate | None = None
    target: Verdict | None = None  # the pool the config is checked against (its comment, else the default)
    others: tuple[Verdict, ...] = ()  # the policy's other pools, for comparison only
    suggestions: tuple[Suggestion, ...] = ()
    findings: tuple[Finding, ...] = ()
    error: str | None = None  # why the config could not be estimated (the others are still reported)
    base_delta: int | None = None  # peak change vs the base branch version, bytes
    base_changes: tuple[str, ...] = ()  # "cutoff_len 2048 → 4096"
    is_new: bool = False  # compared with a base branch that does not have this file

    @property
    def verdicts(self) -> tuple[Verdict, ...]:
        """The target verdict first, then the comparison pools (the JSON `verdicts` list)."""
        return ((self.target,) if self.target is not None else ()) + self.others

    @property
    def modelled(self) -> bool:
        """An estimate exists and covers every part of the setup (DESIGN.md JSON "modelled")."""
        return self.estimate is not None and self.estimate.modelled

    @property
    def not_modelled(self) -> tuple[str, ...]:
        """The parts of the setup the estimator does not model, each with why (the verdict is then unknown)."""
        return self.estimate.not_modelled if self.estimate is not None else ()

    @property
    def errors(self) -> tuple[Finding, ...]:
        """Findings LLaMA-Factory would stop on (unknown keys, rejected combinations, wrong types, ...)."""
        return tuple(finding for finding in self.findings if finding.severity == "error")

    @property
    def status(self) -> Status:
        """The config's outcome: "error" when it cannot run as written (or could not be checked), else the
        verdict on its target pool."""
        if self.error is not None or self.errors or self.target is None:
            return "error"
        return self.target.verdict

    @property
    def problem(self) -> str | None:
        """What makes the status "error", in one line."""
        if self.error is not None:
            return self.error
        if self.errors:
            first = self.errors[0]
            where = f"line {first.line}: " if first.line is not None else ""
            more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
            return f"{where}{first.message}{more}"
        return None if self.target is not None else "no verdict"

    def to_json(self) -> dict[str, Any]:
        estimate = self.estimate
        return {
            "schema": SCHEMA,
            "status": self.status,
            "model": {"id": self.model_id,
                      "parameters": {"total": self.parameters.total, "trainable": self.parameters.trainable}
                      if self.parameters else None, "source": self.model_source},
            "plan": dict(self.plan),
            "modelled": self.modelled,
            "not_modelled": list(self.not_modelled),
            "per_gpu": estimate.to_json() if estimate else None,
            "assumptions": list(estimate.assumptions) if estimate else [],
            "verdicts": [v.to_json() for v in self.verdicts],
            "suggestions": [s.to_json() for s in self.suggestions],
            "findings": [f.to_json() for f in self.findings],
            "error": self.error,
            "base_delta_bytes": self.base_delta,
            "base_changes": list(self.base_changes),
            "is_new": self.is_new,
        }


def worst_status(statuses: Iterable[Status]) -> Status | Literal["none"]:
    """The worst of some statuses (fit < tight < unknown < no-fit < error); "none" when there are none."""
    return max(statuses, key=STATUS_ORDER.index, default="none")


@dataclass(frozen=True)
class RunReport:
    configs: tuple[ConfigReport, ...]
    notes: tuple[str, ...] = ()

    @property
    def overall(self) -> Status | Literal["none"]:
        """The worst status over all configs; "none" without configs."""
        return worst_status(config.status for config in self.configs)

    def count(self, status: Status) -> int:
        return sum(1 for config in self.configs if config.status == status)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "overall": self.overall, "notes": list(self.notes),
                "configs": {c.path: c.to_json() for c in self.configs}}
