"""Recognise out-of-memory messages and read their numbers.

Covers every wording seen in the fixtures (tests/fixtures/oom-logs/SOURCES.md):
- PyTorch ≥ 2.1: "Tried to allocate X. GPU 0 has a total capacity of X of which X is free.
  [Including non-PyTorch memory, this process has X memory in use. | Process N has X memory in use.]
  Of the allocated memory X is allocated by PyTorch, and X is reserved by PyTorch but unallocated."
  (2.1 printed "capacty"; the GPU index may be empty: "GPU  has").
- PyTorch < 2.1: "Tried to allocate X (GPU 0; X total capacity; X already allocated; X free;
  [X allowed;] X reserved in total by PyTorch)"; older still: "X cached" instead of reserved.
- Ascend NPU (torch_npu): "NPU out of memory. Tried to allocate X (NPU 2; X total capacity;
  X already allocated; X current active; X free; X reserved in total by PyTorch)".
- NCCL: "NCCL WARN Cuda failure 'out of memory'", "Failed to CUDA calloc N bytes".
- Others: a generic "out of memory" with whatever size follows "allocate"/"allocating".
Each field is read by its own pattern, so field order and terminal line-wrapping do not matter.
"""

from __future__ import annotations

import re

from rules.diagnose.diagnosis import OomEvent
from rules.diagnose.sizes import SIZE_PATTERN, size_to_bytes

_S = SIZE_PATTERN  # two groups: value, unit

_DEVICE_OOM_RE = re.compile(r"outofmemoryerror|\b(?:cuda|npu|xpu|cpu) out of memory|mps backend out of memory")
_EVIDENCE_RE = re.compile(r"error\s*:|exception|failed|\bwarn|tried to allocate|allocat\w*+\s+[\d.]+\s*\w*b\b|"
                          r"can't allocate|exhausted|killed")
_TRIGGER_WORDS = (
    "out of memory",
    "outofmemoryerror",
    "failed to cuda calloc",
    "resource_exhausted",
    "can't allocate memory",
)

_KIND_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "nccl",
        re.compile(r"NCCL\b.*(?:out of memory|calloc)|\bWARN Cuda failure '?out of memory", re.IGNORECASE),
    ),
    ("npu", re.compile(r"\bNPU out of memory", re.IGNORECASE)),
    ("xpu", re.compile(r"\bXPU out of memory", re.IGNORECASE)),
    ("mps", re.compile(r"\bMPS backend out of memory", re.IGNORECASE)),
    ("cuda", re.compile(r"\bCUDA out of memory|OutOfMemoryError", re.IGNORECASE)),
    ("host", re.compile(r"DefaultCPUAllocator|CPU out of memory", re.IGNORECASE)),
)

_EXCEPTION_RE = re.compile(r"(?<![\w.])((?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception))\s*:")  # anchored
_REQUESTED_RES = (
    re.compile(rf"Tried to allocate\s+{_S}", re.IGNORECASE),
    re.compile(r"calloc\s+(\d+)\s+(bytes)", re.IGNORECASE),
    re.compile(rf"allocat\w*+\s+{_S}", re.IGNORECASE),
)
_DEVICE_RES = (
    re.compile(r"\(\s*(GPU|NPU|XPU)\s*(\d*)\s*;"),
    re.compile(r"\b(GPU|NPU|XPU)\s*(\d*)\s+has a total capac", re.IGNORECASE),
)
_FIELD_RES: dict[str, tuple[re.Pattern[str], ...]] = {
    "capacity_bytes": (
        re.compile(rf"{_S}\s+total capacity", re.IGNORECASE),
        re.compile(rf"total capac\w*+\s+of\s+{_S}", re.IGNORECASE),
    ),
    "allocated_bytes": (
        re.compile(rf"{_S}\s+already allocated", re.IGNORECASE),
        re.compile(rf"{_S}\s+is allocated by PyTorch", re.IGNORECASE),
    ),
    "free_bytes": (
        re.compile(rf"{_S}\s+free\s*[;)]", re.IGNORECASE),
        re.compile(rf"of which\s+{_S}\s+is free", re.IGNORECASE),
    ),
    "allowed_bytes": (re.compile(rf"{_S}\s+allowed\s*;", re.IGNORECASE),),
    "reserved_bytes": (
        re.compile(rf"{_S}\s+reserved in total by PyTorch", re.IGNORECASE),
        re.compile(rf"{_S}\s+cached\)", re.IGNORECASE),
    ),
    "reserved_unallocated_bytes": (
        re.compile(rf"{_S}\s+is reserved by PyTorch but unallocated", re.IGNORECASE),
    ),
    "process_in_use_bytes": (
        re.compile(rf"this process has\s+{_S}\s+memory in use", re.IGNORECASE),
        re.compile(rf"Process\s+\d+\s+has\s+{_S}\s+memory in use", re.IGNORECASE),
    ),
}
# Markers that the numeric part of a PyTorch message has been fully printed.
_COMPLETE_RE = re.compile(
    r"reserved in total by PyTorch|but unallocated|cached\)|max_split_size_mb|PYTORCH_\w+_ALLOC_CONF",
    re.IGNORECASE,
)


def is_trigger(line: str) -> bool:
    """True when the line starts (or is) an out-of-memory message. Cheap: runs on every log line."""
    lower = line.lower()
    if not any(word in lower for word in _TRIGGER_WORDS):
        return False
    if _DEVICE_OOM_RE.search(lower):
        return True
    # Elsewhere "out of memory" must come with an error, a warning or an allocation, not advice text.
    return _EVIDENCE_RE.search(lower) is not None


def message_kind(text: str) -> str:
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(text):
            return kind
    return "other"


def needs_continuation(text: str) -> bool:
    """A PyTorch message whose numbers have not all been printed yet (the terminal wrapped it)."""
    return message_kind(text) in ("cuda", "npu", "xpu") and not _COMPLETE_RE.search(text)


def _first_size(patterns: tuple[re.Pattern[str], ...], text: str) -> int | None:
    for pattern in patterns:
        match = pattern.search(text)
        if match is not None:
            return size_to_bytes(match.group(1), match.group(2))
    return None


MAX_MESSAGE_CHARS = 4_000  # a message and its wrapped continuation lines; real ones are under 1,000
_LONG_NUMBER = re.compile(r"\d{25,}")  # no size has 25 digits; a run that long is cut (linear matching)


def parse_message(text: str, line: int, rank: int | None) -> OomEvent:
    """Every number the message carries; derived fields filled where the wording gives the other two."""
    flat = _LONG_NUMBER.sub(lambda m: m.group(0)[:24], " ".join(text.split())[:MAX_MESSAGE_CHARS])
    event = OomEvent(kind=message_kind(flat), line=line, message=flat, rank=rank)
    exception = _EXCEPTION_RE.search(flat)
    if exception is not None:
        event.exception = exception.group(1)
    event.requested_bytes = _first_size(_REQUESTED_RES, flat)
    for pattern in _DEVICE_RES:
        device = pattern.search(flat)
        if device is not None:
            event.device = device.group(1).upper()
            event.device_index = int(device.group(2)) if device.group(2) else None
            break
    if event.device is None and event.kind in ("cuda", "npu", "xpu"):
        event.device = "NPU" if event.kind == "npu" else "GPU"
    for name, patterns in _FIELD_RES.items():
        setattr(event, name, _first_size(patterns, flat))
    # Older wording gives reserved and allocated; newer gives allocated and reserved-but-unallocated.
    if event.reserved_unallocated_bytes is None and None not in (event.reserved_bytes, event.allocated_bytes):
        event.reserved_unallocated_bytes = max(event.reserved_bytes - event.allocated_bytes, 0)  # type: ignore[operator]
    if event.reserved_bytes is None and None not in (event.allocated_bytes, event.reserved_unallocated_bytes):
        event.reserved_bytes = event.allocated_bytes + event.reserved_unallocated_bytes  # type: ignore[operator]
    if event.kind in ("cuda", "npu", "xpu"):
        event.complete = event.capacity_bytes is not None and event.allocated_bytes is not None
    return event
