"""With --config: the estimator's per-GPU estimate set against what the log measured or the OOM reported.

The estimate's `allocated_bytes`/`reserved_bytes` are what torch.cuda.max_memory_allocated()/
max_memory_reserved() would report (DESIGN.md), so they are compared with RECORD_VRAM's
vram_allocated/vram_reserved, DeepSpeed's Max_MA/Max_CA and, at an OOM, with PyTorch's "allocated"
plus the failed request (a lower bound of the peak the run needed). `peak_bytes` (reserved + CUDA
context + communication buffers) is compared with nvidia-smi's used memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from estimator.hub import ModelResolver, Resolver
from rules.diagnose.diagnosis import Diagnosis, EstimateComparison
from rules.diagnose.sizes import format_bytes

# Our phase ids -> the estimator's phase names (estimator/memory.py Estimate.phases).
_ESTIMATE_PHASE = {
    "forward": "forward",
    "loss-logits": "forward",
    "backward": "backward",
    "optimizer-step": "optimizer step",
}


def _rows(
    diagnosis: Diagnosis, allocated: int, reserved: int, peak: int, phases: dict[str, int]
) -> list[tuple[str, int, int]]:
    peaks = diagnosis.peaks
    rows: list[tuple[str, int, int]] = []
    if peaks.allocated_bytes:
        rows.append(("max allocated (measured)", allocated, peaks.allocated_bytes))
    if peaks.reserved_bytes:
        rows.append(("max reserved (measured)", reserved, peaks.reserved_bytes))
    if peaks.device_used_bytes:
        rows.append(("device memory used (nvidia-smi)", peak, peaks.device_used_bytes))
    for event in diagnosis.events[:1]:
        if event.allocated_bytes is not None and event.requested_bytes is not None:
            # At the OOM the run needed at least what it held plus what it asked for.
            phase = _ESTIMATE_PHASE.get(event.phase, "")
            estimated = phases.get(phase, allocated)
            label = f"allocated in {phase}" if phase in phases else "allocated at the peak"
            measured = event.allocated_bytes + event.requested_bytes
            rows.append((f"{label} vs held + asked at the OOM (lower bound)", estimated, measured))
    return rows


def compare_with_estimate(
    diagnosis: Diagnosis,
    config: Path,
    model_ref: str | None,
    gpu_name: str | None,
    gpus_per_node: int,
    nodes: int,
    repo_root: Path | None = None,
    resolver: Resolver | None = None,
) -> EstimateComparison:
    """Estimate the config and fill the comparison rows and, after an OOM, suggestions. `repo_root` is where
    the config's DeepSpeed path resolves (the config repository); default: the config's folder."""
    from estimator.memory import World, estimate
    from estimator.plan import load_plan

    root = (repo_root or config.parent).resolve()
    plan = load_plan(config, root)
    model = (resolver or ModelResolver()).resolve(model_ref or plan.model_name_or_path)
    world = World(gpus_per_node=gpus_per_node, nodes=nodes)
    result = estimate(model, plan, world)
    capacity: int | None = None
    gpu_label: str | None = None
    notes: list[str] = []
    if gpu_name is not None:
        from rules.gpus import match_gpu

        match = match_gpu(gpu_name)
        capacity, gpu_label = match.gpu.usable_bytes, match.gpu.describe
        if match.note:
            notes.append(match.note)
    elif diagnosis.events and diagnosis.events[0].capacity_bytes is not None:
        capacity = diagnosis.events[0].capacity_bytes
        gpu_label = "the GPU in the log"
    comparison = EstimateComparison(
        model_id=model.model_id,
        gpu=gpu_label,
        capacity_bytes=capacity,
        estimated_peak_bytes=result.peak_bytes,
        estimated_allocated_bytes=result.allocated_bytes,
        estimated_reserved_bytes=result.reserved_bytes,
        components=dict(result.components),
        rows=_rows(diagnosis, result.allocated_bytes, result.reserved_bytes, result.peak_bytes, dict(result.phases)),
        notes=notes,
    )
    if diagnosis.oom_found and capacity is not None:
        if result.peak_bytes > capacity:
            notes.append(
                f"the estimate predicted this OOM: peak {format_bytes(result.peak_bytes)} > "
                f"{format_bytes(capacity)} usable ({result.peak_phase})"
            )
        else:
            notes.append(
                f"the estimate did not predict this OOM: peak {format_bytes(result.peak_bytes)} fits "
                f"{format_bytes(capacity)} usable; the causes above name what it may have missed"
            )
    if diagnosis.oom_found and capacity is not None:
        comparison.suggestions = _suggestions(config, root, model, plan, world, capacity, notes)
    return comparison


def _suggestions(
    config: Path, root: Path, model: Any, plan: Any, world: Any, capacity: int, notes: list[str]
) -> list[dict[str, object]]:
    from estimator.suggest import suggest
    from rules.sources import WorkingTree

    files = WorkingTree(root)
    path = config.resolve().relative_to(root).as_posix() if config.resolve().is_relative_to(root) else config.name
    found: list[dict[str, object]] = []
    for item in suggest(files.read_text(path), path, plan, model, world, capacity, read_file=files.read_text):
        found.append(
            {"changes": dict(item.changes), "peak_bytes": item.peak_bytes, "verdict": item.verdict, "why": item.why}
        )
    return found
