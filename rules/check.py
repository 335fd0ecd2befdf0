"""The pipeline every front shares: configs → plan + model → estimate per pool → rules → suggestions → report.

Files come from a FileSource (the working tree for the CLI and the Action, the GitHub API at the pull
request's head for the App). A config that fails is reported with its error; the others are still checked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from estimator.errors import InputError
from estimator.hub import ModelResolver
from estimator.memory import World, estimate
from estimator.model import ModelSpec
from estimator.plan import MAX_CONFIG_BYTES, TrainingPlan, parse_plan
from estimator.suggest import suggest
from estimator.units import gib
from rules.checks import RuleContext, run_rules
from rules.policy import Policy, Pool, Target, parse_target_comment
from rules.report import ConfigReport, Finding, Parameters, RunReport, Suggestion, Verdict, YamlEdit
from rules.verdicts import classify, verdict_for, world_for

log = logging.getLogger(__name__)

MEMORY_KEYS = ("model_name_or_path", "stage", "finetuning_type", "per_device_train_batch_size",
               "gradient_accumulation_steps", "cutoff_len", "bf16", "fp16", "pure_bf16", "deepspeed",
               "disable_gradient_checkpointing", "flash_attn", "enable_liger_kernel", "optim", "quantization_bit",
               "lora_rank", "lora_target", "packing", "pref_loss", "ref_model", "use_galore", "use_badam")


class FileSource(Protocol):
    def read_text(self, path: str) -> str:
        """Text of a repository-relative path; FileNotFoundError when absent."""
        ...


@dataclass(frozen=True)
class WorkingTree:
    """Files under a local repository root; paths never leave it."""

    root: Path

    def read_text(self, path: str) -> str:
        root = self.root.resolve()
        target = (root / path).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            raise FileNotFoundError(path)
        with target.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise InputError(f"file is larger than {MAX_CONFIG_BYTES // 1000} KB; not a training config", file=path)
        return data.decode("utf-8", errors="replace")


def check_configs(paths: Iterable[str], files: FileSource, policy: Policy, resolver: ModelResolver,
                  base_files: FileSource | None = None, target: Target | None = None,
                  model_override: str | None = None, sizing: bool = True) -> RunReport:
    """Check each config; `target` (a slash command's what-if or the CLI's --gpu/--gpus) overrides the
    configs' own `# vram-check:` comments."""
    reports = tuple(check_config(path, files, policy, resolver, base_files=base_files, target=target,
                                 model_override=model_override, sizing=sizing) for path in paths)
    return RunReport(configs=reports, notes=tuple(policy.notes))


def check_config(path: str, files: FileSource, policy: Policy, resolver: ModelResolver, *,
                 base_files: FileSource | None = None, target: Target | None = None,
                 model_override: str | None = None, sizing: bool = True) -> ConfigReport:
    try:
        text = files.read_text(path)
    except FileNotFoundError:
        return ConfigReport(path=path, error=f"{path}: file not found")
    except InputError as error:
        return ConfigReport(path=path, error=str(error))
    pool: Pool | None = None
    plan: TrainingPlan | None = None
    findings: list[Finding] = []
    try:
        pool = policy.resolve_target(target or parse_target_comment(text, path), path)
        plan = parse_plan(text, path, files.read_text, pool.gpus)
        model = _resolve_model(resolver, model_override, plan, path)
    except InputError as error:
        findings = _rule_findings(text, path, plan, pool, base_files, error)
        return ConfigReport(path=path, plan=plan.to_json() if plan else {}, findings=tuple(findings),
                            error=str(error), model_id=plan.model_name_or_path if plan else None)
    findings = _rule_findings(text, path, plan, pool, base_files, None)
    world = World(gpus_per_node=pool.per_node, nodes=pool.nodes)
    result = estimate(model, plan, world)
    verdicts = [verdict_for(pool.name, pool.gpu, pool.per_node, pool.nodes, model, plan, policy.headroom,
                            sizing=sizing, result=result)]
    for other in policy.pools:
        if other.name != pool.name:
            verdicts.append(verdict_for(other.name, other.gpu, other.per_node, other.nodes, model, plan,
                                        policy.headroom, sizing=sizing))
    suggestions: list[Suggestion] = []
    if verdicts[0].verdict != "fit":
        suggestions = _suggestions(text, path, files, plan, model, world, pool, policy, verdicts)
    delta, changes = _base_delta(path, base_files, policy, resolver, pool, result.peak_bytes, plan, model_override)
    is_new = base_files is not None and not _exists(base_files, path)
    return ConfigReport(
        path=path, model_id=model.model_id, parameters=Parameters(model.total_params, result.trainable_params),
        plan=plan.to_json() | {"target": {"pool": pool.name, "gpu": pool.gpu.name, "gpus_per_node": pool.per_node,
                                          "nodes": pool.nodes}},
        estimate=result, verdicts=tuple(verdicts), suggestions=tuple(suggestions), findings=tuple(findings),
        base_delta=delta, base_changes=changes, is_new=is_new,
    )


def _resolve_model(resolver: ModelResolver, override: str | None, plan: TrainingPlan, path: str) -> ModelSpec:
    """The model, with errors that name the config and its model_name_or_path line."""
    try:
        return resolver.resolve(override or plan.model_name_or_path)
    except InputError as error:
        if override is not None or error.file is not None:
            raise
        raise type(error)(error.message, file=path, key="model_name_or_path",
                          line=plan.line_of("model_name_or_path")) from None


def _rule_findings(text: str, path: str, plan: TrainingPlan | None, pool: Pool | None,
                   base_files: FileSource | None, error: InputError | None) -> list[Finding]:
    base_text = None
    if base_files is not None:
        try:
            base_text = base_files.read_text(path)
        except (FileNotFoundError, InputError):
            base_text = None
    deepspeed_error = error.message if error is not None and error.key == "deepspeed" else None
    try:
        ctx = RuleContext.from_yaml(text, path, plan=plan, gpu=pool.gpu if pool else None,
                                    world_size=pool.gpus if pool else 1, base_text=base_text,
                                    deepspeed_error=deepspeed_error)
    except InputError:
        return []  # the YAML itself is broken: the error says so
    findings = run_rules(ctx)
    if error is not None:  # a rule repeating the error that stopped the estimate adds nothing
        findings = [f for f in findings if f.message.split(". ")[0] not in error.message]
    return findings


def _suggestions(text: str, path: str, files: FileSource, plan: TrainingPlan, model: ModelSpec, world: World,
                 pool: Pool, policy: Policy, verdicts: list[Verdict]) -> list[Suggestion]:
    found = [
        Suggestion(changes=s.changes, peak_bytes=s.peak_bytes, verdict="fit" if s.fits else "tight", why=s.why,
                   cost=s.cost, edits=tuple(YamlEdit(path, e.line, e.old, e.new) for e in s.edits))
        for s in suggest(text, path, plan, model, world, pool.gpu.usable_bytes, policy.headroom, files.read_text)
    ]
    primary = verdicts[0]
    if primary.min_gpus is not None and primary.min_gpus > world.world_size:
        more = world_for(primary.min_gpus, pool.per_node)
        peak = estimate(model, plan, more).peak_bytes
        found.append(Suggestion(
            changes={"gpus": primary.min_gpus}, peak_bytes=peak,
            verdict=classify(peak, pool.gpu.usable_bytes, policy.headroom),
            why=f"{primary.min_gpus} GPUs of pool '{pool.name}' instead of {world.world_size}: ZeRO-3 shards more",
            cost=f"{primary.min_gpus - world.world_size} more GPUs; a larger effective batch size unless "
                 "gradient_accumulation_steps drops",
            edits=(YamlEdit(path, None, None, _target_comment(pool.name, min(primary.min_gpus, pool.per_node))),)))
    for other in verdicts[1:]:
        if other.verdict == "fit":
            found.append(Suggestion(
                changes={"pool": other.pool}, peak_bytes=other.peak_bytes, verdict="fit",
                why=f"pool '{other.pool}' ({other.gpus}× {other.gpu}, {gib(other.capacity_bytes)} usable each)",
                cost="runs on other hardware", edits=(YamlEdit(path, None, None, f"# vram-check: pool={other.pool}"),)))
            break
    return found


def _exists(files: FileSource, path: str) -> bool:
    try:
        files.read_text(path)
    except (FileNotFoundError, InputError):
        return False
    return True


def _target_comment(pool: str, gpus: int) -> str:
    return f"# vram-check: pool={pool} gpus={gpus}"


def _base_delta(path: str, base_files: FileSource | None, policy: Policy, resolver: ModelResolver, pool: Pool,
                peak: int, plan: TrainingPlan, model_override: str | None) -> tuple[int | None, tuple[str, ...]]:
    """Peak change against the base branch's version of the same file, and which memory keys changed."""
    if base_files is None:
        return None, ()
    try:
        base_text = base_files.read_text(path)
        base_plan = parse_plan(base_text, path, base_files.read_text, pool.gpus)
        base_model = resolver.resolve(model_override or base_plan.model_name_or_path)
    except (FileNotFoundError, InputError):
        return None, ()
    base_peak = estimate(base_model, base_plan, World(pool.per_node, pool.nodes)).peak_bytes
    changes = []
    for key in MEMORY_KEYS:
        old, new = base_plan.raw.get(key), plan.raw.get(key)
        if old != new:
            changes.append(f"{key} {_show(old)} → {_show(new)}")
    return peak - base_peak, tuple(changes)


def _show(value: object) -> str:
    return "(unset)" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
