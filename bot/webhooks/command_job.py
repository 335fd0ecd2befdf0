"""`/vram-check` commands, run in a worker: authorise (write access, failing closed), then parse, react 👀, act.

The job carries the comment as typed; nothing of it is parsed before the author's permission is known
(bot.slash.parse_command is linear and bounded, but a diagnose log is still work a stranger must not cause).
A re-run updates the sticky summary; a what-if, `explain` and `diagnose` answer in a reply comment (marked
`<!-- vram-check:reply -->`, so it is never mistaken for the summary). Values from the comment are escaped
where the reply quotes them (bot.render.escape).
"""

from __future__ import annotations

import logging

from bot.github_adapter import GitHubUnavailable, PullRequestGateway
from bot.render import escape
from bot.render.diagnose import render_markdown as render_diagnosis
from bot.render.markdown import RenderContext, render_markdown
from bot.slash import HELP_MARKER, SlashCommand, help_reply, parse_command, refusal_reply
from bot.webhooks.check_job import JobEnvironment, check_pull_request, failure_stages
from bot.webhooks.jobs import CommandJob, JobOutcome
from estimator.errors import InputError
from estimator.hub import Resolver
from rules.diagnose import diagnose_text
from rules.gpus import match_gpu
from rules.policy import Target

log = logging.getLogger(__name__)


def what_if_target(command: SlashCommand) -> Target:
    gpu = match_gpu(command.gpu).gpu if command.gpu else None
    return Target(pool=command.pool, gpu=gpu, gpus=command.gpus, nodes=command.nodes)


def what_if_title(command: SlashCommand) -> str:
    """Plain text (the renderer escapes it)."""
    options = [f"{key}={value}" for key, value in
               (("pool", command.pool), ("gpu", command.gpu), ("gpus", command.gpus), ("nodes", command.nodes))
               if value is not None]
    return "What-if: " + " ".join(options) + " (files unchanged; the summary above keeps the policy's target)"


def _reply_marker(body: str) -> str:
    _, _, rest = body.partition("\n")
    return f"{HELP_MARKER}\n{rest}"


def _diagnose(log_text: str) -> str:
    """The diagnosis of a pasted log, as the CLI's `diagnose --format markdown` renders it."""
    try:
        markdown = render_diagnosis(diagnose_text(log_text))
    except InputError as error:
        return f"{HELP_MARKER}\n{escape.text(error)}"
    return f"{HELP_MARKER}\n{markdown[:60_000]}"


def run_command(gateway: PullRequestGateway, resolver: Resolver, env: JobEnvironment, job: CommandJob) -> JobOutcome:
    if not gateway.may_write(job.login):
        log.info("refused /vram-check from %s on %s#%d (no write access)", job.login, job.pr.repo, job.pr.number)
        gateway.create_comment(refusal_reply(job.login))
        return JobOutcome(kind=job.kind, outcome="refused")
    command = parse_command(job.body)
    if command is None:  # the handler queued it for its /vram-check line, so this does not happen
        return JobOutcome(kind=job.kind, outcome="not-a-command")
    try:
        gateway.react(job.comment_id, "eyes")
    except GitHubUnavailable:  # the reaction is a courtesy; the command still runs
        log.info("could not react to comment %d on %s#%d", job.comment_id, job.pr.repo, job.pr.number)
    if command.action == "help":
        gateway.create_comment(help_reply(command))
        return JobOutcome(kind=job.kind, outcome="help")
    if command.action == "diagnose":
        gateway.create_comment(_diagnose(command.log_text or ""))
        return JobOutcome(kind=job.kind, outcome="diagnosed")
    if command.action == "run":
        result = check_pull_request(gateway, resolver, env)
        return JobOutcome(kind=job.kind, outcome=f"rerun-{result.comment}", failures=failure_stages(result.report))
    if command.action == "what-if":
        try:
            target = what_if_target(command)
        except InputError as error:
            gateway.create_comment(f"{HELP_MARKER}\n{escape.text(error)}\n\n" + help_reply(command).partition("\n")[2])
            return JobOutcome(kind=job.kind, outcome="bad-command")
        result = check_pull_request(gateway, resolver, env, target=target,
                                    title=what_if_title(command), publish=False)
    else:  # explain
        result = check_pull_request(gateway, resolver, env, publish=False)
    if result.report is None or result.body is None:
        gateway.create_comment(f"{HELP_MARKER}\nThis pull request changes no training config, so there is "
                               "nothing to check.")
        return JobOutcome(kind=job.kind, outcome="no-config")
    if command.action == "explain":
        paths = [c.path for c in result.report.configs]
        if command.config not in paths:
            listed = ", ".join(escape.code(p) for p in paths)
            gateway.create_comment(f"{HELP_MARKER}\n{escape.code(command.config)} is not a training config this "
                                   f"pull request changes. Changed configs: {listed}.")
            return JobOutcome(kind=job.kind, outcome="bad-command")
        body = render_markdown(result.report, context=RenderContext(only=command.config, footer=False))
        gateway.create_comment(_reply_marker(body))
        return JobOutcome(kind=job.kind, outcome="explained")
    gateway.create_comment(_reply_marker(result.body))
    return JobOutcome(kind=job.kind, outcome="what-if", failures=failure_stages(result.report))
