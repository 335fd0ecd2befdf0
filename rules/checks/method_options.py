"""Method options LF rejects: LoRA-only options without LoRA, LoRA + GaLore/APOLLO/BAdam, two of those."""

from __future__ import annotations

from collections.abc import Iterator

from rules.checks import RuleContext
from rules.report import Finding, Severity

ID = "method-options"
SEVERITY: Severity = "error"

_LORA_ONLY = ("loraplus_lr_ratio", "use_rslora", "use_dora", "pissa_init")
_OPTIMIZERS = ("use_galore", "use_apollo", "use_badam")


def check(ctx: RuleContext) -> Iterator[Finding]:
    # hparams/finetuning_args.py FinetuningArguments.__post_init__ (v0.9.5), LLaMA-Factory's messages.
    method = ctx.finetuning_type
    optimizers = [key for key in _OPTIMIZERS if ctx.flag(key)]
    if ctx.flag("use_llama_pro") and method == "full":
        yield ctx.finding(ID, SEVERITY, "`use_llama_pro` is only valid for Freeze or LoRA training.",
                          "use_llama_pro")
    if method == "lora" and optimizers:
        yield ctx.finding(ID, SEVERITY, "Cannot use LoRA with GaLore, APOLLO or BAdam together. "
                          "(finetuning_type defaults to lora: set full or freeze)", optimizers[0])
    if len(optimizers) > 1:
        yield ctx.finding(ID, SEVERITY, "Cannot use GaLore, APOLLO or BAdam together.", optimizers[1])
    if method != "lora":
        for key in _LORA_ONLY:
            present = ctx.has(key) if key == "loraplus_lr_ratio" else ctx.flag(key)
            if present:
                yield ctx.finding(ID, SEVERITY, f"`{key}` is only valid for LoRA training. "
                                  f"(finetuning_type: {method})", key)
