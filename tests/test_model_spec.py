"""Exact parameter counts: every bundled config.json against transformers' own count on the meta device.

Expected totals come from tests/fixtures/param_counts.json, written by benchmarks/oracle/param_counts.py
(sum(p.numel()) of the transformers model built on meta). Qwen-1 is remote code transformers cannot build:
its expected counts are the "Computed" column of estimator/catalog/SOURCES.md, derived from the
repository's modeling_qwen.py (MLP width = intermediate_size / 2).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from estimator.errors import UnsupportedArchitecture
from estimator.model import model_spec_from_config, model_spec_from_safetensors

CATALOG = Path(__file__).parent.parent / "estimator" / "catalog"
ORACLE = json.loads((Path(__file__).parent / "fixtures" / "param_counts.json").read_text())
REMOTE_CODE = {  # estimator/catalog/SOURCES.md, "Computed from this config" (Qwen-1 modeling_qwen.py)
    "Qwen__Qwen-1_8B.json": 1_836_828_672,
    "Qwen__Qwen-1_8B-Chat-Int4.json": 1_836_828_672,
    "Qwen__Qwen-7B.json": 7_721_324_544,
    "Qwen__Qwen-7B-Chat-Int4.json": 7_721_324_544,
    "Qwen__Qwen-72B.json": 72_287_920_128,
}


def _expected(name: str) -> int:
    if name in REMOTE_CODE:
        return REMOTE_CODE[name]
    total = ORACLE[name]["total"]
    assert isinstance(total, int), f"oracle has no count for {name}"
    return total


@pytest.mark.parametrize("name", sorted(p.name for p in CATALOG.glob("*.json")))
def test_parameter_count_equals_transformers(name: str) -> None:
    spec = model_spec_from_config(json.loads((CATALOG / name).read_text()), name)
    assert spec.total_params == _expected(name)


@pytest.mark.parametrize("name", sorted(n for n, v in ORACLE.items() if isinstance(v.get("lm_head"), int)))
def test_embeddings_and_lm_head_match_transformers(name: str) -> None:
    spec = model_spec_from_config(json.loads((CATALOG / name).read_text()), name)
    assert spec.parts["lm_head"] == (0 if ORACLE[name]["tied"] else ORACLE[name]["lm_head"])


def test_unknown_architecture_names_what_is_missing() -> None:
    with pytest.raises(UnsupportedArchitecture, match="'mamba'"):
        model_spec_from_config({"model_type": "mamba", "hidden_size": 768}, "state-spaces/mamba-130m")
    with pytest.raises(UnsupportedArchitecture, match="hidden_size"):
        model_spec_from_config({"model_type": "llama", "num_hidden_layers": 2}, "broken/llama")


def test_safetensors_header_gives_the_count_for_any_architecture() -> None:
    config = json.loads((CATALOG / "Qwen__Qwen3.5-27B.json").read_text())
    total = ORACLE["Qwen__Qwen3.5-27B.json"]["total"]
    spec = model_spec_from_safetensors(config, "Qwen/Qwen3.5-27B", total, "bfloat16")
    assert spec.total_params == 27_356_728_560
    assert spec.source == "safetensors header"


def test_moe_and_mla_shapes_for_the_activation_model() -> None:
    mixtral = model_spec_from_config(json.loads((CATALOG / "mistralai__Mixtral-8x7B-v0.1.json").read_text()), "m")
    assert (mixtral.experts, mixtral.experts_per_token, mixtral.moe_layers) == (8, 2, 32)
    # published active count (estimator/catalog/SOURCES.md): 12,879,925,248 with top-2 of 8 experts
    assert mixtral.active_params == 12_879_925_248
    deepseek = model_spec_from_config(json.loads((CATALOG / "deepseek-ai__DeepSeek-V2-Lite.json").read_text()), "d")
    assert deepseek.dense_layers == 1 and deepseek.kv_lora_rank == 512
    assert deepseek.active_params == 2_661_150_208
