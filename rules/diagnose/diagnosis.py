"""The values a diagnosis is made of: plain dataclasses, built by the scanner, read by the renderers."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Frame:
    """One traceback frame: file, line, function, and the source line printed under it (if any)."""

    file: str
    line: int | None
    function: str
    code: str = ""

    def describe(self) -> str:
        if self.file == "?":  # a frame header cut before its file name
            return f"line {self.line} in {self.function}"
        short = "/".join(self.file.split("/")[-2:])
        where = f"{short}:{self.line}" if self.line is not None else short
        return f"{where} in {self.function}"


@dataclass(frozen=True)
class Cause:
    """A likely cause, one line, with the number behind it."""

    id: str
    message: str


@dataclass
class OomEvent:
    """One out-of-memory error found in the log, with every number its message carries (bytes)."""

    kind: str  # "cuda", "npu", "xpu", "mps", "nccl", "host", "other"
    line: int  # 1-based line of the log where the message starts
    message: str  # the message as printed (joined when the terminal wrapped it)
    exception: str | None = None  # e.g. "torch.OutOfMemoryError", "RuntimeError"
    rank: int | None = None  # from a "[rankN]:" prefix
    device: str | None = None  # "GPU", "NPU", ...
    device_index: int | None = None
    requested_bytes: int | None = None
    capacity_bytes: int | None = None
    free_bytes: int | None = None
    allowed_bytes: int | None = None  # set when a memory fraction limits the process
    process_in_use_bytes: int | None = None  # "this process has X memory in use" / "Process N has X"
    allocated_bytes: int | None = None  # allocated by PyTorch
    reserved_bytes: int | None = None  # reserved (cached) by PyTorch
    reserved_unallocated_bytes: int | None = None
    complete: bool = True  # False when the message was cut before its numbers
    frames: list[Frame] = field(default_factory=list)
    phase: str = "unknown"
    phase_evidence: str = ""
    causes: list[Cause] = field(default_factory=list)

    @property
    def outside_allocator_bytes(self) -> int | None:
        """Device memory neither free nor held by PyTorch's allocator: CUDA context, NCCL, other processes."""
        if self.capacity_bytes is None or self.free_bytes is None:
            return None
        held = self.process_in_use_bytes if self.process_in_use_bytes is not None else self.reserved_bytes
        if held is None:
            return None
        return max(self.capacity_bytes - self.free_bytes - held, 0)

    def same_failure(self, other: OomEvent) -> bool:
        """The same OOM seen on another rank (identical numbers and phase)."""
        return (self.kind, self.phase, self.requested_bytes, self.capacity_bytes, self.allocated_bytes) == (
            other.kind,
            other.phase,
            other.requested_bytes,
            other.capacity_bytes,
            other.allocated_bytes,
        )


@dataclass
class MeasuredPeaks:
    """The largest memory figures a run logged about itself (bytes)."""

    allocated_bytes: int | None = None  # torch.cuda.max_memory_allocated (LF RECORD_VRAM, DeepSpeed Max_MA)
    reserved_bytes: int | None = None  # torch.cuda.max_memory_reserved (LF RECORD_VRAM, DeepSpeed Max_CA)
    device_used_bytes: int | None = None  # nvidia-smi "used / total"
    device_total_bytes: int | None = None
    sources: list[str] = field(default_factory=list)
    samples: int = 0

    @property
    def found(self) -> bool:
        return self.samples > 0


@dataclass
class LogContext:
    """What the log says about the run besides the errors: config values, LF notices, framework."""

    settings: dict[str, str] = field(default_factory=dict)  # stage, cutoff_len, batch sizes, ... as logged
    trainable_params: int | None = None
    fp32_upcast_logged: bool = False  # LF: "Upcasting trainable params to float32."
    deepspeed: bool = False
    zero_stage: int | None = None
    preference_stage: str | None = None  # "dpo"/"kto"/"ppo"/... when the log shows one


@dataclass
class EstimateComparison:
    """Estimate (from --config) against what the log measured or the OOM reported."""

    model_id: str
    gpu: str | None
    capacity_bytes: int | None
    estimated_peak_bytes: int
    estimated_allocated_bytes: int
    estimated_reserved_bytes: int
    components: dict[str, int]
    rows: list[tuple[str, int, int]] = field(default_factory=list)  # (what, estimated, measured)
    suggestions: list[dict[str, object]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Diagnosis:
    """Everything `vram-check diagnose` found in one log."""

    source: str
    lines_read: int = 0
    events: list[OomEvent] = field(default_factory=list)
    events_dropped: int = 0  # OOM messages beyond the kept maximum (counted, not stored)
    peaks: MeasuredPeaks = field(default_factory=MeasuredPeaks)
    context: LogContext = field(default_factory=LogContext)
    comparison: EstimateComparison | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def oom_found(self) -> bool:
        return bool(self.events)
