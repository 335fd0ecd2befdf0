"""The base version of a modified file, rebuilt from its head text and the `patch` GitHub lists with the
pull request's files (a unified diff without the ---/+++ header), so that no request is spent on it.

`base_from_patch` returns None whenever the patch cannot be trusted to reproduce the base exactly: missing
(GitHub leaves it out for large or binary diffs), malformed, or not matching the head text; the caller then
fetches the file.
"""

from __future__ import annotations

import re

HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def base_from_patch(head_text: str, patch: str | None) -> str | None:
    if not patch:
        return None
    head = head_text.split("\n")
    head_ends_with_newline = head_text.endswith("\n")
    if head_ends_with_newline:
        head.pop()
    base: list[str] = []
    cursor = 0  # index into head of the next line not yet copied
    base_lacks_newline = False  # a "\\ No newline at end of file" after a base-side line ('-' or ' ')
    head_lacks_newline_marked = False  # the same marker after a '+' line: the head side lacks it
    last: str | None = None
    lines = patch.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        match = HUNK.match(line)
        if match is None:
            if line == "" and index == len(lines) - 1:
                break
            return None
        old_start, old_count = int(match[1]), int(match[2] if match[2] is not None else 1)
        new_start, new_count = int(match[3]), int(match[4] if match[4] is not None else 1)
        start = new_start - 1 if new_count else new_start
        if start < cursor or start > len(head):
            return None
        base.extend(head[cursor:start])
        cursor = start
        if len(base) != (old_start - 1 if old_count else old_start):
            return None
        seen_old = seen_new = 0
        index += 1
        while index < len(lines) and not lines[index].startswith("@@"):
            body = lines[index]
            tag, text = body[:1], body[1:]
            if tag == " ":
                if cursor >= len(head) or head[cursor] != text:
                    return None
                base.append(text)
                cursor += 1
                seen_old += 1
                seen_new += 1
            elif tag == "-":
                base.append(text)
                seen_old += 1
            elif tag == "+":
                if cursor >= len(head) or head[cursor] != text:
                    return None
                cursor += 1
                seen_new += 1
            elif tag == "\\":  # "\ No newline at end of file" after the line it qualifies
                if last in ("-", " "):
                    base_lacks_newline = True
                elif last == "+":
                    head_lacks_newline_marked = True
            elif body == "" and index == len(lines) - 1:
                break
            else:
                return None
            last = tag if tag != "\\" else last
            index += 1
        if seen_old != old_count or seen_new != new_count:
            return None
    base.extend(head[cursor:])
    if base_lacks_newline:
        base_newline = False
    elif head_lacks_newline_marked:
        base_newline = True  # only the head lost its final newline
    else:
        base_newline = head_ends_with_newline  # the end of the file is the same on both sides
    text = "\n".join(base)
    return text + "\n" if base_newline and base else text
