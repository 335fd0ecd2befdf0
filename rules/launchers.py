"""Which accelerate config a training YAML is launched with, read from the same version of the repository.

In order: the front's explicit choice (`estimate --launcher`), the YAML's `# vram-check: launcher=PATH`
comment, the policy's `launchers:` glob map, and finally the YAML's own header comment when it says how
LLaMA-Factory launches it (`accelerate launch --config_file PATH ...`, as LLaMA-Factory's examples do). A
named launcher that is missing is an error; one the YAML only mentions in a comment and that is not in the
repository makes the estimate "not modelled" (the file says FSDP, the estimator cannot read how).
Paths are repository-relative and never leave the repository.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, replace

from estimator.errors import InputError
from estimator.launcher import Launcher, parse_accelerate_config
from estimator.source import YamlDocument, describe
from rules.sources import ParsedFiles

_CONFIG_FILE = re.compile(r"--config_file[=\s]+(?P<path>[^\s\\#'\"]+)")


@dataclass(frozen=True)
class LauncherChoice:
    path: str
    origin: str  # "--launcher", "the config's launcher= comment (line N)", "the policy", "the config's comment"
    named: bool  # named explicitly (a missing file is an error) rather than read from a comment


def _contained(path: str, file: str, line: int | None) -> str:
    clean = posixpath.normpath(path.strip())
    if not path.strip() or posixpath.isabs(clean) or clean == ".." or clean.startswith("../") or "\\" in path:
        raise InputError(f"launcher '{describe(path)}' must be a path inside the repository", file=file, line=line)
    return clean


def comment_launcher(document: YamlDocument) -> tuple[str, int] | None:
    """`accelerate launch --config_file PATH` in the YAML's comments (the command may span lines)."""
    lines = document.text.splitlines()
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped.startswith("#"):
            continue
        match = _CONFIG_FILE.search(stripped)
        if match and any("accelerate" in lines[i] for i in range(max(0, number - 4), number)):
            return match.group("path"), number
    return None


def choose(document: YamlDocument, explicit: str | None, comment: str | None, comment_line: int | None,
           policy_launcher: str | None) -> LauncherChoice | None:
    path = document.path
    if explicit:
        return LauncherChoice(_contained(explicit, path, None), "--launcher", True)
    if comment:
        return LauncherChoice(_contained(comment, path, comment_line),
                              f"the config's '# vram-check: launcher=' comment (line {comment_line})", True)
    if policy_launcher:
        return LauncherChoice(_contained(policy_launcher, path, None), "the policy's launchers map", True)
    found = comment_launcher(document)
    if found is not None:
        try:
            where = _contained(found[0], path, found[1])
        except InputError:
            return None
        return LauncherChoice(where, f"the config's own launch comment (line {found[1]})", False)
    return None


def resolve_launcher(document: YamlDocument, files: ParsedFiles, choice: LauncherChoice | None) -> Launcher | None:
    """The launcher, parsed; InputError for a named one that is missing or invalid."""
    if choice is None:
        return None
    try:
        launcher_document = files.document(choice.path)
    except FileNotFoundError:
        if choice.named:
            raise InputError(f"launcher '{choice.path}' ({choice.origin}) not found in the repository",
                             file=document.path) from None
        return Launcher(path=choice.path, distributed_type="UNREAD", origin=choice.origin,
                        problem=f"launched with the accelerate config '{choice.path}' ({choice.origin}), which is "
                                "not in this repository: name it with '# vram-check: launcher=PATH'")
    try:
        launcher = parse_accelerate_config(launcher_document.data, choice.path, files.read_text)
    except InputError as error:
        raise InputError(f"launcher '{choice.path}' ({choice.origin}): {error.message}", file=document.path) from None
    return replace(launcher, origin=choice.origin)
