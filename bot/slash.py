"""`/vram-check` commands typed in pull-request comments (Atlantis-style grammar).

The first line of the comment that starts with `/vram-check` is the command; it is split shell-style
(shlex) and matched case-insensitively. Paths (`explain CONFIG`) keep their case. `diagnose` takes the
first fenced block of the comment as the log to diagnose.

Everything here is bounded and linear in the comment's length: a comment is at most GitHub's 65,536
characters (MAX_COMMENT_CHARS; a longer body is refused before it is read), the command line at most
MAX_COMMAND_CHARS, numbers within the pool limits of rules.policy.target, and the fenced block is found
by one pass over the lines (no backtracking regex). The webhook handler only looks for the command line
(`command_line`); the parse itself runs in the worker, after the permission check.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Literal

from bot.render import escape
from estimator.source import describe
from rules.policy.target import MAX_GPUS_PER_NODE, MAX_NODES

TRIGGER = "/vram-check"
HELP_MARKER = "<!-- vram-check:reply -->"
WHAT_IF_KEYS = ("pool", "gpus", "gpu", "nodes")
MAX_COMMENT_CHARS = 65_536  # GitHub's own limit on a comment body ("maximum is 65536 characters")
MAX_COMMAND_CHARS = 1_000  # the command line; a what-if or an explain needs a few dozen
NUMBER_LIMITS = {"gpus": MAX_GPUS_PER_NODE, "nodes": MAX_NODES}
_NUMBER = re.compile(r"[0-9]{1,6}")  # ASCII digits only ("²".isdigit() is true, int("²") raises)

Action = Literal["run", "help", "what-if", "explain", "diagnose"]

HELP_TEXT = """\
**vram-check commands** (in a pull-request comment, one per comment, by users with write access):

| command | what it does |
|---|---|
| `/vram-check` | re-run the check on the pull request's head and update the summary comment |
| `/vram-check pool=NAME gpus=N gpu=NAME` | what-if without editing files: another pool, GPU count \
or GPU (any subset; `nodes=N` too) |
| `/vram-check explain CONFIG` | show one config's full memory breakdown |
| `/vram-check diagnose` followed by a fenced block with an out-of-memory log | explain a CUDA OOM message |
| `/vram-check help` | this help |
"""



@dataclass(frozen=True)
class SlashCommand:
    action: Action
    pool: str | None = None
    gpus: int | None = None
    gpu: str | None = None
    nodes: int | None = None
    config: str | None = None
    log_text: str | None = None
    problem: str | None = None  # why a command fell back to help (unknown command, bad value)


def command_line(body: str) -> str | None:
    """The first line addressed to vram-check, or None when the comment is not a command (linear, cheap:
    what the webhook handler runs on the event loop)."""
    for line in body.splitlines():
        stripped = line.strip()
        if stripped[: len(TRIGGER)].lower() != TRIGGER:
            continue
        if len(stripped) == len(TRIGGER) or stripped[len(TRIGGER)].isspace():
            return stripped
    return None


def _fence_opening(line: str) -> tuple[str, int] | None:
    """(fence character, length) when `line` opens a fenced block (CommonMark: up to 3 spaces of indent,
    3 or more backticks or tildes; a backtick fence's info string has no backtick)."""
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3 or stripped[:3] not in ("```", "~~~"):
        return None
    char = stripped[0]
    length = len(stripped) - len(stripped.lstrip(char))
    if char == "`" and "`" in stripped[length:]:
        return None
    return char, length


def fenced_block(body: str) -> str | None:
    """The content of the comment's first fenced code block, in one pass over its lines. The block ends at a
    line of the same character at least as long as the opening (CommonMark), or at the end of the comment."""
    lines = body.split("\n")
    for index, line in enumerate(lines):
        opening = _fence_opening(line)
        if opening is None:
            continue
        char, length = opening
        content: list[str] = []
        for inner in lines[index + 1:]:
            closing = inner.strip(" ")
            if len(closing) >= length and closing == char * len(closing) and len(inner) - len(inner.lstrip(" ")) <= 3:
                break
            content.append(inner)
        return "\n".join(content) + "\n" if content else None
    return None


def _help(problem: str) -> SlashCommand:
    return SlashCommand(action="help", problem=problem)


def _positive_int(key: str, value: str) -> int | str:
    top = NUMBER_LIMITS[key]
    if not _NUMBER.fullmatch(value) or not 0 < int(value) <= top:
        return f"{key} must be a whole number from 1 to {top}, not {describe(value)}"
    return int(value)


def parse_command(body: str) -> SlashCommand | None:
    """The command in a comment body; None when the comment does not address vram-check."""
    if len(body) > MAX_COMMENT_CHARS:
        return _help(f"the comment is longer than GitHub's {MAX_COMMENT_CHARS:,} characters")
    line = command_line(body)
    if line is None:
        return None
    if len(line) > MAX_COMMAND_CHARS:
        return _help(f"the command line is longer than {MAX_COMMAND_CHARS:,} characters")
    try:
        words = shlex.split(line)
    except ValueError as error:
        return _help(f"could not read the command ({error})")  # shlex's messages name no input
    args = words[1:]
    if not args:
        return SlashCommand(action="run")
    verb = args[0].lower()
    if verb == "help":
        return SlashCommand(action="help")
    if verb == "explain":
        if len(args) != 2:
            return _help("`explain` takes exactly one config path")
        return SlashCommand(action="explain", config=args[1].removeprefix("./"))
    if verb == "diagnose":
        log_text = fenced_block(body)
        if log_text is None:
            return _help("`diagnose` needs the log in a fenced code block after the command")
        return SlashCommand(action="diagnose", log_text=log_text)
    options: dict[str, str] = {}
    for word in args:
        key, sep, value = word.partition("=")
        key = key.lower()
        if not sep or key not in WHAT_IF_KEYS or not value:
            return _help(f"unknown command {describe(word)}")
        options[key] = value
    numbers: dict[str, int] = {}
    for key in ("gpus", "nodes"):
        if key in options:
            parsed = _positive_int(key, options[key])
            if isinstance(parsed, str):
                return _help(parsed)
            numbers[key] = parsed
    return SlashCommand(action="what-if", pool=options.get("pool"), gpu=options.get("gpu"),
                        gpus=numbers.get("gpus"), nodes=numbers.get("nodes"))


def help_reply(command: SlashCommand) -> str:
    problem = f"{escape.text(command.problem)}.\n\n" if command.problem else ""
    return f"{HELP_MARKER}\n{problem}{HELP_TEXT}"


_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")  # GitHub's user names


def refusal_reply(login: str) -> str:
    """The one place vram-check mentions someone: the commenter, by a login that is a GitHub user name."""
    who = f"@{login}" if _LOGIN.fullmatch(login) else escape.text(login)
    return (f"{HELP_MARKER}\nSorry {who}, `/vram-check` commands can only be run by people with write access "
            "to this repository. The summary above updates by itself on every push.")
