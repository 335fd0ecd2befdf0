"""Rules run on the lead's TrainingPlan too: the ZeRO stage comes from the DeepSpeed JSON the plan read."""

from __future__ import annotations

from pathlib import Path

import pytest

from estimator.errors import RejectedConfig
from estimator.plan import parse_plan
from rules.checks import RuleContext, run_rules
from rules.gpus import find_gpu

FIXTURES = Path(__file__).parent / "fixtures" / "deepspeed"


def read_repo_file(path: str) -> str:
    # The config names its DeepSpeed file "ds/team_zero.json"; it is LLaMA-Factory's ds_z3_config.json.
    if path == "ds/team_zero.json":
        return (FIXTURES / "llamafactory__ds_z3_config.json").read_text()
    raise FileNotFoundError(path)


def context(text: str, world_size: int = 8) -> RuleContext:
    plan = parse_plan(text, "train.yaml", read_file=read_repo_file, world_size=world_size)
    return RuleContext.from_yaml(text, "train.yaml", plan=plan, gpu=find_gpu("A100-80GB"), world_size=world_size)


def test_eight_bit_qlora_under_zero3_from_the_json() -> None:
    text = ("model_name_or_path: Qwen/Qwen2.5-7B\nstage: sft\ndo_train: true\nfinetuning_type: lora\n"
            "quantization_bit: 8\nbf16: true\ndeepspeed: ds/team_zero.json\n")
    # the plan reads the ZeRO stage from the JSON (the file name says nothing) and LLaMA-Factory's model
    # loading rejects 8-bit bitsandbytes under ZeRO-3, so the estimator refuses it at that line
    with pytest.raises(RejectedConfig, match="Only 4-bit quantized model") as rejected:
        parse_plan(text, "train.yaml", read_file=read_repo_file, world_size=8)
    assert rejected.value.line == 5
    # the rule reports the same from the YAML and the stage the JSON gives, without a plan
    ctx = RuleContext.from_yaml(text, "train.yaml", gpu=find_gpu("A100-80GB"), world_size=8, deepspeed_stage=3)
    assert [(f.rule, f.line) for f in run_rules(ctx)] == [("quantization-zero3", 5)]


def test_four_bit_qlora_with_bf16_under_zero3_is_clean() -> None:
    text = ("model_name_or_path: Qwen/Qwen2.5-7B\nstage: sft\ndo_train: true\nfinetuning_type: lora\n"
            "quantization_bit: 4\nbf16: true\ndeepspeed: ds/team_zero.json\n")
    assert run_rules(context(text)) == []
