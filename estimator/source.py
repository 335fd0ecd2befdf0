"""Reading what users give us, bounded: one reader for files, one YAML parser with line numbers, one JSON parser.

Everything vram-check reads from a repository or a pull request (training YAMLs, DeepSpeed JSON, the policy,
launcher files) passes through here, so the limits are the same everywhere:

* size: a file above its byte limit is refused before it is decoded;
* YAML nesting depth: counted on the parser's event stream before anything is built, so a 1 KB file nested
  500 deep is one clear error, never a RecursionError;
* YAML alias expansion: the composed node graph is measured as if every alias were expanded, in values and
  in scalar characters, so an alias bomb ("billion laughs", or one long string aliased 40,000 times) is one
  clear error, never a multi-GB walk or a slow `str()` / `repr()` of the expanded value;
* JSON nesting depth: checked with C-speed bytes operations before `json.loads`;
* values in messages: `describe()` shows at most a few dozen characters of any value, `clip()` of any text.

`YamlDocument` keeps the parsed value, the 1-based line of every key and sequence item (by path from the
root), and the top-level keys written twice (YAML loaders keep the last one silently).
"""

from __future__ import annotations

import json
import re
import reprlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from estimator.errors import InputError

MAX_CONFIG_BYTES = 1_000_000  # a training YAML or DeepSpeed JSON is a few KB; anything this large is not one
MAX_YAML_DEPTH = 64  # LLaMA-Factory configs are 1-3 levels deep; DeepSpeed JSON and policies a few more
MAX_YAML_NODES = 50_000  # nodes after alias expansion; a real config has a few hundred
# scalar characters after alias expansion: a file without aliases holds at most MAX_CONFIG_BYTES of them, and
# real configs reuse anchors for a few small blocks; 4x leaves room for that and bounds everything built
# from the value (str(), JSON output, messages) to a few MB
MAX_YAML_EXPANDED_CHARS = 4 * MAX_CONFIG_BYTES
MAX_JSON_DEPTH = 64

KeyPath = tuple[str | int, ...]


def describe(value: object, width: int = 60) -> str:
    """A short, bounded rendering of any value for an error message (never the whole of a large value)."""
    shown = _SHORT.repr(value)
    return shown if len(shown) <= width else shown[: width - 1] + "…"


def clip(text: str, width: int = 80) -> str:
    """Any text (a name, a path, a model id) cut to `width` characters for a message, on one line."""
    text = text.replace("\r", " ").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


_SHORT = reprlib.Repr()
_SHORT.maxlevel = 2
_SHORT.maxstring = 48
_SHORT.maxother = 48
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 4


def read_bounded(path: Path, limit: int = MAX_CONFIG_BYTES, *, name: str | None = None) -> str:
    """A local file's text, refused above `limit` bytes (only limit + 1 bytes are ever read)."""
    shown = name or str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise FileNotFoundError(shown) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", file=shown) from None
    return decode_bounded(data, shown, limit)


def decode_bounded(data: bytes, name: str, limit: int = MAX_CONFIG_BYTES) -> str:
    """Bytes from any source (disk, git, the GitHub API) as text, with the same size limit."""
    if len(data) > limit:
        raise InputError(f"file is larger than {limit // 1000} KB; vram-check reads config files up to that size",
                         file=name)
    return data.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class DuplicateKey:
    key: str
    first_line: int
    line: int  # the later occurrence, the one YAML loaders keep


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML file: its value, where each key is, and which top-level keys appear twice."""

    path: str
    text: str
    data: Any
    lines: Mapping[KeyPath, int] = field(default_factory=dict)
    duplicates: tuple[DuplicateKey, ...] = ()

    def line(self, *key: str | int) -> int | None:
        """1-based line of a key (or sequence item) given by its path from the root."""
        return self.lines.get(tuple(key))

    @property
    def top_level_lines(self) -> dict[str, int]:
        return {str(path[0]): line for path, line in self.lines.items() if len(path) == 1}

    def mapping(self, what: str = "a mapping of keys") -> dict[str, Any]:
        """The top level as a dict with string keys; InputError when the file is empty or not a mapping."""
        if self.data is None:
            raise InputError(f"the file is empty; expected {what}", file=self.path)
        if not isinstance(self.data, dict):
            raise InputError(f"expected {what}, got a YAML {type(self.data).__name__}", file=self.path, line=1)
        return {str(key): value for key, value in self.data.items()}


_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when built


class LlamaFactoryLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """A safe loader resolving plain scalars as LLaMA-Factory's loader does: it reads a config with
    OmegaConf.load (hparams/parser.py read_args), whose loader adds a float resolver that also takes numbers
    without a dot (`1e12`, `5e-5` are floats, not strings) and drops the timestamp resolver
    (omegaconf/_yaml.py get_yaml_loader, 2.3 and 2.4). PyYAML's libyaml parser (CSafeLoader) gives the same
    events and nodes as the pure-Python one, several times faster."""


LlamaFactoryLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:
         [-+]?[0-9]+(?:_[0-9]+)*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?[0-9]+(?:_[0-9]+)*(?:[eE][-+]?[0-9]+)
        |\.[0-9]+(?:_[0-9]+)*(?:[eE][-+][0-9]+)?
        |[-+]?[0-9]+(?:_[0-9]+)*(?::[0-5]?[0-9])+\.[0-9_]*
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)
LlamaFactoryLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in LlamaFactoryLoader.yaml_implicit_resolvers.items()
}


def parse_yaml(text: str, path: str, *, max_depth: int = MAX_YAML_DEPTH, max_nodes: int = MAX_YAML_NODES,
               max_chars: int = MAX_YAML_EXPANDED_CHARS) -> YamlDocument:
    """Parse YAML safely (a SafeLoader: data only, with LLaMA-Factory's scalar resolution), within the depth
    and expansion limits."""
    try:
        _check_events(text, path, max_depth)
        root = yaml.compose(text, Loader=LlamaFactoryLoader)
    except yaml.YAMLError as error:
        raise _yaml_error(error, path) from None
    if root is None:
        return YamlDocument(path=path, text=text, data=None)
    _check_expansion(root, path, max_nodes, max_chars)
    try:
        loader = LlamaFactoryLoader("")
        data = loader.construct_document(root)
    except yaml.YAMLError as error:
        raise _yaml_error(error, path) from None
    except (TypeError, ValueError, RecursionError) as error:  # e.g. an unhashable mapping key
        raise InputError(f"malformed YAML: {type(error).__name__}", file=path) from None
    lines, duplicates = _key_lines(root)
    return YamlDocument(path=path, text=text, data=data, lines=lines, duplicates=duplicates)


def _yaml_error(error: yaml.YAMLError, path: str) -> InputError:
    mark = getattr(error, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = str(getattr(error, "problem", None) or str(error).splitlines()[0])
    if len(problem) > 120:
        problem = problem[:119] + "…"
    return InputError(f"malformed YAML: {problem}", file=path, line=line)


def _check_events(text: str, path: str, max_depth: int) -> None:
    """Walk the parser's events (iterative, no recursion) and refuse nesting deeper than `max_depth`."""
    depth = 0
    for event in yaml.parse(text, Loader=LlamaFactoryLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > max_depth:
                line = event.start_mark.line + 1 if event.start_mark else None
                raise InputError(f"YAML nested more than {max_depth} levels deep; not a config file", file=path,
                                 line=line)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_expansion(root: yaml.Node, path: str, max_nodes: int, max_chars: int) -> None:
    """Count values and scalar characters as if every alias were expanded (memoised per node, so the count
    itself stays linear in the file) and refuse a document past either budget."""
    sizes: dict[int, tuple[int, int]] = {}

    def size(node: yaml.Node) -> tuple[int, int]:
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = (1, 0)  # a recursive alias counts once while its own size is computed
        nodes = 1
        chars = len(node.value) if isinstance(node, yaml.ScalarNode) else 0
        for child in _children(node):
            child_nodes, child_chars = size(child)
            nodes += child_nodes
            chars += child_chars
            if nodes > max_nodes or chars > max_chars:
                break
        sizes[id(node)] = (nodes, chars)
        return nodes, chars

    nodes, chars = size(root)
    if nodes > max_nodes:
        raise InputError(f"YAML expands to more than {max_nodes:,} values (aliases repeated over and over); "
                         "not a config file", file=path)
    if chars > max_chars:
        raise InputError(f"YAML expands to more than {max_chars // 1_000_000} MB of text (aliases repeated over "
                         "and over); not a config file", file=path)


def _children(node: yaml.Node) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield value
    elif isinstance(node, yaml.SequenceNode):
        yield from node.value


def _key_lines(root: yaml.Node) -> tuple[dict[KeyPath, int], tuple[DuplicateKey, ...]]:
    """The 1-based line of every mapping key and sequence item, by path; each node walked once."""
    lines: dict[KeyPath, int] = {}
    duplicates: list[DuplicateKey] = []
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, KeyPath]] = [(root, ())]
    while stack:
        node, prefix = stack.pop()
        if id(node) in seen:  # an alias of a node already walked: its keys are listed under the first path
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = (*prefix, str(key_node.value))
                line = key_node.start_mark.line + 1
                if key in lines and not prefix:
                    duplicates.append(DuplicateKey(str(key_node.value), lines[key], line))
                lines.setdefault(key, line)
                stack.append((value_node, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines[(*prefix, index)] = item.start_mark.line + 1
                stack.append((item, (*prefix, index)))
    return lines, tuple(sorted(duplicates, key=lambda d: d.line))


_KEEP_QUOTES_AND_BRACKETS = bytes(b for b in range(256) if b not in b'"[]{}')
_SAME_BRACKETS = bytes.maketrans(b"{}", b"[]")


def json_depth_ok(data: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text nests at most `max_depth` levels, checked without parsing it.

    All in C-speed bytes operations (replace, translate, split), so it costs milliseconds even for a 5 MB
    webhook body, where a Python loop over the bytes would hold the event loop for ~0.3 s: escaped
    backslashes and quotes are dropped, then everything but quotes and brackets; what lies between quotes is
    string content and goes too. Each pass then removes the innermost `[]` pairs (braces counted as
    brackets): text nested at most `max_depth` deep is empty after that many passes. Text that is not JSON
    may pass; json.loads then refuses it, and never recurses deeper than the openers counted here."""
    raw = data.encode("utf-8", errors="replace") if isinstance(data, str) else data
    raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")  # inside strings only; elsewhere not JSON
    kept = raw.translate(None, _KEEP_QUOTES_AND_BRACKETS)
    brackets = b"".join(kept.split(b'"')[::2]).translate(_SAME_BRACKETS)  # outside strings
    if b"[" * (max_depth + 1) in brackets:  # the usual deep nest, found in one search
        return False
    for passes in range(max_depth + 1):
        if not brackets:
            return True
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):  # unbalanced (not JSON): what is left open nests on what was removed
            return brackets.count(b"[") + passes <= max_depth
        brackets = shorter
    return False


def parse_json(text: str, path: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON from a repository file (a DeepSpeed config), within the depth limit; errors name the line."""
    if not json_depth_ok(text, max_depth):
        raise InputError(f"JSON nested more than {max_depth} levels deep; not a config file", file=path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"not valid JSON: {error.msg}", file=path, line=error.lineno) from None
