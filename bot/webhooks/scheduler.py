"""Per-pull-request serialisation: one job at a time per PR, a newer check replaces a queued older one.

Jobs for different pull requests run concurrently, bounded by the executor's workers. Everything here
runs on the event loop and only awaits the executor, so it never blocks a webhook acknowledgement.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from bot.metrics import ServiceMetrics
from bot.webhooks.jobs import CheckJob, Job, JobOutcome

log = logging.getLogger(__name__)

Runner = Callable[[Job], Awaitable[JobOutcome]]


class PullRequestScheduler:
    def __init__(self, runner: Runner, metrics: ServiceMetrics) -> None:
        self._runner = runner
        self._metrics = metrics
        self._queues: dict[tuple[str, int], deque[Job]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.completed: list[tuple[Job, JobOutcome]] = []  # bounded history for /healthz and tests
        self._history = 1000

    def submit(self, job: Job) -> None:
        key = job.pr.key
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
            task = asyncio.get_running_loop().create_task(self._drain(key, queue))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if isinstance(job, CheckJob):
            stale = [queued for queued in queue if isinstance(queued, CheckJob)]
            for queued in stale:
                queue.remove(queued)
                self._metrics.superseded.inc()
                self._metrics.in_flight.dec()
        queue.append(job)
        self._metrics.in_flight.inc()

    async def _drain(self, key: tuple[str, int], queue: deque[Job]) -> None:
        try:
            while queue:
                job = queue.popleft()
                try:
                    outcome = await self._runner(job)
                except Exception:  # a crashed worker must not stop the PR's queue or the service
                    log.exception("job %s for %s#%d crashed", job.kind, job.pr.repo, job.pr.number)
                    outcome = JobOutcome(kind=job.kind, outcome="crashed", failures=["worker"],
                                         finished_at=time.time())
                self._record(job, outcome)
        finally:
            self._queues.pop(key, None)

    def _record(self, job: Job, outcome: JobOutcome) -> None:
        self._metrics.in_flight.dec()
        self._metrics.jobs.labels(job.kind, outcome.outcome).inc()
        self._metrics.job_seconds.labels(job.kind).observe(max(0.0, outcome.finished_at - job.received_at))
        self._metrics.record_calls(outcome.github_calls, outcome.hub_calls)
        for stage in outcome.failures:
            self._metrics.failures.labels(stage).inc()
        self.completed.append((job, outcome))
        if len(self.completed) > self._history:
            del self.completed[: len(self.completed) - self._history]

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values()) + len(self._tasks)

    async def idle(self) -> None:
        """Wait until every queued job has run (tests, graceful shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
