"""Measure real training-step memory on a CUDA GPU over a grid like the oracle's, into a CSV.

Each point runs in a fresh subprocess (so the caching allocator and the CUDA context start clean):
build the random-init transformers model from a bundled config.json, prepare it exactly as the
oracle does (benchmarks/oracle/lf_setup.py: LF dtype rules, fp32 cast, LF reentrant checkpointing,
PEFT LoRA, freeze), run ``--steps`` HF-Trainer-style steps (autocast bf16 + accelerate's
fp32 output conversion, loss.backward, clip_grad_norm_, fused AdamW, zero_grad), and record
``torch.cuda.max_memory_allocated``, ``max_memory_reserved`` and NVML used memory (nvidia-smi) at
the end, plus per-phase allocated peaks.  FA2 uses the real ``flash_attention_2`` (needs flash-attn).

CPU check (no GPU): ``python -m benchmarks.gpu.run_grid --device cpu --tiny --out /tmp/x.csv``
runs the same code on a 2-layer model with real CPU tensors (memory columns from the tracker).

GPU run (one prepared script, about 10 minutes on one H100 for the default grid):
``python -m benchmarks.gpu.run_grid --out benchmarks/results/gpu_grid.csv --budget-s 540``
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

CATALOG = REPO_ROOT / "estimator" / "catalog"
GPU_POINTS: list[dict[str, Any]] = [
    # Qwen2.5-0.5B at full depth: every regime; 8B-class widths at reduced depth (compare with the oracle
    # traced at the same depth via benchmarks/oracle/trace.py --layers N).
    *(
        {"config": "Qwen__Qwen2.5-0.5B.json", "method": m, "attention": a, "gc": gc, "batch": b, "cutoff": c}
        for m in ("full", "pure_bf16", "lora", "freeze")
        for gc in (1, 0)
        for a in ("sdpa",)
        for b, c in ((1, 512), (1, 2048), (2, 4096))
    ),
    *(
        {"config": "Qwen__Qwen2.5-0.5B.json", "method": "full", "attention": a, "gc": gc, "batch": 1, "cutoff": 2048}
        for a in ("eager", "fa2")
        for gc in (1, 0)
    ),
    *(
        {"config": cfg, "layers": 4, "method": m, "attention": "sdpa", "gc": 1, "batch": 1, "cutoff": 2048}
        for cfg in ("meta-llama__Meta-Llama-3-8B.json", "Qwen__Qwen2.5-7B.json", "mistralai__Mistral-7B-v0.1.json")
        for m in ("full", "pure_bf16", "lora")
    ),
]
TINY_POINTS = [
    {"config": "Qwen__Qwen2.5-0.5B.json", "layers": 2, "method": m, "attention": a, "gc": gc, "batch": 1, "cutoff": 128}
    for m in ("full", "lora")
    for a in ("sdpa", "eager")
    for gc in (1, 0)
]
COLUMNS = [
    "config", "layers", "method", "attention", "gc", "batch", "cutoff", "device", "max_memory_allocated",
    "max_memory_reserved", "nvml_used", "nvml_used_before", "phase_peaks", "torch", "transformers", "gpu",
    "seconds", "error",
]  # fmt: skip


def _method(point: dict[str, Any]) -> Any:
    from benchmarks.oracle.lf_setup import Method

    name = point["method"]
    return Method(
        finetuning_type="full" if name == "pure_bf16" else name,
        pure_bf16=name == "pure_bf16",
        bf16=name != "pure_bf16",
        gradient_checkpointing=bool(point["gc"]),
        attention=point["attention"],
    )


def _nvml_used() -> int | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i",
             os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]],
            capture_output=True, text=True, timeout=20, check=True,
        )  # fmt: skip
        return int(out.stdout.strip().splitlines()[0]) * 2**20
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def measure(point: dict[str, Any], device: str, steps: int) -> dict[str, Any]:
    """One point, in this process: build, prepare, train ``steps`` steps, read the counters."""
    import torch
    import transformers

    from benchmarks.oracle.lf_setup import checkpoint_dtype, prepare
    from benchmarks.oracle.trace import _forward, build_config
    from benchmarks.oracle.tracker import LiveStorageTracker, tracking

    started = time.perf_counter()
    nvml_before = _nvml_used() if device == "cuda" else None
    config = json.loads((CATALOG / point["config"]).read_text())
    hf_config = build_config(config, point.get("layers"))
    method = _method(point)
    attn = {"sdpa": "sdpa", "eager": "eager", "fa2": "flash_attention_2"}[method.attention]
    tracker = LiveStorageTracker() if device == "cpu" else None
    phases: dict[str, int] = {}
    ctx = tracking(tracker) if tracker is not None else _nullcontext()
    with ctx, torch.device(device):
        model = transformers.AutoModelForCausalLM.from_config(
            hf_config, dtype=checkpoint_dtype(hf_config), attn_implementation=attn
        )
        model = prepare(model, method).to(device)
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-5, fused=True)
        amp = method.bf16 and not method.pure_bf16
        forward = _forward(model, amp, device_type=device)
        shape = (point["batch"], point["cutoff"])
        input_ids = torch.randint(0, hf_config.get_text_config().vocab_size, shape)
        labels = input_ids.clone()

        def mark(name: str) -> None:
            if device == "cuda":
                torch.cuda.synchronize()
                phases[name] = torch.cuda.max_memory_allocated()
                torch.cuda.reset_peak_memory_stats()  # reserved peak is re-read below from the phase max
            elif tracker is not None:
                tracker.phase(name)

        overall_reserved = 0
        for step in range(1, steps + 1):
            mark(f"start{step}")
            outputs = forward(input_ids=input_ids, labels=labels, use_cache=False)
            loss = outputs.loss
            del outputs
            mark(f"fwd{step}")
            loss.backward()
            del loss
            mark(f"bwd{step}")
            torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if device == "cuda":
                overall_reserved = max(overall_reserved, torch.cuda.max_memory_reserved())
            mark(f"opt{step}")
    if device == "cuda":
        allocated = max(phases.values())
        reserved = overall_reserved
        nvml = _nvml_used()
        gpu = torch.cuda.get_device_name()
    else:
        assert tracker is not None
        tracker.close()
        phases = {p.name: p.peak for p in tracker.phases}
        allocated, reserved, nvml, gpu = tracker.peak, None, None, "cpu"
    return {
        **{k: point.get(k, "") for k in ("config", "layers", "method", "attention", "gc", "batch", "cutoff")},
        "device": device,
        "max_memory_allocated": allocated,
        "max_memory_reserved": reserved,
        "nvml_used": nvml,
        "nvml_used_before": nvml_before,
        "phase_peaks": json.dumps(phases),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "gpu": gpu,
        "seconds": round(time.perf_counter() - started, 1),
        "error": "",
    }


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _child(point_json: str, device: str, steps: int) -> int:
    point = json.loads(point_json)
    try:
        result = measure(point, device, steps)
    except Exception as exc:  # an OOM or a missing kernel is a result, not a crash
        result = {**point, "device": device, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    print("RESULT " + json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--tiny", action="store_true", help="2-layer points, 128 tokens (CPU check)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "gpu_grid.csv")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--budget-s", type=float, default=540.0, help="stop starting new points after this")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child, args.device, args.steps)
    points = TINY_POINTS if args.tiny else GPU_POINTS
    args.out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with args.out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for index, point in enumerate(points, 1):
            if time.perf_counter() - started > args.budget_s:
                print(f"budget reached after {index - 1} points")
                break
            cmd = [sys.executable, "-m", "benchmarks.gpu.run_grid", "--device", args.device, "--steps",
                   str(args.steps), "--child", json.dumps(point)]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
            if lines:
                result = json.loads(lines[-1][len("RESULT ") :])
            else:
                result = {**point, "device": args.device, "error": proc.stderr.strip()[-300:]}
            writer.writerow(result)
            handle.flush()
            print(f"[{index}/{len(points)}] {point} -> {result.get('max_memory_allocated')} {result.get('error', '')}")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
