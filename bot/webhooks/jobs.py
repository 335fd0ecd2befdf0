"""The units of background work (plain, picklable dataclasses: they cross into worker processes)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PullRequestRef:
    repo: str  # "owner/name", from the payload's repository.full_name
    number: int
    installation_id: int | None

    @property
    def key(self) -> tuple[str, int]:
        return (self.repo.lower(), self.number)


@dataclass(frozen=True)
class CheckJob:
    """Check the pull request's training configs and update the sticky comment, review and check."""

    pr: PullRequestRef
    delivery_id: str
    received_at: float  # time.time() when the delivery arrived
    head_sha: str | None
    reason: str  # "pull_request.opened", ...
    base_sha: str | None = None  # the payload carries both commits: no request for the pull request itself

    kind = "check"


@dataclass(frozen=True)
class CommandJob:
    """A `/vram-check` comment, as typed (at most 65,536 characters): authorised in the worker, failing
    closed, and only then parsed (bot.slash.parse_command)."""

    pr: PullRequestRef
    delivery_id: str
    received_at: float
    comment_id: int
    login: str
    body: str

    kind = "command"


Job = CheckJob | CommandJob


@dataclass
class JobOutcome:
    kind: str
    outcome: str  # commented, edited, unchanged, no-config, refused, replied, failed, ...
    github_calls: dict[str, int] = field(default_factory=dict)
    hub_calls: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # stages that failed (metrics label values)
    finished_at: float = 0.0
    settled: str = "done"  # "failed": the job did not finish its work; a redelivery runs it again
