"""Quantized weights on every path, each number derived from the storage format's layout (bitsandbytes,
GPTQ, AWQ, AQLM, HQQ, EETQ sources; /work/notes/methods.md §1) and the parameter counts of the model —
not read off the estimator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from estimator.errors import RejectedConfig
from estimator.hub import ModelResolver
from estimator.memory import World, check_model, estimate, weights_bytes
from estimator.model import ModelSpec, model_spec_from_config
from estimator.plan import TrainingPlan, parse_plan
from estimator.trainable import trainable
from estimator.versions import Versions

CATALOG = Path(__file__).resolve().parents[1] / "estimator" / "catalog"
RESOLVER = ModelResolver(offline=True)
LLAMA = RESOLVER.resolve("meta-llama/Meta-Llama-3-8B")
QWEN_MOE = RESOLVER.resolve("Qwen/Qwen3-30B-A3B")
LORA_R8 = 20_971_520  # Llama-3-8B, r 8 on all 7 linears: 32 × 8 × Σ(in + out) (peft's own count)
DOUBLE_QUANT = 0.5 + 1 / 64 + 4 / 16384  # packed nf4 + uint8 absmax per 64 + fp32 absmax per 256 blocks


def plan(text: str, **kwargs: Any) -> TrainingPlan:
    return parse_plan("model_name_or_path: x\ndo_train: true\nper_device_train_batch_size: 1\n" + text,
                      "c.yaml", **kwargs)


def prequantized(quant: dict[str, Any]) -> ModelSpec:
    config = json.loads((CATALOG / "meta-llama__Meta-Llama-3-8B.json").read_text())
    config["quantization_config"] = quant
    config["torch_dtype"] = "float16"
    return model_spec_from_config(config, "prequantized")


def linears(model: ModelSpec) -> int:
    return model.parts["attention"] + model.parts["mlp"]


def rest(model: ModelSpec) -> int:
    return model.total_params - linears(model)


def test_qlora_weights_are_packed_linears_plus_16_bit_rest_plus_fp32_adapters() -> None:
    e = estimate(LLAMA, plan("quantization_bit: 4\nbf16: true\n"), World())
    expected = linears(LLAMA) * DOUBLE_QUANT + 2 * rest(LLAMA) + 4 * LORA_R8
    assert e.components["weights"] == pytest.approx(expected, abs=1)
    no_dq = estimate(LLAMA, plan("quantization_bit: 4\nbf16: true\ndouble_quantization: false\n"), World())
    assert no_dq.components["weights"] - e.components["weights"] == pytest.approx(
        linears(LLAMA) * (4 / 64 - 1 / 64 - 4 / 16384), abs=1)


def test_qlora_under_zero2_keeps_the_packed_weights_and_only_halves_the_adapters() -> None:
    # DeepSpeed's module.bfloat16() leaves integer packs alone and the bf16-stored nf4 pack is unchanged
    # (torch Module.bfloat16: `t.bfloat16() if t.is_floating_point() else t`; LF quant_storage = bf16)
    alone = estimate(LLAMA, plan("quantization_bit: 4\nbf16: true\n"), World())
    z2 = estimate(LLAMA, plan("quantization_bit: 4\nbf16: true\ndeepspeed: examples/deepspeed/ds_z2_config.json\n",
                              world_size=2), World(2))
    base = linears(LLAMA) * DOUBLE_QUANT + 2 * rest(LLAMA)
    assert alone.components["weights"] == pytest.approx(base + 4 * LORA_R8, abs=1)
    assert z2.components["weights"] == pytest.approx(base + 2 * LORA_R8, abs=1)  # the fp32 masters: optimizer
    assert z2.components["optimizer"] == (4 + 8) * LORA_R8 // 2


def test_qlora_under_zero3_partitions_the_packs_keeps_absmax_whole_and_loads_the_model_on_every_rank() -> None:
    n = 4
    z3 = plan("quantization_bit: 4\nbf16: true\ndeepspeed: examples/deepspeed/ds_z3_config.json\n", world_size=n)
    e = estimate(LLAMA, z3, World(n))
    partition = (linears(LLAMA) * DOUBLE_QUANT + 2 * rest(LLAMA) + 2 * LORA_R8) / n
    absmax = linears(LLAMA) * (1 / 64 + 4 / 16384)
    policy, extra = weights_bytes(LLAMA, z3, World(n), trainable(LLAMA, z3))
    assert (policy, extra) == (pytest.approx(partition + absmax, abs=n), 0)
    # no zero.Init for a quantized model: each rank holds the whole packed model (+ fp32 adapters) first
    assert e.phases["model load"] == pytest.approx(linears(LLAMA) * DOUBLE_QUANT + 2 * rest(LLAMA) + 4 * LORA_R8,
                                                   abs=1)


@pytest.mark.parametrize(("quant", "per_param", "per_linear"), [
    # gptqmodel: qweight b/8, qzeros b/(8g), fp16 scales 2/g, int32 g_idx per input row (4/out)
    ({"quant_method": "gptq", "bits": 4, "group_size": 128}, 0.5 + 0.5 / 128 + 2 / 128 + 4 / 4096, 0),
    # autoawq GEMM: qweight 0.5, qzeros 0.5/g, fp16 scales 2/g
    ({"quant_method": "awq", "bits": 4, "group_size": 128}, 0.5 + 0.5 / 128 + 2 / 128, 0),
    # AQLM 1x16: 16-bit codes per 8 weights; one fp16 codebook of 2^16 × 8 per linear
    ({"quant_method": "aqlm", "num_codebooks": 1, "nbits_per_codebook": 16, "in_group_size": 8,
      "out_group_size": 1}, 16 / 8 / 8, 2 * 65536 * 8),
])
def test_prequantized_checkpoints(quant: dict[str, Any], per_param: float, per_linear: int) -> None:
    model = prequantized(quant)
    e = estimate(model, plan("bf16: true\n"), World())
    expected = linears(model) * per_param + per_linear * 32 * 7 + 2 * rest(model) + 4 * LORA_R8
    assert e.components["weights"] == pytest.approx(expected, rel=1e-9)


def test_fp8_and_mxfp4_checkpoints_load_dequantized() -> None:
    # LF quantization.py:107-126: Mxfp4Config / FineGrainedFP8Config(dequantize=True) → the load dtype
    fp8 = prequantized({"quant_method": "fp8", "weight_block_size": [128, 128]})
    e = estimate(fp8, plan("bf16: true\n"), World())
    assert e.components["weights"] == 2 * LLAMA.total_params + 4 * LORA_R8


@pytest.mark.parametrize(("method", "bits", "per_param"), [
    ("hqq", 4, 0.5 + 4 / 64),  # 4-bit packed 2 per byte + 16-bit scale and zero per group of 64
    ("hqq", 2, 0.25 + 4 / 64),
    ("eetq", 8, 1 + 2 / 4096),  # int8 + an fp16 scale per output channel
    ("bnb", 8, 1 + 4 / 4096),  # LLM.int8: int8 + an fp32 row scale
])
def test_on_the_fly_formats(method: str, bits: int, per_param: float) -> None:
    e = estimate(LLAMA, plan(f"quantization_bit: {bits}\nquantization_method: {method}\nbf16: true\n"), World())
    assert e.components["weights"] == pytest.approx(linears(LLAMA) * per_param + 2 * rest(LLAMA) + 4 * LORA_R8,
                                                    abs=1)


def test_moe_experts_are_packed_under_transformers_4_only() -> None:
    # transformers 5 fuses the experts into 3-D parameters and the router is a Parameter: bitsandbytes replaces
    # exact nn.Linear only (integrations/bitsandbytes.py:189). transformers 4: ModuleList of nn.Linear.
    parts = QWEN_MOE.parts
    tf5 = estimate(QWEN_MOE, plan("quantization_bit: 4\nbf16: true\n"), World())
    tf4 = estimate(QWEN_MOE, plan("quantization_bit: 4\nbf16: true\n", versions=Versions(transformers=4)), World())
    lora_tf5, lora_tf4 = 6_684_672, 422_756_352  # meta-device peft counts (methods.md §7)
    assert tf5.trainable_params == lora_tf5 and tf4.trainable_params == lora_tf4
    packed5 = parts["attention"]
    packed4 = parts["attention"] + parts["experts"] + parts["router"]
    assert tf5.components["weights"] == pytest.approx(
        packed5 * DOUBLE_QUANT + 2 * (QWEN_MOE.total_params - packed5) + 4 * lora_tf5, abs=1)
    assert tf4.components["weights"] == pytest.approx(
        packed4 * DOUBLE_QUANT + 2 * (QWEN_MOE.total_params - packed4) + 4 * lora_tf4, abs=1)


def test_reference_models_take_their_own_quantization() -> None:
    # trainer_utils.py create_ref_model: with ref_model it loads with ref_model_quantization_bit (default none,
    # whatever the policy uses); without, OFT builds a second copy with the policy's own quantization_bit
    oft = plan("stage: dpo\nfinetuning_type: oft\nquantization_bit: 4\nbf16: true\n")
    lora_ref = plan("stage: dpo\nquantization_bit: 4\nbf16: true\nref_model: x\n")
    lora_ref4 = plan("stage: dpo\nquantization_bit: 4\nbf16: true\nref_model: x\nref_model_quantization_bit: 4\n")
    quantized_copy = linears(LLAMA) * DOUBLE_QUANT + 2 * rest(LLAMA)
    policy = estimate(LLAMA, plan("stage: dpo\nquantization_bit: 4\nbf16: true\n"), World())
    assert estimate(LLAMA, lora_ref, World()).components["weights"] == pytest.approx(
        policy.components["weights"] + 2 * LLAMA.total_params, abs=1)
    assert estimate(LLAMA, lora_ref4, World()).components["weights"] == pytest.approx(
        policy.components["weights"] + quantized_copy, abs=1)
    oft_e = estimate(LLAMA, oft, World())
    assert oft_e.components["weights"] - 4 * oft_e.trainable_params == pytest.approx(2 * quantized_copy, abs=2)


def test_prequantized_checkpoints_llamafactory_refuses() -> None:
    gptq = prequantized({"quant_method": "gptq", "bits": 4, "group_size": 128})
    z3 = plan("bf16: true\ndeepspeed: examples/deepspeed/ds_z3_config.json\n", world_size=2)
    with pytest.raises(RejectedConfig, match="DeepSpeed ZeRO-3 or FSDP is incompatible with PTQ-quantized models"):
        check_model(gptq, z3)
    with pytest.raises(RejectedConfig, match="Quantized models can only be used for the LoRA or OFT tuning"):
        check_model(gptq, plan("finetuning_type: full\nbf16: true\n"))
    check_model(prequantized({"quant_method": "fp8"}), z3)  # dequantized at load: allowed
