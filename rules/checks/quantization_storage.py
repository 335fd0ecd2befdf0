"""4-bit QLoRA under ZeRO-3 without bf16/fp16: the 4-bit storage dtype will not match DeepSpeed's fp32."""

from __future__ import annotations

from collections.abc import Iterator

from rules.checks import RuleContext
from rules.report import Finding, Severity

ID = "quantization-storage"
SEVERITY: Severity = "warning"


def check(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.zero_stage != 3 or ctx.number("quantization_bit", 0) != 4 or ctx.rejections:
        return
    if ctx.text("quantization_method", "bnb") == "bnb" and not (
            ctx.flag("bf16") or ctx.flag("fp16") or ctx.flag("pure_bf16")):
        # LLaMA-Factory sets bnb_4bit_quant_storage = compute_dtype ("crucial for fsdp+qlora"), and the
        # DeepSpeed JSON's "auto" precision follows bf16/fp16: with neither set, ZeRO-3 partitions in
        # fp32 while the 4-bit weights are stored in the checkpoint's half dtype.
        yield ctx.finding(ID, SEVERITY, "4-bit QLoRA with ZeRO-3 but neither bf16 nor fp16: the quantized "
                          "weights' storage dtype (LLaMA-Factory's compute dtype) will not match DeepSpeed's "
                          "fp32; set bf16: true", "quantization_bit")
