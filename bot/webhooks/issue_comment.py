"""`issue_comment` created on a pull request: `/vram-check` commands (bots, including us, ignored)."""

from __future__ import annotations

from bot.slash import parse_command
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
    command = parse_command(event.comment.body)
    if command is None:
        return Handled(outcome="not-a-command")
    ref = PullRequestRef(repo=event.repository.full_name, number=event.issue.number,
                         installation_id=event.installation.id if event.installation else None)
    job = CommandJob(pr=ref, delivery_id=delivery.delivery_id, received_at=delivery.received_at,
                     comment_id=event.comment.id, login=event.comment.user.login, command=command)
    return Handled(outcome="queued", jobs=[job])
