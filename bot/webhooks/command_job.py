"""`/vram-check` commands, run in a worker: authorise (write access, failing closed), then parse, react 👀, act.

The job carries the comment as typed; nothing of it is parsed before the author's permission is known
(bot.slash.parse_command is linear and bounded, but a diagnose log is still work a stranger must not cause).
A re-run updates the sticky summary; a what-if, `explain` and `diagnose` answer in a reply comment (marked
`<!-- vram-check:reply -->`, so it is never mistaken for the summary). Values from the comment are escaped
where the reply quotes them (bot.render.escape).
"""

from __future__ import annotations

import logging

from bot.github_adapter import GitHubUnavailable
from bot.render import escape
from bot.slash import HELP_MARKER, SlashCommand, help_reply, parse_command, refusal_reply
from bot.webhooks.check_job import JobContext, check_pull_request
from bot.webhooks.evaluate import diagnose
from bot.webhooks.jobs import CommandJob, JobOutcome
from estimator.errors import InputError
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


def run_command(ctx: JobContext, job: CommandJob) -> JobOutcome:
    gateway = ctx.gateway
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
        diagnosis = ctx.cpu.run(diagnose, command.log_text or "", ctx.remaining())
        reply = escape.text(diagnosis.error) if diagnosis.error else diagnosis.markdown
        gateway.create_comment(f"{HELP_MARKER}\n{reply}")
        return JobOutcome(kind=job.kind, outcome="diagnosed")
    info = gateway.info()
    if command.action == "run":
        result = check_pull_request(ctx, info.head_sha, info.base_sha)
        return JobOutcome(kind=job.kind, outcome=f"rerun-{result.comment}",
                          failures=list(result.evaluation.failures))
    if command.action == "what-if":
        try:
            target = what_if_target(command)
        except InputError as error:
            gateway.create_comment(f"{HELP_MARKER}\n{escape.text(error)}\n\n" + help_reply(command).partition("\n")[2])
            return JobOutcome(kind=job.kind, outcome="bad-command")
        result = check_pull_request(ctx, info.head_sha, info.base_sha, target=target,
                                    title=what_if_title(command), publish=False)
    else:  # explain
        result = check_pull_request(ctx, info.head_sha, info.base_sha, publish=False, only=command.config)
    evaluation = result.evaluation
    if evaluation.body is None:
        gateway.create_comment(f"{HELP_MARKER}\nThis pull request changes no training config, so there is "
                               "nothing to check.")
        return JobOutcome(kind=job.kind, outcome="no-config")
    if command.action == "explain":
        if command.config not in evaluation.config_paths:
            listed = ", ".join(escape.code(p) for p in evaluation.config_paths)
            gateway.create_comment(f"{HELP_MARKER}\n{escape.code(command.config)} is not a training config this "
                                   f"pull request changes. Changed configs: {listed}.")
            return JobOutcome(kind=job.kind, outcome="bad-command")
        gateway.create_comment(_reply_marker(evaluation.body))
        return JobOutcome(kind=job.kind, outcome="explained")
    gateway.create_comment(_reply_marker(evaluation.body))
    return JobOutcome(kind=job.kind, outcome="what-if", failures=list(evaluation.failures))
