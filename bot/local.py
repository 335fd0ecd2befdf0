"""The local side of the CLI and the Action: repository root, policy file, config discovery, git base ref."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TextIO

from estimator.errors import InputError
from estimator.hub import ModelResolver, is_local_reference
from estimator.source import decode_bounded, read_bounded
from rules.discovery import select_configs
from rules.gpus import find_gpu
from rules.policy import POLICY_PATH, Policy, Target, load_policy, read_models, read_policy
from rules.policy.target import MAX_GPUS_PER_NODE, MAX_NODES
from rules.sources import ParsedFiles, WorkingTree

SKIP_DIRS = {".git", ".github", "node_modules", "__pycache__", ".venv", "venv"}


def git_root(start: Path) -> Path | None:
    try:
        out = subprocess.run(["git", "-C", str(start), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None


def repo_root_for(paths: list[Path]) -> Path:
    """The nearest folder holding .github/vram-check.yml is a config repository of its own (e.g.
    `examples/`); else the git top level, else the current directory."""
    start = paths[0] if paths else Path.cwd()
    root = git_root(start if start.is_dir() else start.parent)
    for path in paths:  # the nearest folder with a policy, up to the git top level
        folder = path.resolve() if path.is_dir() else path.resolve().parent
        for candidate in (folder, *folder.parents):
            if (candidate / POLICY_PATH).is_file():
                return candidate
            if root is not None and candidate == root.resolve():
                break
    if root is not None:
        return root.resolve()
    cwd = Path.cwd().resolve()
    if all(p.resolve().is_relative_to(cwd) for p in paths):
        return cwd
    first = paths[0].resolve()
    return first if first.is_dir() else first.parent


def read_local_policy(root: Path, explicit: str | None) -> Policy:
    """`--policy FILE`, else the repository's .github/vram-check.yml, else the defaults."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise InputError("policy file not found", file=explicit)
        return read_models(load_policy(read_bounded(path), str(path)), WorkingTree(root))
    return read_policy(WorkingTree(root))


def relative(path: Path, root: Path) -> str:
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise InputError(f"'{path}' is outside the repository root {root}")
    return resolved.relative_to(root).as_posix()


def discover(root: Path, policy: Policy, paths: list[Path], files: ParsedFiles) -> list[str]:
    """Training configs under `paths` (or the whole root): YAML files the policy's globs select; with the
    default globs, only those that look like LLaMA-Factory training configs (read through `files`, so the
    check that follows reuses the parse)."""
    for path in paths:
        if not path.exists():
            raise InputError("no such file or directory", file=str(path))
    found: list[str] = []
    walked: list[str] = []
    explicit_files = [p for p in paths if p.is_file()]
    for file in explicit_files:
        found.append(relative(file, root))
    for top in [p for p in paths if p.is_dir()] or ([] if explicit_files else [root]):
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
            for name in sorted(filenames):
                if not name.endswith((".yaml", ".yml")):
                    continue
                walked.append(relative(Path(dirpath) / name, root))
    return list(dict.fromkeys(found + select_configs(walked, policy, files)))


def changed_since(root: Path, base: str) -> set[str]:
    """Files changed between `base` and the working tree (git diff --name-only)."""
    verify = subprocess.run(["git", "-C", str(root), "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"],
                            capture_output=True, text=True, timeout=30, check=False)
    if verify.returncode != 0:
        shallow = subprocess.run(["git", "-C", str(root), "rev-parse", "--is-shallow-repository"],
                                 capture_output=True, text=True, timeout=30, check=False).stdout.strip()
        hint = (" This is a shallow clone: fetch the base first (git fetch --depth=1 origin <base>, or "
                "actions/checkout with fetch-depth: 0).") if shallow == "true" else ""
        raise InputError(f"base ref '{base}' not found in this repository.{hint}")
    diff = subprocess.run(["git", "-C", str(root), "diff", "--name-only", base, "--", "."], capture_output=True,
                          text=True, timeout=60, check=False)
    if diff.returncode != 0:
        raise InputError(f"git diff against '{base}' failed: {diff.stderr.strip()[:200]}")
    # new configs not yet added to git count as changed too
    untracked = subprocess.run(["git", "-C", str(root), "ls-files", "--others", "--exclude-standard", "--full-name",
                                "--", "."], capture_output=True, text=True, timeout=60, check=False)
    prefix = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-prefix"], capture_output=True, text=True,
                            timeout=10, check=False).stdout.strip()
    names = diff.stdout.splitlines() + untracked.stdout.splitlines()
    return {line[len(prefix):] if prefix and line.startswith(prefix) else line for line in names if line.strip()}


class GitRevision:
    """Files as they are at a git revision (the base branch for `check --base`): one `git show` per file."""

    def __init__(self, root: Path, ref: str) -> None:
        self.root = root
        self.ref = ref
        self._prefix: str | None = None

    def _path_prefix(self) -> str:
        """The repository root's path inside the git top level (a config repository may be a subfolder)."""
        if self._prefix is None:
            self._prefix = subprocess.run(["git", "-C", str(self.root), "rev-parse", "--show-prefix"],
                                          capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        return self._prefix

    def read_text(self, path: str) -> str:
        out = subprocess.run(["git", "-C", str(self.root), "show", f"{self.ref}:{self._path_prefix()}{path}"],
                             capture_output=True, timeout=30, check=False)
        if out.returncode != 0:
            raise FileNotFoundError(path)
        return decode_bounded(out.stdout, path)


def cli_target(policy: Policy, gpu: str | None, gpus: int | None, nodes: int | None) -> Target | None:
    """--gpu/--gpus/--nodes as a what-if target; None when none is given (the config's comment decides)."""
    if gpu is None and gpus is None and nodes is None:
        return None
    for name, value, top in (("--gpus", gpus, MAX_GPUS_PER_NODE), ("--nodes", nodes, MAX_NODES)):
        if value is not None and not 1 <= value <= top:
            raise InputError(f"{name} must be from 1 to {top}, got {value}")
    chosen = find_gpu(gpu) if gpu is not None else policy.pool(policy.default_pool).gpu
    return Target(gpu=chosen, gpus=gpus or 1, nodes=nodes or 1)


def resolver_from_env(env: Mapping[str, str] | None = None) -> ModelResolver:
    """The model resolver the CLI and the Action use: HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE from `env`
    (default: the process environment). huggingface_hub's own warnings and progress bars are silenced: the
    report says once, per config, what could not be fetched and why."""
    env = os.environ if env is None else env
    offline = env.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    return ModelResolver(endpoint=env.get("HF_ENDPOINT") or None, token=env.get("HF_TOKEN") or None, offline=offline,
                         quiet=True)


def model_files(written: Iterable[str]) -> dict[str, str]:
    """`--model ID=PATH` values (the Action's `model` input, one per line or space-separated) as {ID: PATH}; ID
    is a model_name_or_path as the configs write it (a Hub id, or a path on the training machines)."""
    found: dict[str, str] = {}
    for item in written:
        model_id, sep, path = item.strip().partition("=")
        model_id, path = model_id.strip(), path.strip()
        if not sep or not model_id or not path:
            raise InputError(f"--model takes ID=PATH (a Hub id and a local config.json or model folder), "
                             f"got '{item.strip()}'")
        if not Path(path).expanduser().exists():
            raise InputError(f"--model {item.strip()}: '{path}' not found")
        found[model_id] = path if is_local_reference(path) else f"./{path}"
    return found


def progress_line(stream: TextIO) -> Callable[[int, int], None] | None:
    """"checked 12/56 configs" rewritten in place on `stream` while a long check runs; nothing when the
    stream is not a terminal (CI logs, pipes) or the run is short."""
    if not stream.isatty():
        return None

    def show(done: int, total: int) -> None:
        if total < PROGRESS_MIN_CONFIGS:
            return
        stream.write(f"\rvram-check: checked {done}/{total} configs" + ("\n" if done == total else ""))
        stream.flush()

    return show


PROGRESS_MIN_CONFIGS = 5  # fewer configs finish before a progress line would help
