"""Verdict boundaries, min_gpus under ZeRO-3 vs ZeRO-2, and suggestions that really fit once applied."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from estimator.memory import World, estimate
from estimator.model import model_spec_from_config
from estimator.plan import parse_plan
from estimator.runtime import judge_band
from estimator.suggest import set_key, suggest
from rules.gpus import find_gpu
from rules.verdicts import min_gpus

CATALOG = Path(__file__).parent.parent / "estimator" / "catalog"
LLAMA = model_spec_from_config(json.loads((CATALOG / "meta-llama__Meta-Llama-3-8B.json").read_text()), "llama")
GiB = 1 << 30


def test_verdicts_hold_the_band_against_the_headroom_line_and_the_capacity() -> None:
    # issue 12: "fit" only when the band's top stays below the headroom line (90 % of usable memory), "no-fit"
    # only when its bottom is above the usable memory, "tight" when the band crosses either line
    usable = 80 * GiB
    line = int(0.9 * usable)
    assert judge_band(50 * GiB, line, usable, 0.10) == "fit"
    assert judge_band(50 * GiB, line + 1, usable, 0.10) == "tight"  # the top crosses the headroom line
    assert judge_band(70 * GiB, 100 * GiB, usable, 0.10) == "tight"  # the band straddles the capacity
    assert judge_band(usable, 100 * GiB, usable, 0.10) == "tight"
    assert judge_band(usable + 1, 100 * GiB, usable, 0.10) == "no-fit"  # even the bottom is above it


def test_min_gpus_zero3_shards_but_zero2_never_fits_a_small_card() -> None:
    a100 = find_gpu("A100-80GB")
    z3 = parse_plan("model_name_or_path: x\nfinetuning_type: full\nbf16: true\nper_device_train_batch_size: 1\n"
                    "deepspeed: examples/deepspeed/ds_z3_config.json\n", "t.yaml")
    needed = min_gpus(LLAMA, z3, a100, per_node=8, max_gpus=16, headroom=0.10)
    assert needed is not None and needed > 1
    line = 0.9 * a100.usable_bytes  # "fit": the band's top below the headroom line
    assert estimate(LLAMA, z3, World(needed)).peak_high_bytes <= line
    assert estimate(LLAMA, z3, World(needed - 1)).peak_high_bytes > line
    z2 = parse_plan("model_name_or_path: x\nfinetuning_type: full\nbf16: true\nper_device_train_batch_size: 1\n"
                    "deepspeed: examples/deepspeed/ds_z2_config.json\n", "t.yaml")
    # ZeRO-2 keeps a full bf16 replica (16 GB) plus the fp32 load-time cast (32 GB) on each 24 GB card
    assert min_gpus(LLAMA, z2, find_gpu("RTX-4090"), per_node=8, max_gpus=64, headroom=0.10) is None


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
        result = estimate(LLAMA, replanned, world)
        assert result.peak_bytes == suggestion.peak_bytes and result.peak_high_bytes <= 0.9 * gpu.usable_bytes
        if "gradient_accumulation_steps" in suggestion.changes:  # claims to keep the effective batch
            assert replanned.effective_batch_size(8) == plan.effective_batch_size(8)


def _linear_min_gpus(plan: object, gpu: object, per_node: int, max_gpus: int, headroom: float) -> int | None:
    """The definition of min_gpus, one count at a time (what the binary search must agree with)."""
    from rules.verdicts import fits, world_for

    for n in range(1, max_gpus + 1):
        if fits(LLAMA, plan, world_for(n, per_node), gpu, headroom):  # type: ignore[arg-type]
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
        for headroom in (0.0, 0.10):
            assert (min_gpus(LLAMA, plan, gpu, per_node, max_gpus, headroom)
                    == _linear_min_gpus(plan, gpu, per_node, max_gpus, headroom))
