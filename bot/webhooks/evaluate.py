"""The CPU half of a pull-request check, run in a worker process: policy, discovery, the pipeline, the gate and
the rendering, from files and model architectures the I/O half has already fetched.

`evaluate` never talks to GitHub or the Hub. It reads through snapshot sources; a file or model the snapshot
does not hold yet is treated as absent for the rest of the round and noted. A round that noted anything is
thrown away and `Needs` lists what to fetch; the I/O half fetches it (all of it at once, in parallel) and asks
again. A round with nothing missing is the answer. So the worker process never waits on the network, and the
pipeline stays one plain function (each file still read once per commit: the snapshot is the cache).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.render import escape
from bot.render.markdown import MARKER, RenderContext, merged_edits, render_markdown
from estimator import errors
from estimator.errors import InputError
from estimator.model import ModelSpec
from estimator.units import gib
from rules.discovery import select_configs
from rules.gate import GateResult, judge
from rules.pipeline import CheckOptions, check_configs
from rules.policy import POLICY_PATH, Policy, Target, default_policy, read_policy
from rules.report import RunReport
from rules.sources import ParsedFiles

MAX_INLINE_SUGGESTIONS = 30  # reviewdog's cap per request (GitHub's abuse detection)
SUGGESTION_MARK = "<!-- vram-check:suggestion fp={} -->"
NO_CONFIG_BODY = (f"{MARKER}\n### 🧮 vram-check\n\nThis pull request no longer changes any training config; "
                  "nothing to check.\n")

Conclusion = Literal["success", "failure", "neutral", "skipped"]


@dataclass(frozen=True)
class ChangedFile:
    path: str
    status: str
    added_lines: frozenset[int]  # head-side line numbers a review comment may target (RIGHT side of the diff)
    blob_sha: str | None = None  # the head version's blob (GitHub's files list)
    patch: str | None = None
    previous_path: str | None = None  # renamed files


@dataclass(frozen=True)
class FileAnswer:
    """What GitHub said about one file at one commit."""

    text: str | None = None
    missing: bool = False
    error: str | None = None  # an InputError message: too large, not UTF-8, not served

    def read(self, path: str) -> str:
        if self.text is not None:
            return self.text
        if self.missing:
            raise FileNotFoundError(path)
        raise InputError(self.error or "could not be read", file=path)


@dataclass(frozen=True)
class ModelAnswer:
    spec: ModelSpec | None = None
    error_type: str = "InputError"
    error_message: str = ""

    def resolve(self) -> ModelSpec:
        if self.spec is not None:
            return self.spec
        kind = getattr(errors, self.error_type, InputError)
        raise (kind if isinstance(kind, type) and issubclass(kind, InputError) else InputError)(self.error_message)


@dataclass(frozen=True)
class Inputs:
    head_sha: str
    base_sha: str
    changed: tuple[ChangedFile, ...]
    cut: bool
    max_files: int
    head: Mapping[str, FileAnswer]
    base: Mapping[str, FileAnswer]
    models: Mapping[str, ModelAnswer]
    target: Target | None = None
    title: str | None = None
    publish: bool = True
    only: str | None = None  # explain: render one config


@dataclass(frozen=True)
class Needs:
    head: frozenset[str] = frozenset()
    base: frozenset[str] = frozenset()
    models: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Evaluation:
    body: str | None  # None: no training config changed
    conclusion: Conclusion
    description: str
    suggestions: tuple[dict[str, Any], ...] = ()
    inline: frozenset[tuple[str, int, str]] = frozenset()
    config_paths: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()


class _Snapshot:
    """A FileSource over fetched answers; a path not fetched yet is noted and read as absent this round."""

    def __init__(self, answers: Mapping[str, FileAnswer], missed: set[str]) -> None:
        self._answers = answers
        self._missed = missed

    def read_text(self, path: str) -> str:
        answer = self._answers.get(path)
        if answer is None:
            self._missed.add(path)
            raise FileNotFoundError(path)
        return answer.read(path)


class _SnapshotModels:
    def __init__(self, answers: Mapping[str, ModelAnswer], missed: set[str]) -> None:
        self._answers = answers
        self._missed = missed

    def resolve(self, ref: str) -> ModelSpec:
        answer = self._answers.get(ref.strip())
        if answer is None:
            self._missed.add(ref.strip())
            raise errors.ModelNotFound(f"'{ref}' not fetched yet")
        return answer.resolve()


def policy_at_base(base: ParsedFiles) -> tuple[Policy, str | None]:
    """The policy at the base commit, or the defaults; a broken policy file gives the defaults plus the
    error (reported in the comment, and the check fails so that it gets fixed)."""
    try:
        return read_policy(base), None
    except InputError as error:
        return default_policy(), str(error)


def longest_backtick_run(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest


def fingerprint(path: str, line: int, new: str) -> str:
    return hashlib.sha256(f"{path}\0{line}\0{new}".encode()).hexdigest()[:16]


def inline_suggestions(report: RunReport, changed: tuple[ChangedFile, ...]) -> list[dict[str, Any]]:
    """Review comments with ```suggestion blocks for edits on lines in the diff (first suggestion per config)."""
    diff_lines = {f.path: f.added_lines for f in changed}
    comments: list[dict[str, Any]] = []
    for config in report.configs:
        if config.error is not None or not config.suggestions:
            continue
        best = config.suggestions[0]
        for edit in merged_edits(best.edits):
            if edit.line is None or edit.old is None or edit.line not in diff_lines.get(edit.file, frozenset()):
                continue
            fp = fingerprint(edit.file, edit.line, edit.new)
            ticks = "`" * max(3, longest_backtick_run(edit.new) + 1)
            why = escape.text(best.why.strip().rstrip("."))
            body = (f"{SUGGESTION_MARK.format(fp)}\n**vram-check:** {why}. With this change: "
                    f"{gib(best.peak_bytes)} per GPU ({best.verdict}).\n{ticks}suggestion\n{edit.new}\n{ticks}")
            comments.append({"path": edit.file, "line": edit.line, "side": "RIGHT", "body": body,
                             "fingerprint": fp, "new": edit.new})
            if len(comments) >= MAX_INLINE_SUGGESTIONS:
                return comments
    return comments


def conclusion_for(gate: GateResult, report: RunReport, policy_error: str | None) -> tuple[Conclusion, str]:
    """(check conclusion, one-line description ≤ 140 characters) from the gate."""
    total = len(report.configs)
    if policy_error is not None:
        return "failure", f"{POLICY_PATH} is invalid; checked with the defaults"
    if not gate.passed:
        errors_ = gate.count("error")
        failing = [c for c in report.configs if c.status != "error" and c.path in {o.path for o in gate.failing}]
        if failing:
            target = max((c.target for c in failing if c.target is not None),
                         key=lambda v: v.peak_bytes - v.capacity_bytes)
            extra = f"; {errors_} with errors" if errors_ else ""
            return "failure", (f"{len(failing)} of {total} config(s) fail the policy{extra}; worst needs "
                               f"{gib(target.peak_bytes)} of {gib(target.capacity_bytes)} on {target.gpu}")
        return "failure", f"{errors_} of {total} config(s) have errors LLaMA-Factory would stop on, or could not " \
                          "be checked"
    if gate.count("unknown"):
        return "neutral", f"{gate.count('unknown')} of {total} config(s) use a setup vram-check does not model"
    return "success", f"{total} config(s) fit the declared GPUs"


def _round(inputs: Inputs, missed_head: set[str], missed_base: set[str], missed_models: set[str]) -> Evaluation:
    head = ParsedFiles(_Snapshot(inputs.head, missed_head))
    base = ParsedFiles(_Snapshot(inputs.base, missed_base))
    policy, policy_error = policy_at_base(base)
    paths = select_configs([f.path for f in inputs.changed if f.status != "removed"], policy, head)
    if not paths:
        return Evaluation(None, "skipped", "no training config changed")
    models = _SnapshotModels(inputs.models, missed_models)
    report = check_configs(paths, head, policy, models, base, CheckOptions(target=inputs.target))
    notes: list[str] = []
    if policy_error is not None:
        notes.append(f"⛔ The policy file could not be used, so the defaults were: {escape.text(policy_error)}")
    if inputs.cut:
        notes.append(f"This pull request changes more files than vram-check reads "
                     f"({inputs.max_files}); configs beyond that were not checked.")
    suggestions = inline_suggestions(report, inputs.changed) if inputs.publish else []
    inline = frozenset((c["path"], c["line"], c["new"]) for c in suggestions)
    context = RenderContext(head_sha=inputs.head_sha, title=inputs.title, inline_suggestions=inline,
                            notes=tuple(notes), only=inputs.only, footer=inputs.only is None)
    body = render_markdown(report, context=context)
    conclusion, description = conclusion_for(judge(report, policy), report, policy_error)
    return Evaluation(body, conclusion, description, tuple(suggestions), inline,
                      tuple(c.path for c in report.configs),
                      tuple("config" for c in report.configs if c.error is not None))


def candidates(base: Mapping[str, FileAnswer], changed: tuple[ChangedFile, ...]) -> list[str]:
    """The changed files the policy's globs select: what the first round will read at the head (so they are
    fetched before it, in parallel, instead of after a round that only finds out). The policy file is small
    and bounded, so this parse is cheap enough for the I/O thread."""
    policy, _ = policy_at_base(ParsedFiles(_Snapshot(base, set())))
    return [f.path for f in changed if f.status != "removed" and policy.matches(f.path)]


def evaluate(inputs: Inputs) -> Evaluation | Needs:
    """One round (see the module docstring): the evaluation, or what must be fetched before it."""
    missed_head: set[str] = set()
    missed_base: set[str] = set()
    missed_models: set[str] = set()
    result = _round(inputs, missed_head, missed_base, missed_models)
    if missed_head or missed_base or missed_models:
        return Needs(frozenset(missed_head), frozenset(missed_base), frozenset(missed_models))
    return result


@dataclass
class Diagnosis:
    markdown: str
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def diagnose(log_text: str) -> Diagnosis:
    """`/vram-check diagnose`: the pasted log's diagnosis, rendered (CPU work, so it runs in a worker too)."""
    from bot.render.diagnose import render_markdown as render_diagnosis
    from rules.diagnose import diagnose_text

    try:
        return Diagnosis(render_diagnosis(diagnose_text(log_text))[:60_000])
    except InputError as error:
        return Diagnosis("", str(error))
