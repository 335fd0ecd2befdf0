"""Text from a pull request or a comment, made inert where it lands: GitHub Markdown, raw HTML, a terminal.

File names, model ids, config values, pool names, slash-command values and every message that quotes them
are data. In a comment, a check run or a review they must not mention anyone, load an image, make a link
or close the `<details>` around them, and the layout (tables, lists, folds) must survive them. Each helper
is one pass of `str.translate` and a few linear regex substitutions, and cuts its input to a bounded width.

* `code(text)`: an inline code span whose fence is longer than any backtick run inside (so backticks in the
  value cannot end it); inside code, GitHub renders no HTML, mentions, references or links.
* `text(text)`: plain text inside Markdown (a sentence, a table cell, a list item): `&`, `<`, `>` as
  entities (HTML inert); the punctuation that opens inline syntax wherever it is, backslash-escaped
  (backslash, backtick, `*`, `_`, `[`, `]`, `|`, `~`, `$`: emphasis, code, links and images, table cells,
  strikethrough, math); a leading `#`, `-`, `+`, `=` or `1.` too (headings and lists in a list item); and
  a zero-width space (U+200B, `&#8203;`) after every `@` (mentions, team mentions, e-mail links), inside
  every `://` and `www.` (bare links) and after `#` before a digit (issue references). GitHub finds those
  in the rendered text, where backslash escapes are already gone, so only an invisible character in
  between stops them (Renovate does the same, `@&#8203;`).
* `html(text)`: text inside raw HTML (the `<summary>` of a fold), where Markdown is not parsed: entities
  only, and the same zero-width spaces.
* `terminal(text)`: text for a terminal (the text report, stderr): control characters shown as `\\x1b`, so a
  value cannot move the cursor, recolour or retitle the terminal.
"""

from __future__ import annotations

import re

MAX_CODE_CHARS = 200  # a path or a model id
MAX_TEXT_CHARS = 600  # a message (estimator.errors.MAX_MESSAGE_CHARS)

ZWSP = "&#8203;"  # zero-width space, as an entity (invisible in the comment, breaks what GitHub links)
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# CommonMark: any ASCII punctuation may be backslash-escaped; these open inline syntax wherever they are
# (`(` and `!` only after or before `[`, which is escaped; @ : / # are handled by the zero-width spaces)
_MARKDOWN_PUNCTUATION = "\\`*_[]|~$"
_LINE_START = re.compile(r"^(?:[#+=-]|\d+(?=[.)]))")  # what makes a heading or a list at a block's start
_TEXT_TABLE = str.maketrans({**_ENTITIES, **{c: "\\" + c for c in _MARKDOWN_PUNCTUATION},
                             "\r": " ", "\n": " ", "\t": " "})
_HTML_TABLE = str.maketrans({**_ENTITIES, '"': "&quot;", "'": "&#39;", "\r": " ", "\n": " ", "\t": " "})
_WWW = re.compile(r"(www)(?=\\?\.)", re.IGNORECASE)
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x20), *range(0x7F, 0xA0))}
_TERMINAL_TABLE = str.maketrans(_CONTROL)
_TERMINAL_LINES_TABLE = str.maketrans({c: v for c, v in _CONTROL.items() if c not in (0x09, 0x0A)})
_ISSUE_REFERENCE = re.compile(r"(?<!&)#(?=\d)")  # not the `&#` of an entity


def _clip(value: str, width: int) -> str:
    return value if len(value) <= width else value[: width - 1] + "…"


def _unlink(escaped: str) -> str:
    """Zero-width spaces after `@`, inside `://` and `www.`, and between `#` and a digit."""
    escaped = _ISSUE_REFERENCE.sub("#" + ZWSP, escaped)  # first: the entities added below hold `#8`
    escaped = escaped.replace("@", "@" + ZWSP)
    escaped = escaped.replace("://", ":" + ZWSP + "//")
    return _WWW.sub(r"\1" + ZWSP, escaped)


def text(value: object, width: int = MAX_TEXT_CHARS) -> str:
    """Plain text inside Markdown, inert (see the module docstring); one line, at most `width` characters
    before escaping."""
    escaped = _clip(str(value), width).translate(_TEXT_TABLE)
    escaped = _LINE_START.sub(lambda m: m.group(0) + "\\" if m.group(0)[0].isdigit() else "\\" + m.group(0),
                              escaped, count=1)
    return _unlink(escaped)


def html(value: object, width: int = MAX_CODE_CHARS) -> str:
    """Text inside raw HTML, inert; one line, at most `width` characters before escaping."""
    return _unlink(_clip(str(value), width).translate(_HTML_TABLE))


def code(value: object, *, table: bool = False, width: int = MAX_CODE_CHARS) -> str:
    """An inline code span of `value` that nothing inside can end; `table=True` for a table cell (GitHub
    splits cells at `|` even inside code, so it is escaped there; elsewhere `\\|` would show)."""
    shown = _clip(str(value), width).replace("\r", " ").replace("\n", " ")
    if table:
        shown = shown.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", shown)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if shown.startswith("`") or shown.endswith("`") or (shown.startswith(" ") and shown.endswith(" ")) \
        else ""
    return f"{fence}{pad}{shown}{pad}{fence}"


def mermaid_label(value: object, width: int = 80) -> str:
    """A label inside a Mermaid chart: letters, digits and a few path characters only (Mermaid has its own
    syntax and directives; nothing else is needed to name a config)."""
    return re.sub(r"[^A-Za-z0-9 ._/\-+]", "_", _clip(str(value), width))


def terminal(value: object, *, lines: bool = False) -> str:
    """Text for a terminal: control characters (escape sequences, carriage returns) shown, not obeyed;
    newlines and tabs too, unless `lines`."""
    return str(value).translate(_TERMINAL_LINES_TABLE if lines else _TERMINAL_TABLE)
