"""Validation rules for LLaMA-Factory training configs, one module per rule (yamllint style).

Each rule module has a docstring (its one-line documentation), an `ID`, a default `SEVERITY`, and
`check(ctx: RuleContext) -> Iterator[Finding]` yielding findings with a line number. Adding a rule
is adding a module here: `run_rules` discovers every module of this package.
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

import yaml

from estimator import llamafactory_rules
from estimator.errors import InputError
from estimator.llamafactory_rules import Rejection
from rules.report import Finding, Severity

if TYPE_CHECKING:  # only for annotations: rules run on the raw YAML when no plan could be built
    from estimator.plan import TrainingPlan
    from rules.gpus import GPU

RuleCheck = Callable[["RuleContext"], Iterator[Finding]]

_ZERO3_NAME = re.compile(r"(?:zero|z)_?3", re.IGNORECASE)


@dataclass(frozen=True)
class RuleContext:
    """Everything a rule may look at: the YAML mapping and its key lines, the resolved plan when it
    could be built, the target GPU and world size, and the base-branch YAML for pull requests."""

    plan: TrainingPlan | None
    raw: Mapping[str, Any]
    key_lines: Mapping[str, int]
    path: str
    gpu: GPU | None = None
    world_size: int = 1
    base_raw: Mapping[str, Any] | None = None
    deepspeed_error: str | None = None
    deepspeed_stage: int | None = None  # ZeRO stage from the DeepSpeed JSON when there is no plan

    @classmethod
    def from_yaml(cls, text: str, path: str, *, plan: TrainingPlan | None = None, gpu: GPU | None = None,
                  world_size: int = 1, base_text: str | None = None, deepspeed_error: str | None = None,
                  deepspeed_stage: int | None = None) -> RuleContext:
        """A context straight from YAML text (and the base branch's text), without a plan."""
        raw, lines = yaml_mapping(text, path)
        base_raw = yaml_mapping(base_text, path)[0] if base_text is not None else None
        return cls(plan=plan, raw=raw, key_lines=lines, path=path, gpu=gpu, world_size=world_size,
                   base_raw=base_raw, deepspeed_error=deepspeed_error, deepspeed_stage=deepspeed_stage)

    def line(self, key: str) -> int | None:
        """1-based line of a top-level key, None if the key is absent."""
        return self.key_lines.get(key)

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
    def finetuning_type(self) -> str:
        return self.text("finetuning_type", "lora")  # finetuning_args.py default

    @property
    def stage(self) -> str:
        return self.text("stage", "sft")  # finetuning_args.py default

    @property
    def uses_deepspeed(self) -> bool:
        value = self.raw.get("deepspeed")
        return value not in (None, "", False)

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
        return 3 if _ZERO3_NAME.search(str(value)) else 0

    @cached_property
    def rejections(self) -> list[Rejection]:
        """Every combination LLaMA-Factory rejects in this config (estimator/llamafactory_rules.py)."""
        return llamafactory_rules.rejections(self.raw, self.zero_stage, self.world_size)

    def finding(self, rule: str, severity: Severity, message: str, key: str | None) -> Finding:
        return Finding(rule=rule, severity=severity, message=message,
                       line=self.line(key) if key is not None else None)


def rejection_findings(ctx: RuleContext, rule: str, severity: Severity) -> Iterator[Finding]:
    """The findings of one rule family of LLaMA-Factory's rejections: its message, our hint, the key's line."""
    for rejection in ctx.rejections:
        if rejection.rule == rule:
            yield ctx.finding(rule, severity, rejection.text, rejection.key)


def yaml_mapping(text: str, path: str) -> tuple[dict[str, Any], dict[str, int]]:
    """A YAML file's top-level mapping and the 1-based line of each top-level key."""
    try:
        raw = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise InputError(f"not valid YAML: {getattr(error, 'problem', None) or error}", file=path,
                         line=mark.line + 1 if mark is not None else None) from None
    if raw is None:
        return {}, {}
    if not isinstance(raw, dict) or not isinstance(root, yaml.MappingNode):
        raise InputError("a training config must be a mapping of keys", file=path, line=1)
    lines = {str(key.value): key.start_mark.line + 1 for key, _ in root.value}
    return {str(key): value for key, value in raw.items()}, lines


@cache
def rule_modules() -> tuple[ModuleType, ...]:
    """Every rule module of this package, sorted by ID."""
    modules = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if not (hasattr(module, "ID") and hasattr(module, "SEVERITY") and hasattr(module, "check")):
            raise TypeError(f"rule module {module.__name__} needs ID, SEVERITY and check()")
        modules.append(module)
    return tuple(sorted(modules, key=lambda module: str(module.ID)))


def run_rules(ctx: RuleContext) -> list[Finding]:
    """All findings of all rules for one config, in line order (file-level findings first)."""
    findings: list[Finding] = []
    for module in rule_modules():
        check = cast(RuleCheck, module.check)
        findings.extend(check(ctx))
    return sorted(findings, key=lambda finding: (finding.line or 0, finding.rule))


def rule_docs() -> list[tuple[str, str, str]]:
    """(ID, default severity, one-line documentation) of every rule, for docs/rules.md and --help."""
    return [(str(module.ID), str(module.SEVERITY), (module.__doc__ or "").strip().splitlines()[0])
            for module in rule_modules()]
