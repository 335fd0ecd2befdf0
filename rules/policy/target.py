"""The target a training YAML names for itself in a comment: `# vram-check: pool=dev gpus=2`.

Also `gpu=NAME` (a catalog GPU instead of a pool), `nodes=N` and `launcher=PATH` (the accelerate config the
file is launched with, e.g. examples/accelerate/fsdp_config.yaml). At most one such comment per file.

Numbers are bounded where they are read: gpus= at most MAX_GPUS_PER_NODE and nodes= at most MAX_NODES (a
pool= target must also stay within the pool, see Policy.resolve_target), so every search over GPU counts
(rules.verdicts) has a stated ceiling, whatever a pull request writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from estimator.errors import InputError, did_you_mean
from estimator.source import describe
from rules.gpus import GPU, match_gpu

MAX_GPUS_PER_NODE = 72  # the largest single NVLink domain sold as one system (GB200 NVL72)
MAX_NODES = 1024  # a stated ceiling; a larger cluster is checked per 1,024 nodes
_COUNT = re.compile(r"[0-9]{1,6}")  # ASCII digits only ("²".isdigit() is true, int("²") raises)


@dataclass(frozen=True)
class Target:
    """What a training YAML asks for in a `# vram-check:` comment; unset fields fall back to the pool."""

    pool: str | None = None
    gpu: GPU | None = None
    gpus: int | None = None  # GPUs per node
    nodes: int | None = None
    line: int | None = None
    launcher: str | None = None  # launcher=PATH: the accelerate config the config is launched with


_TARGET_COMMENT = re.compile(r"(?:^|\s)#\s*vram-check\s*:(?P<body>.*)$")
_TARGET_KEYS = ("pool", "gpu", "gpus", "nodes", "launcher")


def parse_target_comment(text: str, path: str | None = None) -> Target | None:
    """The `# vram-check: pool=dev gpus=2` (also gpu=NAME, nodes=N) comment of a training YAML, if any."""
    found: Target | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = _TARGET_COMMENT.search(line)
        if match is None:
            continue
        if found is not None:
            raise InputError(f"a second '# vram-check:' comment (the first is on line {found.line}); "
                             "keep one", file=path, line=number)
        found = _parse_target(match.group("body"), path, number)
    return found


def _parse_target(body: str, path: str | None, line: int) -> Target:
    values: dict[str, str] = {}
    for item in body.split():
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise InputError("'# vram-check:' expects key=value pairs (pool=, gpu=, gpus=, nodes=, launcher=), "
                             f"got {describe(item)}", file=path, line=line)
        if key not in _TARGET_KEYS:
            hint = did_you_mean(key, list(_TARGET_KEYS))
            raise InputError(f"unknown '# vram-check:' option {describe(key)}{hint}; "
                             f"options: {', '.join(_TARGET_KEYS)}", file=path, line=line)
        values[key] = value
    if not values:
        raise InputError("empty '# vram-check:' comment; e.g. '# vram-check: pool=dev gpus=2'",
                         file=path, line=line)
    if "pool" in values and "gpu" in values:
        raise InputError("'# vram-check:' names both pool= and gpu=; keep one", file=path, line=line)
    gpu = None
    if "gpu" in values:
        try:
            gpu = match_gpu(values["gpu"]).gpu
        except InputError as error:
            raise InputError(error.message, file=path, line=line) from None
    return Target(pool=values.get("pool"), gpu=gpu, gpus=_count(values, "gpus", path, line),
                  nodes=_count(values, "nodes", path, line), line=line, launcher=values.get("launcher"))


def _count(values: dict[str, str], key: str, path: str | None, line: int) -> int | None:
    if key not in values:
        return None
    text = values[key]
    top = MAX_GPUS_PER_NODE if key == "gpus" else MAX_NODES
    if not _COUNT.fullmatch(text) or not 1 <= int(text) <= top:
        raise InputError(f"'# vram-check:' {key}= must be a whole number from 1 to {top}, got {describe(text)}",
                         file=path, line=line)
    return int(text)
