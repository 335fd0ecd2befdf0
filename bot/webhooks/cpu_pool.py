"""Where the CPU half of a job runs: worker processes (pebble), each task under a time limit.

A task past its limit has its worker process killed (pebble) and ends with `TaskTimedOut`; a worker that dies
under a task (the OOM killer's SIGKILL) ends that task alone with `WorkerDied`; pebble starts a replacement
either way. When the pool itself breaks (pebble gives up on a pool whose idle worker died), it is rebuilt on
the next use; `healthy()` is False while it cannot be. `VRAM_CHECK_WORKER_MODE=thread` runs tasks inline in
the calling thread instead (no process, no time limit: tests and very small installations).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from pebble import ProcessExpired, ProcessPool
from pebble.common.types import CONSTS as PEBBLE_CONSTS

log = logging.getLogger(__name__)
T = TypeVar("T")
A = TypeVar("A")

PRELOAD = ("bot.webhooks.evaluate", "rules.pipeline", "estimator.memory", "estimator.suggest", "bot.render.markdown")
WORKER_NICENESS = 10  # acknowledgements and GitHub I/O (the service process) win the CPU over estimation


# Workers ignore SIGTERM (below), so pebble's "SIGTERM, wait term_timeout, then SIGKILL" for a task past its
# limit is only a delay before the SIGKILL: keep it short.
PEBBLE_CONSTS.term_timeout = 0.2


class TaskTimedOut(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"took longer than the {seconds:g} s limit")
        self.seconds = seconds


class WorkerDied(Exception):
    def __init__(self, exitcode: int | None) -> None:
        how = f"killed by signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"exit code {exitcode}"
        super().__init__(f"the worker process died ({how})")
        self.exitcode = exitcode


class PoolStopped(Exception):
    """The service is shutting down; the task was not finished (its job stays queued)."""


def _init_worker() -> None:
    # SIGTERM or SIGINT to the process group means "the service stops": the service stops its workers itself
    # once it has drained, so that a job in flight is not mistaken for one whose worker died.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    import importlib

    for module in PRELOAD:
        importlib.import_module(module)


def _pid(_: int) -> int:
    return os.getpid()


class CpuPool:
    def __init__(self, workers: int, mode: Literal["process", "thread"] = "process") -> None:
        self.workers = workers
        self.mode = mode
        self._lock = threading.Lock()
        self._pool: ProcessPool | None = None
        self._stopping = False
        self.rebuilds = 0

    def start(self) -> None:
        if self.mode == "process":
            with self._lock:
                self._pool = self._new_pool()
            # start every worker now, not during the first burst
            futures = [self._ensure().schedule(_pid, args=(i,)) for i in range(self.workers)]
            for future in futures:
                future.result(timeout=60)

    def _new_pool(self) -> ProcessPool:
        context = multiprocessing.get_context("forkserver")
        # never fork the service process itself (it runs threads); the fork server preloads the modules once
        context.set_forkserver_preload(list(PRELOAD))
        return ProcessPool(max_workers=self.workers, initializer=_init_worker, context=context)

    def _ensure(self) -> ProcessPool:
        with self._lock:
            if self._stopping:
                raise PoolStopped
            if self._pool is None or not self._pool.active:
                if self._pool is not None:
                    log.warning("the worker pool broke; starting a new one")
                    with contextlib.suppress(Exception):
                        self._pool.stop()  # type: ignore[no-untyped-call]
                    self.rebuilds += 1
                self._pool = self._new_pool()
            return self._pool

    def run(self, function: Callable[[A], T], argument: A, timeout_s: float) -> T:
        if self.mode == "thread":
            return function(argument)
        future = self._ensure().schedule(function, args=(argument,), timeout=timeout_s)
        try:
            result: T = future.result()
            return result
        except concurrent.futures.TimeoutError:
            raise TaskTimedOut(timeout_s) from None
        except ProcessExpired as error:
            if self._stopping:
                raise PoolStopped from None
            raise WorkerDied(error.exitcode) from None
        except (concurrent.futures.CancelledError, RuntimeError) as error:
            if self._stopping:
                raise PoolStopped from None
            raise WorkerDied(None) from error

    def worker_pids(self) -> list[int]:
        pool = self._pool
        if pool is None:
            return []
        manager: Any = getattr(pool, "_pool_manager", None)
        workers = getattr(getattr(manager, "worker_manager", None), "workers", {})
        return [pid for pid, process in list(workers.items()) if process.is_alive()]

    def healthy(self) -> bool:
        """Can take work now: in thread mode always; else the pool runs (rebuilt if it had broken)."""
        if self.mode == "thread":
            return True
        try:
            return self._ensure().active
        except Exception:
            log.exception("the worker pool cannot be started")
            return False

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()  # type: ignore[no-untyped-call]
            pool.join(timeout=10)
