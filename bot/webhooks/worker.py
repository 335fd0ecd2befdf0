"""Where background work runs: a pool of worker processes (default) or threads.

Measured on the 2-core dev machine (benchmarks/webhook_bench.py, docs/github-app.md): with the work in
threads of the service process, PyGithub + YAML + estimation hold the GIL and webhook acks queue behind
them; in worker processes the event loop only parses and queues. Each worker keeps its own PyGithub
clients (installation tokens refresh there) and its own model resolver with its on-disk cache.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import re
import threading
import time
from collections import Counter
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass

from bot.github_adapter import CallCounter, GitHubClients, GitHubUnavailable, PullRequestGateway
from bot.settings import Settings
from bot.webhooks.check_job import JobEnvironment, run_check
from bot.webhooks.command_job import run_command
from bot.webhooks.jobs import CheckJob, CommandJob, Job, JobOutcome
from estimator.errors import ModelNotFound
from estimator.hub import ModelResolver, Resolver
from estimator.model import ModelSpec
from estimator.source import describe

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    settings: Settings
    clients: GitHubClients
    resolver: ModelResolver | None  # built on the first job


_context: WorkerContext | None = None
_context_lock = threading.Lock()


def init_worker(settings: Settings) -> None:
    """Executor initializer: one context per process (threads share it)."""
    global _context
    with _context_lock:
        if _context is None:
            if multiprocessing.parent_process() is not None:  # a worker process: log like the service
                with contextlib.suppress(OSError):
                    os.nice(WORKER_NICENESS)
                logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(message)s")
                for chatty in ("httpx", "httpx2", "urllib3"):
                    logging.getLogger(chatty).setLevel(logging.WARNING)
            _context = WorkerContext(settings=settings, clients=GitHubClients(settings), resolver=None)


def make_context(settings: Settings) -> WorkerContext:
    """A context for thread mode: bound to one service, so several services can share a process (tests)."""
    return WorkerContext(settings=settings, clients=GitHubClients(settings), resolver=None)


def make_executor(settings: Settings) -> Executor:
    if settings.worker_mode == "thread":
        return ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="vram-check-worker")
    # forkserver: never fork the service process itself (it runs threads: uvicorn, the executor manager).
    # The fork server imports the heavy modules once; workers fork from it with them loaded (faster start,
    # shared copy-on-write pages).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return ProcessPoolExecutor(max_workers=settings.workers, mp_context=context, initializer=init_worker,
                               initargs=(settings,))


PRELOAD = ("bot.webhooks.worker", "bot.webhooks.check_job", "bot.webhooks.command_job", "rules.pipeline",
           "estimator.hub", "huggingface_hub", "github")
WORKER_NICENESS = 10  # acknowledgements (the service process) win the CPU over background checks


def warm_up(_: int) -> int:
    """Run once per worker at start-up: imports done and the process started before the first delivery."""
    import importlib

    for module in PRELOAD:
        importlib.import_module(module)
    return os.getpid()


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class CountingResolver:
    """Wraps estimator.hub.ModelResolver for the service: counts resolutions for the metrics, and accepts
    Hub model ids only — a pull request must not make the service read files on its own disk, nor learn
    what is there: a reference that is not a Hub id gets one message, whatever exists on the service's
    disk, and a Hub-shaped one goes to the catalog and the Hub only (ModelResolver(hub_ids_only=True))."""

    def __init__(self, inner: Resolver) -> None:
        self._inner = inner
        self.counts: Counter[str] = Counter()

    def resolve(self, ref: str) -> ModelSpec:
        ref = ref.strip()
        if not HUB_ID.match(ref) or ".." in ref or ref.endswith(".json"):
            self.counts["rejected"] += 1
            raise ModelNotFound(f"{describe(ref)} is not a Hugging Face Hub model id; the GitHub App resolves "
                                "Hub ids (org/name) only, not paths")
        try:
            spec = self._inner.resolve(ref)
        except Exception:
            self.counts["error"] += 1
            raise
        self.counts["ok"] += 1
        return spec


def _resolver(context: WorkerContext) -> ModelResolver:
    if context.resolver is None:
        settings = context.settings
        context.resolver = ModelResolver(
            endpoint=settings.hf_endpoint,
            token=settings.hf_token.get_secret_value() if settings.hf_token else None,
            cache_dir=settings.hf_cache_dir, failure_ttl_s=settings.hub_failure_ttl_s, hub_ids_only=True)
    return context.resolver


def run_job(job: Job) -> JobOutcome:
    """Entry point in a worker process (context from init_worker)."""
    if _context is None:
        raise RuntimeError("worker used before init_worker")
    return execute(_context, job)


def execute(context: WorkerContext, job: Job) -> JobOutcome:
    """Run one job; never raises (the outcome says what failed)."""
    counter = CallCounter()
    resolver = CountingResolver(_resolver(context))
    env = JobEnvironment(app_auth=context.clients.uses_app_auth)
    outcome = JobOutcome(kind=job.kind, outcome="failed")
    try:
        gh = context.clients.client(job.pr.installation_id)
        gateway = PullRequestGateway(gh, job.pr.repo, job.pr.number, context.settings, counter)
        if isinstance(job, CheckJob):
            outcome = run_check(gateway, resolver, env, job)
        elif isinstance(job, CommandJob):
            outcome = run_command(gateway, resolver, env, job)
    except GitHubUnavailable as error:
        log.warning("%s for %s#%d stopped: %s", job.kind, job.pr.repo, job.pr.number, error)
        outcome = JobOutcome(kind=job.kind, outcome="github-unavailable", failures=["github"])
    except Exception:
        log.exception("%s for %s#%d failed", job.kind, job.pr.repo, job.pr.number)
        outcome = JobOutcome(kind=job.kind, outcome="failed", failures=["internal"])
    outcome.github_calls = dict(counter.counts)
    outcome.hub_calls = dict(resolver.counts)
    outcome.finished_at = time.time()
    return outcome
