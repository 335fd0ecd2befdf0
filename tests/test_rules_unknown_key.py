"""unknown-key: keys LLaMA-Factory v0.9.5's HfArgumentParser would refuse, with a did-you-mean."""

from __future__ import annotations

from rules.checks import RuleContext, run_rules
from rules.checks.unknown_key import accepted_keys

CONFIG = """\
model_name_or_path: Qwen/Qwen2.5-7B
stage: sft
do_train: true
finetuning_type: lora
per_device_train_batchsize: 2
gradient_accumulation_steps: 8
evaluation_strategy: steps
lora_rnak: 16
my_team_note: hello
"""


def unknown(text: str) -> list[tuple[str, int | None, str]]:
    ctx = RuleContext.from_yaml(text, "configs/c.yaml")
    return [(f.severity, f.line, f.message) for f in run_rules(ctx) if f.rule == "unknown-key"]


def test_typos_get_did_you_mean_at_their_line() -> None:
    found = unknown(CONFIG)
    assert [(severity, line) for severity, line, _ in found] == [("error", 5), ("error", 7), ("error", 8),
                                                                 ("error", 9)]
    messages = [message for _, _, message in found]
    assert "did you mean 'per_device_train_batch_size'" in messages[0]
    # evaluation_strategy was renamed eval_strategy in transformers 4.46 and is gone in both 4.56 and 5.6.
    assert "did you mean 'eval_strategy'" in messages[1]
    assert "did you mean 'lora_rank'" in messages[2]
    assert "did you mean" not in messages[3]  # nothing close: no guess


def test_accepted_keys_cover_every_argument_class() -> None:
    keys = accepted_keys()
    # one from each of ModelArguments, DataArguments, FinetuningArguments, GeneratingArguments,
    # LLaMA-Factory's TrainingArguments additions and HF Seq2SeqTrainingArguments.
    for key in ("flash_attn", "cutoff_len", "pref_beta", "max_new_tokens", "fp8", "deepspeed",
                "predict_with_generate", "per_device_train_batch_size"):
        assert key in keys, key
    clean = "".join(f"{key}: 1\n" for key in ("model_name_or_path", "cutoff_len", "lora_rank", "deepspeed"))
    assert unknown(clean) == []


def test_keys_of_one_transformers_major_only_are_warnings() -> None:
    found = unknown("model_name_or_path: x\nstage: sft\nno_cuda: true\ndo_train: true\n")
    assert [(severity, line) for severity, line, _ in found] == [("warning", 3)]
    assert "transformers 5" in found[0][2]


def test_megatron_configs_are_not_checked_against_the_hf_keys() -> None:
    # examples/megatron/*.yaml (USE_MCA=1) use mcore_adapter's own argument class.
    text = ("model_name_or_path: Qwen/Qwen3-30B-A3B\nstage: sft\ntensor_model_parallel_size: 2\n"
            "recompute_granularity: full\n")
    assert unknown(text) == []
