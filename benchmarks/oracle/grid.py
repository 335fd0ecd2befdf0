"""Trace the accuracy grid and write benchmarks/results/oracle_grid.csv (one row per point).

Models: Llama-3-8B, Qwen2.5-7B, Qwen2.5-0.5B, Mistral-7B, Gemma-2-9B (full depth, no layer
extrapolation: see docs/accuracy.md for why).  Methods: full (fp32 cast + bf16 AMP), pure_bf16,
LoRA (r 8, all linears, bf16 AMP), freeze (last 2 layers, bf16 AMP) × gradient checkpointing
on/off × attention.  SDPA runs at every shape; eager and FA2 at 1×2048 (their difference from SDPA
does not depend on the shape in a way the grid needs twice).  Gemma-2 has no SDPA in transformers
5.24 (it refuses to load), so it runs eager and FA2 at every shape.

Columns hold the LLaMA-Factory YAML knobs, so ``compare.py`` can rebuild the YAML of each row.
Run in the background: ``nice .venv-oracle/bin/python -m benchmarks.oracle.grid [--quick]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.oracle.lf_setup import Method
from benchmarks.oracle.trace import Shape, run_trace

REPO_ROOT = Path(__file__).resolve().parents[2]
CATALOG = REPO_ROOT / "estimator" / "catalog"
OUTPUT = REPO_ROOT / "benchmarks" / "results" / "oracle_grid.csv"

MODELS = {
    "meta-llama/Meta-Llama-3-8B": "meta-llama__Meta-Llama-3-8B.json",
    "Qwen/Qwen2.5-7B": "Qwen__Qwen2.5-7B.json",
    "Qwen/Qwen2.5-0.5B": "Qwen__Qwen2.5-0.5B.json",
    "mistralai/Mistral-7B-v0.1": "mistralai__Mistral-7B-v0.1.json",
    "google/gemma-2-9b": "google__gemma-2-9b.json",
}
SHAPES = (Shape(1, 512), Shape(1, 2048), Shape(2, 8192))
ATTENTION_SHAPE = Shape(1, 2048)
LF_FLASH_ATTN = {"sdpa": "sdpa", "eager": "disabled", "fa2": "fa2"}  # LF model_args.flash_attn values
NO_SDPA = {"google/gemma-2-9b"}  # transformers 5.24: Gemma2 refuses attn_implementation="sdpa"

COLUMNS = [
    "model", "config", "finetuning_type", "bf16", "pure_bf16", "disable_gradient_checkpointing",
    "flash_attn", "per_device_train_batch_size", "cutoff_len", "lora_rank", "freeze_trainable_layers",
    "layers", "oracle_peak_bytes", "oracle_peak_raw_bytes", "fwd1", "bwd1", "opt1", "fwd2", "bwd2", "opt2",
    "after_model_bytes", "weights_bytes", "gradients_bytes", "optimizer_bytes", "trainable_params",
    "total_params", "trace_seconds",
]  # fmt: skip


@dataclass(frozen=True)
class Point:
    model: str
    method: Method
    shape: Shape


def methods() -> Iterator[Method]:
    for gc in (True, False):
        yield Method("full", gradient_checkpointing=gc)
        yield Method("full", pure_bf16=True, bf16=False, gradient_checkpointing=gc)
        yield Method("lora", gradient_checkpointing=gc)
        yield Method("freeze", gradient_checkpointing=gc)


def points(models: list[str]) -> Iterator[Point]:
    """Every grid point, models interleaved so that a partial run still covers every model."""
    per_model = [list(_model_points(model)) for model in models]
    for index in range(max(len(p) for p in per_model)):
        for model_points in per_model:
            if index < len(model_points):
                yield model_points[index]


def _model_points(model: str) -> Iterator[Point]:
    for base in methods():
        if model in NO_SDPA:
            for attention in ("eager", "fa2"):
                for shape in SHAPES:
                    yield Point(model, _with_attention(base, attention), shape)
            continue
        for shape in SHAPES:
            yield Point(model, base, shape)
        for attention in ("eager", "fa2"):
            yield Point(model, _with_attention(base, attention), ATTENTION_SHAPE)


def _with_attention(method: Method, attention: str) -> Method:
    return Method(
        method.finetuning_type,
        method.pure_bf16,
        method.bf16,
        method.gradient_checkpointing,
        attention,
        method.lora_rank,
        method.lora_alpha,
        method.freeze_trainable_layers,
    )


def row(point: Point) -> dict[str, object]:
    config = json.loads((CATALOG / MODELS[point.model]).read_text())
    result = run_trace(config, point.method, point.shape)
    method = point.method
    return {
        "model": point.model,
        "config": MODELS[point.model],
        "finetuning_type": method.finetuning_type,
        "bf16": method.bf16 and not method.pure_bf16,
        "pure_bf16": method.pure_bf16,
        "disable_gradient_checkpointing": not method.gradient_checkpointing,
        "flash_attn": LF_FLASH_ATTN[method.attention],
        "per_device_train_batch_size": point.shape.batch,
        "cutoff_len": point.shape.cutoff,
        "lora_rank": method.lora_rank,
        "freeze_trainable_layers": method.freeze_trainable_layers,
        "layers": result.layers,
        "oracle_peak_bytes": result.peak,
        "oracle_peak_raw_bytes": result.peak_raw,
        **{name: result.phases.get(name, "") for name in ("fwd1", "bwd1", "opt1", "fwd2", "bwd2", "opt2")},
        "after_model_bytes": result.after_model,
        "weights_bytes": result.weights,
        "gradients_bytes": result.gradients,
        "optimizer_bytes": result.optimizer,
        "trainable_params": result.trainable,
        "total_params": result.total_params,
        "trace_seconds": result.seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUTPUT)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    todo = list(points(args.models))
    with args.out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for index, point in enumerate(todo, 1):
            data = row(point)
            writer.writerow(data)
            handle.flush()
            print(
                f"[{index}/{len(todo)}] {point.model} {point.method.finetuning_type} pure={point.method.pure_bf16} "
                f"gc={point.method.gradient_checkpointing} {point.method.attention} "
                f"{point.shape.batch}x{point.shape.cutoff}: {data['oracle_peak_bytes']:,} B "
                f"({data['trace_seconds']} s)"
            )
            sys.stdout.flush()
    print(f"{len(todo)} points in {time.perf_counter() - started:.0f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
