"""PPO without a reward model, or with a LoRA reward model on a Freeze/Full run (LF rejects both)."""

from __future__ import annotations

from collections.abc import Iterator

from rules.checks import RuleContext
from rules.report import Finding, Severity

ID = "ppo-reward-model"
SEVERITY: Severity = "error"


def check(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.stage != "ppo":
        return
    # hparams/finetuning_args.py FinetuningArguments.__post_init__ (v0.9.5)
    if not ctx.has("reward_model"):
        yield ctx.finding(ID, SEVERITY, "`reward_model` is necessary for PPO training.", "stage")
    if ctx.text("reward_model_type", "lora") == "lora" and ctx.finetuning_type != "lora":
        key = "reward_model_type" if ctx.has("reward_model_type") else "finetuning_type"
        yield ctx.finding(ID, SEVERITY, "`reward_model_type` cannot be lora for Freeze/Full PPO training.",
                          key)
