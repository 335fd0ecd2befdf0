"""Where a check reads files from, and the layer that reads and parses each of them once.

A `FileSource` is a repository at one version: the working tree (CLI, Action), a git revision (`--base`),
or a commit through the GitHub API (the App). `ParsedFiles` sits on top of one and remembers every read
and every YAML parse, so that discovery, the plan, the rules, the base comparison and the suggestions of
a run share one read and one parse of each file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from estimator.errors import InputError
from estimator.source import YamlDocument, parse_yaml, read_bounded


class FileSource(Protocol):
    def read_text(self, path: str) -> str:
        """Text of a repository-relative path, bounded in size; FileNotFoundError when absent,
        InputError when it cannot be used (too large, not served)."""
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
        return read_bounded(target, name=path)


class ParsedFiles:
    """A FileSource whose reads and YAML parses are each done once (failures are remembered too)."""

    def __init__(self, source: FileSource) -> None:
        self.source = source
        self._texts: dict[str, str | Exception] = {}
        self._documents: dict[str, YamlDocument | Exception] = {}

    def read_text(self, path: str) -> str:
        if path not in self._texts:
            try:
                self._texts[path] = self.source.read_text(path)
            except (FileNotFoundError, InputError) as error:
                self._texts[path] = error
        found = self._texts[path]
        if isinstance(found, Exception):
            raise found
        return found

    def document(self, path: str) -> YamlDocument:
        """The file parsed as YAML; FileNotFoundError / InputError as for read_text or the parse."""
        if path not in self._documents:
            try:
                self._documents[path] = parse_yaml(self.read_text(path), path)
            except (FileNotFoundError, InputError) as error:
                self._documents[path] = error
        found = self._documents[path]
        if isinstance(found, Exception):
            raise found
        return found

    def exists(self, path: str) -> bool:
        try:
            self.read_text(path)
        except FileNotFoundError:
            return False
        except InputError:
            return True  # there, but not usable
        return True
