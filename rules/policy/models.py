"""The policy's `models:` map: model names answered by a config.json kept in the repository.

```yaml
models:
  meta-llama/Meta-Llama-3-8B-Instruct: models/llama3-8b-instruct/config.json
  Qwen/Qwen3-VL-4B-Instruct: models/qwen3-vl-4b          # a folder holding config.json
  /data/models/llama3-8b: models/llama3-8b-instruct      # a path on the training machines
```

A config whose `model_name_or_path` is one of these names (a Hub id, or a path that exists only on the
training machines) is estimated from that file, with no Hub lookup, so an air-gapped runner (or a private
model) needs no network. The files are read from the same version of the
repository as the policy (the base commit for pull requests, so a pull request cannot change the
architecture its own check uses), through the same bounded readers as every other input. Paths stay inside
the repository: absolute paths, `~` and `..` that leave it are refused. An entry that cannot be read is
reported on the configs that use that model; the other configs are unaffected.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from estimator.errors import InputError
from estimator.source import parse_json

if TYPE_CHECKING:
    from rules.policy.schema import Policy
    from rules.sources import FileSource

@dataclass(frozen=True)
class LocalModel:
    """One `models:` entry: a model name, the repository path of its config.json, and that file once read."""

    model_id: str  # as model_name_or_path writes it: a Hub id or a path on the training machines
    path: str  # repository-relative path of the config.json (a folder entry gets /config.json appended)
    line: int | None
    config: Mapping[str, Any] | None = None  # the parsed file; None until read, or when it could not be
    error: str | None = None  # why it could not be read


def config_path(written: str) -> str:
    """The config.json a `models:` value names: the file itself, or config.json inside a folder; ValueError
    when the path would leave the repository."""
    value = written.strip().replace("\\", "/")
    if not value:
        raise ValueError("an empty path")
    if value.startswith(("/", "~")) or (len(value) > 1 and value[1] == ":"):
        raise ValueError(f"'{written}' is outside the repository (an absolute path); give a path relative to "
                         "the repository root")
    normal = posixpath.normpath(value)
    if normal == ".." or normal.startswith("../"):
        raise ValueError(f"'{written}' leaves the repository ('..'); give a path inside it")
    return normal if normal.endswith(".json") else posixpath.join("" if normal == "." else normal, "config.json")


def read_models(policy: Policy, files: FileSource) -> Policy:
    """The policy with each `models:` entry's config.json read from `files` (the policy's own version)."""
    if not policy.models:
        return policy
    read = tuple(_read(entry, files) for entry in policy.models)
    return replace(policy, models=read)


def _read(entry: LocalModel, files: FileSource) -> LocalModel:
    if entry.config is not None or entry.error is not None:
        return entry
    try:
        text = files.read_text(entry.path)
    except FileNotFoundError:
        return replace(entry, error=f"'{entry.path}' not found in the repository at the policy's version")
    except InputError as error:
        return replace(entry, error=error.message)
    try:
        data = parse_json(text, entry.path)
    except InputError as error:
        return replace(entry, error=f"'{entry.path}': {error.message}")
    if not isinstance(data, dict):
        return replace(entry, error=f"'{entry.path}' is not a JSON object")
    return replace(entry, config=data)
