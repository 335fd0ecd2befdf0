"""Timing of the estimator: cold CLI start, one estimate() call, and the whole suggestion search.

Targets (issues 2 and 4): cold `vram-check estimate` < 0.5 s, one estimate call < 5 ms, the suggestion
search for one config < 100 ms. Prints numbers; asserts nothing.

    python benchmarks/estimate_bench.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from estimator.hub import ModelResolver
from estimator.memory import World, estimate
from estimator.plan import load_plan
from estimator.suggest import suggest
from rules.gpus import find_gpu
from rules.pipeline import check_config
from rules.policy import load_policy
from rules.sources import ParsedFiles, WorkingTree

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CONFIG = EXAMPLES / "configs" / "llama3_full_sft_ds3.yaml"
NO_FIT = EXAMPLES / "configs" / "qwen2.5_7b_full_sft_no_ds.yaml"


def timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def report(name: str, samples: list[float], target: float) -> None:
    p50 = statistics.median(samples)
    worst = max(samples)
    verdict = "ok" if p50 < target else "OVER TARGET"
    print(f"{name:<46} median {p50 * 1000:8.2f} ms   max {worst * 1000:8.2f} ms   "
          f"target < {target * 1000:.0f} ms  {verdict}")


def main() -> None:
    cli = [sys.executable, "-m", "bot.cli", "estimate", str(CONFIG), "--gpu", "A100-80GB", "--gpus", "8"]
    subprocess.run(cli, capture_output=True, check=False, cwd=ROOT)  # warm the OS file cache
    report("cold CLI: vram-check estimate (process)", timed(
        lambda: subprocess.run(cli, capture_output=True, check=True, cwd=ROOT), 10), 0.5)

    resolver = ModelResolver()
    plan = load_plan(CONFIG, EXAMPLES)
    model = resolver.resolve(plan.model_name_or_path)
    report("one estimate() call", timed(lambda: estimate(model, plan, World(8)), 2000), 0.005)

    gpu = find_gpu("A100-80GB")
    text = NO_FIT.read_text()
    files = WorkingTree(EXAMPLES)
    rel = NO_FIT.relative_to(EXAMPLES).as_posix()
    no_fit_plan = load_plan(NO_FIT, EXAMPLES)
    no_fit_model = resolver.resolve(no_fit_plan.model_name_or_path)
    report("suggestion search (one no-fit config)", timed(
        lambda: suggest(text, rel, no_fit_plan, no_fit_model, World(8, 2), gpu.usable_bytes, 0.10,
                        files.read_text), 50), 0.1)
    policy = load_policy((EXAMPLES / ".github" / "vram-check.yml").read_text())
    report("whole check of one config (all pools, sizing)", timed(
        lambda: check_config(rel, ParsedFiles(files), policy, resolver), 20), 0.5)


if __name__ == "__main__":
    main()
