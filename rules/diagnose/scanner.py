"""Stream a log line by line and collect OOM events, measured peaks and run facts in bounded memory.

Memory stays bounded whatever the log's size: lines are read at most MAX_LINE_BYTES at a time,
only a short window of recent lines and frames is kept per rank, and at most MAX_EVENTS events
are stored (the rest are counted). Time stays linear: each line is matched on its first
MAX_SCAN_LINE_CHARS characters only (an OOM message, a frame or a progress line is far shorter; the
patterns' backtracking grows with the square of what they are given).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from estimator.errors import InputError
from rules.diagnose import context as run_context
from rules.diagnose import peaks as measured
from rules.diagnose.causes import name_causes
from rules.diagnose.diagnosis import Diagnosis, Frame
from rules.diagnose.frames import is_traceback_start, parse_frames
from rules.diagnose.messages import is_trigger, message_kind, needs_continuation, parse_message
from rules.diagnose.phases import detect_phase

MAX_LINE_BYTES = 64 * 1024  # a "line" of binary junk without newlines is cut into pieces this long
MAX_EVENTS = 200
MAX_FRAMES = 64  # frames kept per rank (a deep traceback's innermost frames)
FRAME_WINDOW_LINES = 200  # frames older than this many lines before an OOM do not belong to it
NEARBY_LINES = 12  # raw lines kept per rank for the phase rules
MAX_RANKS = 1024  # distinct rank/worker prefixes tracked
MAX_CONTINUATION_LINES = 6  # a wrapped PyTorch message spans at most this many extra lines
MAX_SCAN_LINE_CHARS = 2_000  # PyTorch's longest OOM message is ~700 characters (fixtures/oom-logs)

_PREFIX_RES = (
    re.compile(r"^\[rank(\d+)\]:\s?"),  # torchrun / torch.distributed
    re.compile(r"^\(\w+ pid=(\d+)\)\s*"),  # Ray / vLLM workers
    re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}:\s"),  # pdsh / DeepSpeed multi-node host prefix
)


@dataclass
class _RankStream:
    frames: deque[tuple[int, Frame]] = field(default_factory=lambda: deque(maxlen=MAX_FRAMES))
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=NEARBY_LINES))
    last_was_frame: bool = False


@dataclass
class _Pending:
    line: int
    rank: int | None
    parts: list[str]
    frames: list[Frame]
    nearby: list[str]
    kind_nccl: bool
    extra_lines: int = 0


def _split_prefix(line: str) -> tuple[int | None, str]:
    for pattern in _PREFIX_RES:
        match = pattern.match(line)
        if match is not None:
            rank = int(match.group(1)) if match.groups() else None
            return rank, line[match.end() :]
    return None, line


class LogScanner:
    """Feed lines in order with `feed`, then call `finish` once for the Diagnosis."""

    def __init__(self, source: str) -> None:
        self.diagnosis = Diagnosis(source=source)
        self._streams: dict[int | None, _RankStream] = {}
        self._pending: _Pending | None = None

    def _stream(self, rank: int | None) -> _RankStream:
        stream = self._streams.get(rank)
        if stream is None:
            if len(self._streams) >= MAX_RANKS:
                rank = None
                stream = self._streams.setdefault(None, _RankStream())
            else:
                stream = self._streams[rank] = _RankStream()
        return stream

    def feed(self, raw: str) -> None:
        diagnosis = self.diagnosis
        diagnosis.lines_read += 1
        number = diagnosis.lines_read
        rank, line = _split_prefix(raw.rstrip("\r\n")[:MAX_SCAN_LINE_CHARS])
        lower = line.lower()
        measured.fold_line(diagnosis.peaks, line)
        run_context.fold_line(diagnosis.context, line, lower)
        if self._pending is not None:
            if self._continues(self._pending, line, lower):
                return
            self._finalize()
        stream = self._stream(rank)
        if is_trigger(line):
            self._pending = _Pending(
                line=number,
                rank=rank,
                parts=[line],
                frames=[frame for at, frame in stream.frames if at >= number - FRAME_WINDOW_LINES],
                nearby=list(stream.recent),
                kind_nccl=message_kind(line) == "nccl",
            )
            return
        self._track(stream, number, line)

    def _continues(self, pending: _Pending, line: str, lower: str) -> bool:
        if pending.kind_nccl:
            # NCCL prints the failed size on the next WARN line: "Failed to CUDA calloc N bytes".
            if (
                pending.extra_lines < 3
                and "warn" in lower
                and ("calloc" in lower or "out of memory" in lower)
            ):
                pending.parts.append(line)
                pending.extra_lines += 1
                return True
            return False
        if (
            pending.extra_lines < MAX_CONTINUATION_LINES
            and needs_continuation(" ".join(pending.parts))
            and line.strip()
            and not is_trigger(line)
            and not is_traceback_start(line)
            and not parse_frames(line)
        ):
            pending.parts.append(line)
            pending.extra_lines += 1
            return True
        return False

    def _track(self, stream: _RankStream, number: int, line: str) -> None:
        if is_traceback_start(line):
            stream.frames.clear()
            stream.last_was_frame = False
            return
        frames = parse_frames(line) if (".py" in line or ", in " in line) else []
        if frames:
            stream.frames.extend((number, frame) for frame in frames)
            stream.last_was_frame = True
        elif stream.last_was_frame and line.strip():
            at, last = stream.frames[-1]
            stream.frames[-1] = (at, replace(last, code=line.strip()[:200]))
            stream.last_was_frame = False
        if line.strip():
            stream.recent.append(line[:500])

    def _finalize(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        diagnosis = self.diagnosis
        if len(diagnosis.events) >= MAX_EVENTS:
            diagnosis.events_dropped += 1
            return
        event = parse_message("\n".join(pending.parts), pending.line, pending.rank)
        event.frames = pending.frames[-30:]
        if event.kind == "nccl":
            event.phase, event.phase_evidence = "communication", "NCCL allocation"
        else:
            event.phase, event.phase_evidence = detect_phase(event.frames, pending.nearby)
        diagnosis.events.append(event)

    def finish(self) -> Diagnosis:
        self._finalize()
        diagnosis = self.diagnosis
        for event in diagnosis.events:
            event.causes = name_causes(event, diagnosis.context)
        if diagnosis.events_dropped:
            diagnosis.notes.append(
                f"{diagnosis.events_dropped} more out-of-memory messages were counted but not kept "
                f"(first {MAX_EVENTS} shown)."
            )
        return diagnosis


def diagnose_lines(lines: Iterable[str], source: str = "<text>") -> Diagnosis:
    scanner = LogScanner(source)
    for line in lines:
        scanner.feed(line)
    return scanner.finish()


def diagnose_text(text: str) -> Diagnosis:
    """Diagnose a pasted log (the bot's `/vram-check diagnose` answers a fenced block with this)."""
    return diagnose_lines(text.splitlines(), source="pasted log")


def iter_stream_lines(stream: BinaryIO) -> Iterable[str]:
    """Decoded lines of at most MAX_LINE_BYTES each; undecodable bytes become U+FFFD."""
    while True:
        chunk = stream.readline(MAX_LINE_BYTES)
        if not chunk:
            return
        yield chunk.decode("utf-8", errors="replace")


def diagnose_file(path: Path) -> Diagnosis:
    """Diagnose a log file of any size (plain text or LLaMA-Factory's trainer_log.jsonl)."""
    if not path.exists():
        raise InputError("log file not found", file=str(path))
    if path.is_dir():
        raise InputError("is a directory, expected a log file", file=str(path))
    try:
        with path.open("rb") as stream:
            return diagnose_lines(iter_stream_lines(stream), source=str(path))
    except OSError as error:
        raise InputError(f"cannot read the log: {error.strerror or error}", file=str(path)) from error
