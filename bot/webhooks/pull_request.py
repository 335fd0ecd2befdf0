"""`pull_request` opened / synchronize / reopened / ready_for_review: queue a check of the new head."""

from __future__ import annotations

from bot.webhooks.jobs import CheckJob, PullRequestRef
from bot.webhooks.payloads import PullRequestEvent
from bot.webhooks.router import ROUTER, Delivery, Handled


@ROUTER.register("pull_request", "opened", "synchronize", "reopened", "ready_for_review")
def on_pull_request(delivery: Delivery) -> Handled:
    event = PullRequestEvent.model_validate(delivery.payload)
    if event.pull_request.draft and event.action != "ready_for_review":
        return Handled(outcome="draft")
    ref = PullRequestRef(repo=event.repository.full_name, number=event.number,
                         installation_id=event.installation.id if event.installation else None)
    job = CheckJob(pr=ref, delivery_id=delivery.delivery_id, received_at=delivery.received_at,
                   head_sha=event.pull_request.head.sha, reason=f"pull_request.{event.action}",
                   base_sha=event.pull_request.base.sha)
    return Handled(outcome="queued", jobs=[job])
