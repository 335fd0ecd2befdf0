"""Estimator vs the FSDP oracle: every traced run in benchmarks/results/fsdp_oracle/*.json.

Each JSON is one run of ``benchmarks.oracle.fsdp_trace`` (accelerate's own FSDP1 / FSDP2 wrapping of the real
transformers model, on torch's fake process group under fake tensors: one CPU process plays rank 0 of N).
For each run the matching LLaMA-Factory YAML and accelerate config are built, parsed by the estimator
(``estimator.plan.parse_plan`` with ``estimator.launcher.parse_accelerate_config``) and estimated; the
estimate's ``allocated_bytes`` minus the cuBLAS workspace (which a trace cannot see) is compared with the
traced peak of the steady-state step (fwd2/bwd2/opt2), or, for load-only runs (``--steps 1`` with a load
mode), the load/wrap peak with the estimate's "model load" phase.

LLaMA-Factory pins accelerate <= 1.11 (v0.9.5 and main): runs with acc_layout 1.11 (FSDP2) and every FSDP1
run are the product's setup; acc_layout 1.15 runs show what accelerate >= 1.13 changes (embeddings and the
norm + lm_head as their own FSDP2 units) and are reported, not targeted. FSDP2 with HSDP (a device mesh with
a replicate dimension) cannot be configured through an accelerate config file and is reported only.

Run: ``python -m benchmarks.oracle.fsdp_compare [--markdown]`` (no torch needed). New traces:
``python -m benchmarks.oracle.fsdp_trace CONFIG.json --fsdp 2 --acc-layout 1.11 --world 8 --json out.json``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from estimator.constants import CUBLAS_WORKSPACE_BYTES
from estimator.launcher import parse_accelerate_config
from estimator.memory import Estimate, World, estimate, load_transient_bytes
from estimator.model import model_spec_from_config
from estimator.plan import parse_plan

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS = REPO_ROOT / "benchmarks" / "results" / "fsdp_oracle"
CATALOG = REPO_ROOT / "estimator" / "catalog"
TARGET = 0.03


@dataclass(frozen=True)
class Comparison:
    name: str
    run: dict[str, Any]
    traced: int
    estimated: int
    what: str  # "step" or "load"
    targeted: bool  # the product's setup (accelerate <= 1.11, reachable from an accelerate config)
    estimate: Estimate

    @property
    def error(self) -> float:
        return (self.estimated - self.traced) / self.traced


def accelerate_config(run: dict[str, Any], name: str) -> dict[str, Any]:
    """The accelerate config file that launches what the run traced."""
    strategy = run["strategy"]
    if run["fsdp"] == 1 and run.get("replicate", 1) > 1:
        strategy = "HYBRID_SHARD"
    prefetch = "NO_PREFETCH" if "noprefetch" in name else "BACKWARD_POST" if "post" in name else "BACKWARD_PRE"
    return {"distributed_type": "FSDP", "mixed_precision": "bf16", "num_processes": run["world"],
            "fsdp_config": {"fsdp_version": run["fsdp"], "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                            "fsdp_cpu_ram_efficient_loading": run.get("load", "host") != "gpu",
                            "fsdp_offload_params": bool(run["offload"]),
                            "fsdp_reshard_after_forward": bool(run["reshard"]),
                            "fsdp_sharding_strategy": strategy, "fsdp_backward_prefetch": prefetch}}


def compare(path: Path) -> Comparison:
    run = json.loads(path.read_text())
    config = json.loads((CATALOG / run["config"]).read_text())
    if run.get("layers"):
        config["num_hidden_layers"] = run["layers"]
    model = model_spec_from_config(config, run["config"])
    launcher = parse_accelerate_config(accelerate_config(run, path.stem), "accelerate.yaml")
    yaml = (f"model_name_or_path: {run['config']}\ndo_train: true\nfinetuning_type: full\nbf16: true\n"
            f"per_device_train_batch_size: {run['batch']}\ncutoff_len: {run['cutoff']}\n"
            f"disable_gradient_checkpointing: {str(not run['gc']).lower()}\n")
    plan = parse_plan(yaml, "oracle.yaml", world_size=run["world"], launcher=launcher)
    replicate = run.get("replicate", 1)
    world = World(run["world"] // replicate, replicate) if replicate > 1 else World(run["world"])
    result = estimate(model, plan, world)
    steady = [run["phases"][k]["peak"] for k in ("fwd2", "bwd2", "opt2") if k in run["phases"]]
    if steady:
        traced, what, estimated = max(steady), "step", result.allocated_bytes - CUBLAS_WORKSPACE_BYTES
    else:  # a load-only run: the load / wrap peak against the estimate's model-load phase
        traced = max(run["phases"][k]["peak"] for k in ("load", "wrap") if k in run["phases"])
        what, estimated = "load", load_transient_bytes(model, plan, world)
    hsdp2 = run["fsdp"] == 2 and replicate > 1
    targeted = (run["fsdp"] == 1 or run.get("acc_layout") == "1.11") and not hsdp2
    return Comparison(path.stem, run, traced, estimated, what, targeted, result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table (docs/accuracy.md)")
    args = parser.parse_args()
    rows = [compare(path) for path in sorted(RESULTS.glob("*.json"))]
    if args.markdown:
        print("| run | model | FSDP | layout | GPUs | what | traced GiB | estimate GiB | error |")
        print("|---|---|---|---|--:|---|--:|--:|--:|")
    for row in rows:
        r = row.run
        layout = r.get("acc_layout") or "-"
        if args.markdown:
            note = "" if row.targeted else " (not LF's)"
            print(f"| {row.name} | {r['config'].removesuffix('.json')} | {r['fsdp']} | {layout}{note} | "
                  f"{r['world']} | {row.what} | {row.traced / 2**30:.2f} | {row.estimated / 2**30:.2f} | "
                  f"{row.error:+.1%} |")
        else:
            print(f"{row.name:30} FSDP{r['fsdp']} layout {layout:5} {row.what:4} traced {row.traced / 2**30:8.2f} "
                  f"GiB  estimate {row.estimated / 2**30:8.2f} GiB  {row.error:+7.2%}"
                  f"{'' if row.targeted else '  (not a LLaMA-Factory layout)'}")
    targeted = [row for row in rows if row.targeted]
    within = sum(abs(row.error) <= TARGET for row in targeted)
    worst = max(targeted, key=lambda row: abs(row.error))
    print(f"\n{len(targeted)} LLaMA-Factory runs: within {TARGET:.0%}: {within}/{len(targeted)}, worst "
          f"{worst.error:+.2%} ({worst.name})")


if __name__ == "__main__":
    main()
