"""Accepted jobs, from the journal to their end: queue, per-pull-request lease, the job, its outcome.

- `accept` (webhook route): the job is written to the journal (a newer check of a pull request replaces its
  queued older ones), then queued on huey. Both are durable before the 202 goes out.
- `run_job` (a huey consumer thread): takes the pull request's lease (one job per pull request at a time,
  across replicas), runs the job and every job queued behind it for that pull request, then settles: the
  delivery is marked done or failed (a redelivery of a failed one runs again) and the journal entry goes.
- A job that fails (time limit, worker died, GitHub unavailable or rate-limited past the cap) ends with a
  check run / status and a sticky-comment line "could not be checked: …".
- Maintenance (a thread): renews the leases held, re-queues journal entries nobody holds (a replica died, or
  this one restarted), restarts dead consumer threads.
- `stop` (SIGTERM): no new job starts; running ones get `drain_s`; the rest stay in the journal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import queue
import socket
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bot.github_adapter import GitHubClients, GitHubRateLimited, GitHubUnavailable, PullRequestGateway
from bot.metrics import ServiceMetrics
from bot.queue.engine import make_consumer, make_huey, register
from bot.queue.store import JournalEntry, RedisStore, SqliteStore, Store, job_tag
from bot.ratelimit import JOB_DEADLINE, GitHubLimits, Limiter, LocalBudget, RedisBudget
from bot.settings import Settings
from bot.slash import HELP_MARKER
from bot.webhooks.check_job import JobContext, JobEnvironment, publish_could_not_check, run_check
from bot.webhooks.command_job import run_command
from bot.webhooks.cpu_pool import CpuPool, PoolStopped, TaskTimedOut, WorkerDied
from bot.webhooks.jobs import CheckJob, CommandJob, Job, JobOutcome
from bot.webhooks.worker import CountingResolver, model_resolver

log = logging.getLogger(__name__)

LEASE_TTL_S = 15.0  # a pull request held by a replica that stopped renewing is free again after this
RENEW_EVERY_S = 3.0
REQUEUE_AFTER_S = 20.0  # a journal entry queued this long ago that nobody holds is queued again
PUBLISH_TIMEOUT_S = 30.0  # time allowed for publishing "could not be checked" after a job failed


@dataclass(frozen=True)
class Failure:
    outcome: str  # metrics label
    conclusion: str  # check-run conclusion
    reason: str  # "could not be checked: <reason>"
    stage: str
    retry_after_s: float | None = None


class JobRunner:
    def __init__(self, settings: Settings, metrics: ServiceMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.store: Store = RedisStore(settings.redis_url) if settings.redis_url \
            else SqliteStore(settings.state_dir / "state.db")
        self.huey = make_huey(settings.redis_url, settings.state_dir)
        self._run_task = register(self.huey, "vram-check.run-job", self.run_job)
        self._publish_task = self.huey.task(name="vram-check.publish-failure", retries=0)(self.publish_failure)
        self.consumer = make_consumer(self.huey, settings.io_threads, settings.drain_s)
        self.cpu = CpuPool(settings.workers, settings.worker_mode)
        limits = GitHubLimits(max_wait_s=settings.github_max_wait_s)
        budget = RedisBudget(self.store.redis, limits) if isinstance(self.store, RedisStore) else LocalBudget(limits)
        self.limiter = Limiter(budget, limits)
        self.clients = GitHubClients(settings, self.limiter)
        self.resolver = CountingResolver(model_resolver(settings),
                                         lambda outcome: self.metrics.hub_calls.labels(outcome).inc())
        self.io = ThreadPoolExecutor(max_workers=2 * settings.io_threads, thread_name_prefix="vram-check-io")
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._held: set[str] = set()
        self._held_lock = threading.Lock()
        self._running = 0
        self.stopping = False
        self._maintenance_stop = threading.Event()
        self._maintenance: threading.Thread | None = None
        # Wake-ups go to huey from a thread of their own: the journal entry is what makes an accepted job
        # durable (a wake-up lost in a crash is re-sent from the journal), so the 202 does not wait for huey.
        self._wakeups: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._waker = threading.Thread(target=self._wake_loop, name="vram-check-waker", daemon=True)

    # -- life cycle ------------------------------------------------------------------------------------------
    def start(self) -> None:
        # The queue's threads share this process (and its GIL) with the event loop: switch threads every
        # millisecond instead of every 5, so that an acknowledgement does not wait behind a job's Python work.
        sys.setswitchinterval(0.001)
        self.cpu.start()
        if isinstance(self.store, SqliteStore):
            # One replica: whoever held leases before this start is gone; every journal entry is ours to run.
            self.store.clear_leases()
            self._requeue(older_than=time.time() + 1)
        else:
            self._requeue(older_than=time.time() - REQUEUE_AFTER_S)
        self.consumer.start()
        self._waker.start()
        self._maintenance = threading.Thread(target=self._maintain, name="vram-check-maintenance", daemon=True)
        self._maintenance.start()

    def stopping_now(self) -> None:
        """Called from the SIGTERM / SIGINT handler, before the web server winds down: from here on, a job whose
        worker goes away is being shut down, not failing."""
        self.stopping = True

    def stop(self) -> None:
        """Drain: no new job starts; running jobs get `drain_s`; what is left stays in the journal."""
        self.stopping = True
        self._maintenance_stop.set()
        self._wakeups.put(None)
        deadline = time.monotonic() + self.settings.drain_s
        self.consumer.stop_flag.set()
        while self._running and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._running:
            log.warning("%d job(s) still running after the %g s drain; they stay queued for the next start",
                        self._running, self.settings.drain_s)
        self.cpu.stop()
        self.io.shutdown(wait=False, cancel_futures=True)

    def health(self) -> list[str]:
        """What keeps the service from doing work now (empty: healthy)."""
        problems: list[str] = []
        if self.stopping:
            problems.append("shutting down")
        try:
            self.store.ping()
        except Exception as error:
            problems.append(f"store unreachable ({type(error).__name__})")
        if not self.cpu.healthy():
            problems.append("worker processes cannot be started")
        if not any(thread.is_alive() for _, thread in self.consumer.worker_threads):
            problems.append("no queue consumer thread is running")
        return problems

    @property
    def pending(self) -> int:
        return self.store.journal_size()

    @property
    def running(self) -> int:
        return self._running

    def _maintain(self) -> None:
        last_sweep = time.monotonic()
        while not self._maintenance_stop.wait(RENEW_EVERY_S):
            with self._held_lock:
                held = list(self._held)
            for pr_key in held:
                with contextlib.suppress(Exception):
                    self.store.renew_lease(pr_key, self.owner, LEASE_TTL_S)
            if time.monotonic() - last_sweep >= REQUEUE_AFTER_S / 3:
                last_sweep = time.monotonic()
                try:
                    self._requeue(older_than=time.time() - REQUEUE_AFTER_S)
                    self.consumer.check_worker_health()
                except Exception:
                    log.exception("maintenance failed")

    def _wake_loop(self) -> None:
        while (job_id := self._wakeups.get()) is not None:
            try:
                self._run_task(job_id)
            except Exception:  # the store is down: the sweeper re-sends it from the journal
                log.exception("could not queue job %s", job_id)

    def _requeue(self, older_than: float) -> None:
        for entry in self.store.journal_stale(older_than, time.time()):
            log.info("re-queueing job %s (%s)", entry.job_id, entry.pr_key)
            self._run_task(entry.job_id)

    # -- accepting ---------------------------------------------------------------------------------------------
    def claim(self, delivery_id: str) -> bool:
        return self.store.claim_delivery(delivery_id)

    def release_claim(self, delivery_id: str) -> None:
        self.store.settle_delivery(delivery_id, "failed")

    def accept(self, job: Job) -> None:
        job_id = job_tag(job.kind, job.delivery_id or uuid.uuid4().hex)
        pr_key = f"{job.pr.key[0]}#{job.pr.key[1]}"
        entry = JournalEntry(job_id, pr_key, pickle.dumps(job), time.time())
        dropped = self.store.journal_put(entry, supersede_kind="check" if isinstance(job, CheckJob) else None)
        for old in dropped:  # a newer push replaced a queued check: the older delivery is done
            self.metrics.superseded.inc()
            self.store.settle_delivery(old.split(":", 1)[1], "done")
        self._wakeups.put(job_id)

    # -- running -------------------------------------------------------------------------------------------------
    def run_job(self, job_id: str) -> None:
        if self.stopping:
            return  # stays in the journal for the next start
        entry = self.store.journal_get(job_id)
        if entry is None:
            return  # done already (a duplicate wake-up) or superseded
        pr_key = entry.pr_key
        if not self.store.try_lease(pr_key, self.owner, LEASE_TTL_S):
            self._run_task.schedule(args=(job_id,), delay=1)  # the pull request is busy: look again soon
            return
        with self._held_lock:
            self._held.add(pr_key)
        current: JournalEntry | None = entry
        try:
            while current is not None and not self.stopping:
                self._run_entry(current)
                pending = self.store.journal_pending(pr_key)
                current = self.store.journal_get(pending[0]) if pending else None
        finally:
            with self._held_lock:
                self._held.discard(pr_key)
            self.store.release_lease(pr_key, self.owner)
        if not self.stopping:
            for left in self.store.journal_pending(pr_key):  # queued while the lease was being let go
                self._run_task(left)

    def _context(self, job: Job, deadline: float) -> JobContext:
        gh = self.clients.client(job.pr.installation_id)
        gateway = PullRequestGateway(gh, job.pr.repo, job.pr.number, self.settings)
        return JobContext(gateway=gateway, resolver=self.resolver, cpu=self.cpu, store=self.store, io=self.io,
                          env=JobEnvironment(app_auth=self.clients.uses_app_auth), deadline=deadline,
                          clock=time.time)

    def _run_entry(self, entry: JournalEntry) -> None:
        try:
            job: Job = pickle.loads(entry.data)
        except Exception:  # written by a version of the service that no longer reads it: drop it, loudly
            log.exception("job %s (%s) cannot be read; dropped", entry.job_id, entry.pr_key)
            self.store.journal_finish(entry.job_id)
            return
        deadline = time.time() + self.settings.job_timeout_s
        token = JOB_DEADLINE.set(deadline)
        with self._held_lock:
            self._running += 1
        ctx: JobContext | None = None
        failure: Failure | None = None
        outcome: JobOutcome | None = None
        try:
            ctx = self._context(job, deadline)
            outcome = run_check(ctx, job) if isinstance(job, CheckJob) else run_command(ctx, job)
        except PoolStopped:
            return  # shutting down mid-job: the entry stays in the journal
        except TaskTimedOut:
            failure = Failure("timed-out", "timed_out",
                              f"the check took longer than the {self.settings.job_timeout_s:g} s time limit", "timeout")
        except WorkerDied as error:
            failure = Failure("worker-died", "failure", str(error), "worker")
        except GitHubRateLimited as error:
            failure = Failure("rate-limited", "failure", f"GitHub rate limit: {error}", "github",
                              retry_after_s=error.wait_s)
        except GitHubUnavailable as error:
            failure = Failure("github-unavailable", "failure", str(error), "github")
        except Exception:
            log.exception("%s for %s#%d failed", job.kind, job.pr.repo, job.pr.number)
            failure = Failure("failed", "failure", "an internal error (logged by the service)", "internal")
        finally:
            JOB_DEADLINE.reset(token)
            with self._held_lock:
                self._running -= 1
        if self.stopping and failure is not None and failure.outcome in ("worker-died", "timed-out"):
            return  # the workers were stopped under it: run it again at the next start
        if failure is not None:
            log.warning("%s for %s#%d could not be checked: %s", job.kind, job.pr.repo, job.pr.number,
                        failure.reason)
            outcome = JobOutcome(kind=job.kind, outcome=failure.outcome, failures=[failure.stage], settled="failed")
            self._report_failure(job, failure)
        assert outcome is not None
        outcome.finished_at = time.time()
        if ctx is not None:
            outcome.github_calls = dict(ctx.gateway.counter.counts)
        self.store.settle_delivery(job.delivery_id, "failed" if outcome.settled == "failed" else "done")
        self.store.journal_finish(entry.job_id)
        self._record(job, outcome)

    def _report_failure(self, job: Job, failure: Failure) -> None:
        args = (pickle.dumps(job), failure.conclusion, failure.reason)
        if failure.retry_after_s is not None:  # GitHub asked us to wait: publish once that wait is over
            self._publish_task.schedule(args=args, delay=failure.retry_after_s + 1)
        else:
            self.publish_failure(*args)

    def publish_failure(self, job_data: bytes, conclusion: str, reason: str) -> None:
        """The check run / status and the sticky comment (or, for a command, a reply) of a failed job."""
        job: Job = pickle.loads(job_data)
        token = JOB_DEADLINE.set(time.time() + PUBLISH_TIMEOUT_S)
        try:
            ctx = self._context(job, time.time() + PUBLISH_TIMEOUT_S)
            if isinstance(job, CommandJob):
                ctx.gateway.create_comment(f"{HELP_MARKER}\n⚠️ `/vram-check` could not be checked: {reason}.")
            else:
                head = job.head_sha or ctx.gateway.info().head_sha
                publish_could_not_check(ctx, head, conclusion, reason)
        except Exception as error:
            log.warning("could not report the failure on %s#%d: %s", job.pr.repo, job.pr.number,
                        type(error).__name__)
        finally:
            JOB_DEADLINE.reset(token)

    def _record(self, job: Job, outcome: JobOutcome) -> None:
        metrics = self.metrics
        metrics.jobs.labels(job.kind, outcome.outcome).inc()
        metrics.job_seconds.labels(job.kind).observe(max(0.0, outcome.finished_at - job.received_at))
        for name, count in outcome.github_calls.items():
            metrics.github_calls.labels(name).inc(count)
        for stage in outcome.failures:
            metrics.failures.labels(stage).inc()
