"""Quantized weights: which parameters a format packs, how many bytes each costs, and the transients.

LLaMA-Factory (model/model_utils/quantization.py:90-230) takes, in this order: a pre-quantized checkpoint
(config.json `quantization_config`; `quantization_bit` is then ignored), else on-the-fly bitsandbytes / HQQ /
EETQ from `quantization_bit` + `quantization_method`. FP8 and MXFP4 checkpoints are loaded dequantized
(`FineGrainedFP8Config(dequantize=True)`, `Mxfp4Config(dequantize=True)`, l.107-126): 16-bit weights.

Bytes per parameter of the packed linears (research /work/notes/methods.md §1.3, each from the library source):
* bitsandbytes 4-bit: 0.5 packed + absmax; double quantization (LF default) stores uint8 absmax per 64
  weights + fp32 per 256 blocks (bitsandbytes functional.py:938-950) → 0.5 + 1/64 + 4/16384; without it
  an fp32 absmax per 64 → 0.5625. nf4 and fp4 cost the same.
* bitsandbytes 8-bit: int8 + an fp32 row scale (Int8Params SCB, nn/modules.py:743) → 1 + 4/in.
* GPTQ b-bit, group g (gptqmodel qlinear/__init__.py:932-960): b/8 + b/(8g) + 2/g + 4/out (g_idx).
* AWQ 4-bit (autoawq gemm.py:135-167): 0.5 + 0.5/g + 2/g.
* AQLM (aqlm/inference.py:39-59): codebooks·nbits/(out_group·in_group)/8, plus 2·codebooks·2^nbits·out_group·
  in_group bytes of fp16 codebooks per linear.
* HQQ as LF configures it (quant_zero/quant_scale off, group 64): 16-bit scale and zero per 64 weights →
  nbits/8 (8, 6, 5 bits unpacked to a byte; 3 bits 10 per int32) + 4/64.
* EETQ: int8 + an fp16 per-channel scale → 1 + 2/in.

Which parameters are packed: the exact nn.Linear modules but the output layer (transformers 5.24
integrations/bitsandbytes.py:189, quantizers/base.py:39-63) — embeddings, norms and lm_head keep the load dtype.
transformers 5 fuses MoE experts into 3-D parameters and its routers are Parameters, so neither is packed;
transformers 4 builds them from nn.Linear, so both are (methods.md §1.2).
"""

from __future__ import annotations

from dataclasses import dataclass

from estimator.model import ModelSpec

DOUBLE_QUANT_NF4 = 0.5 + 1 / 64 + 4 / 16384  # packed 4-bit + uint8 absmax per 64 + fp32 absmax per 256 blocks
PLAIN_NF4 = 0.5 + 4 / 64  # packed 4-bit + fp32 absmax per 64
HQQ_BITS = {8: 1.0, 6: 1.0, 5: 1.0, 4: 0.5, 3: 0.4, 2: 0.25, 1: 0.125}  # hqq/core/quantize.py:40-48 packing
SUPPORTED_PTQ = ("gptq", "awq", "aqlm", "hqq", "eetq", "bitsandbytes", "fp8", "mxfp4")


@dataclass(frozen=True)
class QuantFormat:
    """How a model's packed linears are stored."""

    name: str  # for assumptions: "bitsandbytes nf4 (double quantization)", "GPTQ 4-bit, group 128", ...
    bytes_per_param: float  # of the packed linear weights
    bytes_per_linear: float = 0.0  # fixed storage per packed linear (AQLM codebooks)
    integer_storage: bool = True  # stored in integer tensors DeepSpeed's module.half() leaves alone
    saves_dequantized: bool = False  # autograd keeps the dequantized weight (GPTQ's torch kernel)
    replicated_bytes_per_param: float = 0.0  # quantization state outside the parameters (bnb absmax)
    prequantized: bool = False  # from the checkpoint, not quantized by LLaMA-Factory on the fly


def _bnb4(double_quant: bool, prequantized: bool = False) -> QuantFormat:
    # quant_storage = compute dtype (LF quantization.py:188): DeepSpeed's .bfloat16() is a no-op on it; the
    # absmax lives in quant_state, a Python attribute outside the parameters (replicated under ZeRO-3 / FSDP)
    absmax = 1 / 64 + 4 / 16384 if double_quant else 4 / 64
    name = "bitsandbytes 4-bit" + (" (double quantization)" if double_quant else "")
    return QuantFormat(name, 0.5 + absmax, replicated_bytes_per_param=absmax, prequantized=prequantized)


def _gptq(bits: int, group: int, hidden: int) -> QuantFormat:
    g = group if group > 0 else hidden  # group_size -1: one group per input row
    per_param = bits / 8 + bits / (8 * g) + 2 / g + 4 / hidden
    return QuantFormat(f"GPTQ {bits}-bit, group {group}", per_param, saves_dequantized=True, prequantized=True)


def weight_format(model: ModelSpec, bits: int | None, method: str, double_quant: bool,
                  unsloth: bool = False) -> QuantFormat | None:
    """The storage of the model's linears: a pre-quantized checkpoint first (LF ignores quantization_bit then),
    else on-the-fly quantization; None for 16/32-bit weights (FP8 and MXFP4 checkpoints load dequantized)."""
    config = model.quantization_config
    method_in_config = str(config.get("quant_method", "")).lower() if config else ""
    if method_in_config:
        return _prequantized(model, method_in_config)
    if model.quantization is not None:  # a quantization string without a config (remote code)
        return None
    if bits is None:
        return None
    if unsloth:  # unsloth.py:40 passes load_in_4bit only: 8-bit is not honoured (methods.md §2.2)
        return _bnb4(True) if bits == 4 else None
    if method == "bnb":
        if bits == 4:
            return _bnb4(double_quant)
        return QuantFormat("bitsandbytes 8-bit (LLM.int8)", 1 + 4 / max(1, model.hidden))
    if method == "hqq":
        per = HQQ_BITS.get(bits)
        return None if per is None else QuantFormat(f"HQQ {bits}-bit, group 64", per + 4 / 64)
    if method == "eetq":
        return QuantFormat("EETQ 8-bit", 1 + 2 / max(1, model.hidden))
    return None


def _prequantized(model: ModelSpec, method: str) -> QuantFormat | None:
    config = model.quantization_config
    bits = int(config.get("bits", config.get("w_bit", 4)) or 4)
    group = int(config.get("group_size", config.get("q_group_size", 128)) or 128)
    if method == "gptq":
        return _gptq(bits, group, model.hidden)
    if method == "awq":
        return QuantFormat(f"AWQ {bits}-bit, group {group}", bits / 8 + (bits / 8) / group + 2 / group,
                           prequantized=True)
    if method == "aqlm":
        codebooks = int(config.get("num_codebooks", 1) or 1)
        nbits = int(config.get("nbits_per_codebook", 16) or 16)
        out_group = int(config.get("out_group_size", 1) or 1)
        in_group = int(config.get("in_group_size", 8) or 8)
        return QuantFormat(f"AQLM {codebooks}x{nbits}", codebooks * nbits / (out_group * in_group) / 8,
                           bytes_per_linear=2 * codebooks * 2 ** nbits * out_group * in_group, prequantized=True)
    if method == "hqq":
        nbits = int(config.get("nbits", bits) or bits)
        per = HQQ_BITS.get(nbits)
        return None if per is None else QuantFormat(f"HQQ {nbits}-bit", per + 4 / 64, prequantized=True)
    if method == "eetq":
        return QuantFormat("EETQ 8-bit", 1 + 2 / max(1, model.hidden), prequantized=True)
    if method == "bitsandbytes":
        if config.get("load_in_4bit") or config.get("_load_in_4bit"):
            return _bnb4(bool(config.get("bnb_4bit_use_double_quant", False)), prequantized=True)
        return QuantFormat("bitsandbytes 8-bit (LLM.int8)", 1 + 4 / max(1, model.hidden), prequantized=True)
    return None  # fp8 / mxfp4: dequantized at load (16-bit); anything else: see unsupported()


def unsupported(model: ModelSpec, transformers_major: int) -> str | None:
    """Why the estimator cannot count this checkpoint's quantized weights, if it cannot."""
    method = str(model.quantization_config.get("quant_method", "")).lower() if model.quantization_config else ""
    if method and method not in SUPPORTED_PTQ:
        return f"pre-quantized checkpoint format '{method}' (known: {', '.join(SUPPORTED_PTQ)})"
    if method and method not in ("fp8", "mxfp4") and model.experts and transformers_major >= 5:
        return (f"a {method} pre-quantized MoE checkpoint under transformers 5 (fused experts: how the packed "
                "experts load is not modelled)")
    if model.parts.get("other"):
        return None
    return None


def packed_params(model: ModelSpec, transformers_major: int) -> int:
    """Parameters in the exact nn.Linear modules a quantizer packs: attention, dense MLPs, shared experts and the
    vision tower's linears; routed experts and routers only under transformers 4 (methods.md §1.2)."""
    parts: tuple[str, ...] = ("attention", "mlp", "shared_experts", "vision")
    if transformers_major < 5:
        parts += ("experts", "router")
    return sum(model.parts.get(k, 0) for k in parts)


def packed_linears(model: ModelSpec, transformers_major: int) -> int:
    """How many nn.Linear modules are packed (for per-linear storage such as AQLM's codebooks)."""
    per_layer = 4 + (2 if not model.gated_mlp else 3)
    count = model.layers * per_layer
    if transformers_major < 5 and model.experts:
        count += model.moe_layers * (3 * model.experts + 1)
    return count


def largest_linear(model: ModelSpec) -> int:
    """Parameters of the widest decoder linear (its dequantized copy is the transient of a packed matmul)."""
    h = model.hidden
    widest = max(model.intermediate, model.moe_intermediate, model.shared_expert_intermediate)
    return max(h * widest, h * model.q_dim, h * max(model.kv_dim, 1))
