"""FlashAttention-2 as a fake op: the tensors the GPU kernel saves, without the kernel.

The CPU build has no flash-attn, so ``attn_implementation="flash_attention_2"`` cannot run here.
This module registers ``vram_oracle::flash_fwd`` / ``flash_bwd`` custom ops whose fake (shape-only)
kernels allocate exactly what flash-attn 2's CUDA path allocates, and an autograd rule that saves
what ``flash_attn.flash_attn_interface.FlashAttnFunc`` saves:

* forward (``_flash_attn_forward``): ``out`` [B, L, H, D] in the input dtype and
  ``softmax_lse`` [B, H, L] fp32; ``ctx.save_for_backward(q, k, v, out_padded, softmax_lse,
  rng_state)`` keeps q, k, v (the RoPE'd projections, un-expanded for GQA: flash reads K/V heads
  natively), out and lse alive until backward.
* backward (``mha_bwd`` in csrc/flash_attn/flash_api.cpp): dq, dk, dv like q, k, v, plus
  kernel-internal workspaces that live only inside the call: ``softmax_d`` fp32 [B, H, L128],
  ``dq_accum`` fp32 [B, L128, H, D_r] and, with GQA, ``dk_expanded``/``dv_expanded`` [B, L, H, D_r]
  in the input dtype (L128 = L rounded up to 128; D_r = D rounded up to 32, or 64 above 128).
  These are reported to the tracker as a transient.

It is registered with transformers as the attention implementation ``"oracle_fa2"``, wired like
``integrations/flash_attention.py`` (q/k/v transposed to [B, L, H, D] as views, fp32 inputs cast
to bf16 first, output returned as [B, L, H, D] so o_proj's input is a view of ``out``).  The mask
function is transformers' ``flash_attention_mask`` (None for unpadded batches).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AttentionInterface
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, flash_attention_mask

from benchmarks.oracle.tracker import active_tracker

NAME = "oracle_fa2"


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@torch.library.custom_op("vram_oracle::flash_fwd", mutates_args=())
def flash_fwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    raise NotImplementedError("vram_oracle::flash_fwd only runs under FakeTensorMode")


@flash_fwd.register_fake
def _flash_fwd_fake(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    batch, seqlen, heads, _ = q.shape
    out = torch.empty_like(q, memory_format=torch.contiguous_format)
    lse = q.new_empty((batch, heads, seqlen), dtype=torch.float32)
    return out, lse


@torch.library.custom_op("vram_oracle::flash_bwd", mutates_args=())
def flash_bwd(
    dout: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor, lse: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    raise NotImplementedError("vram_oracle::flash_bwd only runs under FakeTensorMode")


def backward_workspace_bytes(q: torch.Tensor, k: torch.Tensor) -> int:
    """Bytes mha_bwd allocates internally (freed before it returns)."""
    batch, seqlen, heads, head_dim = q.shape
    kv_heads = k.shape[2]
    seqlen_r = _round_up(seqlen, 128)
    head_dim_r = _round_up(head_dim, 32 if head_dim <= 128 else 64)
    softmax_d = 4 * batch * heads * seqlen_r
    dq_accum = 4 * batch * seqlen_r * heads * head_dim_r
    expanded = 0
    if kv_heads != heads:
        expanded = 2 * q.element_size() * batch * k.shape[1] * heads * head_dim_r
    return softmax_d + dq_accum + expanded


@flash_bwd.register_fake
def _flash_bwd_fake(
    dout: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor, lse: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    tracker = active_tracker()
    if tracker is not None:
        tracker.transient(backward_workspace_bytes(q, k))
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Any, ...]) -> None:
    q, k, v = inputs
    out, lse = output
    ctx.save_for_backward(q, k, v, out, lse)


def _backward(ctx: Any, dout: torch.Tensor, _dlse: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
    q, k, v, out, lse = ctx.saved_tensors
    dq, dk, dv = flash_bwd(dout.contiguous(), q, k, v, out, lse)
    return dq, dk, dv


flash_fwd.register_autograd(_backward, setup_context=_setup_context)


def oracle_flash_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    sliding_window: int | None = None,
    softcap: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    if attention_mask is not None:
        raise NotImplementedError("the oracle traces unpadded batches only (no varlen flash path)")
    # transformers integrations/flash_attention.py: [B, H, L, D] -> [B, L, H, D] (views)
    query, key, value = (t.transpose(1, 2) for t in (query, key, value))
    if query.dtype == torch.float32:  # flash kernels take 16-bit inputs; transformers casts first
        query, key, value = (t.to(torch.bfloat16) for t in (query, key, value))
    out, _ = flash_fwd(query, key, value)
    return out, None


def register() -> str:
    AttentionInterface.register(NAME, oracle_flash_attention_forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, flash_attention_mask)
    return NAME
