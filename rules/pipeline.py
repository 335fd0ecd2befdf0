"""The pipeline every front shares: config → (plan, model) → estimate per pool → rules → suggestions → report.

The fronts (CLI, Action, App) only choose the sources and the sinks: they hand `check_configs` the files of
the version under review (and of the base version, for pull requests) as `ParsedFiles`, which reads and
parses each file once, and render the `RunReport` it returns. A config that fails is reported with its
error; the others are still checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from estimator import llamafactory_rules
from estimator.errors import InputError
from estimator.hub import Resolver
from estimator.launcher import Launcher
from estimator.memory import World, check_model, estimate
from estimator.model import ModelSpec, model_spec_from_config
from estimator.plan import TrainingPlan, plan_from_document
from estimator.source import YamlDocument, clip, describe
from estimator.suggest import suggest
from estimator.units import gib
from estimator.versions import LATEST_RELEASE
from rules.checks import RuleContext, run_rules
from rules.launchers import choose, resolve_launcher
from rules.policy import Policy, Pool, Target, parse_target_comment
from rules.report import ConfigReport, Finding, Parameters, RunReport, Suggestion, Verdict, YamlEdit
from rules.sources import ParsedFiles
from rules.verdicts import classify, verdict_for, world_for

MEMORY_KEYS = ("model_name_or_path", "stage", "finetuning_type", "per_device_train_batch_size",
               "gradient_accumulation_steps", "cutoff_len", "bf16", "fp16", "pure_bf16", "deepspeed",
               "disable_gradient_checkpointing", "flash_attn", "enable_liger_kernel", "optim", "quantization_bit",
               "lora_rank", "lora_target", "packing", "pref_loss", "ref_model", "use_galore", "use_badam")


@dataclass(frozen=True)
class CheckOptions:
    """What the front asks for beyond the policy."""

    target: Target | None = None  # a what-if (slash command, `estimate --gpu`): overrides the configs' comments
    model_override: str | None = None  # `estimate --model`: a local config.json or Hub id for the one config
    # `check --model ID=PATH` (and the Action's `model` input): these Hub ids from local files, before the
    # policy's `models:` map and the Hub
    model_files: Mapping[str, str] = field(default_factory=dict)
    sizing: bool = True  # compute the largest batch / cutoff_len that fit
    comparison_pools: bool = True  # also judge the policy's other pools (for comparison)
    launcher: str | None = None  # `--launcher`: the accelerate config the config is launched with


Progress = Callable[[int, int], None]  # (configs done, configs in all)


def check_configs(paths: Iterable[str], head: ParsedFiles, policy: Policy, resolver: Resolver,
                  base: ParsedFiles | None = None, options: CheckOptions | None = None,
                  progress: Progress | None = None) -> RunReport:
    """Check each config of `head`; `base` is the version the change is compared with (pull requests)."""
    options = options or CheckOptions()
    todo = list(paths)
    reports: list[ConfigReport] = []
    for path in todo:
        reports.append(check_config(path, head, policy, resolver, base, options))
        if progress is not None:
            progress(len(reports), len(todo))
    return RunReport(configs=tuple(reports), notes=tuple(policy.notes))


@dataclass(frozen=True)
class _Base:
    """The base version of a config: parsed, or absent (a new file), or present but broken."""

    document: YamlDocument | None
    exists: bool


def _base_version(base: ParsedFiles | None, path: str) -> _Base | None:
    if base is None:
        return None
    try:
        return _Base(base.document(path), True)
    except FileNotFoundError:
        return _Base(None, False)
    except InputError:
        return _Base(None, True)


def check_config(path: str, head: ParsedFiles, policy: Policy, resolver: Resolver, base: ParsedFiles | None = None,
                 options: CheckOptions | None = None) -> ConfigReport:
    options = options or CheckOptions()
    try:
        document = head.document(path)
    except FileNotFoundError:
        return ConfigReport(path=path, error=f"{path}: file not found")
    except InputError as error:
        return ConfigReport(path=path, error=str(error))
    base_version = _base_version(base, path)
    base_document = base_version.document if base_version else None
    pool: Pool | None = None
    plan: TrainingPlan | None = None
    try:
        comment = parse_target_comment(document.text, path)
        asked = options.target or comment
        pool = policy.resolve_target(asked, path)
        launcher = _launcher(document, head, policy, options, comment)
        pool = launch_pool(pool, asked, launcher, document, policy)
        plan = plan_from_document(document, head.read_text, pool.gpus, versions=policy.versions, launcher=launcher)
        model = _resolve_model(resolver, policy, options, plan, path)
        check_model(model, plan)
    except InputError as error:
        findings = _rule_findings(document, plan, pool, base_document, error, policy)
        return ConfigReport(path=path, plan=plan.to_json() if plan else {}, findings=tuple(findings),
                            error=str(error), model_id=plan.model_name_or_path if plan else None)
    findings = _rule_findings(document, plan, pool, base_document, None, policy, model.max_positions)
    world = World(gpus_per_node=pool.per_node, nodes=pool.nodes)
    result = estimate(model, plan, world)
    sizing = options.sizing and plan.task == "train"
    target = verdict_for(pool.name, pool.gpu, pool.per_node, pool.nodes, model, plan, policy.headroom,
                         sizing=sizing, result=result)
    compared = [other for other in policy.pools if options.comparison_pools and other.name != pool.name]
    refused = {other.name: _refused_at(document, plan, other.gpus, pool.gpus) for other in compared}
    others = tuple(verdict_for(other.name, other.gpu, other.per_node, other.nodes, model, plan, policy.headroom,
                               sizing=sizing)
                   for other in compared if not refused[other.name])
    findings += [Finding(rule="pool-refused", severity="info", line=None,
                         message=f"pool '{name}' is left out of the comparison: {why}")
                 for name, why in refused.items() if why]
    suggestions: list[Suggestion] = []
    # none for "unknown" (the estimate does not cover the setup), and the changes are training changes
    if target.verdict in ("tight", "no-fit") and plan.task == "train":
        suggestions = _suggestions(document, head, plan, model, world, pool, policy, target, others)
    delta: int | None = None
    changes: tuple[str, ...] = ()
    if base is not None and base_document is not None and result.modelled:
        delta, changes = _base_delta(base_document, base, resolver, policy, options, pool, result.peak_bytes,
                                     plan)
    return ConfigReport(
        path=path, model_id=model.model_id, model_source=model.source,
        parameters=Parameters(model.total_params, result.trainable_params),
        plan=plan.to_json() | {"target": {"pool": pool.name, "gpu": pool.gpu.name, "gpus_per_node": pool.per_node,
                                          "nodes": pool.nodes}},
        estimate=result, target=target, others=others, suggestions=tuple(suggestions), findings=tuple(findings),
        base_delta=delta, base_changes=changes, is_new=base_version is not None and not base_version.exists,
    )


def find_model(resolver: Resolver, policy: Policy, options: CheckOptions, model_id: str) -> ModelSpec:
    """The architecture of `model_id` (a model_name_or_path): `--model ID=PATH` first, then the policy's `models:`
    map (read from the repository at the policy's version), then the resolver (bundled catalog, Hub cache,
    Hub; local paths on this machine)."""
    wanted = model_id.strip().rstrip("/").lower()
    for listed, local in options.model_files.items():
        if listed.strip().rstrip("/").lower() == wanted:
            try:
                return replace(resolver.resolve(local), model_id=model_id, source=f"{local} (--model)")
            except InputError as error:
                raise type(error)(f"--model {listed}={local}: {error.message}") from None
    entry = policy.local_model(model_id)
    if entry is not None:
        if entry.config is None:
            raise InputError(f"models: '{entry.model_id}': {entry.error or 'not read'}", file=policy.path,
                             line=entry.line)
        try:
            return replace(model_spec_from_config(entry.config, model_id),
                           source=f"{entry.path} (the policy's models:)")
        except InputError as error:
            raise type(error)(f"models: '{entry.model_id}' ({entry.path}): {error.message}", file=policy.path,
                              line=entry.line) from None
    return resolver.resolve(model_id)


def _resolve_model(resolver: Resolver, policy: Policy, options: CheckOptions, plan: TrainingPlan,
                   path: str) -> ModelSpec:
    """The model, with errors that name the config and its model_name_or_path line."""
    override = options.model_override
    try:
        return resolver.resolve(override) if override else find_model(resolver, policy, options,
                                                                       plan.model_name_or_path)
    except InputError as error:
        if override is not None or error.file is not None:
            raise
        raise type(error)(error.message, file=path, key="model_name_or_path",
                          line=plan.line_of("model_name_or_path")) from None


def _refused_at(document: YamlDocument, plan: TrainingPlan, gpus: int, target_gpus: int) -> str | None:
    """Why, when LLaMA-Factory refuses this config on a pool of `gpus` GPUs but not on the target's
    (GaLore/APOLLO layerwise on several GPUs): no comparison verdict for a setup that cannot start."""
    raw = document.mapping()
    version = plan.versions.llamafactory
    there = llamafactory_rules.rejections(raw, plan.zero_stage, gpus, version=version)
    if not there or llamafactory_rules.rejections(raw, plan.zero_stage, target_gpus, version=version):
        return None
    return f"LLaMA-Factory refuses this config on {gpus} GPUs ({there[0].message})"


def _launcher(document: YamlDocument, files: ParsedFiles, policy: Policy, options: CheckOptions,
              comment: Target | None) -> Launcher | None:
    choice = choose(document, options.launcher, comment.launcher if comment else None,
                    comment.line if comment else None, policy.launcher_for(document.path))
    return resolve_launcher(document, files, choice)


def launch_pool(pool: Pool, target: Target | None, launcher: Launcher | None, document: YamlDocument,
                policy: Policy) -> Pool:
    """The GPUs the run uses: the target's gpus= when given, else what the launcher starts (an accelerate
    config's num_processes × num_machines, USE_RAY's ray_num_workers), else the whole pool."""
    if target is not None and target.gpus is not None:
        return pool
    per_node = nodes = None
    origin = ""
    if launcher is not None and launcher.distributed_type == "NO":
        per_node, nodes, origin = 1, 1, f"{launcher.path} (distributed_type NO)"
    elif launcher is not None and launcher.num_processes is not None:
        per_node, nodes = launcher.processes_per_machine, launcher.num_machines or 1
        origin = f"{launcher.path} (num_processes {launcher.num_processes}, num_machines {nodes})"
    else:
        raw = document.data if isinstance(document.data, dict) else {}
        workers = raw.get("ray_num_workers")
        if isinstance(workers, int) and not isinstance(workers, bool) and workers > 1:
            per_node = min(workers, pool.per_node)
            nodes = -(-workers // per_node)
            origin = f"ray_num_workers {workers}"
    if per_node is None or nodes is None:
        return pool
    if per_node > pool.per_node or nodes > pool.nodes:
        raise InputError(f"{origin} asks for {per_node} GPU(s) per node on {nodes} node(s); pool '{pool.name}' has "
                         f"{pool.per_node} per node on {pool.nodes} node(s)", file=document.path)
    return Pool(name=pool.name, gpu=pool.gpu, per_node=per_node, nodes=nodes, line=pool.line)


def _rule_findings(document: YamlDocument, plan: TrainingPlan | None, pool: Pool | None,
                   base_document: YamlDocument | None, error: InputError | None,
                   policy: Policy | None = None, max_positions: int | None = None) -> list[Finding]:
    deepspeed_error = error.message if error is not None and error.key == "deepspeed" else None
    version = policy.versions.llamafactory if policy is not None else LATEST_RELEASE
    ctx = RuleContext(document=document, plan=plan, gpu=pool.gpu if pool else None,
                      world_size=pool.gpus if pool else 1, base=base_document, deepspeed_error=deepspeed_error,
                      llamafactory_version=version, max_positions=max_positions)
    findings = run_rules(ctx)
    if error is not None:  # a rule repeating the error that stopped the estimate adds nothing
        findings = [f for f in findings if f.message.split(". ")[0] not in error.message]
    return findings


def _suggestions(document: YamlDocument, files: ParsedFiles, plan: TrainingPlan, model: ModelSpec, world: World,
                 pool: Pool, policy: Policy, target: Verdict, others: tuple[Verdict, ...]) -> list[Suggestion]:
    path = document.path
    found = [
        Suggestion(changes=s.changes, peak_bytes=s.peak_bytes, verdict=s.verdict, why=s.why,
                   cost=s.cost, edits=tuple(YamlEdit(path, e.line, e.old, e.new) for e in s.edits))
        for s in suggest(document.text, path, plan, model, world, pool.gpu.usable_bytes, policy.headroom,
                         files.read_text)
    ]
    if target.min_gpus is not None and target.min_gpus > world.world_size:
        more = estimate(model, plan, world_for(target.min_gpus, pool.per_node))
        found.append(Suggestion(
            changes={"gpus": target.min_gpus}, peak_bytes=more.peak_bytes,
            verdict=classify(more, pool.gpu.usable_bytes, policy.headroom),
            why=f"{target.min_gpus} GPUs of pool '{pool.name}' instead of {world.world_size}: ZeRO-3 shards more",
            cost=f"{target.min_gpus - world.world_size} more GPUs; a larger effective batch size unless "
                 "gradient_accumulation_steps drops",
            edits=(YamlEdit(path, None, None, _target_comment(pool.name, min(target.min_gpus, pool.per_node))),)))
    for other in others:
        if other.verdict == "fit":
            found.append(Suggestion(
                changes={"pool": other.pool}, peak_bytes=other.peak_bytes, verdict="fit",
                why=f"pool '{other.pool}' ({other.gpus}× {other.gpu}, {gib(other.capacity_bytes)} usable each)",
                cost="runs on other hardware", edits=(YamlEdit(path, None, None, f"# vram-check: pool={other.pool}"),)))
            break
    return found


def _target_comment(pool: str, gpus: int) -> str:
    return f"# vram-check: pool={pool} gpus={gpus}"


def _base_delta(base_document: YamlDocument, base: ParsedFiles, resolver: Resolver, policy: Policy,
                options: CheckOptions, pool: Pool, peak: int, plan: TrainingPlan) -> tuple[int | None, tuple[str, ...]]:
    """Peak change against the base version of the same file, and which memory keys changed."""
    try:
        base_plan = plan_from_document(base_document, base.read_text, pool.gpus, versions=plan.versions,
                                       launcher=plan.launcher)
        base_model = (resolver.resolve(options.model_override) if options.model_override
                      else find_model(resolver, policy, options, base_plan.model_name_or_path))
    except InputError:
        return None, ()
    base_estimate = estimate(base_model, base_plan, World(pool.per_node, pool.nodes))
    if not base_estimate.modelled:
        return None, ()
    base_peak = base_estimate.peak_bytes
    changes = []
    for key in MEMORY_KEYS:
        old, new = base_plan.raw.get(key), plan.raw.get(key)
        if old != new:
            changes.append(f"{key} {_show(old)} → {_show(new)}")
    return peak - base_peak, tuple(changes)


def _show(value: object) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return str(value).lower()
    return clip(str(value), 60) if isinstance(value, str | int | float) else describe(value)
