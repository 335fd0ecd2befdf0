"""The team's policy, `.github/vram-check.yml`: which files are training configs, the GPU pools, the
default pool, the headroom that marks "tight", and which verdict fails the check.

The file is validated by a pydantic model; every error names the policy file and the line of the
offending key. Without a policy file the defaults apply (and `Policy.notes` says so). A training YAML
may name its own target in a comment: `# vram-check: pool=dev gpus=2` (see `parse_target_comment`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from estimator.errors import InputError, did_you_mean
from estimator.source import KeyPath, YamlDocument, describe, parse_yaml
from estimator.versions import (
    DEFAULT_TRANSFORMERS,
    LATEST_RELEASE,
    Versions,
    parse_llamafactory_version,
    parse_transformers_major,
)
from rules.gpus import GPU, custom_gpu, match_gpu
from rules.policy import globs
from rules.policy.models import LocalModel, config_path, read_models
from rules.policy.target import MAX_GPUS_PER_NODE, MAX_NODES, Target
from rules.sources import FileSource

POLICY_PATH = ".github/vram-check.yml"
DEFAULT_PATHS = ("**/*.yaml", "**/*.yml")
DEFAULT_POOL = "default"
DEFAULT_GPU = "A100-80GB"
DEFAULT_GPUS_PER_NODE = 8
HEADROOM_MAX = 0.5
MAX_POOLS = 64
MAX_POOL_NAME_CHARS = 64

FailOnWord = Literal["no-fit", "tight", "unknown", "never"]
FAIL_ON_WORDS: tuple[FailOnWord, ...] = ("no-fit", "tight", "unknown", "never")


def failing_verdicts(words: str | Sequence[str]) -> frozenset[str]:
    """The verdicts that fail the check for a `fail_on` value: no-fit always fails, and each word listed
    adds its verdict (`tight`, `unknown`); `never` alone fails none. Configs with errors fail regardless."""
    listed = [words] if isinstance(words, str) else list(words)
    unknown = [word for word in listed if word not in FAIL_ON_WORDS]
    if unknown:
        raise ValueError(f"fail_on takes {', '.join(FAIL_ON_WORDS)} (or a list of them), got {describe(unknown[0])}")
    if "never" in listed:
        if len(listed) > 1:
            raise ValueError("fail_on: never cannot be combined with other verdicts")
        return frozenset()
    return frozenset({"no-fit", *listed})


class PoolSpec(BaseModel):
    """One pool as written in the policy file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_POOL_NAME_CHARS)
    gpu: str | None = None
    memory_gib: float | None = None
    per_node: int = 1
    nodes: int = 1


class PolicySpec(BaseModel):
    """The policy file as written (see DESIGN.md); semantic checks happen in `load_policy`."""

    model_config = ConfigDict(extra="forbid")

    paths: list[str] | str | None = None  # one glob may be written without brackets
    pools: list[PoolSpec] | None = Field(default=None, max_length=MAX_POOLS)
    default_pool: str | None = Field(default=None, max_length=MAX_POOL_NAME_CHARS)
    headroom: float = 0.10
    fail_on: FailOnWord | list[FailOnWord] = "no-fit"
    fail_above: float | None = None
    models: dict[str, str] | None = None  # model_name_or_path → config.json (or folder) in the repository
    llamafactory: str | float = LATEST_RELEASE  # the LLaMA-Factory version the configs run on (0.9.5 or main)
    transformers: str | int = DEFAULT_TRANSFORMERS  # its transformers major (MoE experts: 4 vs 5)
    launchers: dict[str, str] | None = None  # path glob → accelerate config the matching configs launch with


@dataclass(frozen=True)
class Pool:
    """A declared GPU pool: `per_node` GPUs of one kind on each of `nodes` nodes."""

    name: str
    gpu: GPU
    per_node: int
    nodes: int = 1
    line: int | None = None

    @property
    def gpus(self) -> int:
        return self.per_node * self.nodes


@dataclass(frozen=True)
class Policy:
    """The validated policy; `notes` carries what a report should mention (defaults, guesses)."""

    paths: tuple[str, ...]
    pools: tuple[Pool, ...]
    default_pool: str
    headroom: float
    fail_on: frozenset[str]  # the target-pool verdicts that fail the check (see `failing_verdicts`)
    fail_above: float | None
    path: str
    from_file: bool
    notes: tuple[str, ...] = field(default=())
    models: tuple[LocalModel, ...] = ()  # the `models:` map (rules/policy/models.py)

    def local_model(self, model_id: str) -> LocalModel | None:
        """The `models:` entry for a model_name_or_path (matched case-insensitively, as Hub ids are), if any."""
        wanted = model_id.strip().rstrip("/").lower()
        return next((entry for entry in self.models if entry.model_id.lower() == wanted), None)

    versions: Versions = field(default_factory=Versions)
    launchers: tuple[tuple[str, str], ...] = ()  # (glob, accelerate config path), first match wins

    def launcher_for(self, path: str) -> str | None:
        """The accelerate config the policy names for a config path (its first matching glob)."""
        for pattern, launcher in self.launchers:
            if globs.matches((pattern,), path):
                return launcher
        return None

    @property
    def only_training_configs(self) -> bool:
        """True for the default globs, which match every YAML: callers keep those that
        `looks_like_training_config`."""
        return not self.from_file or self.paths == DEFAULT_PATHS

    def pool(self, name: str) -> Pool:
        """The pool called `name`; InputError with a did-you-mean when there is none."""
        for pool in self.pools:
            if pool.name == name:
                return pool
        names = [pool.name for pool in self.pools]
        raise InputError(f"no pool named {describe(name)}{did_you_mean(name, names)}; pools: {', '.join(names)}",
                         file=self.path)

    def matches(self, path: str) -> bool:
        """Whether `path` (relative to the repository root) is selected by the policy's globs."""
        return globs.matches(self.paths, path)

    def resolve_target(self, target: Target | None, file: str | None = None) -> Pool:
        """The pool a config is checked against: its `# vram-check:` target, else the default pool."""
        if target is None:
            return self.pool(self.default_pool)
        if target.gpu is not None:
            name = f"{target.gpu.name}×{target.gpus or 1}"
            return Pool(name=name, gpu=target.gpu, per_node=target.gpus or 1, nodes=target.nodes or 1)
        try:
            pool = self.pool(target.pool or self.default_pool)
        except InputError as error:
            raise InputError(error.message, file=file, line=target.line) from None
        per_node = target.gpus or pool.per_node
        nodes = target.nodes or pool.nodes
        if per_node > pool.per_node or nodes > pool.nodes:
            raise InputError(
                f"pool '{pool.name}' has {pool.per_node} GPU(s) per node on {pool.nodes} node(s); "
                f"the config asks for gpus={per_node} nodes={nodes}", file=file, line=target.line)
        return Pool(name=pool.name, gpu=pool.gpu, per_node=per_node, nodes=nodes, line=pool.line)


def looks_like_training_config(raw: Mapping[str, Any] | None) -> bool:
    """A LLaMA-Factory training YAML has `model_name_or_path` and one of stage/finetuning_type/do_train."""
    if not isinstance(raw, Mapping) or "model_name_or_path" not in raw:
        return False
    return any(key in raw for key in ("stage", "finetuning_type", "do_train"))


def default_policy(path: str = POLICY_PATH) -> Policy:
    """The policy used when the repository has none."""
    gpu = match_gpu(DEFAULT_GPU).gpu
    note = (f"no {path}: checking every *.yaml / *.yml that looks like a LLaMA-Factory training config "
            f"against one pool '{DEFAULT_POOL}' of {DEFAULT_GPUS_PER_NODE}×{gpu.name}; "
            "add a policy file to declare your GPUs")
    return Policy(paths=DEFAULT_PATHS, pools=(Pool(DEFAULT_POOL, gpu, DEFAULT_GPUS_PER_NODE),),
                  default_pool=DEFAULT_POOL, headroom=0.10, fail_on=frozenset({"no-fit"}), fail_above=None,
                  path=path, from_file=False, notes=(note,))


def read_policy(files: FileSource, path: str = POLICY_PATH) -> Policy:
    """The policy file of a repository version (working tree, git revision, a commit on GitHub); the
    defaults when it has none. InputError when the file is there but invalid."""
    try:
        text = files.read_text(path)
    except FileNotFoundError:
        return load_policy(None)
    return read_models(load_policy(text, path), files)


def load_policy(text: str | None, path: str = POLICY_PATH) -> Policy:
    """Parse and validate a policy file's text; `None` (no file) gives the defaults with a note."""
    if text is None:
        return default_policy(path)
    return policy_from_document(parse_yaml(text, path))


def policy_from_document(document: YamlDocument) -> Policy:
    """Validate an already-parsed policy file."""
    path = document.path
    if document.data is None:
        policy = default_policy(path)
        note = f"{path} is empty: using the defaults"
        return replace(policy, from_file=True, notes=(note,))
    data = document.mapping("the policy to be a mapping of keys (paths, pools, default_pool, headroom, ...)")
    lines = document.lines
    try:
        spec = PolicySpec.model_validate(data)
    except ValidationError as error:
        raise _policy_error(error, lines, path) from None
    return _build_policy(spec, lines, path)


def _build_policy(spec: PolicySpec, lines: Mapping[KeyPath, int], path: str) -> Policy:
    notes: list[str] = []
    if spec.pools is None:
        defaults = default_policy(path)
        pools = list(defaults.pools)
        notes.append(f"{path} declares no pools: using '{DEFAULT_POOL}' "
                     f"({DEFAULT_GPUS_PER_NODE}×{pools[0].gpu.name})")
    elif not spec.pools:
        raise InputError("pools is empty: declare at least one pool", file=path, line=lines.get(("pools",)))
    else:
        pools = [_build_pool(index, pool, lines, path, notes) for index, pool in enumerate(spec.pools)]
    names = [pool.name for pool in pools]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise InputError(f"two pools are named '{name}'", file=path, line=lines.get(("pools", index)))
    default_pool = spec.default_pool if spec.default_pool is not None else pools[0].name
    if default_pool not in names:
        raise InputError(f"default_pool '{default_pool}' is not a pool{did_you_mean(default_pool, names)}; "
                         f"pools: {', '.join(names)}", file=path, line=lines.get(("default_pool",)))
    if not 0 <= spec.headroom <= HEADROOM_MAX:
        raise InputError(f"headroom must be between 0 and {HEADROOM_MAX} (a fraction of usable memory, "
                         f"0.10 = the top 10% is 'tight'), got {spec.headroom}",
                         file=path, line=lines.get(("headroom",)))
    if spec.fail_above is not None and not 0 < spec.fail_above <= 1:
        raise InputError(f"fail_above must be a fraction of usable memory in (0, 1], e.g. 0.95, "
                         f"got {spec.fail_above}", file=path, line=lines.get(("fail_above",)))
    written = [spec.paths] if isinstance(spec.paths, str) else spec.paths
    paths = tuple(written) if written is not None else DEFAULT_PATHS
    if not paths:
        raise InputError("paths is empty: give at least one glob, e.g. 'configs/**/*.yaml'",
                         file=path, line=lines.get(("paths",)))
    for index, pattern in enumerate(paths):
        if not pattern.strip("!").strip():
            raise InputError("empty glob in paths", file=path, line=lines.get(("paths", index)))
    try:
        fail_on = failing_verdicts(spec.fail_on)
    except ValueError as error:
        raise InputError(str(error), file=path, line=lines.get(("fail_on",))) from None
    try:
        versions = Versions(llamafactory=parse_llamafactory_version(spec.llamafactory),
                            transformers=parse_transformers_major(spec.transformers))
    except ValueError as error:
        key = "llamafactory" if "llamafactory" in str(error) else "transformers"
        raise InputError(str(error), file=path, line=lines.get((key,))) from None
    launchers = []
    for pattern, launcher in (spec.launchers or {}).items():
        if not pattern.strip() or not launcher.strip():
            raise InputError("launchers maps a path glob to an accelerate config path; both must be non-empty",
                             file=path, line=lines.get(("launchers", pattern), lines.get(("launchers",))))
        launchers.append((pattern, launcher.strip()))
    return Policy(paths=paths, pools=tuple(pools), default_pool=default_pool, headroom=spec.headroom,
                  fail_on=fail_on, fail_above=spec.fail_above, path=path, from_file=True,
                  notes=tuple(notes), models=_build_models(spec.models or {}, lines, path),
                  versions=versions, launchers=tuple(launchers))


def _build_models(written: Mapping[str, str], lines: Mapping[KeyPath, int], path: str) -> tuple[LocalModel, ...]:
    """`models:` entries with their paths checked (inside the repository); the files are read later, from the
    policy's own version of the repository (read_policy)."""
    entries: list[LocalModel] = []
    seen: set[str] = set()
    for model_id, value in written.items():
        line = lines.get(("models", model_id), lines.get(("models",)))
        name = model_id.strip().rstrip("/")
        if not name:
            raise InputError("models: an empty model name", file=path, line=line)
        if name.lower() in seen:
            raise InputError(f"models: '{model_id}' is listed twice", file=path, line=line)
        seen.add(name.lower())
        try:
            entries.append(LocalModel(model_id=name, path=config_path(value), line=line))
        except ValueError as error:
            raise InputError(f"models: '{model_id}': {error}", file=path, line=line) from None
    return tuple(entries)


def _build_pool(index: int, spec: PoolSpec, lines: Mapping[KeyPath, int], path: str,
                notes: list[str]) -> Pool:
    def line_of(key: str) -> int | None:
        return lines.get(("pools", index, key), lines.get(("pools", index)))

    if spec.gpu is not None and spec.memory_gib is not None:
        raise InputError(f"pool '{spec.name}' gives both gpu and memory_gib: keep one",
                         file=path, line=line_of("memory_gib"))
    if spec.gpu is None and spec.memory_gib is None:
        raise InputError(f"pool '{spec.name}' needs gpu: (a catalog name such as A100-80GB) or memory_gib:",
                         file=path, line=line_of("name"))
    if spec.per_node < 1:
        raise InputError(f"pool '{spec.name}' has per_node: {describe(spec.per_node)}; a pool needs at least 1 GPU",
                         file=path, line=line_of("per_node"))
    if spec.nodes < 1:
        raise InputError(f"pool '{spec.name}' has nodes: {describe(spec.nodes)}; a pool needs at least 1 node",
                         file=path, line=line_of("nodes"))
    if spec.per_node > MAX_GPUS_PER_NODE:
        raise InputError(f"pool '{spec.name}' has per_node: {describe(spec.per_node)}; vram-check checks at most "
                         f"{MAX_GPUS_PER_NODE} GPUs per node", file=path, line=line_of("per_node"))
    if spec.nodes > MAX_NODES:
        raise InputError(f"pool '{spec.name}' has nodes: {describe(spec.nodes)}; vram-check checks at most "
                         f"{MAX_NODES} nodes", file=path, line=line_of("nodes"))
    try:
        if spec.gpu is not None:
            match = match_gpu(spec.gpu)
            gpu = match.gpu
            if match.note:
                notes.append(f"pool '{spec.name}': {match.note}")
        else:
            gpu = custom_gpu(float(spec.memory_gib or 0))
    except InputError as error:
        key = "gpu" if spec.gpu is not None else "memory_gib"
        raise InputError(f"pool '{spec.name}': {error.message}", file=path, line=line_of(key)) from None
    return Pool(name=spec.name, gpu=gpu, per_node=spec.per_node, nodes=spec.nodes, line=line_of("name"))


def _policy_error(error: ValidationError, lines: Mapping[KeyPath, int], path: str) -> InputError:
    """The first pydantic error as one sentence at the line of the key it is about."""
    problems = error.errors()
    first = problems[0]
    loc = tuple(first["loc"])
    where = _loc_text(loc)
    if first["type"] == "extra_forbidden":
        allowed = list((PoolSpec if "pools" in loc[:1] and len(loc) > 2 else PolicySpec).model_fields)
        key = str(loc[-1])
        message = f"unknown key '{where}'{did_you_mean(key, allowed)}; allowed: {', '.join(allowed)}"
    elif first["type"] == "missing":
        message = f"'{where}' is required"
    else:
        message = f"'{where}': {first['msg']} (got {describe(first.get('input'))})"
    more = len(problems) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    line = None
    for depth in range(len(loc), 0, -1):
        line = lines.get(loc[:depth])
        if line is not None:
            break
    return InputError(message, file=path, line=line)


def _loc_text(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
