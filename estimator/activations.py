"""Bytes autograd keeps per token for one decoder layer, and the logits / loss tensors.

Derived from what each op of the transformers decoder layer saves for backward (modeling_llama.py:
LlamaRMSNorm, LlamaAttention + sdpa/eager/flash attention, LlamaMLP), checked against a FakeTensorMode
trace of the real model (research/trace.md §5: ≈44.6 KB/token/layer traced vs 40-46 KB by hand).
A tensor is saved only when the gradient it feeds is needed: frozen linears save no input.
"""

from __future__ import annotations

from dataclasses import dataclass

from estimator.model import ModelSpec


@dataclass(frozen=True)
class Precision:
    """Dtypes the activations take: the residual stream (embedding dtype) and matmul outputs."""

    residual_bytes: int  # 4 when the embedding weights are fp32 (full FT with the fp32 upcast), else 2
    matmul_bytes: int  # 2 under bf16/fp16 autocast or half-precision weights, 4 in plain fp32


def norm_bytes(h: int, p: Precision, weight_trainable: bool, output_copies: int) -> int:
    """RMSNorm: x.to(fp32) is saved by pow/mul (4h); weight·x̂ saves x̂ only if the weight trains; the output
    is saved by the linears that consume it, once per linear that casts it (see `input_copies`)."""
    return 4 * h + (p.residual_bytes * h if weight_trainable else 0) + output_copies * p.matmul_bytes * h


def input_copies(consumers: int, p: Precision, trainable: str) -> int:
    """Saved copies of a tensor that `consumers` linears read: none when they are frozen (a frozen linear needs
    only its weight for the input gradient); one shared tensor when no cast is needed; one per linear when
    each casts it — autocast from an fp32 residual stream (HF AMP), or PEFT's per-adapter input cast
    (lora/layer.py `_cast_input_dtype` to the fp32 adapter, then autocast back to bf16)."""
    if trainable == "frozen":
        return 0
    if trainable == "adapters" or p.residual_bytes != p.matmul_bytes:
        return consumers
    return 1


def attention_bytes(model: ModelSpec, p: Precision, attention: str, seq_len: int, trainable: str) -> int:
    """Saved by the attention block per token (inputs of q/k/v excluded: see norm_bytes).

    sdpa / flash: q (after RoPE), k, v, output and the fp32 logsumexp (aten _scaled_dot_product_flash_attention);
    the o_proj input is a view of the output unless an adapter casts it. SDPA past a sliding window gets a
    mask, which takes the kernel with GQA K/V expanded (repeat_kv). eager: repeat_kv copies of k/v, the fp32
    softmax and its compute-dtype copy (B·H·L² each), a contiguous copy of the output for o_proj.
    """
    a = p.matmul_bytes
    o_copy = a * model.q_dim * input_copies(1, p, trainable) if trainable != "full" or attention == "eager" else 0
    expanded = model.q_dim if model.kv_heads < model.heads else model.kv_dim
    if attention == "eager":
        scores = (4 + a if a == 2 else 4) * model.heads * seq_len  # fp32 softmax (+ its bf16 copy)
        if model.attention_softcapping:  # Gemma-2: tanh(scores / cap) · cap saves the tanh output
            scores += a * model.heads * seq_len
        return a * (model.q_dim + 2 * expanded) + o_copy + scores
    windowed = attention == "sdpa" and model.sliding_window is not None and seq_len > model.sliding_window
    kv = expanded if windowed else model.kv_dim
    return a * (model.q_dim + 2 * kv + model.q_dim) + 4 * model.heads + o_copy


def mlp_bytes(model: ModelSpec, p: Precision, trainable: str, liger: bool, moe: bool) -> int:
    """SwiGLU: gate output (act input), act output, up output, and the product (down_proj input) → 4·i.
    Liger's fused SwiGLU saves only gate and up outputs (recomputes the activation)."""
    a = p.matmul_bytes
    down_input = input_copies(1, p, trainable) if trainable != "frozen" else 0
    if moe:
        # each token passes through top-k experts: the same four tensors at the expert width, plus the
        # token's hidden state gathered for the expert and the expert's output before weighting
        per_expert = (3 + down_input) * a * model.moe_intermediate + 2 * a * model.hidden
        shared = (3 + down_input) * a * model.shared_expert_intermediate
        return model.experts_per_token * per_expert + shared + 4 * model.experts  # fp32 router softmax
    if not model.gated_mlp:
        return (1 + down_input) * a * model.intermediate
    return ((2 if liger else 3) + down_input) * a * model.intermediate


def layer_bytes_per_token(model: ModelSpec, p: Precision, *, attention: str, seq_len: int, trainable: str,
                          liger: bool = False, moe: bool = False) -> int:
    """One decoder layer's saved tensors per token. trainable: "full" (all weights train), "adapters"
    (LoRA: base frozen, adapters on every linear need the inputs) or "frozen" (input grad only)."""
    h = model.hidden
    weight_trains = trainable == "full"
    qkv_readers = 1 if model.fused_qkv else 3
    mlp_readers = 1 if model.fused_gate_up or not model.gated_mlp else 2
    norm_part = (norm_bytes(h, p, weight_trains, input_copies(qkv_readers, p, trainable))
                 + norm_bytes(h, p, weight_trains, input_copies(mlp_readers, p, trainable)))
    if model.model_type == "gemma2":  # post-attention and post-feedforward norms feed the residual only
        norm_part += 2 * norm_bytes(h, p, weight_trains, 0)
    if liger:  # LigerRMSNorm saves its input and rstd only
        norm_part = 2 * (p.residual_bytes * h + (p.matmul_bytes * h if trainable != "frozen" else 0))
    return (norm_part + attention_bytes(model, p, attention, seq_len, trainable)
            + mlp_bytes(model, p, trainable, liger, moe))


def sliding_window_mask_bytes(model: ModelSpec, sequences: int, seq_len: int) -> int:
    """SDPA past the window gets a boolean (B, 1, L, L) mask built once per forward (masking_utils)."""
    if model.sliding_window is None or seq_len <= model.sliding_window:
        return 0
    return sequences * seq_len * seq_len


def eager_mask_bytes(sequences: int, seq_len: int, p: Precision) -> int:
    """transformers' eager path builds one additive 4-D causal mask (B, 1, L, L) in the hidden dtype."""
    return sequences * seq_len * seq_len * p.residual_bytes


@dataclass(frozen=True)
class LogitsBytes:
    forward: int  # live at the end of the loss computation
    backward_start: int  # live when backward starts (saved + first gradients)


def logits_bytes(model: ModelSpec, tokens: int, *, liger_fused: bool, weight_bytes: int,
                 logits_dtype_bytes: int = 2) -> LogitsBytes:
    """Causal-LM loss (transformers loss_utils.ForCausalLMLoss): logits (compute dtype, 2·T·V), `.float()`
    copy (4·T·V), log_softmax output saved (4·T·V); at backward start the saved 4·T·V plus the
    nll_loss and log_softmax gradients (2 × 4·T·V) — research/trace.md §4 ("Temp" = 8·T·V)."""
    tv = tokens * model.vocab
    if liger_fused:
        # Liger fused linear cross-entropy: chunks of ≈T·h/V rows of fp32 logits, grad_input (T·h) and
        # grad_weight (V·h) computed in the forward (liger_kernel/ops/fused_linear_cross_entropy.py)
        chunk = 2 * 4 * tokens * model.hidden
        grads = 2 * tokens * model.hidden + weight_bytes * model.vocab * model.hidden
        return LogitsBytes(chunk + grads, grads)
    softcap = logits_dtype_bytes * tv if model.logit_softcapping else 0  # Gemma-2: the tanh output stays saved
    return LogitsBytes(10 * tv + softcap, 12 * tv + softcap)
