"""Which files of a change or a tree are training configs: the policy's globs, and with the default globs
(every YAML) only the files that look like LLaMA-Factory training configs."""

from __future__ import annotations

from collections.abc import Iterable

from estimator.errors import InputError
from rules.policy import Policy, looks_like_training_config
from rules.sources import ParsedFiles


def select_configs(paths: Iterable[str], policy: Policy, files: ParsedFiles) -> list[str]:
    """The paths the policy selects, in order (files are read through `files`, so the check reuses the parse)."""
    return [path for path in paths
            if policy.matches(path) and (not policy.only_training_configs or is_training_config(files, path))]


def is_training_config(files: ParsedFiles, path: str) -> bool:
    """Whether a YAML is a LLaMA-Factory training config. A file that cannot be read counts as one, and so does
    one that does not parse but mentions model_name_or_path: a broken config among configs is reported, not
    skipped (while a broken workflow file or the like is none of vram-check's business)."""
    try:
        text = files.read_text(path)
    except InputError:
        return True
    except FileNotFoundError:
        return False
    try:
        data = files.document(path).data
    except InputError:
        return "model_name_or_path" in text
    return looks_like_training_config(data)
