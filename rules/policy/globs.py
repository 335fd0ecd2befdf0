"""Which repository paths a policy's `paths:` globs select, with GitHub's glob semantics.

`*` stays within one directory, `**` crosses directories, `**/` also matches no directory, and a pattern
starting with `!` excludes; the last pattern that matches wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache


def matches(patterns: Iterable[str], path: str) -> bool:
    """Whether `path` (relative to the repository root) is selected by `patterns`."""
    normalized = path.replace("\\", "/").removeprefix("./")
    selected = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if glob_regex(pattern[1:] if negated else pattern).fullmatch(normalized):
            selected = not negated
    return selected


@cache
def glob_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1:]:
            end = pattern.index("]", i + 1)
            out += "[" + pattern[i + 1:end].replace("\\", "\\\\") + "]"
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)
