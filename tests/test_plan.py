"""TrainingPlan: LLaMA-Factory 0.9.5 defaults, its fp32 upcast and reference-model rules, rejected
combinations (with LLaMA-Factory's messages), DeepSpeed resolution and every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from estimator.errors import InputError, RejectedConfig
from estimator.plan import load_plan, parse_plan

BASE = "model_name_or_path: Qwen/Qwen2.5-0.5B\n"
DS = Path(__file__).parent / "fixtures" / "deepspeed"


def plan(extra: str = "", files: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    stored = files or {}

    def read(path: str) -> str:
        if path not in stored:
            raise FileNotFoundError(path)
        return stored[path]

    return parse_plan(BASE + extra, "configs/train.yaml", read)


def test_llamafactory_defaults() -> None:
    p = plan()
    # finetuning_args.py / data_args.py / model_args.py defaults, HF TrainingArguments batch 8
    assert (p.stage, p.finetuning_type, p.cutoff_len, p.lora_rank) == ("sft", "lora", 2048, 8)
    assert p.gradient_checkpointing is True
    assert p.attention == "sdpa"
    assert p.per_device_train_batch_size == 8 and p.gradient_accumulation_steps == 1
    assert p.packing is False
    assert "gradient checkpointing: on (LLaMA-Factory default)" in p.assumptions


def test_packing_defaults_on_for_pretraining() -> None:
    assert plan("stage: pt\n").packing is True


def test_flash_attn_values_map_to_implementations() -> None:
    assert plan("flash_attn: disabled\n").attention == "eager"
    assert plan("flash_attn: fa2\n").attention == "fa2"
    with pytest.raises(InputError, match="flash_attn"):
        plan("flash_attn: turbo\n")


def test_fp32_upcast_of_trainable_params_and_its_exceptions() -> None:
    zero3 = {"ds3.json": (DS / "llamafactory__ds_z3_config.json").read_text()}
    assert plan("finetuning_type: full\nbf16: true\n").upcast_trainable_to_fp32
    assert not plan("finetuning_type: full\npure_bf16: true\n").upcast_trainable_to_fp32
    assert not plan("finetuning_type: full\nuse_badam: true\n").upcast_trainable_to_fp32
    assert not plan("finetuning_type: full\nbf16: true\ndeepspeed: ds3.json\n", zero3).upcast_trainable_to_fp32
    # QLoRA under ZeRO-3 still upcasts (adapter.py condition 1)
    assert plan("quantization_bit: 4\nbf16: true\ndeepspeed: ds3.json\n", zero3).upcast_trainable_to_fp32


def test_reference_models_and_pairwise_batches() -> None:
    dpo_full = plan("stage: dpo\nfinetuning_type: full\nper_device_train_batch_size: 2\n")
    assert dpo_full.uses_ref_model and dpo_full.ref_model_is_extra_copy
    assert dpo_full.sequences_per_micro_batch == 4  # chosen + rejected
    dpo_lora = plan("stage: dpo\nfinetuning_type: lora\n")
    assert dpo_lora.uses_ref_model and not dpo_lora.ref_model_is_extra_copy  # adapters disabled = reference
    assert not plan("stage: dpo\nfinetuning_type: full\npref_loss: orpo\n").uses_ref_model
    assert plan("stage: kto\nfinetuning_type: full\n").ref_model_is_extra_copy
    assert plan("stage: rm\nper_device_train_batch_size: 3\n").sequences_per_micro_batch == 6


@pytest.mark.parametrize(("extra", "message"), [
    ("finetuning_type: full\nquantization_bit: 4\n", "Quantization is only compatible with the LoRA or OFT method."),
    ("finetuning_type: full\npure_bf16: true\ndeepspeed: ds3.json\n",
     "`pure_bf16` is incompatible with DeepSpeed ZeRO-3"),
    ("finetuning_type: full\nuse_galore: true\ndeepspeed: ds3.json\n",
     "GaLore and APOLLO are incompatible with DeepSpeed"),
    ("finetuning_type: lora\nuse_galore: true\n", "Cannot use LoRA with GaLore, APOLLO or BAdam together."),
    ("stage: ppo\n", "`reward_model` is necessary for PPO training."),
    ("finetuning_type: full\nuse_dora: true\n", "only valid for LoRA"),
    ("use_unsloth: true\ndeepspeed: ds3.json\n", "Unsloth is incompatible with DeepSpeed ZeRO-3."),
    ("stage: dpo\nneat_packing: true\n", "cannot be set as True except SFT"),
])
def test_combinations_llamafactory_rejects(extra: str, message: str) -> None:
    zero3 = {"ds3.json": (DS / "llamafactory__ds_z3_config.json").read_text()}
    with pytest.raises(RejectedConfig, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan(extra, zero3)


def test_deepspeed_json_resolution_and_auto_values() -> None:
    text = (DS / "llamafactory__ds_z3_offload_config.json").read_text()
    p = plan("bf16: true\ndeepspeed: ds/z3.json\n", {"configs/ds/z3.json": text})  # next to the YAML
    assert p.deepspeed is not None
    assert (p.zero_stage, p.deepspeed.offload_optimizer, p.deepspeed.offload_param) == (3, "cpu", "cpu")
    assert p.deepspeed.bf16 is True  # "auto" follows the YAML's bf16
    assert p.deepspeed.reduce_bucket(4096) == 4096 * 4096  # HF "auto": hidden²
    root = plan("deepspeed: shared/z2.json\n", {"shared/z2.json": (DS / "llamafactory__ds_z2_config.json").read_text()})
    assert root.zero_stage == 2  # from the repository root, as LLaMA-Factory's CWD


def test_llamafactory_shipped_deepspeed_paths_work_offline() -> None:
    p = plan("deepspeed: examples/deepspeed/ds_z3_config.json\n")
    assert p.zero_stage == 3
    assert any("LLaMA-Factory's shipped copy" in a for a in p.assumptions)


@pytest.mark.parametrize(("text", "files", "message"), [
    ("deepspeed: missing.json\n", {}, "DeepSpeed config 'missing.json' not found"),
    ("deepspeed: ../../etc/passwd\n", {}, "'../../etc/passwd' is outside the repository"),
    ("deepspeed: /opt/ds/z3.json\n", {}, "'/opt/ds/z3.json' is outside the repository"),
    ("deepspeed: bad.json\n", {"configs/bad.json": "{not json"}, "not valid JSON"),
    ("deepspeed: stage.json\n", {"configs/stage.json": json.dumps({"zero_optimization": {"stage": 5}})}, "stage"),
])
def test_bad_deepspeed_files(text: str, files: dict[str, str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        plan(text, files)


@pytest.mark.parametrize(("text", "message"), [
    ("model_name_or_path: [unclosed\n", "malformed YAML"),
    ("- a\n- list\n", "expected a mapping"),
    ("stage: sft\n", "Please provide model_name_or_path."),
    (BASE + "per_device_train_batch_size: 0\n", "must be at least 1"),
    (BASE + "cutoff_len: -5\n", "must be at least 1"),
    (BASE + "per_device_train_batch_size: many\n", "must be an integer"),
    (BASE + "stage: sfft\n", "'stage' must be one of"),
    ("", "empty"),
])
def test_bad_yaml_is_one_clear_error_naming_file_and_key(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        parse_plan(text, "configs/bad.yaml")
    assert str(caught.value).startswith("configs/bad.yaml")


def test_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(BASE + "# " + "x" * 50_000_000 + "\n")
    with pytest.raises(InputError, match="larger than"):
        load_plan(big)


def test_unknown_keys_are_kept_not_fatal() -> None:
    p = plan("per_device_train_batchsize: 4\n")
    assert p.raw["per_device_train_batchsize"] == 4
    assert p.per_device_train_batch_size == 8
    assert p.key_lines["per_device_train_batchsize"] == 2
