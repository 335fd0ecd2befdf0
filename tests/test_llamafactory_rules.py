"""One table of the combinations LLaMA-Factory v0.9.5 rejects (estimator/llamafactory_rules.py) feeds both
the estimator, which refuses the config on the first one, and the rules, which report every one at its line.
Messages and check order are LLaMA-Factory v0.9.5's (hparams/finetuning_args.py, hparams/parser.py)."""

from __future__ import annotations

import pytest

from estimator.errors import RejectedConfig
from estimator.llamafactory_rules import REJECTION_RULES
from estimator.plan import parse_plan
from rules.checks import RuleContext, rule_docs, run_rules

HEAD = "model_name_or_path: Qwen/Qwen2.5-7B\ndo_train: true\n"
Z3 = "deepspeed: examples/deepspeed/ds_z3_config.json\n"  # resolved from LLaMA-Factory's shipped copy


def line_of(text: str, key: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if line.startswith(f"{key}:"))


def test_every_family_of_the_table_is_a_registered_rule() -> None:
    registered = {rule for rule, _, _ in rule_docs()}
    assert set(REJECTION_RULES) <= registered


@pytest.mark.parametrize(("body", "key", "message", "world_size"), [
    # Combinations only the rules used to know: the estimator now refuses them too.
    ("use_kt: true\n" + Z3, "use_kt", "KTransformers is incompatible with DeepSpeed ZeRO-3.", 1),
    ("pissa_init: true\n" + Z3, "pissa_init",
     "Please use scripts/pissa_init.py to initialize PiSSA in DeepSpeed ZeRO-3.", 1),
    ("finetuning_type: full\nuse_llama_pro: true\n", "use_llama_pro",
     "`use_llama_pro` is only valid for Freeze or LoRA training.", 1),
    ("finetuning_type: full\noptim: adamw_torch\nuse_apollo: true\napollo_layerwise: true\n", "apollo_layerwise",
     "Distributed training does not support layer-wise APOLLO.", 2),
    ("finetuning_type: full\noptim: adamw_torch\nuse_galore: true\ngalore_layerwise: true\n"
     "gradient_accumulation_steps: 4\n",
     "gradient_accumulation_steps", "Per-layer GaLore does not support gradient accumulation.", 1),
    ("stage: kto\ntrain_on_prompt: true\n", "train_on_prompt",
     "`train_on_prompt` or `mask_history` cannot be set as True except SFT.", 1),
])
def test_estimator_and_rules_name_the_same_key_with_the_same_message(body: str, key: str, message: str,
                                                                      world_size: int) -> None:
    text = HEAD + body
    with pytest.raises(RejectedConfig) as caught:
        parse_plan(text, "configs/c.yaml", world_size=world_size)
    assert (caught.value.key, caught.value.line) == (key, line_of(text, key))
    assert message in caught.value.message
    findings = run_rules(RuleContext.from_yaml(text, "configs/c.yaml", world_size=world_size))
    assert [(f.line, f.message.startswith(message)) for f in findings if f.severity == "error"] == [
        (line_of(text, key), True)]


def test_estimator_stops_on_the_first_check_llamafactory_makes_and_rules_report_all() -> None:
    # FinetuningArguments.__post_init__ runs while the arguments parse, before get_train_args' checks:
    # the missing reward model (finetuning_args.py:580) is what LLaMA-Factory reports first.
    text = HEAD + "stage: ppo\nfinetuning_type: full\nuse_dora: true\npure_bf16: true\n" + Z3
    with pytest.raises(RejectedConfig, match=r"`reward_model` is necessary for PPO training\."):
        parse_plan(text, "configs/c.yaml")
    findings = run_rules(RuleContext.from_yaml(text, "configs/c.yaml"))
    assert [(f.rule, f.line) for f in findings] == [
        ("ppo-reward-model", line_of(text, "stage")),
        ("ppo-reward-model", line_of(text, "finetuning_type")),  # reward_model_type defaults to lora
        ("method-options", line_of(text, "use_dora")),
        ("pure-bf16-zero3", line_of(text, "pure_bf16")),
    ]


def test_flags_are_read_as_hf_argument_parser_reads_them() -> None:
    # HfArgumentParser's string_to_bool: the string "false" is False, so LLaMA-Factory accepts this config.
    text = HEAD + "finetuning_type: full\npure_bf16: 'false'\nbf16: true\n" + Z3
    assert parse_plan(text, "configs/c.yaml").zero_stage == 3
    assert [f for f in run_rules(RuleContext.from_yaml(text, "configs/c.yaml")) if f.severity == "error"] == []
