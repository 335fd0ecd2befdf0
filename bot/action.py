"""The GitHub Action's entry point: `python -m bot.action`, run by action.yml's composite step.

Inputs arrive as INPUT_* environment variables (action.yml passes each one explicitly: composite actions
do not export them). The pull request comes from the event file ($GITHUB_EVENT_PATH): its base commit is
the default `base`. The run is the `vram-check check` pipeline on the working tree; its sinks are the job
summary ($GITHUB_STEP_SUMMARY), workflow-command annotations on stdout, the step outputs ($GITHUB_OUTPUT)
and — when the token may write — the same sticky pull-request comment the App keeps (bot.github_adapter).
Under `pull_request` from a fork the token is read-only: the Action says so and keeps to summary and
annotations. It only reads files; it never runs anything from the pull request.

Exit status: 0 when every config passes the policy (or none changed), 1 when a config fails it or could
not be checked, 2 for bad inputs (missing policy file, unknown base ref, shallow clone without the base).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from bot.github_adapter import GitHubClients, GitHubUnavailable, PullRequestGateway
from bot.local import (
    GitRevision,
    changed_since,
    discover,
    git_root,
    model_files,
    read_local_policy,
    repo_root_for,
    resolver_from_env,
)
from bot.ratelimit import GitHubLimits, Limiter, LocalBudget
from bot.render.markdown import RenderContext, render_markdown
from bot.render.text import render_text
from bot.settings import DEFAULT_API_URL, Settings
from bot.sticky_comment import upsert_summary
from estimator.errors import InputError
from estimator.units import gib
from rules.gate import GateResult, judge
from rules.pipeline import CheckOptions, check_configs
from rules.policy import FAIL_ON_WORDS, POLICY_PATH, Policy, failing_verdicts, read_policy
from rules.report import RunReport
from rules.sources import ParsedFiles, WorkingTree

MAX_ANNOTATIONS = 10  # GitHub shows at most 10 error and 10 warning annotations per step
PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")
TRUE = ("true", "yes", "1", "on")
FALSE = ("false", "no", "0", "off", "")
Level = Literal["error", "warning", "notice"]


@dataclass(frozen=True)
class ActionInputs:
    """The action's inputs (action.yml), validated."""

    paths: tuple[str, ...]
    policy: str | None
    base: str | None
    output_format: Literal["text", "markdown", "json"]
    comment: bool
    fail_on: frozenset[str] | None  # the verdicts that fail, as `fail-on` lists them; None: the policy's
    changed_only: bool
    report_path: Path
    token: str | None
    models: tuple[str, ...] = ()  # `model` input: ID=PATH entries, one per line or space-separated

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ActionInputs:
        def text(name: str) -> str:
            return env.get(f"INPUT_{name}", "").strip()

        output_format = text("FORMAT") or "text"
        if output_format not in ("text", "markdown", "json"):
            raise InputError(f"input 'format' must be text, markdown or json, got '{output_format}'")
        fail_on_text = text("FAIL-ON") or text("FAIL_ON")
        try:
            fail_on = failing_verdicts(fail_on_text.replace(",", " ").split()) if fail_on_text else None
        except ValueError:
            raise InputError(f"input 'fail-on' takes {', '.join(FAIL_ON_WORDS)} (several separated by commas, or "
                             f"empty for the policy's fail_on), got '{fail_on_text}'") from None
        comment = text("COMMENT").lower()
        if comment not in TRUE + FALSE:
            raise InputError(f"input 'comment' must be true or false, got '{comment}'")
        changed_only = text("CHANGED-ONLY").lower() or "true"
        if changed_only not in TRUE + FALSE:
            raise InputError(f"input 'changed-only' must be true or false, got '{changed_only}'")
        default_report = Path(env.get("RUNNER_TEMP") or ".") / "vram-check-report.json"
        report = text("REPORT-PATH") or text("REPORT_PATH")
        return cls(paths=tuple(text("PATHS").split()), policy=text("POLICY") or None, base=text("BASE") or None,
                   output_format=output_format,  # type: ignore[arg-type]  # checked above
                   comment=comment in TRUE, fail_on=fail_on,
                   changed_only=changed_only in TRUE,
                   report_path=Path(report) if report else default_report,
                   token=text("GITHUB-TOKEN") or text("GITHUB_TOKEN") or env.get("GITHUB_TOKEN") or None,
                   models=tuple(text("MODEL").split()))


@dataclass(frozen=True)
class ActionEvent:
    """What the Action needs from the workflow's pull_request event payload."""

    repository: str
    number: int
    base_sha: str
    head_sha: str
    from_fork: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ActionEvent | None:
        if env.get("GITHUB_EVENT_NAME", "pull_request") not in PULL_REQUEST_EVENTS:
            return None
        path = env.get("GITHUB_EVENT_PATH")
        if not path or not Path(path).is_file():
            return None
        try:
            payload: Any = json.loads(Path(path).read_text(encoding="utf-8"))
            pull = payload["pull_request"]
            head_repo = (pull["head"].get("repo") or {}).get("full_name")
            base_repo = pull["base"]["repo"]["full_name"]
            return cls(repository=str(payload["repository"]["full_name"]), number=int(pull["number"]),
                       base_sha=str(pull["base"]["sha"]),
                       head_sha=str(pull["head"]["sha"]), from_fork=head_repo != base_repo)
        except (OSError, ValueError, KeyError, TypeError):
            return None  # not a pull request event (push, workflow_dispatch): check every config


@dataclass(frozen=True)
class Annotation:
    level: Level
    file: str
    line: int | None
    title: str
    message: str
    rank: float  # larger: more important, shown first


def escape_data(text: str) -> str:
    """A workflow command's message (actions/toolkit command.ts escapeData)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value (actions/toolkit command.ts escapeProperty)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(annotation: Annotation) -> str:
    props = [f"file={escape_property(annotation.file)}"]
    if annotation.line is not None:
        props.append(f"line={annotation.line}")
    props.append(f"title={escape_property(annotation.title)}")
    return f"::{annotation.level} {','.join(props)}::{escape_data(annotation.message)}"


def annotations_for(report: RunReport, gate: GateResult, file_for: Mapping[str, str]) -> list[Annotation]:
    """Failing verdicts and broken configs as errors, tight verdicts and rule findings as warnings."""
    found: list[Annotation] = []
    fails = {outcome.path: outcome.fails for outcome in gate.outcomes}
    for config in report.configs:
        file = file_for[config.path]
        if config.error is not None:
            found.append(Annotation("error", file, None, "vram-check: could not check", config.error, 1e18))
        verdict = config.target
        if verdict is not None and verdict.verdict != "fit":
            message = (f"{verdict.verdict}: {gib(verdict.peak_bytes)} per GPU at the peak, "
                       f"{gib(verdict.capacity_bytes)} usable on {verdict.gpu} "
                       f"(pool {verdict.pool}, {verdict.gpus} GPUs)")
            if config.suggestions:
                best = config.suggestions[0]
                changes = ", ".join(f"{key}: {value}" for key, value in best.changes.items())
                message += f". Smallest change: {changes} → {gib(best.peak_bytes)} ({best.verdict})"
            level: Level = "error" if fails[config.path] else "warning"
            found.append(Annotation(level, file, None, f"vram-check: {verdict.verdict}",
                                    message, float(verdict.peak_bytes - verdict.capacity_bytes) + 1e15))
        for finding in config.findings:
            if finding.severity == "info":
                continue
            level = "error" if finding.severity == "error" else "warning"
            found.append(Annotation(level, file, finding.line, f"vram-check: {finding.rule}", finding.message, 0.0))
    return found


def emit_annotations(annotations: list[Annotation]) -> list[str]:
    """Workflow commands for the most important annotations of each level, and a notice of the rest."""
    lines: list[str] = []
    cut = 0
    for level in ("error", "warning"):
        chosen = sorted((a for a in annotations if a.level == level), key=lambda a: -a.rank)
        lines += [workflow_command(a) for a in chosen[:MAX_ANNOTATIONS]]
        cut += max(0, len(chosen) - MAX_ANNOTATIONS)
    if cut:
        lines.append(f"::notice title=vram-check::{cut} more annotation(s) not shown: GitHub shows at most "
                     f"{MAX_ANNOTATIONS} errors and {MAX_ANNOTATIONS} warnings per step; the job summary lists all")
    return lines


def load_action_policy(root: Path, inputs: ActionInputs, base: str | None, notes: list[str]) -> Policy:
    """The explicit policy file, else the base commit's (a pull request cannot loosen its own check), else the
    working tree's, else the defaults; `fail-on` overrides the policy's fail_on."""
    policy: Policy | None = None
    if inputs.policy is None and base is not None and (root / POLICY_PATH).is_file():
        at_base = GitRevision(root, base)
        try:
            at_base.read_text(POLICY_PATH)
        except FileNotFoundError:
            notes.append(f"{POLICY_PATH} is new in this pull request: the pull request's version applies.")
        else:
            policy = read_policy(at_base)
            notes.append(f"Policy read from the base commit's {POLICY_PATH}.")
    if policy is None:
        policy = read_local_policy(root, inputs.policy)
    return replace(policy, fail_on=inputs.fail_on) if inputs.fail_on is not None else policy


def annotation_paths(report: RunReport, root: Path, env: Mapping[str, str]) -> dict[str, str]:
    """Config paths relative to the workspace, as annotations need them (the config root may be a subfolder)."""
    workspace = Path(env.get("GITHUB_WORKSPACE") or git_root(root) or root).resolve()
    paths = {}
    for config in report.configs:
        full = (root / config.path).resolve()
        paths[config.path] = full.relative_to(workspace).as_posix() if full.is_relative_to(workspace) else config.path
    return paths


def post_comment(body: str, event: ActionEvent, token: str, env: Mapping[str, str]) -> tuple[str | None, str]:
    """(comment URL or None, note for the summary): the sticky comment, or why there is none."""
    if event.from_fork:
        return None, ("Pull request from a fork: the workflow token is read-only, so the report is in this "
                      "job summary and the annotations only (install the vram-check App for comments).")
    settings = Settings(webhook_secret=SecretStr("unused by the Action"), token=SecretStr(token),
                        api_url=env.get("GITHUB_API_URL") or DEFAULT_API_URL, github_retries=2)
    limiter = Limiter(LocalBudget(GitHubLimits(max_wait_s=settings.github_max_wait_s)), GitHubLimits())
    gateway = PullRequestGateway(GitHubClients(settings, limiter).client(None), event.repository, event.number,
                                 settings)
    try:
        action, url = upsert_summary(gateway, body)
    except GitHubUnavailable as error:
        if "HTTP 403" in str(error) or "HTTP 404" in str(error):
            return None, ("The token may not write to this pull request (a fork, or the workflow lacks "
                          "`permissions: pull-requests: write`): the report is in this job summary and the "
                          "annotations only.")
        return None, f"Could not update the pull-request comment ({error}); the report is in this job summary."
    return url, f"Pull-request comment {action}: {url}"


def append(path: str | None, text: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)


def write_outputs(env: Mapping[str, str], outputs: Mapping[str, str]) -> None:
    append(env.get("GITHUB_OUTPUT"), "".join(f"{name}={value}\n" for name, value in outputs.items()))


def run(env: Mapping[str, str]) -> int:
    inputs = ActionInputs.from_env(env)
    event = ActionEvent.from_env(env)
    notes: list[str] = []
    paths = [Path(p) for p in inputs.paths]
    root = repo_root_for(paths or [Path.cwd()])
    base = inputs.base or (event.base_sha if event and inputs.changed_only else None)
    changed = changed_since(root, base) if base is not None else None  # first: a missing base is an input error
    policy = load_action_policy(root, inputs, base, notes)
    head = ParsedFiles(WorkingTree(root))
    configs = discover(root, policy, paths, head)
    base_files = None
    if base is not None and changed is not None:
        configs = [c for c in configs if c in changed]
        base_files = ParsedFiles(GitRevision(root, base))
        if not configs:
            notes.append(f"No training configs changed since `{base[:12]}`: nothing to check.")
    elif not configs:
        notes.append("No training configs matched the policy's paths: nothing to check.")
    options = CheckOptions(model_files=model_files(inputs.models))
    report = check_configs(configs, head, policy, resolver_from_env(env), base_files, options)
    gate = judge(report, policy)
    inputs.report_path.parent.mkdir(parents=True, exist_ok=True)
    inputs.report_path.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")

    for line in emit_annotations(annotations_for(report, gate, annotation_paths(report, root, env))):
        print(line)
    if inputs.output_format == "json":
        print(json.dumps(report.to_json(), indent=2))
    elif inputs.output_format == "text":
        print(render_text(report), end="")

    head_sha = event.head_sha if event else env.get("GITHUB_SHA")
    comment_url = None
    if report.configs and inputs.comment and event is not None:
        if inputs.token is None:
            notes.append("No GitHub token: no pull-request comment (pass `github-token`).")
        else:
            body = render_markdown(report, context=RenderContext(head_sha=head_sha, footer=False))
            comment_url, note = post_comment(body, event, inputs.token, env)
            notes.append(note)
            if comment_url is None:
                print(f"::warning title=vram-check::{escape_data(note)}")
    summary = render_markdown(report, context=RenderContext(head_sha=head_sha, notes=tuple(notes), footer=False))
    append(env.get("GITHUB_STEP_SUMMARY"), summary + "\n")
    if inputs.output_format == "markdown":
        print(summary)
    for note in notes:
        print(f"vram-check: {note}", file=sys.stderr)

    write_outputs(env, {"verdict": gate.worst, "no-fit-count": str(gate.count("no-fit")),
                        "report-path": str(inputs.report_path), "comment-url": comment_url or ""})
    for outcome in gate.failing:
        print(f"vram-check: {outcome.path} fails: {outcome.reason}", file=sys.stderr)
    return gate.exit_code


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    try:
        return run(env)
    except InputError as error:
        message = f"vram-check: {error}"
        print(f"::error title=vram-check::{escape_data(message)}")
        append(env.get("GITHUB_STEP_SUMMARY"), f"### 🧮 vram-check\n\n⛔ {message}\n")
        write_outputs(env, {"verdict": "error", "no-fit-count": "0", "report-path": "", "comment-url": ""})
        print(message, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
