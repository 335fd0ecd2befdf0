"""The job queue: huey (SqliteHuey in the state folder for one replica, RedisHuey for several), consumed by
threads of the service process. Those threads do a job's GitHub and Hub I/O, so the I/O of different jobs
overlaps; the CPU half of each job goes to the worker processes (bot.webhooks.cpu_pool).

huey's consumer is started without its signal handlers: the service (uvicorn) owns SIGTERM and SIGINT and
stops the consumer itself when it drains.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from huey import RedisHuey, SqliteHuey
from huey.api import Huey
from huey.consumer import Consumer

QUEUE_NAME = "vram-check"


def make_huey(redis_url: str | None, state_dir: Path) -> Huey:
    if redis_url:
        return RedisHuey(QUEUE_NAME, url=redis_url, results=False, blocking=True, read_timeout=1)
    state_dir.mkdir(parents=True, exist_ok=True)
    # fsync=False: commits reach the OS, not the disk platter, so they survive the process being killed (what
    # the journal promises), not a power cut; an fsync per enqueue cost ~4 ms of every acknowledgement.
    return SqliteHuey(QUEUE_NAME, filename=str(state_dir / "queue.db"), results=False, fsync=False)


class ServiceConsumer(Consumer):  # type: ignore[misc]
    """huey's consumer, minus the signal handlers (the web server has them)."""

    def _set_signal_handlers(self) -> None:
        return None


def make_consumer(huey: Huey, threads: int, drain_s: float) -> ServiceConsumer:
    # Polling (SQLite): 10 ms after work, backing off to 200 ms when idle; Redis blocks on BRPOP instead.
    return ServiceConsumer(huey, workers=threads, worker_type="thread", periodic=False, initial_delay=0.01,
                           backoff=1.5, max_delay=0.2, scheduler_interval=1, check_worker_health=True,
                           health_check_interval=5, shutdown_timeout=drain_s)


def register(huey: Huey, name: str, function: Callable[[str], None]) -> Any:
    """A huey task calling `function(job_id)`; returns huey's task wrapper (call it to enqueue)."""
    return huey.task(name=name, retries=0)(function)
