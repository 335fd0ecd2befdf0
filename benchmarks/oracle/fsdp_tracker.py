"""Live-storage tracker for FSDP1/FSDP2 traces (extends the project's oracle tracker).

The project's ``benchmarks.oracle.tracker.LiveStorageTracker`` is correct for plain tensors but
three things break it under FSDP (found while prototyping):

1. DTensor outputs.  FSDP2's sharded parameters / gradients / optimizer states are ``DTensor``
   wrapper subclasses.  A wrapper's own ``untyped_storage()`` reports the *global* (unsharded)
   nbytes but owns no memory, and a ``TorchDispatchMode`` sees the DTensor-level op before DTensor
   desugars it, so the local-tensor ops are never seen.  Fix (same as torch's MemTracker,
   torch/distributed/_tools/mem_tracker.py:914-920): return ``NotImplemented`` when a DTensor is
   among ``types`` so DTensor re-dispatches the local ops to this mode, and flatten any traceable
   wrapper subclass to its inner tensors before counting (``get_untyped_storages``,
   torch/distributed/_tools/common_utils.py:8).
2. ``UntypedStorage.resize_`` is not an aten op, so the dispatch mode never sees it.  FSDP2 frees
   and re-allocates every unsharded parameter with it (``free_storage``/``alloc_storage``,
   torch/distributed/fsdp/_fully_shard/_fsdp_param.py:1066-1077); FSDP1 does the same for the
   padded unsharded flat parameter (``_free_storage``/``_alloc_storage``, torch/distributed/utils.py).
   Fix: patch ``torch.UntypedStorage.resize_`` while tracking (as MemTracker._track_resize does,
   mem_tracker.py:483).
3. DTensor sharding propagation runs ops under its own nested ``FakeTensorMode``; those are not
   allocations.  Fix: only count ops when ``active_fake_mode()`` is the mode active on entry
   (mem_tracker.py:939).  Also ``_c10d_functional.wait_tensor``'s meta kernel returns a fresh
   tensor that eager mode does not allocate: return the input instead (mem_tracker.py:921-927).
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch._guards import active_fake_mode
from torch.distributed._tools.common_utils import get_untyped_storages
from torch.distributed.tensor import DTensor
from torch.utils._pytree import tree_map_only

from benchmarks.oracle.tracker import LiveStorageTracker, _Entry, round_block


def _leaf_tensors(t: torch.Tensor) -> list[torch.Tensor]:
    """Plain tensors inside traceable wrapper subclasses (DTensor -> _local_tensor), recursively."""
    from torch.utils._python_dispatch import is_traceable_wrapper_subclass

    out, todo = [], [t]
    while todo:
        x = todo.pop()
        if is_traceable_wrapper_subclass(x):
            attrs, _ = x.__tensor_flatten__()
            todo.extend(getattr(x, a) for a in attrs if isinstance(getattr(x, a), torch.Tensor))
        else:
            out.append(x)
    return out


class FsdpTracker(LiveStorageTracker):
    def __init__(self, log_events: bool = False) -> None:
        super().__init__()
        self._fake_on_entry: Any = None
        self._orig_resize: Any = None
        self.log_events = log_events
        self.events: list[tuple[str, int, int]] = []  # (label, delta rounded, live after)
        self.marks: list[tuple[str, int]] = []
        self.paused = 0
        self.label = ""
        self._ignored: dict[int, Any] = {}  # id(storage) -> weakref: host memory, never counted

    def ignore_module(self, module: torch.nn.Module) -> None:
        """Storages of ``module``'s current params/buffers are host memory (LF loads the model on
        CPU under FSDP): views of them produced later (e.g. ``state_dict()``) must not count."""
        for t in [*module.parameters(), *module.buffers()]:
            for st in get_untyped_storages(t):
                self._ignored[id(st)] = weakref.ref(st)

    # -- storage accounting (flattening wrapper subclasses) ---------------------------------------
    def track(self, tensor: torch.Tensor) -> None:  # type: ignore[override]
        for leaf in _leaf_tensors(tensor):
            if self.only_device is not None and leaf.device.type != self.only_device:
                continue
            if leaf.device.type == "meta":  # owns no memory (a FakeTensor's storage is meta-backed, so ask the
                continue                    # tensor's fake device, not the storage's)
            self._track_storage(leaf.untyped_storage())

    def _track_storage(self, storage: torch.UntypedStorage, label: str = "") -> None:
        key = id(storage)
        ign = self._ignored.get(key)
        if ign is not None:
            if ign() is storage:
                return
            del self._ignored[key]
        entry = self._entries.get(key)
        nbytes = storage.nbytes()
        if entry is not None and entry.ref is not None and entry.ref() is storage:
            if entry.nbytes != nbytes:
                old = entry.nbytes
                entry.nbytes = nbytes
                self._add(nbytes - old, round_block(nbytes) - round_block(old))
            return
        entry = _Entry(nbytes)
        entry.ref = weakref.ref(storage, self._release_callback(key, entry))
        self._entries[key] = entry
        self._add(nbytes, round_block(nbytes))

    def phase(self, name: str) -> None:
        super().phase(name)
        self.phases[-1].start_raw = self.live_raw  # type: ignore[attr-defined]

    def mark(self, label: str) -> None:
        self.label = label
        self.marks.append((label, self.live))

    classifier: Any = None  # callable -> {id(storage): category}
    only_device: str | None = None  # count only tensors on this device type (GPU check)
    snapshot_step = 1 << 20

    def _add(self, raw: int, rounded: int) -> None:
        prev = self.phases[-1].peak if self.phases else None
        super()._add(raw, rounded)
        if self.phases and self.phases[-1].peak != prev:
            ph = self.phases[-1]
            ph.peak_label = self.label  # type: ignore[attr-defined]
            last = getattr(ph, "snap_live", -(1 << 62))
            if self.classifier is not None and ph.peak - last >= self.snapshot_step and not self._in_snap:
                self._in_snap = True
                try:
                    ph.snapshot = self.snapshot()  # type: ignore[attr-defined]
                    ph.snap_live = ph.peak  # type: ignore[attr-defined]
                finally:
                    self._in_snap = False

    _in_snap = False

    def snapshot(self) -> dict[str, int]:
        cats = self.classifier() if self.classifier is not None else {}
        out: dict[str, int] = {}
        for key, entry in self._entries.items():
            st = entry.ref()
            if st is None:
                continue
            cat = cats.get(key, "other")
            out[cat] = out.get(cat, 0) + round_block(entry.nbytes)
        return out

    def instrument_fsdp(self) -> None:
        """Label every FSDP2 param-group / FSDP1 handle transition so phase peaks can be located."""
        from torch.distributed.fsdp._fully_shard._fsdp_param_group import FSDPParamGroup
        tracker = self

        def wrap(cls, name):
            orig = getattr(cls, name)

            def inner(self_, *a, **k):
                fqn = getattr(self_, "_module_fqn", None) or "?"
                tracker.mark(f"{fqn}:{name}:start")
                try:
                    return orig(self_, *a, **k)
                finally:
                    tracker.mark(f"{fqn}:{name}:end")

            setattr(cls, name, inner)

        for name in ("pre_forward", "post_forward", "pre_backward", "post_backward"):
            wrap(FSDPParamGroup, name)
        from torch.distributed.fsdp import _runtime_utils as ru

        for fname in ("_pre_forward", "_post_forward", "_pre_backward_hook", "_post_backward_hook"):
            orig = getattr(ru, fname, None)
            if orig is None:
                continue

            def make(orig, fname):
                def inner(state, handle, *a, **k):
                    fqns = getattr(getattr(handle, "flat_param", None), "_fqns", None) or ["root?"]
                    tag = fqns[0].rsplit(".", 1)[0]
                    tracker.mark(f"{tag}:{fname}:start")
                    try:
                        return orig(state, handle, *a, **k)
                    finally:
                        tracker.mark(f"{tag}:{fname}:end")
                return inner

            setattr(ru, fname, make(orig, fname))

    # -- resize_ hook --------------------------------------------------------------------------------
    def _patched_resize(self) -> Any:
        orig = self._orig_resize
        tracker = self

        def resize_(st: torch.UntypedStorage, size: int) -> Any:
            out = orig(st, size)
            entry = tracker._entries.get(id(st))
            if entry is not None and entry.ref is not None and entry.ref() is st:
                nbytes = st.nbytes()
                if nbytes != entry.nbytes:
                    old = entry.nbytes
                    entry.nbytes = nbytes
                    tracker._add(nbytes - old, round_block(nbytes) - round_block(old))
            elif size > 0:
                tracker._track_storage(st)
            return out

        return resize_

    def __enter__(self) -> FsdpTracker:
        self._fake_on_entry = active_fake_mode()
        # DTensor's sharding propagation runs the op on global-shape fake args to get output metadata
        # (torch/distributed/tensor/_sharding_prop.py:520-550, `detect_fake_mode() or FakeTensorMode()`):
        # under an outer FakeTensorMode it reuses *that* mode, so the active-mode test above does not
        # exclude it.  Pause counting while it runs.
        from torch.distributed.tensor._sharding_prop import ShardingPropagator
        self._orig_prop = ShardingPropagator._propagate_tensor_meta_non_cached
        tracker = self
        orig_prop = self._orig_prop

        def _prop(self_, op_schema):
            tracker.paused += 1
            try:
                return orig_prop(self_, op_schema)
            finally:
                tracker.paused -= 1

        ShardingPropagator._propagate_tensor_meta_non_cached = _prop
        self._orig_resize = torch.UntypedStorage.resize_
        torch.UntypedStorage.resize_ = self._patched_resize()  # type: ignore[method-assign]
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        torch.UntypedStorage.resize_ = self._orig_resize  # type: ignore[method-assign]
        from torch.distributed.tensor._sharding_prop import ShardingPropagator
        ShardingPropagator._propagate_tensor_meta_non_cached = self._orig_prop
        super().__exit__(*exc)

    # -- dispatch ----------------------------------------------------------------------------------
    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        if any(t is DTensor or (isinstance(t, type) and issubclass(t, DTensor)) for t in types):
            return NotImplemented
        if func is torch.ops._c10d_functional.wait_tensor.default and active_fake_mode() is not None:
            out = args[0]
        else:
            out = func(*args, **(kwargs or {}))
        if active_fake_mode() is self._fake_on_entry and not self.paused:
            name = str(func.overloadpacket.__name__)
            self.ops[name] = self.ops.get(name, 0) + 1
            before = self.live
            tree_map_only(torch.Tensor, self.track, out)
            if self.log_events and self.live != before:
                self.events.append((name, self.live - before, self.live))
        return out
