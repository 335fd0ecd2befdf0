"""Validation rules for LLaMA-Factory training configs, one module per rule (yamllint style).

A rule module has a docstring (its one-line documentation), an `ID`, a default `SEVERITY`, and
`check(ctx: RuleContext) -> Iterator[Finding]` yielding findings with a line number. A module that reports a
table of checks instead (LLaMA-Factory's rejected combinations) lists its IDs in `RULES` as
{ID: (severity, one-line documentation)}. Adding a rule is adding a module here: `run_rules` discovers
every module of this package.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from estimator import llamafactory_rules
from estimator.llamafactory_rules import Rejection
from estimator.source import YamlDocument, parse_yaml
from rules.report import Finding, Severity

if TYPE_CHECKING:  # only for annotations: rules run on the YAML alone when no plan could be built
    from estimator.plan import TrainingPlan
    from rules.gpus import GPU

RuleCheck = Callable[["RuleContext"], Iterator[Finding]]

_ZERO3_NAME = re.compile(r"(?:zero|z)_?3", re.IGNORECASE)


@dataclass(frozen=True)
class RuleContext:
    """Everything a rule may look at: the parsed YAML (and the base branch's), the resolved plan when it could
    be built, the target GPU and world size."""

    document: YamlDocument
    plan: TrainingPlan | None = None
    gpu: GPU | None = None
    world_size: int = 1
    base: YamlDocument | None = None
    deepspeed_error: str | None = None
    deepspeed_stage: int | None = None  # ZeRO stage from the DeepSpeed JSON when there is no plan
    max_positions: int | None = None  # the model's max_position_embeddings, once the model is known

    @classmethod
    def from_yaml(cls, text: str, path: str, *, base_text: str | None = None, **kwargs: Any) -> RuleContext:
        """A context straight from YAML text (and the base branch's text): for tests and one-off checks."""
        base = parse_yaml(base_text, path) if base_text is not None else None
        return cls(document=parse_yaml(text, path), base=base, **kwargs)

    @cached_property
    def raw(self) -> Mapping[str, Any]:
        """The top-level mapping ({} for an empty file or one that is not a mapping)."""
        data = self.document.data
        return {str(key): value for key, value in data.items()} if isinstance(data, dict) else {}

    @cached_property
    def base_raw(self) -> Mapping[str, Any] | None:
        if self.base is None:
            return None
        data = self.base.data
        return {str(key): value for key, value in data.items()} if isinstance(data, dict) else {}

    @property
    def path(self) -> str:
        return self.document.path

    def line(self, key: str) -> int | None:
        """1-based line of a top-level key, None if the key is absent."""
        return self.document.line(key)

    def has(self, key: str) -> bool:
        return llamafactory_rules.has(self.raw, key)

    def flag(self, key: str) -> bool:
        """A boolean key as HfArgumentParser reads it (YAML true, or the strings true/yes/on/1)."""
        return llamafactory_rules.flag(self.raw, key)

    def text(self, key: str, default: str) -> str:
        """A string-valued key, lower-cased, with LLaMA-Factory's default when absent."""
        return llamafactory_rules.text(self.raw, key, default)

    def number(self, key: str, default: int) -> int:
        """An integer key; values that are not integers count as the default (the plan reports them)."""
        return llamafactory_rules.number(self.raw, key, default)

    @property
    def uses_deepspeed(self) -> bool:
        return self.raw.get("deepspeed") not in (None, "", False)

    @property
    def zero_stage(self) -> int:
        """ZeRO stage: the plan's, else the DeepSpeed JSON's, else an inline dict's, else guessed from
        the file name (LLaMA-Factory's examples are named ds_z{0,2,3}_*.json); 0 without DeepSpeed."""
        if self.plan is not None:
            return self.plan.zero_stage
        if not self.uses_deepspeed:
            return 0
        if self.deepspeed_stage is not None:
            return self.deepspeed_stage
        value = self.raw.get("deepspeed")
        if isinstance(value, Mapping):
            zero = value.get("zero_optimization")
            stage = zero.get("stage", 0) if isinstance(zero, Mapping) else 0
            return int(stage) if isinstance(stage, int) else 0
        return 3 if _ZERO3_NAME.search(str(value)[:300]) else 0

    @cached_property
    def rejections(self) -> list[Rejection]:
        """Every combination LLaMA-Factory rejects in this config (estimator/llamafactory_rules.py)."""
        return llamafactory_rules.rejections(self.raw, self.zero_stage, self.world_size)

    def finding(self, rule: str, severity: Severity, message: str, key: str | None) -> Finding:
        return Finding(rule=rule, severity=severity, message=message,
                       line=self.line(key) if key is not None else None)


@dataclass(frozen=True)
class RuleDoc:
    id: str
    severity: Severity
    doc: str


def _module_rules(module: ModuleType) -> list[RuleDoc]:
    """The rules a module reports: its ID, SEVERITY and docstring, or its RULES table."""
    table = getattr(module, "RULES", None)
    if table is not None:
        return [RuleDoc(rule, severity, doc) for rule, (severity, doc) in table.items()]
    if not (hasattr(module, "ID") and hasattr(module, "SEVERITY")):
        raise TypeError(f"rule module {module.__name__} needs ID and SEVERITY (or RULES), and check()")
    return [RuleDoc(str(module.ID), module.SEVERITY, (module.__doc__ or "").strip().splitlines()[0])]


@cache
def rule_modules() -> tuple[ModuleType, ...]:
    """Every rule module of this package, in name order."""
    modules = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if not hasattr(module, "check"):
            raise TypeError(f"rule module {module.__name__} needs check()")
        _module_rules(module)
        modules.append(module)
    return tuple(modules)


def run_rules(ctx: RuleContext) -> list[Finding]:
    """All findings of all rules for one config, in line order (file-level findings first)."""
    findings: list[Finding] = []
    for module in rule_modules():
        check = cast(RuleCheck, module.check)
        findings.extend(check(ctx))
    return sorted(findings, key=lambda finding: (finding.line or 0, finding.rule))


def rule_docs() -> list[tuple[str, str, str]]:
    """(ID, default severity, one-line documentation) of every rule, sorted by ID, for docs/rules.md."""
    docs = [rule for module in rule_modules() for rule in _module_rules(module)]
    return [(rule.id, rule.severity, rule.doc) for rule in sorted(docs, key=lambda rule: rule.id)]
