"""Check that traced memory is linear in the layer count, so reduced-depth traces can be extrapolated.

For a small real model (Qwen2.5-0.5B, 24 layers; Gemma-2-2B, 26 layers) and every regime of the grid,
trace the full depth and compare with the linear extrapolation from 4- and 6-layer traces, phase by
phase.  Prints the worst relative difference.

Run: ``nice .venv-oracle/bin/python -m benchmarks.oracle.linearity``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks.oracle.lf_setup import Method
from benchmarks.oracle.trace import Shape, run_trace, trace_extrapolated

CATALOG = Path(__file__).resolve().parents[2] / "estimator" / "catalog"
MODELS = ("Qwen__Qwen2.5-0.5B.json", "google__gemma-2-2b.json")
METHODS = (
    Method("full", gradient_checkpointing=True),
    Method("full", gradient_checkpointing=False, attention="eager"),
    Method("full", pure_bf16=True, bf16=False, gradient_checkpointing=False, attention="fa2"),
    Method("lora", gradient_checkpointing=True),
    Method("lora", gradient_checkpointing=False),
    Method("freeze", gradient_checkpointing=True),
    Method("freeze", gradient_checkpointing=False, attention="fa2"),
)


def main() -> int:
    worst = 0.0
    shape = Shape(1, 1024)
    for name in MODELS:
        config = json.loads((CATALOG / name).read_text())
        for method in METHODS:
            full = run_trace(config, method, shape)
            extrapolated = trace_extrapolated(config, method, shape, (4, 6))
            diffs = {
                phase: (extrapolated.phases[phase] - full.phases[phase]) / full.phases[phase] for phase in full.phases
            }
            overall = (extrapolated.peak - full.peak) / full.peak
            worst = max(worst, abs(overall), *(abs(d) for d in diffs.values()))
            print(
                f"{name:28s} {method.finetuning_type:6s} gc={int(method.gradient_checkpointing)} "
                f"{method.attention:5s} pure={int(method.pure_bf16)} full-depth peak {full.peak:>14,d} "
                f"extrapolated {extrapolated.peak:>14,d} diff {overall:+.5%} "
                f"worst phase {max(diffs.values(), key=abs):+.5%} ({full.seconds:.1f} s)"
            )
            sys.stdout.flush()
    print(f"worst relative difference, any phase: {worst:.5%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
