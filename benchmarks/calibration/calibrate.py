"""Estimator vs published measurements (benchmarks/calibration/measured.csv, see SOURCES.md).

For every row that a LLaMA-Factory YAML can express with a bundled catalog config (single GPU,
ms-swift benchmark rows on Qwen-1 1.8B/7B/72B and Qwen2.5-7B-Instruct), the YAML is generated, the
estimator run, and the estimate held against the measured metric: ``max_memory_reserved`` ->
``reserved_bytes``, allocated -> ``allocated_bytes``, nvidia-smi -> ``peak_bytes``.  Rows are
"exact" when the source marks them core (fully stated, near-fixed token count); the others are
printed for information.  Rows that need a model outside the catalog, a tuner LF lacks, several
GPUs or BERT classification are listed as not expressible with the reason.

Run: ``.venv/bin/python -m benchmarks.calibration.calibrate``
"""

from __future__ import annotations

import csv
import json
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from estimator.memory import Estimate, World, estimate
from estimator.model import model_spec_from_config
from estimator.plan import parse_plan

HERE = Path(__file__).resolve().parent
CATALOG = HERE.parents[1] / "estimator" / "catalog"
UNITS = {"GiB": 2**30, "MiB": 2**20, "GB": 10**9, "MB": 10**6, "G": 2**30}
# measured model -> (catalog config, Hub id used in the YAML); same architecture file (catalog SOURCES.md)
MODELS = {
    "Qwen/Qwen-1_8B-Chat": "Qwen__Qwen-1_8B.json",
    "Qwen/Qwen-7B-Chat": "Qwen__Qwen-7B.json",
    "Qwen/Qwen-72B-Chat": "Qwen__Qwen-72B.json",
    "Qwen/Qwen2.5-7B-Instruct": "Qwen__Qwen2.5-7B-Instruct.json",
}


@dataclass(frozen=True)
class Case:
    row: dict[str, str]
    config: str
    yaml: str
    exact: bool


def measured_bytes(row: dict[str, str]) -> int | None:
    value = row["peak_per_gpu"].strip()
    if not value or value.upper() == "OOM":
        return None
    return int(float(value) * UNITS[row["unit"].strip()])


def metric(row: dict[str, str]) -> str:
    text = row["metric"].lower()
    if "reserved" in text:
        return "reserved"
    if "allocated" in text:
        return "allocated"
    return "nvidia-smi"


def case_for(row: dict[str, str]) -> Case | str:
    """The LF YAML for a measured row, or why there is none."""
    model, method, precision = row["model"], row["method"], row["precision"]
    if row["parallelism"].strip() != "single":
        return f"parallelism {row['parallelism']!r}"
    config = MODELS.get(model)
    if config is None:
        return f"model {model} not in the bundled catalog"
    if any(word in method for word in ("DoRA", "AdaLoRA", "GaLore", "LLaMA-Pro", "LISA", "unsloth")):
        return f"tuner not reproduced here ({method})"
    lines = [f"model_name_or_path: {model}", "stage: sft", "do_train: true"]
    lora = re.search(r"LoRA r(\d+)", method)
    if lora:
        target = "all" if re.search(r"ALL|all-linear", method) else method.split(" on ")[-1].split(",")[0]
        # ms-swift 1.x/2.x LoRA defaults: lora_dropout_p 0.05 (swift/llm/utils/argument.py)
        lines += [
            "finetuning_type: lora",
            f"lora_rank: {lora.group(1)}",
            f"lora_target: {target}",
            "lora_dropout: 0.05",
        ]
    elif method.startswith("full"):
        lines.append("finetuning_type: full")
    else:
        return f"method {method!r}"
    if "int4 (bnb" in precision or "bnb NF4" in precision or "base int4 (bnb)" in method:
        lines.append("quantization_bit: 4")
    elif "GPTQ" in precision or "GPTQ" in method:
        if model == "Qwen/Qwen-7B-Chat" and "int4" in (precision + method):
            config = "Qwen__Qwen-7B-Chat-Int4.json"
        else:
            return "GPTQ checkpoint config not bundled"
    lines.append("pure_bf16: true" if "pure bf16" in precision or "pure bf16" in method else "bf16: true")
    seq = re.search(r"(\d+)", row["seq_len"])
    if seq is None:
        return "no sequence length"
    mbs = row["mbs"].strip()
    if not mbs.isdigit():
        return "micro-batch size not stated"
    lines += [
        f"cutoff_len: {seq.group(1)}",
        f"per_device_train_batch_size: {mbs}",
        "gradient_accumulation_steps: 16",
        "dataset: alpaca_en_demo",
        "template: default",
        "output_dir: saves/calibration",
    ]
    attn = row["attn"].lower()
    lines.append(
        "flash_attn: fa2" if "flash" in attn else "flash_attn: disabled" if "eager" in attn else "flash_attn: sdpa"
    )
    if row["grad_ckpt"].strip().lower().startswith("off"):
        lines.append("disable_gradient_checkpointing: true")
    exact = row["core"].strip() == "yes" and "(v" not in row["seq_len"] and int(seq.group(1)) <= 2048
    return Case(row, config, "\n".join(lines) + "\n", exact)


def run(case: Case) -> Estimate:
    config = json.loads((CATALOG / case.config).read_text())
    return estimate(model_spec_from_config(config, case.row["model"]), parse_plan(case.yaml, "cal.yaml"), World())


def predicted(est: Estimate, kind: str) -> int:
    return {"reserved": est.reserved_bytes, "allocated": est.allocated_bytes, "nvidia-smi": est.peak_bytes}[kind]


def main() -> int:
    with (HERE / "measured.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    exact_errors: list[float] = []
    all_errors: list[float] = []
    skipped: list[str] = []
    print(f"{'id':8s} {'metric':10s} {'measured':>9s} {'estimate':>9s} {'error':>7s}  exact  setup")
    for row in rows:
        case = case_for(row)
        measured = measured_bytes(row)
        if isinstance(case, str):
            skipped.append(f"{row['id']}: {case}")
            continue
        kind = metric(row)
        est = run(case)
        guess = predicted(est, kind)
        if measured is None:
            print(
                f"{row['id']:8s} {kind:10s} {'OOM':>9s} {guess / 2**30:9.2f} {'':>7s}  "
                f"{case.exact!s:5s}  {row['method'][:40]}"
            )
            continue
        error = (guess - measured) / measured
        all_errors.append(abs(error))
        if case.exact:
            exact_errors.append(abs(error))
        print(
            f"{row['id']:8s} {kind:10s} {measured / 2**30:9.2f} {guess / 2**30:9.2f} {error:+7.1%}  "
            f"{case.exact!s:5s}  {row['method'][:34]} | {row['seq_len'][:16]} | mbs {row['mbs']} | "
            f"gc {row['grad_ckpt'][:3]} | {row['attn'][:12]}"
        )
    print()
    if exact_errors:
        print(
            f"exact rows: {len(exact_errors)}, median |error| {statistics.median(exact_errors):.1%}, "
            f"worst {max(exact_errors):.1%}"
        )
    if all_errors:
        print(
            f"all expressible rows: {len(all_errors)}, median |error| {statistics.median(all_errors):.1%}, "
            f"worst {max(all_errors):.1%}"
        )
    print(f"not expressible: {len(skipped)} rows")
    for line in skipped:
        print("  " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
