"""`/vram-check` commands typed in pull-request comments (Atlantis-style grammar).

The first line of the comment that starts with `/vram-check` is the command; it is split shell-style
(shlex) and matched case-insensitively. Paths (`explain CONFIG`) keep their case. `diagnose` takes the
first fenced block of the comment as the log to diagnose.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Literal

TRIGGER = "/vram-check"
HELP_MARKER = "<!-- vram-check:reply -->"
WHAT_IF_KEYS = ("pool", "gpus", "gpu", "nodes")
MAX_GPUS = 4096

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

_FENCE = re.compile(r"^(`{3,}|~{3,})[^\n]*\n(.*?)^\1\s*$", re.DOTALL | re.MULTILINE)


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
    """The first line addressed to vram-check, or None when the comment is not a command."""
    for line in body.splitlines():
        stripped = line.strip()
        head = stripped.split(maxsplit=1)[0].lower() if stripped else ""
        if head == TRIGGER:
            return stripped
    return None


def _help(problem: str) -> SlashCommand:
    return SlashCommand(action="help", problem=problem)


def _positive_int(key: str, value: str) -> int | str:
    if not value.isdigit() or not 0 < int(value) <= MAX_GPUS:
        return f"`{key}` must be a whole number from 1 to {MAX_GPUS}, not `{value}`"
    return int(value)


def parse_command(body: str) -> SlashCommand | None:
    """The command in a comment body; None when the comment does not address vram-check."""
    line = command_line(body)
    if line is None:
        return None
    try:
        words = shlex.split(line)
    except ValueError as error:
        return _help(f"could not read the command ({error})")
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
        match = _FENCE.search(body)
        if match is None:
            return _help("`diagnose` needs the log in a fenced code block after the command")
        return SlashCommand(action="diagnose", log_text=match.group(2))
    options: dict[str, str] = {}
    for word in args:
        key, sep, value = word.partition("=")
        key = key.lower()
        if not sep or key not in WHAT_IF_KEYS or not value:
            return _help(f"unknown command `{word}`")
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
    problem = f"{command.problem}.\n\n" if command.problem else ""
    return f"{HELP_MARKER}\n{problem}{HELP_TEXT}"


def refusal_reply(login: str) -> str:
    return (f"{HELP_MARKER}\nSorry @{login}, `/vram-check` commands can only be run by people with write access "
            "to this repository. The summary above updates by itself on every push.")
