"""Read traceback frames in the shapes logs print them: CPython, Jupyter/IPython, rich, condensed arrows."""

from __future__ import annotations

import re

from rules.diagnose.diagnosis import Frame

_FRAME_RES = (
    # CPython:   File "/x/y.py", line 12, in func
    re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>[\w<>.]+)'),
    # IPython:   File /x/y.py:968, in Class.method(self, ...)
    re.compile(r"File (?P<file>\S+\.py):(?P<line>\d+), in (?P<func>[\w<>.]+)"),
    # rich:      /x/y.py:283 in save_model
    # (a path starts only where a path can start: trying every position inside a long one was quadratic)
    re.compile(r"(?<![\w./\\~-])(?P<file>[\w./\\~-]+\.py):(?P<line>\d+) in (?P<func>[\w<>.]+)"),
)
# condensed:  train_ft.py:1208 _forward_backward_step -> torch/_tensor.py:623 backward
_ARROW_RE = re.compile(r"(?<![\w./\\-])(?P<file>[\w./\\-]+\.py):(?P<line>\d+) (?P<func>[\w<>.]+)")
# a frame header cut before its file: "line 3479, in cross_entropy"
_PARTIAL_RE = re.compile(r"\bline (?P<line>\d+), in (?P<func>[\w<>.]+)")


def parse_frames(line: str) -> list[Frame]:
    """The frames a single log line names (most lines name none)."""
    for pattern in _FRAME_RES:
        match = pattern.search(line)
        if match is not None:
            return [Frame(match["file"], int(match["line"]), match["func"])]
    if "->" in line:
        return [Frame(m["file"], int(m["line"]), m["func"]) for m in _ARROW_RE.finditer(line)]
    partial = _PARTIAL_RE.search(line)
    if partial is not None:
        return [Frame("?", int(partial["line"]), partial["func"])]
    return []


def is_traceback_start(line: str) -> bool:
    return "Traceback (most recent call last)" in line
