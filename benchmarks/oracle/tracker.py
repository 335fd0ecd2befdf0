"""Live storage bytes at every aten op: the oracle's memory counter.

A ``TorchDispatchMode`` sees every tensor that every aten op produces (forward, autograd backward,
optimizer, autocast casts, checkpoint recomputation).  Each new ``UntypedStorage`` is counted once
and a weakref callback subtracts it when the storage dies, so ``live`` is exactly the bytes held by
tensors at any instant.  Under ``FakeTensorMode`` nothing is allocated, so an 8B model traces in
seconds.  Research note trace.md §3 checked this scheme against the CPU allocator's own running
total: identical to the byte in 11 of 11 code paths.

Bytes are counted two ways: ``raw`` (storage nbytes) and ``rounded`` (each storage rounded up to
512 B, as CUDACachingAllocator rounds every block; c10/cuda/CUDACachingAllocator.cpp
``kMinBlockSize``).  The rounded figure is the one to compare with
``torch.cuda.max_memory_allocated()``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map_only

BLOCK = 512  # CUDA caching allocator minimum block size / rounding (kMinBlockSize)


def round_block(nbytes: int) -> int:
    return -(-nbytes // BLOCK) * BLOCK


@dataclass
class PhaseStats:
    name: str
    start: int  # live bytes (rounded) when the phase began
    peak: int  # highest live bytes (rounded) during the phase
    end: int = 0
    peak_raw: int = 0


@dataclass
class _Entry:
    nbytes: int
    ref: Any = None


class LiveStorageTracker(TorchDispatchMode):  # type: ignore[misc]
    """Counts live tensor storage bytes; ``phase(name)`` splits the peak by training phase."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.live_raw = 0
        self.peak = 0
        self.peak_raw = 0
        self.phases: list[PhaseStats] = []
        self.ops: dict[str, int] = {}
        self._entries: dict[int, _Entry] = {}

    # -- accounting ---------------------------------------------------------------------------
    def track(self, tensor: torch.Tensor) -> None:
        """Count ``tensor``'s storage if it is new; update it if it was resized."""
        storage = tensor.untyped_storage()
        key = id(storage)
        entry = self._entries.get(key)
        nbytes = storage.nbytes()
        if entry is not None and entry.ref is not None and entry.ref() is storage:
            if entry.nbytes != nbytes:  # resized in place (resize_, out= ops)
                self._add(nbytes - entry.nbytes, round_block(nbytes) - round_block(entry.nbytes))
                entry.nbytes = nbytes
            return
        entry = _Entry(nbytes)
        entry.ref = weakref.ref(storage, self._release_callback(key, entry))
        self._entries[key] = entry
        self._add(nbytes, round_block(nbytes))

    def _release_callback(self, key: int, entry: _Entry) -> Callable[[Any], None]:
        def release(_: Any) -> None:
            if self._entries.get(key) is entry:
                del self._entries[key]
            self._add(-entry.nbytes, -round_block(entry.nbytes))

        return release

    def _add(self, raw: int, rounded: int) -> None:
        self.live_raw += raw
        self.live += rounded
        if self.live > self.peak:
            self.peak = self.live
        if self.live_raw > self.peak_raw:
            self.peak_raw = self.live_raw
        if self.phases:
            current = self.phases[-1]
            if self.live > current.peak:
                current.peak = self.live
            if self.live_raw > current.peak_raw:
                current.peak_raw = self.live_raw

    def transient(self, nbytes: int) -> None:
        """A kernel-internal workspace that lives only inside one op (e.g. flash-attn bwd dq_accum)."""
        self._add(nbytes, round_block(nbytes))
        self._add(-nbytes, -round_block(nbytes))

    def track_module(self, module: torch.nn.Module) -> None:
        for tensor in [*module.parameters(), *module.buffers()]:
            self.track(tensor)

    # -- phases -------------------------------------------------------------------------------
    def phase(self, name: str) -> None:
        if self.phases:
            self.phases[-1].end = self.live
        self.phases.append(PhaseStats(name, self.live, self.live, peak_raw=self.live_raw))

    def close(self) -> None:
        if self.phases:
            self.phases[-1].end = self.live

    # -- dispatch -----------------------------------------------------------------------------
    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        name = str(func.overloadpacket.__name__)
        self.ops[name] = self.ops.get(name, 0) + 1
        tree_map_only(torch.Tensor, self.track, out)
        return out


_ACTIVE: list[LiveStorageTracker] = []


def active_tracker() -> LiveStorageTracker | None:
    return _ACTIVE[-1] if _ACTIVE else None


class tracking:
    """``with tracking(tracker):`` enters the dispatch mode and exposes it to fake kernels."""

    def __init__(self, tracker: LiveStorageTracker) -> None:
        self.tracker = tracker

    def __enter__(self) -> LiveStorageTracker:
        _ACTIVE.append(self.tracker)
        self.tracker.__enter__()
        return self.tracker

    def __exit__(self, *exc: object) -> None:
        self.tracker.__exit__(*exc)
        _ACTIVE.pop()
        self.tracker.close()
