"""Fit the runtime layer on published measurements, cross-validated by source, and write the band.

Input: benchmarks/calibration/cases.jsonl — one published measurement per line, already translated into the
estimator's inputs (a LLaMA-Factory YAML, the DeepSpeed JSON, GPUs, model config, what was measured, how
the run differs from what LLaMA-Factory would do; see CASES.md). For each case the estimator gives
`allocated` (the traced layer, estimator/memory.py); the runtime layer (estimator/runtime.py) adds

    reserved = allocated + max(floor, f_shapes · allocated)      f by batch shapes: fixed or variable
    nvidia-smi = reserved + context + NCCL (more than one GPU)

Each parameter is physical and is fitted only on the rows that measure it, within its physical range
(range ends from the literature, research/estimators.md §7): f on `reserved` rows, the context on
single-GPU nvidia-smi rows, NCCL on multi-GPU nvidia-smi rows. Whatever the parameters cannot explain stays
in the residuals and becomes the error band, not a fudge factor.

Cross-validation: every source (publisher) is left out in turn, the parameters are fitted on the others,
and the left-out rows are predicted; the published error figures and the band come from these residuals,
so they are what a new source would see. Band coverage is itself checked leave-one-source-out (the band
used for a source's rows is built without that source).

Run: `python -m benchmarks.calibration.fit [--write]` — prints the tables; --write updates
estimator/data/runtime.json (the parameters fitted on all rows, and the bands) and
benchmarks/results/calibration.json (per-row results, read by benchmarks/accuracy.py for docs/accuracy.md).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from estimator.errors import InputError
from estimator.launcher import parse_accelerate_config
from estimator.memory import World, estimate, setup_of
from estimator.model import model_spec_from_config
from estimator.plan import parse_plan
from estimator.runtime import Band, RuntimeParameters, parameters
from estimator.units import MiB
from rules.gpus import match_gpu

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CASES = HERE / "cases.jsonl"
MODEL_DIRS = (ROOT / "estimator" / "catalog", HERE / "models")
RUNTIME_JSON = ROOT / "estimator" / "data" / "runtime.json"
RESULTS_JSON = ROOT / "benchmarks" / "results" / "calibration.json"

# Physical ranges (research/estimators.md §7): allocator slack 0-50 % of allocated (5-20 % typical with fixed
# shapes, more when every batch has another shape and expandable segments are off); CUDA context 0.25-1.5 GiB
# (lazy loading ~0.3-0.5 GiB, eager and old CUDA ~1.3 GiB); NCCL
# 0-2 GiB per process for data parallelism on a node (nccl#1685: ~1.06 GB after init on 8×H100).
F_GRID = [i / 100 for i in range(0, 51)]
CONTEXT_GRID = [i * 32 * MiB for i in range(8, 49)]
NCCL_GRID = [i * 64 * MiB for i in range(0, 33)]
BAND_QUANTILES = (0.025, 0.975)  # the middle 95 % of the cross-validated residuals
MIN_ROWS = 8  # measurements a setup needs for a band of its own
WIDEN = 1.5  # a setup with fewer: the overall band's half-widths × 1.5
# Ways a run differs from LLaMA-Factory that change memory and that the estimator cannot express (and torchtune's
# and torchtitan's own FSDP2 wrapping): such rows are
# listed but kept out of the fit and the band (they would measure the other framework, not the runtime layer).
INCOMPARABLE = (
    "optimizer_in_bwd",  # the step runs inside backward, gradients freed per parameter (torchtune)
    "activation offloading",  # activations to CPU (torchtune), no LF equivalent
    "cewithchunkedoutputloss",  # chunked loss: no full-vocab fp32 logits (torchtune)
    "paged optimizer",  # optimizer states in unified memory, outside the allocator
    "torch.compile",  # fused kernels save other tensors
    "capped memory fraction",  # an A100 capped to stand in for a smaller card
    "device_map",  # layers split over GPUs (pipeline by device_map)
    "sequence parallel",
    "a cap the data does not reach",  # cutoff_len is only a cap: the real batches are far shorter
)
# ms-swift 1.x's Benchmark.md (the SW rows): its own trainer and LoRA tuner measure ~1.4× what HF Trainer + PEFT
# measure for the same run: Qwen-7B-Chat LoRA on every linear at 2048 fixed tokens is 28.1 GiB reserved there
# (SW-93, packed) and 20.7 GiB on nvidia-smi in Qwen's own table (QW-28, padded, 22.2e9 B). That is the other
# framework, not the runtime layer: listed with its residuals, kept out of the fit and the band.
INCOMPARABLE_ERAS = ("Benchmark.md",)


@dataclass(frozen=True)
class Row:
    """One evaluated measurement."""

    id: str
    source: str
    metric: str  # allocated | reserved | nvidia-smi | unknown
    outcome: str  # measured | oom | fits-upper-bound
    measured: int | None
    allocated: int
    states: int  # weights + gradients + optimizer states at the peak: the band's floor
    fixed_shapes: bool
    world_size: int
    setup: str
    exact: bool
    capacity: int | None
    comparable: bool
    note: str = ""


@dataclass
class Params:
    f_fixed: float
    f_variable: float
    floor: int
    context: int
    nccl: int
    fitted: dict[str, int] = field(default_factory=dict)  # parameter -> rows behind it

    def predict(self, row: Row, metric: str | None = None) -> int:
        kind = metric or row.metric
        if kind == "allocated":
            return row.allocated
        f = self.f_fixed if row.fixed_shapes else self.f_variable
        reserved = row.allocated + max(self.floor, math.ceil(f * row.allocated))
        if kind == "reserved":
            return reserved
        return reserved + self.context + (self.nccl if row.world_size > 1 else 0)


def _model_config(name: str) -> dict[str, Any]:
    """A case's model config: a path from the repository root, or a file name in the catalog folders."""
    for path in (ROOT / name, *(folder / name for folder in MODEL_DIRS)):
        if path.is_file():
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return data
    raise FileNotFoundError(name)


def evaluate(case: dict[str, Any]) -> Row | str:
    """The estimator's traced layer for one case, or why it cannot be evaluated."""
    try:
        config = _model_config(case["model_config"])
    except FileNotFoundError:
        return f"model config {case['model_config']} not available"
    deepspeed = case.get("deepspeed_json")

    def read_file(path: str) -> str:
        if deepspeed is not None:
            return json.dumps(deepspeed)
        raise FileNotFoundError(path)

    world = World(gpus_per_node=int(case["gpus_per_node"]), nodes=int(case.get("nodes") or 1))
    launcher = None
    if case.get("launcher"):  # an FSDP run: its launcher description as the accelerate config it amounts to
        from benchmarks.calibration.fsdp_cases import accelerate_config

        launcher = parse_accelerate_config(accelerate_config(case["launcher"], world.world_size), "accelerate.yaml")
    try:
        plan = parse_plan(case["yaml"], f"calibration/{case['id']}.yaml", read_file, world.world_size,
                          launcher=launcher)
        model = model_spec_from_config(config, case["model_id"])
        result = estimate(model, plan, world)
    except InputError as error:
        return f"estimator: {error}"
    if result.not_modelled:
        return f"not modelled: {', '.join(result.not_modelled)}"
    deviations = " ".join(case.get("deviations") or []).lower()
    own_wrapping = str((case.get("launcher") or {}).get("framework", "")) in ("torchtune", "torchtitan")
    comparable = not own_wrapping and not any(word in deviations for word in INCOMPARABLE) and not any(
        era in str(case.get("era", "")) for era in INCOMPARABLE_ERAS)
    setup = setup_of(model, plan, world)
    try:
        capacity: int | None = match_gpu(case["gpu"]).gpu.usable_bytes if case.get("gpu") else None
    except InputError:
        capacity = None  # the card is not stated: no verdict to check
    return Row(id=case["id"], source=case["source"], metric=case["metric"], outcome=case["outcome"],
               measured=case.get("measured_bytes"), allocated=result.allocated_bytes,
               states=sum(result.components[name] for name in ("weights", "gradients", "optimizer")),
               fixed_shapes=case.get("sequence") in ("fixed", "packed", "padded-to-max"),
               world_size=world.world_size, setup=setup, exact=bool(case.get("exact")),
               capacity=capacity, comparable=comparable,
               note="; ".join(case.get("deviations") or []))


def log_error(row: Row, params: Params, metric: str | None = None) -> float:
    assert row.measured is not None
    return math.log(row.measured / params.predict(row, metric))


def _score(rows: Sequence[Row], params: Params) -> float:
    """Summed |log error|, each source weighted equally (a publisher with 50 rows does not outvote one with 5)."""
    per_source: dict[str, list[float]] = {}
    for row in rows:
        per_source.setdefault(row.source, []).append(abs(log_error(row, params)))
    return sum(sum(errors) / len(errors) for errors in per_source.values())


GRIDS: dict[str, list[float]] = {"f_fixed": F_GRID, "f_variable": F_GRID, "context": CONTEXT_GRID,
                                 "nccl": NCCL_GRID}


def _measures(row: Row, name: str) -> bool:
    """Whether a row's metric depends on a parameter at all (allocated rows depend on none)."""
    if row.metric == "allocated":
        return False
    if name == "f_fixed":
        return row.fixed_shapes
    if name == "f_variable":
        return not row.fixed_shapes
    if row.metric == "reserved":
        return False
    return row.world_size > 1 if name == "nccl" else True


def fit(rows: Sequence[Row], prior: RuntimeParameters) -> Params:
    """The parameters that best explain the rows (coordinate descent over each parameter's physical range; the
    rows that do not depend on a parameter do not move it). A parameter no row measures keeps its literature
    value. Rows of unknown metric count as nvidia-smi figures: what a user of the card sees."""
    params = Params(prior.reserved_fraction_fixed, prior.reserved_fraction_variable, prior.reserved_floor_bytes,
                    prior.context_bytes, prior.nccl_bytes)
    usable = [row for row in rows if row.comparable and row.outcome == "measured" and row.measured]
    for _ in range(3):
        for name, grid in GRIDS.items():
            measuring = [row for row in usable if _measures(row, name)]
            if not measuring:
                continue
            kind = type(getattr(params, name))
            value = min(grid, key=lambda v, n=name, k=kind: _score(measuring, replace(params, **{n: k(v)})))
            setattr(params, name, kind(value))
            params.fitted[name] = len(measuring)
    return params


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def band_of(residuals: Sequence[float], sources: Iterable[str]) -> Band:
    return Band(low=math.exp(quantile(residuals, BAND_QUANTILES[0])),
                high=math.exp(quantile(residuals, BAND_QUANTILES[1])), rows=len(residuals),
                sources=len(set(sources)))


def bands(rows: Sequence[Row], residuals: dict[str, float]) -> tuple[dict[str, Band], Band]:
    """A band per setup class from the cross-validated residuals, and the overall band."""
    scored = [row for row in rows if row.id in residuals]
    per_setup: dict[str, Band] = {}
    for setup in sorted({row.setup for row in scored}):
        mine = [row for row in scored if row.setup == setup]
        per_setup[setup] = band_of([residuals[row.id] for row in mine], [row.source for row in mine])
    overall = band_of([residuals[row.id] for row in scored], [row.source for row in scored])
    return per_setup, overall


def runtime_parameters(params: Params, per_setup: dict[str, Band], overall: Band, basis: str) -> RuntimeParameters:
    return RuntimeParameters(reserved_fraction_fixed=params.f_fixed, reserved_fraction_variable=params.f_variable,
                             reserved_floor_bytes=params.floor, context_bytes=params.context, nccl_bytes=params.nccl,
                             bands=per_setup, overall=overall, widen=WIDEN, min_rows=MIN_ROWS, basis=basis)


@dataclass
class CrossValidation:
    residuals: dict[str, float]  # row id -> log(measured / predicted), predicted without the row's source
    inside: dict[str, bool]  # row id -> the measurement lies in its leave-one-source-out band
    above: dict[str, bool]  # row id -> measured above the band's top
    verdict_ok: dict[str, bool]  # OOM / fit outcome rows -> the band-top verdict agrees with what happened


def cross_validate(rows: Sequence[Row], prior: RuntimeParameters) -> CrossValidation:
    residuals: dict[str, float] = {}
    sources = sorted({row.source for row in rows})
    fits: dict[str, Params] = {}
    for source in sources:
        params = fit([row for row in rows if row.source != source], prior)
        fits[source] = params
        for row in rows:
            if row.source == source and row.comparable and row.outcome == "measured" and row.measured:
                residuals[row.id] = log_error(row, params)
    inside: dict[str, bool] = {}
    above: dict[str, bool] = {}
    verdict_ok: dict[str, bool] = {}
    for source in sources:
        others = [row for row in rows if row.source != source]
        per_setup, overall = bands(others, {k: v for k, v in residuals.items()
                                            if any(r.id == k for r in others)})
        held_out = runtime_parameters(fits[source], per_setup, overall, "cross-validation")
        for row in rows:
            if row.source != source:
                continue
            band = held_out.band_for(row.setup)
            predicted = fits[source].predict(row)
            if row.id in residuals and row.measured is not None:
                low, high = max(predicted * band.low, row.states), predicted * band.high
                inside[row.id] = low <= row.measured <= high
                above[row.id] = row.measured > high
            if row.outcome in ("oom", "fits-upper-bound") and row.capacity and row.comparable:
                peak = fits[source].predict(row, "nvidia-smi")
                top, bottom = peak * band.high, max(peak * band.low, row.states)
                if row.outcome == "oom":
                    verdict_ok[row.id] = top > row.capacity  # not called "fit": tight or no-fit
                else:
                    verdict_ok[row.id] = bottom <= row.capacity  # not called "no-fit"
    return CrossValidation(residuals, inside, above, verdict_ok)


def load_cases(path: Path = CASES) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def summary(rows: Sequence[Row], cv: CrossValidation) -> dict[str, Any]:
    def stats(ids: Sequence[str]) -> dict[str, Any]:
        errors = [abs(math.exp(cv.residuals[i]) - 1) for i in ids]
        if not errors:
            return {"rows": 0}
        return {"rows": len(errors), "median_abs_error": statistics.median(errors),
                "within_10pct": sum(e <= 0.10 for e in errors) / len(errors),
                "measured_above_estimate": sum(cv.residuals[i] > 0 for i in ids) / len(ids)}

    scored = [row.id for row in rows if row.id in cv.residuals]
    exact = [row.id for row in rows if row.id in cv.residuals and row.exact]
    fixed = [row.id for row in rows if row.id in cv.residuals and row.fixed_shapes]
    return {
        "all": stats(scored), "exact": stats(exact), "fixed_shapes": stats(fixed),
        "band_coverage": sum(cv.inside.values()) / max(1, len(cv.inside)),
        "above_band_top": sum(cv.above.values()) / max(1, len(cv.above)),
        "exact_above_band_top": sum(cv.above[i] for i in exact if i in cv.above) / max(1, len(exact)),
        "verdicts_right": sum(cv.verdict_ok.values()) / max(1, len(cv.verdict_ok)),
        "verdict_rows": len(cv.verdict_ok),
        "by_source": {source: stats([row.id for row in rows if row.source == source and row.id in cv.residuals])
                      for source in sorted({row.source for row in rows})},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update estimator/data/runtime.json and the results")
    parser.add_argument("--cases", type=Path, default=CASES)
    args = parser.parse_args(argv)
    prior = parameters()
    evaluated = [(case, evaluate(case)) for case in load_cases(args.cases)]
    rows = [row for _, row in evaluated if isinstance(row, Row)]
    skipped = [(case["id"], reason) for case, reason in evaluated if isinstance(reason, str)]
    cv = cross_validate(rows, prior)
    final = fit(rows, prior)
    per_setup, overall = bands(rows, cv.residuals)
    figures = summary(rows, cv)
    print(json.dumps({"parameters": {"f_fixed": final.f_fixed, "f_variable": final.f_variable,
                                     "context_MiB": final.context / MiB, "nccl_MiB": final.nccl / MiB,
                                     "fitted_rows": final.fitted},
                      "bands": {k: [round(b.low, 3), round(b.high, 3), b.rows, b.sources]
                                for k, b in per_setup.items()},
                      "overall": [round(overall.low, 3), round(overall.high, 3), overall.rows],
                      "summary": figures, "skipped": len(skipped)}, indent=2))
    if args.write:
        used = [r for r in rows if r.id in cv.residuals]
        basis = (f"fitted on {len(used)} published measurements from {len({r.source for r in used})} sources "
                 f"({len(rows)} evaluated; benchmarks/calibration/fit.py, leave-one-source-out band)")
        data = {"basis": basis, "reserved_fraction_fixed": final.f_fixed,
                "reserved_fraction_variable": final.f_variable, "reserved_floor_bytes": final.floor,
                "context_bytes": final.context, "nccl_bytes": final.nccl, "fitted_rows": final.fitted,
                "overall": {"low": overall.low, "high": overall.high, "rows": overall.rows, "sources": overall.sources},
                "bands": {name: {"low": b.low, "high": b.high, "rows": b.rows, "sources": b.sources}
                          for name, b in per_setup.items()},
                "widen": WIDEN, "min_rows": MIN_ROWS}
        RUNTIME_JSON.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        results = {"summary": figures, "skipped": skipped, "rows": [
            {"id": r.id, "source": r.source, "metric": r.metric, "outcome": r.outcome, "measured": r.measured,
             "allocated": r.allocated, "predicted": final.predict(r), "setup": r.setup, "exact": r.exact,
             "comparable": r.comparable, "cv_residual": cv.residuals.get(r.id), "inside": cv.inside.get(r.id),
             "verdict_ok": cv.verdict_ok.get(r.id), "note": r.note} for r in rows]}
        RESULTS_JSON.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
