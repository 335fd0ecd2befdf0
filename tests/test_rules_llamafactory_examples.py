"""LLaMA-Factory's own v0.9.5 example configs pass every rule (no false alarms on configs LF runs),
and the same files with one LF-rejected change are caught. The YAMLs are verbatim copies of
hiyouga/LLaMA-Factory v0.9.5 examples/ (paths in each constant's name), Apache-2.0."""

from __future__ import annotations

import pytest

from rules.checks import RuleContext, run_rules
from rules.gpus import find_gpu

# examples/train_full/qwen3_full_sft.yaml
QWEN3_FULL_SFT = """\
### model
model_name_or_path: Qwen/Qwen3-4B-Instruct-2507
trust_remote_code: true

### method
stage: sft
do_train: true
finetuning_type: full
deepspeed: examples/deepspeed/ds_z3_config.json  # choices: [ds_z0_config.json, ds_z2_config.json, ds_z3_config.json]

### dataset
dataset: identity,alpaca_en_demo
template: qwen3_nothink
cutoff_len: 2048
max_samples: 1000
preprocessing_num_workers: 16
dataloader_num_workers: 4

### output
output_dir: saves/qwen3-4b/full/sft
logging_steps: 10
save_steps: 500
plot_loss: true
overwrite_output_dir: true
save_only_model: false
report_to: none  # choices: [none, wandb, tensorboard, swanlab, mlflow]

### train
per_device_train_batch_size: 1
gradient_accumulation_steps: 2
learning_rate: 1.0e-5
num_train_epochs: 3.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: true
ddp_timeout: 180000000
resume_from_checkpoint: null

### eval
# eval_dataset: alpaca_en_demo
# val_size: 0.1
# per_device_eval_batch_size: 1
# eval_strategy: steps
# eval_steps: 500
"""

# examples/extras/galore/llama3_full_sft.yaml
LLAMA3_GALORE_FULL_SFT = """\
### model
model_name_or_path: meta-llama/Meta-Llama-3-8B-Instruct
trust_remote_code: true

### method
stage: sft
do_train: true
finetuning_type: full
use_galore: true
galore_layerwise: true  # choices: [true, false], use false for DDP training
galore_target: all
galore_rank: 128
galore_scale: 2.0

### dataset
dataset: identity,alpaca_en_demo
template: llama3
cutoff_len: 2048
max_samples: 1000
overwrite_cache: true
preprocessing_num_workers: 16
dataloader_num_workers: 4

### output
output_dir: saves/llama3-8b/full/sft
logging_steps: 10
save_steps: 500
plot_loss: true
overwrite_output_dir: true
save_only_model: false
report_to: none  # choices: [none, wandb, tensorboard, swanlab, mlflow]

### train
per_device_train_batch_size: 1
gradient_accumulation_steps: 1  # use 1 for layerwise galore
learning_rate: 1.0e-5
num_train_epochs: 3.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
pure_bf16: true
ddp_timeout: 180000000
"""

# examples/train_qlora/qwen3_lora_sft_otfq.yaml (first lines: model and method)
QWEN3_QLORA_OTFQ = """\
### model
model_name_or_path: Qwen/Qwen3-4B-Instruct-2507
quantization_bit: 4  # choices: [8 (bnb/hqq/eetq), 4 (bnb/hqq), 3 (hqq), 2 (hqq)]
quantization_method: bnb  # choices: [bnb, hqq, eetq]
trust_remote_code: true

### method
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all
"""


def line_of(text: str, key: str) -> int:
    """1-based line where the top-level key `key` is written."""
    return next(number for number, line in enumerate(text.splitlines(), 1) if line.startswith(f"{key}:"))


def findings(text: str, **context: object) -> list[tuple[str, str, int | None]]:
    ctx = RuleContext.from_yaml(text, "configs/example.yaml", **context)  # type: ignore[arg-type]
    return [(f.rule, f.severity, f.line) for f in run_rules(ctx)]


@pytest.mark.parametrize("text", [QWEN3_FULL_SFT, QWEN3_QLORA_OTFQ])
def test_official_examples_are_clean_on_an_a100(text: str) -> None:
    assert findings(text, gpu=find_gpu("A100-80GB"), world_size=1) == []


def test_galore_example_needs_an_optim_galore_implements() -> None:
    # No `optim` key: HF's default on torch >= 2.8 is adamw_torch_fused, which LF's GaLore does not implement
    # (train/trainer_utils.py:239-246 raises "Unknown optim") when it creates the optimizer.
    expected = [("galore-optim", "error", line_of(LLAMA3_GALORE_FULL_SFT, "use_galore"))]
    assert findings(LLAMA3_GALORE_FULL_SFT, gpu=find_gpu("A100-80GB"), world_size=1) == expected
    fixed = LLAMA3_GALORE_FULL_SFT + "optim: adamw_torch\n"
    assert findings(fixed, gpu=find_gpu("A100-80GB"), world_size=1) == []


def test_full_sft_on_eight_a100s_is_clean() -> None:
    assert findings(QWEN3_FULL_SFT, gpu=find_gpu("A100-80GB"), world_size=8) == []


def test_layerwise_galore_example_on_several_gpus_is_rejected() -> None:
    # The example's own comment says "use false for DDP training"; LF's parser enforces it.
    text = LLAMA3_GALORE_FULL_SFT + "optim: adamw_torch\n"
    expected = [("layerwise-optimizer", "error", line_of(text, "galore_layerwise"))]
    assert findings(text, world_size=8) == expected


def test_full_sft_example_with_pure_bf16_is_rejected_under_zero3() -> None:
    text = QWEN3_FULL_SFT.replace("bf16: true", "pure_bf16: true")
    assert findings(text) == [("pure-bf16-zero3", "error", line_of(text, "pure_bf16"))]


def test_full_sft_example_on_v100_flags_bf16() -> None:
    expected = [("gpu-bf16", "error", line_of(QWEN3_FULL_SFT, "bf16"))]
    assert findings(QWEN3_FULL_SFT, gpu=find_gpu("V100-32GB"), world_size=8) == expected


def test_qlora_example_with_eight_bits_under_zero3() -> None:
    text = QWEN3_QLORA_OTFQ.replace("quantization_bit: 4", "quantization_bit: 8") + (
        "deepspeed: examples/deepspeed/ds_z3_config.json\nbf16: true\n")
    assert findings(text) == [("quantization-zero3", "error", line_of(text, "quantization_bit"))]
