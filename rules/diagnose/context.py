"""Facts about the run the log states outside its errors: settings, LLaMA-Factory notices, DeepSpeed."""

from __future__ import annotations

import re

from rules.diagnose.diagnosis import LogContext

# LLaMA-Factory YAML keys / CLI flags as they appear in pasted configs and launch commands.
_SETTING_RE = re.compile(
    r"(?:^|[\s\"'{,-])(stage|finetuning_type|cutoff_len|per_device_train_batch_size|"
    r"per_device_eval_batch_size|gradient_accumulation_steps|deepspeed|pure_bf16|val_size|"
    r"eval_strategy|evaluation_strategy|do_eval|predict_with_generate)\b\"?(?:\s*+[:=]\s*+|\s++)\"?([\w./-]+)"
)
_TRAINABLE_RE = re.compile(r"trainable params:\s*([\d,]+)\s*\|\|\s*all params:\s*([\d,]+)")
_ZERO_RE = re.compile(r"ZeRO stage (\d)")
_STAGES = ("pt", "sft", "rm", "ppo", "dpo", "kto")
_PREFERENCE_STAGES = ("dpo", "kto", "ppo")
_PREFERENCE_HINT_RE = re.compile(
    r"\b(dpo|kto|ppo|orpo|simpo)_?trainer\b|\bllamafactory[./]train[./](dpo|kto|ppo)\b|"
    r"\b(DPOTrainer|KTOTrainer|PPOTrainer)\b|concatenated_forward",
    re.IGNORECASE,
)


_SETTING_HINTS = (
    "stage",
    "cutoff_len",
    "batch_size",
    "finetuning_type",
    "deepspeed",
    "pure_bf16",
    "val_size",
    "eval",
    "predict_with_generate",
    "accumulation",
)


def fold_line(context: LogContext, line: str, lower: str) -> None:
    """Record what this line says about the run (first value wins for settings). `lower` = line.lower()."""
    if "Upcasting trainable params to float32" in line:
        context.fp32_upcast_logged = True
    if "trainable params" in line:
        counts = _TRAINABLE_RE.search(line)
        if counts is not None:
            context.trainable_params = int(counts.group(1).replace(",", ""))
    if "deepspeed" in lower:
        context.deepspeed = True
    if "ZeRO stage" in line:
        zero = _ZERO_RE.search(line)
        if zero is not None:
            context.zero_stage = int(zero.group(1))
    if not any(hint in lower for hint in _SETTING_HINTS) and "trainer" not in lower:
        return
    for match in _SETTING_RE.finditer(line):
        key, value = match.group(1), match.group(2)
        if key == "stage" and value.lower() not in _STAGES:
            continue  # "ZeRO stage 3", "Stage 3 initialize": not LLaMA-Factory's training stage
        context.settings.setdefault(key, value)
    stage = context.settings.get("stage", "").lower()
    if stage in _PREFERENCE_STAGES:
        context.preference_stage = stage
    elif context.preference_stage is None:
        hint = _PREFERENCE_HINT_RE.search(line)
        if hint is not None:
            text = hint.group(0).lower()
            context.preference_stage = next((s for s in ("kto", "ppo", "orpo", "simpo") if s in text), "dpo")
