"""The published FSDP measurements of benchmarks/calibration/cases.jsonl against the FSDP estimator.

The calibration fit (fit.py) also fits on the comparable ones (their launcher built by `accelerate_config` below);
this script shows every FSDP case on its own, without fitting anything: each case's launcher description becomes an
accelerate config (estimator.launcher), its YAML a plan, and the estimate's number for the case's metric (allocated,
reserved, or nvidia-smi when unstated) is set against the published figure. OOM reports are checked against the
verdict (the band's top above the card), claims that a run fits against the estimate's bottom. torchtune and
torchtitan run their own FSDP2 wrapping (embeddings and output sharded as their own units, optimizer in backward,
compile), so their rows are shown apart: they are not LLaMA-Factory's setup.

Run: ``python -m benchmarks.calibration.fsdp_cases``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmarks.calibration import fit
from estimator.errors import InputError
from estimator.launcher import parse_accelerate_config
from estimator.memory import World, estimate
from estimator.model import model_spec_from_config
from estimator.plan import parse_plan
from estimator.units import GiB
from rules.gpus import match_gpu


@dataclass(frozen=True)
class Outcome:
    id: str
    framework: str
    metric: str
    outcome: str
    measured: int | None
    estimated: int
    low: int
    high: int
    capacity: int | None
    note: str

    @property
    def error(self) -> float | None:
        return None if not self.measured else (self.estimated - self.measured) / self.measured


def accelerate_config(launcher: dict[str, Any], processes: int) -> dict[str, Any]:
    """The accelerate config file a case's launcher description amounts to."""
    mixed = str(launcher.get("mixed_precision", "no")).split()[0].lower()
    sharding = launcher.get("sharding_strategy") or (
        "FULL_SHARD" if launcher.get("reshard_after_forward", True) else "SHARD_GRAD_OP")
    yaml_keys = "HF" in str(launcher.get("auto_wrap", ""))  # HF TrainingArguments fsdp keys: no rank-0 loading
    return {"distributed_type": "FSDP", "mixed_precision": mixed if mixed in ("bf16", "fp16") else "no",
            "num_processes": processes,
            "fsdp_config": {"fsdp_version": int(launcher.get("version", 1)),
                            "fsdp_sharding_strategy": sharding,
                            "fsdp_reshard_after_forward": bool(launcher.get("reshard_after_forward", True)),
                            "fsdp_offload_params": bool(launcher.get("offload_params", False)),
                            "fsdp_cpu_ram_efficient_loading": bool(launcher.get("cpu_ram_efficient_loading",
                                                                                not yaml_keys)),
                            "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                            "fsdp_backward_prefetch": launcher.get("backward_prefetch") or "NO_PREFETCH",
                            "fsdp_forward_prefetch": bool(launcher.get("forward_prefetch", False)),
                            "fsdp_activation_checkpointing": bool(launcher.get("activation_checkpointing",
                                                                               False))}}


def evaluate(case: dict[str, Any]) -> Outcome | str:
    launcher = case["launcher"]
    world = World(gpus_per_node=int(case["gpus_per_node"]), nodes=int(case.get("nodes") or 1))
    try:
        config = fit._model_config(case["model_config"])
    except FileNotFoundError:
        return f"model config {case['model_config']} not available"
    accelerate = parse_accelerate_config(accelerate_config(launcher, world.world_size), "accelerate.yaml")
    try:
        plan = parse_plan(case["yaml"], f"calibration/{case['id']}.yaml", None, world.world_size,
                          launcher=accelerate)
        result = estimate(model_spec_from_config(config, case["model_id"]), plan, world)
    except InputError as error:
        return f"estimator: {error}"
    if not result.modelled:
        return "not modelled: " + "; ".join(result.not_modelled)
    metric = case["metric"]
    number = {"allocated": result.allocated_bytes, "reserved": result.reserved_bytes}.get(metric, result.peak_bytes)
    try:
        capacity = match_gpu(case["gpu"]).gpu.usable_bytes if case.get("gpu") else None
    except InputError:
        capacity = None
    return Outcome(case["id"], launcher.get("framework", case["source"]), metric, case["outcome"],
                   case.get("measured_bytes"), number, *result.peak_range_bytes, capacity,
                   "; ".join(case.get("deviations") or [])[:80])


def table() -> str:
    """A Markdown table of every case (docs/accuracy.md)."""
    lines = ["| case | framework | metric | published | estimate | error | outcome |", "|---|---|---|--:|--:|--:|---|"]
    for case in (case for case in fit.load_cases() if case.get("launcher")):
        found = evaluate(case)
        if isinstance(found, str):
            lines.append(f"| {case['id']} | {case['source']} | {case['metric']} | | | | skipped: {found} |")
            continue
        measured = f"{found.measured / GiB:.1f} GiB" if found.measured else "—"
        error = f"{found.error:+.1%}" if found.error is not None else ""
        outcome = found.outcome
        if found.outcome == "oom" and found.capacity:
            outcome = "OOM reported: " + ("flagged (band top above the card)" if found.high > found.capacity
                                          else "NOT flagged")
        elif found.outcome == "fits-upper-bound" and found.capacity:
            outcome = "claimed to fit: " + ("consistent" if found.low <= found.capacity else "NOT consistent")
        lines.append(f"| {found.id} | {found.framework} | {found.metric} | {measured} | "
                     f"{found.estimated / GiB:.1f} GiB | {error} | {outcome} |")
    return "\n".join(lines)


def main() -> None:
    cases = [case for case in fit.load_cases() if case.get("launcher")]
    print(f"{len(cases)} published cases with an FSDP launcher")
    for case in cases:
        found = evaluate(case)
        if isinstance(found, str):
            print(f"{case['id']:12} skipped: {found}")
            continue
        measured = f"{found.measured / GiB:6.1f}" if found.measured else "     —"
        error = f"{found.error:+7.1%}" if found.error is not None else "       "
        verdict = ""
        if found.outcome == "oom" and found.capacity:
            verdict = "OOM reported; band top above the card: " + ("yes" if found.high > found.capacity else "NO")
        elif found.outcome == "fits-upper-bound" and found.capacity:
            verdict = "fits (claim); band bottom under the card: " + ("yes" if found.low <= found.capacity else "NO")
        print(f"{found.id:12} {found.framework:12} {found.metric:9} measured {measured} GiB  estimate "
              f"{found.estimated / GiB:6.1f} GiB  {error}  {verdict}")


if __name__ == "__main__":
    main()
