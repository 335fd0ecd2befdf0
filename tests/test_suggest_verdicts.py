"""Verdict boundaries, min_gpus under ZeRO-3 vs ZeRO-2, and suggestions that really fit once applied."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from estimator.memory import World, estimate
from estimator.model import model_spec_from_config
from estimator.plan import parse_plan
from estimator.suggest import set_key, suggest
from rules.gpus import find_gpu
from rules.verdicts import classify, min_gpus

CATALOG = Path(__file__).parent.parent / "estimator" / "catalog"
LLAMA = model_spec_from_config(json.loads((CATALOG / "meta-llama__Meta-Llama-3-8B.json").read_text()), "llama")
GiB = 1 << 30


def test_verdict_boundaries_around_the_headroom() -> None:
    usable = 80 * GiB
    assert classify(int(0.9 * usable), usable, 0.10) == "fit"
    assert classify(int(0.9 * usable) + 1, usable, 0.10) == "tight"
    assert classify(usable, usable, 0.10) == "tight"
    assert classify(usable + 1, usable, 0.10) == "no-fit"


def test_min_gpus_zero3_shards_but_zero2_never_fits_a_small_card() -> None:
    a100 = find_gpu("A100-80GB")
    z3 = parse_plan("model_name_or_path: x\nfinetuning_type: full\nbf16: true\nper_device_train_batch_size: 1\n"
                    "deepspeed: examples/deepspeed/ds_z3_config.json\n", "t.yaml")
    needed = min_gpus(LLAMA, z3, a100, per_node=8, max_gpus=16)
    assert needed is not None and needed > 1
    assert estimate(LLAMA, z3, World(needed)).peak_bytes <= a100.usable_bytes
    assert estimate(LLAMA, z3, World(needed - 1)).peak_bytes > a100.usable_bytes
    z2 = parse_plan("model_name_or_path: x\nfinetuning_type: full\nbf16: true\nper_device_train_batch_size: 1\n"
                    "deepspeed: examples/deepspeed/ds_z2_config.json\n", "t.yaml")
    # ZeRO-2 keeps a full bf16 replica (16 GB) plus the fp32 load-time cast (32 GB) on each 24 GB card
    assert min_gpus(LLAMA, z2, find_gpu("RTX-4090"), per_node=8, max_gpus=64) is None


def test_set_key_replaces_in_place_and_appends() -> None:
    text = "model_name_or_path: x\ncutoff_len: 4096  # long docs\n"
    new, edit = set_key(text, "cutoff_len", 2048)
    assert (edit.line, edit.old, edit.new) == (2, "cutoff_len: 4096  # long docs", "cutoff_len: 2048  # long docs")
    appended, edit = set_key(new, "enable_liger_kernel", True)
    assert appended.endswith("enable_liger_kernel: true\n") and edit.line == 2


CONFIGS = [
    "finetuning_type: full\nbf16: true\nper_device_train_batch_size: 8\ngradient_accumulation_steps: 2\n"
    "cutoff_len: 4096\ndeepspeed: examples/deepspeed/ds_z3_config.json\n",
    "finetuning_type: lora\nbf16: true\nper_device_train_batch_size: 16\ncutoff_len: 4096\n"
    "disable_gradient_checkpointing: true\n",
]


@pytest.mark.parametrize("body", CONFIGS)
def test_each_suggestion_applied_to_the_yaml_really_fits(body: str) -> None:
    text = "model_name_or_path: x\n" + body
    gpu = find_gpu("A100-80GB")
    world = World(8)
    plan = parse_plan(text, "t.yaml", None, world.world_size)
    assert estimate(LLAMA, plan, world).peak_bytes > 0.9 * gpu.usable_bytes  # the case needs help
    found = suggest(text, "t.yaml", plan, LLAMA, world, gpu.usable_bytes, 0.10)
    assert found
    for suggestion in found:
        edited = text
        for key, value in suggestion.changes.items():
            edited, _ = set_key(edited, key, value)
        replanned = parse_plan(edited, "t.yaml", None, world.world_size)
        peak = estimate(LLAMA, replanned, world).peak_bytes
        assert peak == suggestion.peak_bytes and peak <= 0.9 * gpu.usable_bytes
        if "gradient_accumulation_steps" in suggestion.changes:  # claims to keep the effective batch
            assert replanned.effective_batch_size(8) == plan.effective_batch_size(8)


def _linear_min_gpus(plan: object, gpu: object, per_node: int, max_gpus: int) -> int | None:
    """The definition of min_gpus, one count at a time (what the binary search must agree with)."""
    from rules.verdicts import fits, world_for

    for n in range(1, max_gpus + 1):
        if fits(LLAMA, plan, world_for(n, per_node), gpu):  # type: ignore[arg-type]
            return n
    return None


SHARDING = [
    ("finetuning_type: full\nbf16: true\nper_device_train_batch_size: 1\n"
     "deepspeed: examples/deepspeed/ds_z3_config.json\n"),
    ("finetuning_type: full\nbf16: true\nper_device_train_batch_size: 2\n"
     "deepspeed: examples/deepspeed/ds_z2_config.json\n"),
    ("finetuning_type: full\npure_bf16: true\nper_device_train_batch_size: 1\n"
     "deepspeed: {zero_optimization: {stage: 0}, bf16: {enabled: true}}\n"),
    "finetuning_type: full\nbf16: true\nper_device_train_batch_size: 1\n",
    "finetuning_type: lora\nbf16: true\nper_device_train_batch_size: 4\ncutoff_len: 4096\n",
    ("finetuning_type: full\nbf16: true\nper_device_train_batch_size: 4\ncutoff_len: 8192\n"
     "deepspeed: examples/deepspeed/ds_z3_offload_config.json\n"),
]


@pytest.mark.parametrize("body", SHARDING)
@pytest.mark.parametrize("gpu_name", ["RTX-4090", "A100-40GB", "H100-80GB"])
@pytest.mark.parametrize("per_node", [1, 3, 8])
def test_min_gpus_binary_search_agrees_with_counting_one_by_one(body: str, gpu_name: str, per_node: int) -> None:
    plan = parse_plan("model_name_or_path: x\n" + body, "t.yaml")
    gpu = find_gpu(gpu_name)
    for max_gpus in (1, 2, 5, 24, 64):
        assert min_gpus(LLAMA, plan, gpu, per_node, max_gpus) == _linear_min_gpus(plan, gpu, per_node, max_gpus)
