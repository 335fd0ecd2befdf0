"""The pull-request check, run in a worker: changed training configs → rules.pipeline → sticky comment,
review suggestions, and a check run (App) or commit status (token).

The hops of one check: the pull request (head and base commits), the policy at the base commit (so a pull
request cannot loosen its own check), the changed files, then each changed config at the head and at the
base, read once and parsed once (`ParsedFiles`); the pipeline; the gate (`rules.gate.judge`); the sinks.
Failures of one file (unparseable YAML, unknown or gated model, a file GitHub would not serve) are reported
for that file by the pipeline; failures of GitHub itself stop the job (GitHubUnavailable, counted in the
metrics) and the next delivery retries.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.github_adapter import ChangedFile, GitHubUnavailable, PullRequestGateway
from bot.render import escape
from bot.render.markdown import MARKER, RenderContext, merged_edits, render_markdown
from bot.sticky_comment import upsert_summary
from bot.webhooks.jobs import CheckJob, JobOutcome
from estimator.errors import InputError
from estimator.hub import Resolver
from estimator.units import gib
from rules.discovery import select_configs
from rules.gate import GateResult, judge
from rules.pipeline import CheckOptions, check_configs
from rules.policy import POLICY_PATH, Policy, Target, default_policy, read_policy
from rules.report import RunReport
from rules.sources import ParsedFiles

log = logging.getLogger(__name__)

MAX_INLINE_SUGGESTIONS = 30  # reviewdog's cap per request (GitHub's abuse detection)
SUGGESTION_MARK = "<!-- vram-check:suggestion fp={} -->"
NO_CONFIG_BODY = (f"{MARKER}\n### 🧮 vram-check\n\nThis pull request no longer changes any training config; "
                  "nothing to check.\n")

Conclusion = Literal["success", "failure", "neutral", "skipped"]


@dataclass(frozen=True)
class JobEnvironment:
    """How the worker talks to GitHub for this job: as a GitHub App (check runs) or with a token (statuses)."""

    app_auth: bool


@dataclass
class CheckResult:
    """What one run produced (used by the slash-command replies too)."""

    report: RunReport | None
    body: str | None
    comment: str  # created | edited | unchanged | none | failed (GitHub refused it; the status still went out)
    conclusion: Conclusion
    inline: frozenset[tuple[str, int, str]] = field(default_factory=frozenset)


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


def inline_suggestions(report: RunReport, changed: list[ChangedFile]) -> list[dict[str, Any]]:
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


def post_review(gateway: PullRequestGateway, head_sha: str, comments: list[dict[str, Any]]) -> None:
    """One review with the suggestions not posted before (fingerprints in the existing review comments)."""
    if not comments:
        return
    posted = "\n".join(gateway.review_comment_bodies())
    fresh = [c for c in comments if SUGGESTION_MARK.format(c["fingerprint"]) not in posted]
    if not fresh:
        return
    payload = [{k: v for k, v in c.items() if k not in ("fingerprint", "new")} for c in fresh]
    gateway.create_review(head_sha, f"vram-check: {len(payload)} suggested change(s) that make the "
                          "configs fit (details in the summary comment).", payload)


def conclusion_for(gate: GateResult, report: RunReport, policy_error: str | None) -> tuple[Conclusion, str]:
    """(check conclusion, one-line description ≤ 140 characters) from the gate."""
    total = len(report.configs)
    if policy_error is not None:
        return "failure", f"{POLICY_PATH} is invalid; checked with the defaults"
    if not gate.passed:
        errors = gate.count("error")
        failing = [c for c in report.configs if c.status != "error" and c.path in {o.path for o in gate.failing}]
        if failing:
            target = max((c.target for c in failing if c.target is not None),
                         key=lambda v: v.peak_bytes - v.capacity_bytes)
            extra = f"; {errors} with errors" if errors else ""
            return "failure", (f"{len(failing)} of {total} config(s) fail the policy{extra}; worst needs "
                               f"{gib(target.peak_bytes)} of {gib(target.capacity_bytes)} on {target.gpu}")
        return "failure", f"{errors} of {total} config(s) have errors LLaMA-Factory would stop on, or could not be " \
                          "checked"
    if gate.count("unknown"):
        return "neutral", f"{gate.count('unknown')} of {total} config(s) use a setup vram-check does not model"
    return "success", f"{total} config(s) fit the declared GPUs"


def publish_conclusion(gateway: PullRequestGateway, env: JobEnvironment, head_sha: str, conclusion: Conclusion,
                       description: str, summary: str, url: str | None) -> None:
    if env.app_auth:
        gateway.create_check_run(head_sha, conclusion, description, summary, url)
    else:
        state = {"success": "success", "failure": "failure", "neutral": "success", "skipped": "success"}
        gateway.create_status(head_sha, state[conclusion], description, url)


def check_pull_request(gateway: PullRequestGateway, resolver: Resolver, env: JobEnvironment, *,
                       target: Target | None = None, title: str | None = None,
                       publish: bool = True) -> CheckResult:
    """The whole flow for the pull request's current head (a newer push than the delivery's wins)."""
    info = gateway.info()
    base = ParsedFiles(gateway.files_at(info.base_sha))
    policy, policy_error = policy_at_base(base)
    changed, cut = gateway.changed_files()
    head = ParsedFiles(gateway.files_at(info.head_sha))
    paths = select_configs([f.path for f in changed if f.status != "removed"], policy, head)
    if not paths:
        if publish:
            _summary_no_config(gateway)
        if publish:
            publish_conclusion(gateway, env, info.head_sha, "skipped" if env.app_auth else "success",
                               "no training config changed", "No training config changed.", None)
        return CheckResult(None, None, "none", "skipped")
    report = check_configs(paths, head, policy, resolver, base, CheckOptions(target=target))
    notes: list[str] = []
    if policy_error is not None:
        notes.append(f"⛔ The policy file could not be used, so the defaults were: {escape.text(policy_error)}")
    if cut:
        notes.append(f"This pull request changes more files than vram-check reads "
                     f"({gateway.max_files}); configs beyond that were not checked.")
    suggestions = inline_suggestions(report, changed) if publish else []
    inline = frozenset((c["path"], c["line"], c["new"]) for c in suggestions)
    context = RenderContext(head_sha=info.head_sha, title=title, inline_suggestions=inline, notes=tuple(notes))
    body = render_markdown(report, context=context)
    conclusion, description = conclusion_for(judge(report, policy), report, policy_error)
    if not publish:
        return CheckResult(report, body, "none", conclusion)
    comment: str
    url: str | None
    try:
        comment, url = upsert_summary(gateway, body)
    except GitHubUnavailable as error:  # e.g. a locked conversation: the check run / status still says it
        log.warning("summary comment not written on %s#%d: %s", gateway.full_name, gateway.number, error)
        comment, url = "failed", None
    try:
        post_review(gateway, info.head_sha, suggestions)
    except GitHubUnavailable as error:  # e.g. a line GitHub would not accept: the summary still has the diff
        log.warning("review not posted on %s#%d: %s", gateway.full_name, gateway.number, error)
    publish_conclusion(gateway, env, info.head_sha, conclusion, description, body, url)
    return CheckResult(report, body, comment, conclusion, inline)


def _summary_no_config(gateway: PullRequestGateway) -> None:
    """Turn an earlier summary into "nothing to check"; a refusal is logged and the status still goes out."""
    try:
        existing = gateway.find_comment(MARKER)
        if existing is not None and existing.body.strip() != NO_CONFIG_BODY.strip():
            gateway.edit_comment(existing.id, NO_CONFIG_BODY)
    except GitHubUnavailable as error:
        log.warning("summary comment not updated on %s#%d: %s", gateway.full_name, gateway.number, error)


def failure_stages(report: RunReport | None) -> list[str]:
    if report is None:
        return []
    return ["config" for c in report.configs if c.error is not None]


def run_check(gateway: PullRequestGateway, resolver: Resolver, env: JobEnvironment, job: CheckJob) -> JobOutcome:
    result = check_pull_request(gateway, resolver, env)
    outcome = {"created": "commented", "edited": "edited", "unchanged": "unchanged", "none": "no-config",
               "failed": "comment-refused"}
    failures = failure_stages(result.report) + (["comment"] if result.comment == "failed" else [])
    return JobOutcome(kind=job.kind, outcome=outcome[result.comment], failures=failures)
