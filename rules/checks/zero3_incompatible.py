"""Options LLaMA-Factory rejects under ZeRO-3: unsloth, KTransformers, PiSSA init, predict_with_generate."""

from __future__ import annotations

from collections.abc import Iterator

from rules.checks import RuleContext
from rules.report import Finding, Severity

ID = "zero3-incompatible"
SEVERITY: Severity = "error"

# hparams/parser.py get_train_args (v0.9.5), each with LLaMA-Factory's own message.
_MESSAGES = (
    ("use_unsloth", "Unsloth is incompatible with DeepSpeed ZeRO-3."),
    ("use_kt", "KTransformers is incompatible with DeepSpeed ZeRO-3."),
    ("pissa_init", "Please use scripts/pissa_init.py to initialize PiSSA in DeepSpeed ZeRO-3."),
    ("predict_with_generate", "`predict_with_generate` is incompatible with DeepSpeed ZeRO-3."),
)


def check(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.zero_stage != 3:
        return
    for key, message in _MESSAGES:
        if ctx.flag(key):
            yield ctx.finding(ID, SEVERITY, message, key)
