"""The base version of a modified file rebuilt from the head text and the `patch` of GitHub's files list
(bot.diffpatch), checked against real diffs: git's own output (GitHub's patch is git's diff without the
header lines), including files without a final newline, and random edits; a patch that does not match the head
text is refused (the caller then fetches the file)."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from bot.diffpatch import base_from_patch


def git_patch(tmp_path: Path, old: str, new: str) -> str:
    """`git diff --no-index` of two files, header lines dropped: the `patch` field GitHub lists."""
    (tmp_path / "a").write_text(old)
    (tmp_path / "b").write_text(new)
    out = subprocess.run(["git", "diff", "--no-index", "--no-color", "-U3", "a", "b"], cwd=tmp_path,
                         capture_output=True, text=True).stdout
    lines = out.split("\n")
    first_hunk = next(i for i, line in enumerate(lines) if line.startswith("@@"))
    return "\n".join(lines[first_hunk:]).rstrip("\n")


CASES = [
    ("a: 1\nb: 2\nc: 3\n", "a: 1\nb: 20\nc: 3\n"),
    ("a: 1\nb: 2\n", "a: 1\nb: 2\nc: 3\n"),  # appended
    ("x: 0\na: 1\nb: 2\n", "a: 1\nb: 2\n"),  # first line removed
    ("a: 1\nb: 2", "a: 1\nb: 3"),  # neither ends with a newline
    ("a: 1\nb: 2", "a: 1\nb: 2\n"),  # the head gained a final newline
    ("a: 1\nb: 2\n", "a: 1\nb: 2"),  # the head lost it
    ("".join(f"k{i}: {i}\n" for i in range(40)),
     "".join(f"k{i}: {i * 2 if i in (3, 30) else i}\n" for i in range(40))),  # two hunks
]


@pytest.mark.parametrize(("old", "new"), CASES)
def test_git_patches_give_back_the_base_exactly(tmp_path: Path, old: str, new: str) -> None:
    assert base_from_patch(new, git_patch(tmp_path, old, new)) == old


def test_random_edits(tmp_path: Path) -> None:
    rng = random.Random(14)
    for _ in range(60):
        old_lines = [f"key{rng.randint(0, 20)}: {rng.randint(0, 9)}" for _ in range(rng.randint(1, 30))]
        new_lines = list(old_lines)
        for _ in range(rng.randint(1, 5)):
            where = rng.randrange(len(new_lines) + 1)
            if rng.random() < 0.5 and new_lines:
                new_lines[min(where, len(new_lines) - 1)] = f"changed: {rng.random():.4f}"
            else:
                new_lines.insert(where, f"added: {rng.random():.4f}")
        old, new = "\n".join(old_lines) + "\n", "\n".join(new_lines) + "\n"
        if old != new:
            assert base_from_patch(new, git_patch(tmp_path, old, new)) == old


def test_a_patch_that_does_not_fit_the_head_is_refused(tmp_path: Path) -> None:
    patch = git_patch(tmp_path, "a: 1\nb: 2\n", "a: 1\nb: 3\n")
    assert base_from_patch("a: 1\nb: 4\n", patch) is None  # the head is not what the patch produced
    assert base_from_patch("a: 1\nb: 3\n", None) is None  # GitHub leaves the patch out of large diffs
    assert base_from_patch("a: 1\nb: 3\n", "not a diff") is None
    assert base_from_patch("a: 1\nb: 3\n", patch.replace("@@ -1,2", "@@ -1,5")) is None  # counts do not add up
