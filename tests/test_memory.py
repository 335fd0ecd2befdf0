"""The memory model against traced truth and against the structure ZeRO implies.

Ground truth: research/trace.md §4 — peak live bytes of real transformers training steps (B=2, L=1024,
fused AdamW, 2 steps) traced under FakeTensorMode and validated byte for byte against the CPU allocator.
Those GiB figures are the expected values; the estimate adds the 64 MiB cuBLAS workspace the trace omits.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from estimator.memory import World, estimate
from estimator.model import ModelSpec, model_spec_from_config
from estimator.plan import TrainingPlan, parse_plan

CATALOG = Path(__file__).parent.parent / "estimator" / "catalog"
GiB = 1 << 30


def model(name: str) -> ModelSpec:
    return model_spec_from_config(json.loads((CATALOG / name).read_text()), name)


def plan(text: str) -> TrainingPlan:
    return parse_plan("model_name_or_path: x\n" + text, "t.yaml")


TRACE = [  # (model, flash_attn, checkpointing, precision, traced overall peak GiB) — research/trace.md §4
    ("Qwen__Qwen2.5-0.5B.json", "sdpa", False, "pure_bf16", 8.880),
    ("Qwen__Qwen2.5-0.5B.json", "sdpa", True, "pure_bf16", 6.334),
    ("Qwen__Qwen2.5-0.5B.json", "disabled", False, "pure_bf16", 12.956),
    ("Qwen__Qwen2.5-0.5B.json", "sdpa", False, "bf16", 12.975),
    ("Qwen__Qwen2.5-0.5B.json", "sdpa", True, "bf16", 9.528),
    ("Qwen__Qwen2.5-0.5B.json", "disabled", False, "bf16", 17.050),
    ("meta-llama__Meta-Llama-3-8B.json", "sdpa", False, "pure_bf16", 60.130),
    ("meta-llama__Meta-Llama-3-8B.json", "sdpa", True, "pure_bf16", 59.846),
    ("meta-llama__Meta-Llama-3-8B.json", "disabled", False, "pure_bf16", 72.872),
    ("meta-llama__Meta-Llama-3-8B.json", "sdpa", False, "bf16", 121.497),
    ("meta-llama__Meta-Llama-3-8B.json", "sdpa", True, "bf16", 119.692),
]


@pytest.mark.parametrize(("name", "attention", "checkpointing", "precision", "traced"), TRACE)
def test_single_gpu_full_finetune_within_3_percent_of_the_trace(name: str, attention: str, checkpointing: bool,
                                                                 precision: str, traced: float) -> None:
    p = plan(f"finetuning_type: full\n{precision}: true\nflash_attn: {attention}\n"
             f"disable_gradient_checkpointing: {str(not checkpointing).lower()}\n"
             "per_device_train_batch_size: 2\ncutoff_len: 1024\n")
    allocated = estimate(model(name), p, World()).allocated_bytes / GiB
    assert abs(allocated / traced - 1) < 0.03, f"{allocated:.3f} GiB vs traced {traced:.3f} GiB"


def test_model_states_per_parameter_match_the_llamafactory_readme_regimes() -> None:
    """README: full bf16 AMP ≈ 16-18 B/param (fp32 weights + grads + Adam), pure_bf16 8 B/param."""
    m = model("meta-llama__Meta-Llama-3-8B.json")
    for text, expected in (("bf16: true\n", 16), ("pure_bf16: true\n", 8)):
        e = estimate(m, plan("finetuning_type: full\n" + text), World())
        # at the optimizer step: weights + gradients + states (+ the 64 MiB cuBLAS workspace)
        assert e.phases["optimizer step"] / m.total_params == pytest.approx(expected, rel=0.02)


def test_zero3_shards_with_gpu_count_and_zero2_keeps_full_weights() -> None:
    m = model("meta-llama__Meta-Llama-3-8B.json")
    z3 = plan("finetuning_type: full\nbf16: true\ndeepspeed: examples/deepspeed/ds_z3_config.json\n"
              "per_device_train_batch_size: 1\n")
    z2 = replace(z3, deepspeed=plan("deepspeed: examples/deepspeed/ds_z2_config.json\nbf16: true\n").deepspeed)
    z3_peaks = [estimate(m, z3, World(n)).components["weights"] for n in (2, 4, 8)]
    assert z3_peaks[0] > z3_peaks[1] > z3_peaks[2]
    assert z3_peaks[0] == 2 * m.total_params // 2  # bf16 partition 2·P/N
    z2_weights = {estimate(m, z2, World(n)).components["weights"] for n in (2, 8)}
    assert z2_weights == {2 * m.total_params}  # every ZeRO-2 rank holds the whole bf16 module


def test_lora_trains_a_tiny_fraction_and_needs_far_less_than_full() -> None:
    m = model("meta-llama__Meta-Llama-3-8B.json")
    lora = estimate(m, plan("finetuning_type: lora\nbf16: true\nper_device_train_batch_size: 1\n"), World())
    full = estimate(m, plan("finetuning_type: full\nbf16: true\nper_device_train_batch_size: 1\n"), World())
    # LoRA r=8 on every linear of Llama-3-8B: 32 layers × 8 × Σ(in + out) = 20,971,520 (peft's count)
    assert lora.trainable_params == 20_971_520
    assert lora.allocated_bytes < full.allocated_bytes / 4


def test_qlora_stores_base_weights_in_about_half_a_byte() -> None:
    m = model("meta-llama__Meta-Llama-3-8B.json")
    q = estimate(m, plan("quantization_bit: 4\nbf16: true\nper_device_train_batch_size: 1\n"), World())
    embeddings = 2 * 2 * m.vocab * m.hidden  # embed_tokens and lm_head stay bf16
    assert q.components["weights"] < embeddings + 0.6 * m.total_params


def test_dpo_full_adds_a_reference_model_and_doubles_the_sequences() -> None:
    m = model("Qwen__Qwen2.5-7B.json")
    sft = estimate(m, plan("finetuning_type: full\nbf16: true\nper_device_train_batch_size: 1\n"), World())
    dpo = estimate(m, plan("stage: dpo\nfinetuning_type: full\nbf16: true\nper_device_train_batch_size: 1\n"),
                   World())
    assert dpo.allocated_bytes - sft.allocated_bytes >= 2 * m.total_params  # a bf16 reference copy at least


def test_load_time_fp32_upcast_is_a_phase() -> None:
    """LF casts trainable params to fp32 on each GPU before DeepSpeed takes over (issue #3510)."""
    m = model("Qwen__Qwen2.5-7B.json")
    z2 = plan("finetuning_type: full\nbf16: true\ndeepspeed: examples/deepspeed/ds_z2_config.json\n"
              "per_device_train_batch_size: 1\ncutoff_len: 512\n")
    e = estimate(m, z2, World(8))
    assert e.phases["model load"] == 4 * m.total_params


def test_three_numbers_are_ordered() -> None:
    e = estimate(model("Qwen__Qwen2.5-0.5B.json"), plan("bf16: true\n"), World(2))
    assert e.allocated_bytes == sum(e.components.values())
    assert e.allocated_bytes < e.reserved_bytes < e.peak_bytes
