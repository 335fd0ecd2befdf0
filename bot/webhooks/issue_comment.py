"""`issue_comment` created on a pull request: `/vram-check` commands (bots, including us, ignored).

On the event loop only the cheap part: is there a `/vram-check` line at all (one linear pass; the body is
at most 65,536 characters, payloads.Comment). The comment is queued as typed; the worker checks the
author's permission first and parses the command after (bot.webhooks.command_job).
"""

from __future__ import annotations

from bot.slash import command_line
from bot.webhooks.jobs import CommandJob, PullRequestRef
from bot.webhooks.payloads import IssueCommentEvent
from bot.webhooks.router import ROUTER, Delivery, Handled


@ROUTER.register("issue_comment", "created")
def on_issue_comment(delivery: Delivery) -> Handled:
    event = IssueCommentEvent.model_validate(delivery.payload)
    if event.issue.pull_request is None:
        return Handled(outcome="not-a-pull-request")
    if event.comment.user.is_bot:
        return Handled(outcome="bot")
    if command_line(event.comment.body) is None:
        return Handled(outcome="not-a-command")
    ref = PullRequestRef(repo=event.repository.full_name, number=event.issue.number,
                         installation_id=event.installation.id if event.installation else None)
    job = CommandJob(pr=ref, delivery_id=delivery.delivery_id, received_at=delivery.received_at,
                     comment_id=event.comment.id, login=event.comment.user.login, body=event.comment.body)
    return Handled(outcome="queued", jobs=[job])
