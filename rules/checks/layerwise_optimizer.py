"""Layer-wise GaLore/APOLLO with gradient accumulation or on more than one GPU (LF rejects both)."""

from __future__ import annotations

from collections.abc import Iterator

from rules.checks import RuleContext
from rules.report import Finding, Severity

ID = "layerwise-optimizer"
SEVERITY: Severity = "error"

_LAYERWISE = (("galore_layerwise", "use_galore", "GaLore"), ("apollo_layerwise", "use_apollo", "APOLLO"))


def check(ctx: RuleContext) -> Iterator[Finding]:
    for layerwise, enabled, name in _LAYERWISE:
        if not (ctx.flag(layerwise) and ctx.flag(enabled)):
            continue
        if ctx.world_size > 1:  # hparams/parser.py get_train_args (v0.9.5), ParallelMode.DISTRIBUTED
            yield ctx.finding(ID, SEVERITY, f"Distributed training does not support layer-wise {name}. "
                              f"(target: {ctx.world_size} GPUs)", layerwise)
        steps = ctx.number("gradient_accumulation_steps", 1)
        if steps != 1:  # train/trainer_utils.py _create_galore_optimizer / _create_apollo_optimizer
            yield ctx.finding(ID, SEVERITY, f"Per-layer {name} does not support gradient accumulation. "
                              f"(gradient_accumulation_steps: {steps})", "gradient_accumulation_steps")
