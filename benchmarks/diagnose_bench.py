"""Benchmark: diagnose a generated 1 GB training log in bounded memory.

    nice .venv/bin/python benchmarks/diagnose_bench.py [--size-mb 1024]

Writes the log into a temporary directory (deleted afterwards, also on error), with LLaMA-Factory-
style step lines, RECORD_VRAM jsonl lines, nvidia-smi rows, a traceback and the real OOM message of
tests/fixtures/oom-logs/llamafactory-1221-adamw-exp-avg-sq.log near the end; reports the time and
the peak RSS (resource.getrusage, ru_maxrss in KiB on Linux) before and after diagnosing it.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rules.diagnose import diagnose_file  # noqa: E402

OOM = (ROOT / "tests/fixtures/oom-logs/llamafactory-1221-adamw-exp-avg-sq.log").read_text()


def _block(step: int) -> str:
    return (
        f"[INFO|2025-01-04 14:23:13] llamafactory.train.callbacks:157 >> {{'loss': 1.{step % 97:02d}, "
        f"'grad_norm': 0.5, 'learning_rate': 4.9e-05, 'epoch': 0.{step % 10}}}\n"
        + json.dumps({"current_steps": step, "total_steps": 10**7, "loss": 1.2, "vram_allocated": 20 + step % 7,
                      "vram_reserved": 24.5}) + "\n"
        + f"|   0  NVIDIA A100-SXM4-80GB  On | 00000000:07:00.0 Off | {40000 + step % 1000}MiB / 81920MiB |\n"
        + f" {step % 100:3d}%|███▍      | {step}/10000000 [01:02<10:00:00,  1.23s/it]\n"
    )


def write_log(path: Path, size_bytes: int) -> int:
    written = 0
    step = 0
    with path.open("w", encoding="utf-8") as out:
        while written < size_bytes:
            chunk = "".join(_block(step + i) for i in range(1000))
            out.write(chunk)
            written += len(chunk.encode())
            step += 1000
        tail = 'Traceback (most recent call last):\n  File "/opt/torch/optim/adamw.py", line 599, in ' \
               "_multi_tensor_adamw\n" + OOM
        out.write(tail)
        written += len(tail.encode())
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vram-check-bench-") as folder:
        log = Path(folder) / "train.log"
        size = write_log(log, args.size_mb * 1024 * 1024)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        diagnosis = diagnose_file(log)
        elapsed = time.perf_counter() - started
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert not Path(folder).exists()
    event = diagnosis.events[0] if diagnosis.events else None
    print(f"log: {size / 2**20:,.0f} MiB, {diagnosis.lines_read:,} lines (deleted afterwards)")
    print(f"time: {elapsed:.1f} s ({size / 2**20 / elapsed:,.1f} MiB/s)")
    print(f"max RSS: {rss_before / 1024:.1f} MiB before, {rss_after / 1024:.1f} MiB after diagnosing")
    print(f"found: {len(diagnosis.events)} OOM, phase {event.phase if event else '-'}, "
          f"peaks: {diagnosis.peaks.samples:,} samples, max allocated {diagnosis.peaks.allocated_bytes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
