"""The pull-request check, run in a worker: changed training configs → rules.check → sticky comment,
review suggestions, and a check run (App) or commit status (token).

Reads the configs at the head commit and the policy at the base commit (so a pull request cannot loosen
its own check). Failures of one file (unparseable YAML, unknown or gated model, a file GitHub would not
serve) are reported for that file by the pipeline; failures of GitHub itself stop the job
(GitHubUnavailable, counted in the metrics) and the next delivery retries.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

import yaml

from bot.github_adapter import ChangedFile, FileTooLarge, GitHubUnavailable, PullRequestGateway, RepoFiles
from bot.render.markdown import MARKER, RenderContext, merged_edits, render_markdown
from bot.webhooks.jobs import CheckJob, JobOutcome
from estimator.errors import InputError
from estimator.units import gib
from rules.policy import POLICY_PATH, Policy, Target, default_policy, load_policy, looks_like_training_config
from rules.report import RunReport

log = logging.getLogger(__name__)

MAX_INLINE_SUGGESTIONS = 30  # reviewdog's cap per request (GitHub's abuse detection)
SUGGESTION_MARK = "<!-- vram-check:suggestion fp={} -->"
NO_CONFIG_BODY = (f"{MARKER}\n### 🧮 vram-check\n\nThis pull request no longer changes any training config; "
                  "nothing to check.\n")


class FileUnavailable(InputError):
    """GitHub did not serve a file of the pull request (outage, permission): reported for that file."""


class HeadFiles:
    """FileSource for rules.check over RepoFiles: GitHub failures become per-file InputErrors."""

    def __init__(self, files: RepoFiles) -> None:
        self._files = files

    def read_text(self, path: str) -> str:
        try:
            return self._files.read_text(path)
        except GitHubUnavailable as error:
            raise FileUnavailable(f"GitHub did not serve the file ({error})", file=path) from None


@dataclass
class CheckResult:
    """What one run produced (used by the slash-command replies too)."""

    report: RunReport | None
    body: str | None
    comment: str  # created | edited | unchanged | none
    conclusion: str
    inline: frozenset[tuple[str, int, str]] = field(default_factory=frozenset)


def read_policy(gateway: PullRequestGateway, base_sha: str) -> tuple[Policy, str | None]:
    """The policy at the base commit, or the defaults; a broken policy file gives the defaults plus the
    error (reported in the comment, and the check fails so that it gets fixed)."""
    try:
        text = gateway.read_file(POLICY_PATH, base_sha)
    except FileNotFoundError:
        return load_policy(None), None
    except FileTooLarge as error:
        return default_policy(), str(error)
    try:
        return load_policy(text), None
    except InputError as error:
        return default_policy(), str(error)


def training_configs(gateway: PullRequestGateway, policy: Policy, changed: list[ChangedFile],
                     head: RepoFiles) -> list[str]:
    """Changed files the policy selects; with the default globs (every YAML), only those that look like
    LLaMA-Factory training configs — or that fail to parse but mention model_name_or_path."""
    selected = [f.path for f in changed if f.status != "removed" and policy.matches(f.path)]
    if not policy.only_training_configs:
        return selected
    kept = []
    for path in selected:
        try:
            text = head.read_text(path)
        except (FileNotFoundError, FileTooLarge, InputError):
            continue
        try:
            raw: Any = yaml.safe_load(text)
        except yaml.YAMLError:
            if "model_name_or_path" in text:
                kept.append(path)
            continue
        if looks_like_training_config(raw):
            kept.append(path)
    return kept


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
            why = best.why.strip().rstrip(".")
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


def upsert_summary(gateway: PullRequestGateway, body: str) -> tuple[str, str | None]:
    """Create the sticky comment, edit it in place, or leave it untouched when the body is the same."""
    existing = gateway.find_comment(MARKER)
    if existing is None:
        created = gateway.create_comment(body)
        return "created", created.html_url
    if existing.body.replace("\r\n", "\n").strip() == body.strip():
        return "unchanged", existing.html_url
    gateway.edit_comment(existing.id, body)
    return "edited", existing.html_url


def conclusion_for(report: RunReport, policy: Policy, policy_error: str | None) -> tuple[str, str]:
    """(check conclusion, one-line description ≤ 140 characters) following the policy's fail_on."""
    failing = [v for c in report.configs for v in c.verdicts
               if policy.fails(v.verdict, v.peak_bytes, v.capacity_bytes)]
    errors = [c for c in report.configs if c.error is not None]
    total = len(report.configs)
    if policy_error is not None:
        return "failure", f"{POLICY_PATH} is invalid; checked with the defaults"
    if failing:
        worst = max(failing, key=lambda v: v.peak_bytes - v.capacity_bytes)
        return "failure", (f"{len(failing)} pool verdict(s) fail the policy; worst needs "
                           f"{gib(worst.peak_bytes)} of {gib(worst.capacity_bytes)} on {worst.gpu}")
    if errors:
        return "neutral", f"{len(errors)} of {total} config(s) could not be checked"
    return "success", f"{total} config(s) fit the declared GPUs"


def publish_conclusion(gateway: PullRequestGateway, app_auth: bool, head_sha: str, conclusion: str,
                       description: str, summary: str, url: str | None) -> None:
    if app_auth:
        gateway.create_check_run(head_sha, conclusion, description, summary, url)
    else:
        state = {"success": "success", "failure": "failure", "neutral": "success", "skipped": "success"}
        gateway.create_status(head_sha, state[conclusion], description, url)


def check_pull_request(gateway: PullRequestGateway, resolver: Any, *, app_auth: bool,
                       target: Target | None = None, title: str | None = None,
                       publish: bool = True) -> CheckResult:
    """The whole flow for the pull request's current head (a newer push than the delivery's wins)."""
    from rules.check import check_configs

    info = gateway.info()
    policy, policy_error = read_policy(gateway, info.base_sha)
    changed, cut = gateway.changed_files()
    head = gateway.files_at(info.head_sha)
    paths = training_configs(gateway, policy, changed, head)
    if not paths:
        existing = gateway.find_comment(MARKER) if publish else None
        if existing is not None and existing.body.strip() != NO_CONFIG_BODY.strip():
            gateway.edit_comment(existing.id, NO_CONFIG_BODY)
        if publish:
            publish_conclusion(gateway, app_auth, info.head_sha, "skipped" if app_auth else "success",
                               "no training config changed", "No training config changed.", None)
        return CheckResult(None, None, "none", "skipped")
    report = check_configs(paths, files=HeadFiles(head), policy=policy, resolver=resolver,
                           base_files=HeadFiles(gateway.files_at(info.base_sha)), target=target)
    notes: list[str] = []
    if policy_error is not None:
        notes.append(f"⛔ The policy file could not be used, so the defaults were: {policy_error}")
    if cut:
        notes.append(f"This pull request changes more files than vram-check reads "
                     f"({gateway.max_files}); configs beyond that were not checked.")
    suggestions = inline_suggestions(report, changed) if publish else []
    inline = frozenset((c["path"], c["line"], c["new"]) for c in suggestions)
    context = RenderContext(head_sha=info.head_sha, title=title, inline_suggestions=inline, notes=tuple(notes))
    body = render_markdown(report, context=context)
    conclusion, description = conclusion_for(report, policy, policy_error)
    if not publish:
        return CheckResult(report, body, "none", conclusion)
    comment, url = upsert_summary(gateway, body)
    try:
        post_review(gateway, info.head_sha, suggestions)
    except GitHubUnavailable as error:  # e.g. a line GitHub would not accept: the summary still has the diff
        log.warning("review not posted on %s#%d: %s", gateway.full_name, gateway.number, error)
    publish_conclusion(gateway, app_auth, info.head_sha, conclusion, description, body, url)
    return CheckResult(report, body, comment, conclusion, inline)


def failure_stages(report: RunReport | None) -> list[str]:
    if report is None:
        return []
    return ["config" for c in report.configs if c.error is not None]


def run_check(gateway: PullRequestGateway, resolver: Any, job: CheckJob) -> JobOutcome:
    from bot.webhooks.worker import app_auth_enabled

    result = check_pull_request(gateway, resolver, app_auth=app_auth_enabled())
    outcome = {"created": "commented", "edited": "edited", "unchanged": "unchanged", "none": "no-config"}
    return JobOutcome(kind=job.kind, outcome=outcome[result.comment], failures=failure_stages(result.report))
