"""On-the-fly quantization under ZeRO-3: only bnb 4-bit works, with a storage dtype matching DeepSpeed's."""

from __future__ import annotations

from collections.abc import Iterator

from rules.checks import RuleContext
from rules.report import Finding, Severity

ID = "quantization-zero3"
SEVERITY: Severity = "error"


def check(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.zero_stage != 3 or not ctx.has("quantization_bit"):
        return
    bits = ctx.number("quantization_bit", 0)
    method = ctx.text("quantization_method", "bnb")
    # model/model_utils/quantization.py configure_quantization (v0.9.5), LLaMA-Factory's messages.
    if method == "bnb" and bits != 4:
        yield ctx.finding(ID, SEVERITY, "Only 4-bit quantized model can use fsdp+qlora or auto device map. "
                          f"(quantization_bit: {bits} with ZeRO-3)", "quantization_bit")
    elif method == "hqq":
        yield ctx.finding(ID, SEVERITY, "HQQ quantization is incompatible with DeepSpeed ZeRO-3 or FSDP.",
                          "quantization_method")
    elif method == "eetq":
        yield ctx.finding(ID, SEVERITY, "EETQ quantization is incompatible with DeepSpeed ZeRO-3 or FSDP.",
                          "quantization_method")
    elif method == "bnb" and not (ctx.flag("bf16") or ctx.flag("fp16") or ctx.flag("pure_bf16")):
        # LLaMA-Factory sets bnb_4bit_quant_storage = compute_dtype ("crucial for fsdp+qlora"), and the
        # DeepSpeed JSON's "auto" precision follows bf16/fp16: with neither set, ZeRO-3 partitions in
        # fp32 while the 4-bit weights are stored in the checkpoint's half dtype.
        yield ctx.finding(ID, "warning", "4-bit QLoRA with ZeRO-3 but neither bf16 nor fp16: the quantized "
                          "weights' storage dtype (LLaMA-Factory's compute dtype) will not match DeepSpeed's "
                          "fp32; set bf16: true", "quantization_bit")
