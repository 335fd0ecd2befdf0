"""flash_attn: fa2 on a GPU FlashAttention-2 does not run on (sm < 80: V100, T4): fails at the first step."""

from __future__ import annotations

from collections.abc import Iterator

from rules.checks import RuleContext
from rules.report import Finding, Severity

ID = "gpu-flash-attention"
SEVERITY: Severity = "error"


def check(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.gpu is None or ctx.gpu.flash_attention_2 is not False:
        return
    if ctx.text("flash_attn", "auto") == "fa2":
        # flash-attn's kernels need Ampere or newer: "FlashAttention only supports Ampere GPUs or newer."
        yield ctx.finding(ID, SEVERITY, f"FlashAttention-2 does not run on {ctx.gpu.name} "
                          "(needs sm_80 or newer); use flash_attn: sdpa", "flash_attn")
