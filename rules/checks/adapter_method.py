"""Quantization or adapter loading with a method that does not take them (LoRA/OFT only; LF's message)."""

from __future__ import annotations

from collections.abc import Iterator

from rules.checks import RuleContext
from rules.report import Finding, Severity

ID = "adapter-method"
SEVERITY: Severity = "error"


def check(ctx: RuleContext) -> Iterator[Finding]:
    method = ctx.finetuning_type
    # hparams/parser.py _verify_model_args (v0.9.5)
    if ctx.has("quantization_bit") and method not in ("lora", "oft"):
        yield ctx.finding(ID, SEVERITY, "Quantization is only compatible with the LoRA or OFT method. "
                          f"(finetuning_type: {method})", "quantization_bit")
    if ctx.has("adapter_name_or_path") and method != "lora":
        yield ctx.finding(ID, SEVERITY, "Adapter is only valid for the LoRA method. "
                          f"(finetuning_type: {method})", "adapter_name_or_path")
