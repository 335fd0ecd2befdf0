"""The runtime layer: what a real GPU adds to the traced tensors, and how far real runs scatter around it.

The phases in estimator/memory.py give `allocated` (live tensors, what torch.cuda.max_memory_allocated()
reports; checked against a trace of the real model). A real run adds what no trace sees:

* the caching allocator's slack: reserved = allocated × (1 + f) + floor, with f larger when every batch has
  another shape (LLaMA-Factory pads each batch to its longest row unless it packs) than with fixed shapes;
* outside the allocator: the CUDA context and loaded kernels, and NCCL's buffers in multi-GPU runs;
* the error band: the interval in which real peaks fall, from the leave-one-source-out residuals of the
  calibration (benchmarks/calibration/fit.py: the 2.5-97.5 % quantiles, which held 96 % of the measurements of
  sources left out of the fit); widened, and saying so, for a kind of setup with few measurements behind it.

The parameters are data, written by the calibration fit to estimator/data/runtime.json with the rows behind
each; docs/accuracy.md shows the fit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

Fit = Literal["fit", "tight", "no-fit"]
SETUP_CLASSES = ("single/lora", "single/qlora", "single/full", "multi/ddp", "multi/zero2", "multi/zero3")


@dataclass(frozen=True)
class Band:
    """Real peak / estimated peak at the low and high end of the calibration runs (cross-validated)."""

    low: float
    high: float
    rows: int  # measurements behind it
    sources: int  # independent publishers among them
    widened: bool = False  # too few measurements of this setup: the overall band, widened

    def describe(self) -> str:
        span = f"−{100 * (1 - self.low):.0f} % / +{100 * (self.high - 1):.0f} %"
        if self.widened:
            few = "no measurement" if self.rows == 0 else f"only {self.rows} measurement{'s' if self.rows > 1 else ''}"
            return f"{span}: {few} of this kind of setup, so the band of all measurements, widened"
        return (f"{span}: where real runs fell around the estimate in cross-validation "
                f"({self.rows} measurements of this kind of setup, {self.sources} sources)")


@dataclass(frozen=True)
class RuntimeParameters:
    reserved_fraction_fixed: float  # allocator slack when every batch has the same shape (packing)
    reserved_fraction_variable: float  # ... when batches are padded to their longest row (LF's default)
    reserved_floor_bytes: int
    context_bytes: int  # CUDA context + loaded kernels (outside the caching allocator)
    nccl_bytes: int  # NCCL communicator buffers per process when there is more than one GPU
    bands: Mapping[str, Band]
    overall: Band
    widen: float  # factor on the overall band's half-widths for a setup with few measurements
    min_rows: int  # measurements a setup needs for a band of its own
    basis: str  # where the numbers come from

    def band_for(self, setup: str) -> Band:
        """The band of all measurements (the per-setup subsets are too thin for quantiles of their own); widened
        for a kind of setup with fewer than `min_rows` measurements from at least two sources."""
        own = self.bands.get(setup)
        rows, sources = (own.rows, own.sources) if own is not None else (0, 0)
        if rows >= self.min_rows and sources >= 2:
            return Band(low=self.overall.low, high=self.overall.high, rows=rows, sources=sources)
        low = 1 - (1 - self.overall.low) * self.widen
        high = 1 + (self.overall.high - 1) * self.widen
        return Band(low=max(0.05, low), high=high, rows=rows, sources=sources, widened=True)


def _band(data: Mapping[str, Any]) -> Band:
    return Band(low=float(data["low"]), high=float(data["high"]), rows=int(data["rows"]),
                sources=int(data["sources"]))


@cache
def parameters() -> RuntimeParameters:
    """The fitted parameters (estimator/data/runtime.json, written by benchmarks/calibration/fit.py)."""
    data = json.loads(resources.files("estimator").joinpath("data/runtime.json").read_text(encoding="utf-8"))
    return RuntimeParameters(
        reserved_fraction_fixed=float(data["reserved_fraction_fixed"]),
        reserved_fraction_variable=float(data["reserved_fraction_variable"]),
        reserved_floor_bytes=int(data["reserved_floor_bytes"]),
        context_bytes=int(data["context_bytes"]),
        nccl_bytes=int(data["nccl_bytes"]),
        bands={name: _band(band) for name, band in data["bands"].items()},
        overall=_band(data["overall"]),
        widen=float(data["widen"]),
        min_rows=int(data["min_rows"]),
        basis=str(data["basis"]),
    )


@dataclass(frozen=True)
class RuntimeEstimate:
    reserved_bytes: int  # torch.cuda.max_memory_reserved()
    overhead_bytes: int  # CUDA context + NCCL, outside the caching allocator
    peak_bytes: int  # nvidia-smi: reserved + overhead
    low_bytes: int  # the error band on peak_bytes
    high_bytes: int
    band: Band
    setup: str


def setup_class(*, world_size: int, zero_stage: int, finetuning_type: str, quantized: bool) -> str:
    """The kind of setup a band is kept for: one GPU by method, several GPUs by how states are sharded."""
    if world_size == 1:
        if quantized:
            return "single/qlora"
        return "single/full" if finetuning_type in ("full", "freeze") else "single/lora"
    return {0: "multi/ddp", 1: "multi/zero2", 2: "multi/zero2", 3: "multi/zero3"}[zero_stage]


def runtime(allocated_bytes: int, *, fixed_shapes: bool, world_size: int, setup: str, states_bytes: int = 0,
            params: RuntimeParameters | None = None) -> RuntimeEstimate:
    """From traced `allocated` to what the device shows, with the band around it. The band's bottom never goes
    below `states_bytes` (the weights, gradients and optimizer states live at the peak: parameter counts are
    exact, so a real run cannot hold less; the band's width is the uncertainty of everything else)."""
    p = params or parameters()
    fraction = p.reserved_fraction_fixed if fixed_shapes else p.reserved_fraction_variable
    reserved = allocated_bytes + max(p.reserved_floor_bytes, math.ceil(fraction * allocated_bytes))
    overhead = p.context_bytes + (p.nccl_bytes if world_size > 1 else 0)
    peak = reserved + overhead
    band = p.band_for(setup)
    return RuntimeEstimate(reserved_bytes=reserved, overhead_bytes=overhead, peak_bytes=peak,
                           low_bytes=min(peak, max(states_bytes, math.floor(peak * band.low))),
                           high_bytes=math.ceil(peak * band.high), band=band,
                           setup=setup)


def judge_band(low_bytes: int, high_bytes: int, usable_bytes: int, headroom: float) -> Fit:
    """The verdict on the band, not on the point estimate (DESIGN.md policy, issue 12): "fit" only when the
    band's top stays below the headroom line, "no-fit" when even its bottom is above the usable memory,
    "tight" when the band crosses either line."""
    if high_bytes <= (1.0 - headroom) * usable_bytes:
        return "fit"
    if low_bytes > usable_bytes:
        return "no-fit"
    return "tight"
