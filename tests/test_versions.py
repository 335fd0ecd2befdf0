"""The LLaMA-Factory version (and transformers' major) a team runs: named in the policy, 0.9.5 by default,
keying the rejection table, the accepted keys and the coverage table (lf_versions.md: what main changed)."""

from __future__ import annotations

import pytest

from estimator.errors import InputError
from estimator.llamafactory_rules import TABLE, rejections
from estimator.versions import LATEST_RELEASE, Versions
from rules.checks import RuleContext, run_rules
from rules.policy import load_policy

HEAD = "model_name_or_path: Qwen/Qwen2.5-7B\ndo_train: true\n"


def errors(text: str, version: str) -> list[tuple[str, str]]:
    ctx = RuleContext.from_yaml(HEAD + text, "c.yaml", llamafactory_version=version)
    return [(f.rule, f.message) for f in run_rules(ctx) if f.severity == "error"]


def test_policy_names_the_version_and_defaults_to_the_latest_release() -> None:
    assert load_policy(None).versions == Versions(LATEST_RELEASE, 5) == Versions("0.9.5", 5)
    policy = load_policy("llamafactory: main\ntransformers: '4.57.1'\n")
    assert policy.versions == Versions("main", 4)
    assert load_policy("llamafactory: v0.9.5\n").versions.llamafactory == "0.9.5"
    with pytest.raises(InputError, match=r"llamafactory must be one of 0\.9\.5, main") as caught:
        load_policy("pools:\n  - {name: a, gpu: A100-80GB}\nllamafactory: 0.8.3\n")
    assert caught.value.line == 3
    with pytest.raises(InputError, match="transformers must be 4 or 5"):
        load_policy("transformers: 3\n")


def test_kt_keys_of_main_are_unknown_keys_on_0_9_5() -> None:
    text = "use_kt: true\nkt_cpu_activation: retain\nkt_config: {kt_backend: AMXBF16}\n"
    on_095 = errors(text, "0.9.5")
    assert [rule for rule, _ in on_095] == ["unknown-key", "unknown-key"]
    assert all("LLaMA-Factory main key" in message for _, message in on_095)
    assert errors(text, "main") == []


def test_fa3_is_rejected_by_0_9_5_only() -> None:
    assert errors("flash_attn: fa3\n", "0.9.5") == [("attention-implementation", "Unknown attention type: fa3 "
                                                   "(LLaMA-Factory 0.9.5 has no FA3 path; main has)")]
    assert errors("flash_attn: fa3\n", "main") == []


def test_ktransformers_checks_added_on_main() -> None:
    found = rejections({"use_kt": True, "finetuning_type": "freeze"}, 0, 1, version="main")
    assert [(r.rule, r.source) for r in found] == [("ktransformers-options", "hparams/model_args.py:619")]
    assert rejections({"use_kt": True, "finetuning_type": "freeze"}, 0, 1, version="0.9.5") == []


def test_source_lines_are_each_versions_own() -> None:
    # lf_versions.md §(a): the raise lines of v0.9.5 and main (parser.py moved by +98..+128 on main)
    neat = next(rule for rule in TABLE if rule.message.startswith("`neat_packing`"))
    assert (neat.where("0.9.5"), neat.where("main")) == ("hparams/parser.py:321", "hparams/parser.py:423")
    pure = next(rule for rule in TABLE if rule.message.startswith("`pure_bf16` is incompatible"))
    assert (pure.lines["0.9.5"], pure.lines["main"]) == (385, 503)


def test_quantization_device_map_is_rejected_only_when_training() -> None:
    # parser.py:374-375 (0.9.5): `training_args.do_train and quantization_device_map == "auto"`
    predict = {"do_predict": True, "predict_with_generate": True, "quantization_bit": 4,
               "quantization_device_map": "auto"}
    assert [r.rule for r in rejections(predict, 0)] == []
    assert [r.rule for r in rejections(predict | {"do_train": True}, 0)] == ["quantization-training"]


def test_quantization_rejections_under_fsdp_with_rank0_loading() -> None:
    raw = {"quantization_bit": 4, "quantization_method": "hqq"}
    assert rejections(raw, 0) == []
    assert [r.message for r in rejections(raw, 0, fsdp_loading=True)] == [
        "HQQ quantization is incompatible with DeepSpeed ZeRO-3 or FSDP."]
