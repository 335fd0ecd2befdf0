"""ModelSpec: exact parameter counts by part, and the shapes the activation model needs.

Counts follow the module definitions in transformers (`models/<family>/modeling_<family>.py`) and, for
remote-code families, the model repositories' own `modeling_*.py`. They are checked against
`sum(p.numel())` of the transformers model built on the meta device (benchmarks/oracle/param_counts.py,
tests/test_model_spec.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from estimator.errors import UnsupportedArchitecture
from estimator.source import clip, describe

PARTS = ("embeddings", "lm_head", "attention", "mlp", "experts", "router", "shared_experts", "norms",
         "vision", "other")


@dataclass(frozen=True)
class VisionSpec:
    """The shapes of a vision tower that decide its activations and the tokens an image becomes.

    dynamic resolution (Qwen2-VL and later): an image is resized to multiples of patch·merge pixels and cut into
    patch×patch patches; merge×merge patches become one LLM token. fixed (CLIP / SigLIP towers): every image is
    resized to image_size² and becomes (image_size/patch)² tokens."""

    hidden: int  # width of the vision blocks
    depth: int  # vision blocks
    intermediate: int  # MLP width of a block
    heads: int
    patch: int
    merge: int = 1  # spatial_merge_size
    temporal: int = 1  # temporal_patch_size: video frames per patch
    image_size: int | None = None  # fixed-resolution towers
    out_hidden: int = 0  # width of the merged features handed to the LLM

    @property
    def dynamic(self) -> bool:
        return self.image_size is None


@dataclass(frozen=True)
class ModelSpec:
    """What the memory model needs to know about an architecture."""

    model_id: str
    model_type: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tie_embeddings: bool
    q_dim: int  # output width of the query projection (heads × q head dim)
    kv_dim: int  # output width of each of the key / value projections as attention sees them
    experts: int = 0  # routed experts per MoE layer; 0 = dense model
    experts_per_token: int = 0
    moe_intermediate: int = 0
    shared_expert_intermediate: int = 0
    dense_layers: int = 0  # layers with a dense MLP in an MoE model
    kv_lora_rank: int = 0  # MLA (DeepSeek-V2/V3)
    q_lora_rank: int = 0
    gated_mlp: bool = True  # SwiGLU / GeGLU (3 matrices) vs a plain 2-matrix MLP (gpt2, phi)
    fused_qkv: bool = False  # one projection computes q, k and v (phi3 qkv_proj, Qwen-1 c_attn, GPT-2, ChatGLM)
    fused_gate_up: bool = False  # one projection computes gate and up (phi3 gate_up_proj, ChatGLM dense_h_to_4h)
    sliding_window: int | None = None  # attention window when the model uses one (Mistral-7B-v0.1: 4096)
    logit_softcapping: bool = False  # Gemma-2: tanh soft-capping of the final logits (final_logit_softcapping)
    attention_softcapping: bool = False  # Gemma-2: tanh soft-capping of attention scores (attn_logit_softcapping)
    checkpoint_dtype: str = "bfloat16"
    quantization: str | None = None  # e.g. "gptq-4bit" for a pre-quantized checkpoint
    max_positions: int | None = None  # max_position_embeddings (or the family's name for it), None if not given
    quantization_config: Mapping[str, Any] = field(default_factory=dict)  # config.json quantization_config
    vision: VisionSpec | None = None  # the vision tower's shapes, when config.json describes one we can read
    parts: Mapping[str, int] = field(default_factory=dict)
    source: str = "config.json"  # where the config.json came from (catalog file, Hub, a local path, policy models:)

    @property
    def total_params(self) -> int:
        return sum(self.parts.values())

    @property
    def moe_layers(self) -> int:
        return self.layers - self.dense_layers if self.experts else 0

    @property
    def vision_params(self) -> int:
        return self.parts.get("vision", 0)

    @property
    def language_params(self) -> int:
        return self.total_params - self.vision_params

    @property
    def active_params(self) -> int:
        """Parameters a token passes through: all but the routed experts it is not sent to."""
        if not self.experts:
            return self.total_params
        per_expert = self.parts.get("experts", 0) // self.experts
        return self.total_params - per_expert * (self.experts - self.experts_per_token)


class ConfigFields:
    """Read access to a config.json with the aliases different families use."""

    def __init__(self, raw: Mapping[str, Any], model_id: str) -> None:
        self.raw = raw
        self.model_id = model_id

    def get(self, *names: str, default: Any = None) -> Any:
        for name in names:
            if name in self.raw and self.raw[name] is not None:
                return self.raw[name]
        return default

    def need(self, *names: str) -> Any:
        value = self.get(*names)
        if value is None:
            raise UnsupportedArchitecture(
                f"config.json of '{clip(self.model_id, 200)}' has no '{names[0]}'"
                + (f" (nor {', '.join(names[1:])})" if len(names) > 1 else "")
                + ": cannot count parameters"
            )
        return value

    def need_int(self, *names: str) -> int:
        return int(self.need(*names))


def _linear(n_in: int, n_out: int, bias: bool) -> int:
    """nn.Linear: weight n_out×n_in (+ bias n_out)."""
    return n_in * n_out + (n_out if bias else 0)


@dataclass
class _Counts:
    parts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PARTS, 0))

    def add(self, part: str, n: int) -> None:
        self.parts[part] += n


def _dtype(c: ConfigFields) -> str:
    dtype = c.get("torch_dtype", "dtype")
    if dtype is None and isinstance(c.raw.get("text_config"), Mapping):
        dtype = c.raw["text_config"].get("torch_dtype") or c.raw["text_config"].get("dtype")
    if c.get("bf16") is True:
        return "bfloat16"
    if c.get("fp16") is True:
        return "float16"
    if dtype is None and c.get("fp32") is False:
        # Qwen-1 remote code (modeling_qwen.py): with bf16/fp16/fp32 all false it picks bf16 when supported
        return "bfloat16"
    return str(dtype or "float32")


def _quantization(c: ConfigFields) -> str | None:
    quant = c.get("quantization_config")
    if not isinstance(quant, Mapping):
        return None
    method = str(quant.get("quant_method", "quantized"))
    bits = quant.get("bits")
    return f"{method}-{bits}bit" if bits else method


# --- decoder families -----------------------------------------------------------------------------


def _llama_like(c: ConfigFields, *, family: str, tie_default: bool) -> ModelSpec:
    """llama, mistral, qwen2, qwen3, gemma, gemma2, phi3, mixtral, qwen2/3_moe, internlm2, baichuan."""
    h = c.need_int("hidden_size")
    layers = c.need_int("num_hidden_layers")
    heads = c.need_int("num_attention_heads")
    kv = int(c.get("num_key_value_heads", default=heads))
    hd = int(c.get("head_dim", default=h // heads))
    vocab = c.need_int("vocab_size")
    inter = int(c.get("intermediate_size", default=0))
    tie = bool(c.get("tie_word_embeddings", default=tie_default))
    q_dim, kv_dim = heads * hd, kv * hd
    n = _Counts()
    n.add("embeddings", vocab * h)  # embed_tokens
    n.add("lm_head", 0 if tie else vocab * h)  # lm_head, shared with embed_tokens when tied
    n.add("norms", h)  # final norm

    # attention: q, k, v, o (modeling_llama.LlamaAttention); qwen2 and qwen2_moe: bias on q/k/v only
    # (modeling_qwen2.Qwen2Attention, modeling_qwen2_moe.Qwen2MoeAttention: q/k/v bias=True, o_proj bias=False)
    qwen2_bias = family in ("qwen2", "qwen2_moe")
    qkv_bias = qwen2_bias or bool(c.get("attention_bias", "bias", default=False))
    o_bias = not qwen2_bias and bool(c.get("attention_bias", "bias", default=False))
    attn = _linear(h, q_dim, qkv_bias) + 2 * _linear(h, kv_dim, qkv_bias) + _linear(q_dim, h, o_bias)
    if family in ("qwen3", "qwen3_moe", "gemma3_text"):
        attn += 2 * hd  # q_norm, k_norm (modeling_qwen3.Qwen3Attention, modeling_gemma3.Gemma3Attention)
    # gemma2/gemma3: pre/post attention + pre/post feed-forward norms (modeling_gemma3.Gemma3DecoderLayer)
    norms_per_layer = 4 * h if family in ("gemma2", "gemma3_text") else 2 * h
    mlp_bias = bool(c.get("mlp_bias", default=False))
    dense_mlp = 3 * _linear(h, inter, mlp_bias) - (inter if mlp_bias else 0) + (h if mlp_bias else 0)

    experts = top_k = moe_inter = shared_inter = 0
    dense_layers = layers
    per_layer_moe: Callable[[], None] | None = None
    if family == "mixtral":
        experts, top_k, moe_inter = c.need_int("num_local_experts"), c.need_int("num_experts_per_tok"), inter

        def per_layer_moe() -> None:
            n.add("router", h * experts)  # block_sparse_moe.gate
            n.add("experts", experts * 3 * h * moe_inter)  # w1, w2, w3 per expert

    elif family in ("qwen2_moe", "qwen3_moe"):
        experts, top_k = c.need_int("num_experts"), c.need_int("num_experts_per_tok")
        moe_inter = c.need_int("moe_intermediate_size")
        shared_inter = int(c.get("shared_expert_intermediate_size", default=0)) if family == "qwen2_moe" else 0

        def per_layer_moe() -> None:
            n.add("router", h * experts)  # mlp.gate
            n.add("experts", experts * 3 * h * moe_inter)
            if shared_inter:
                n.add("shared_experts", 3 * h * shared_inter + h)  # shared_expert + shared_expert_gate (h→1)

    sparse_step = int(c.get("decoder_sparse_step", default=1)) or 1
    mlp_only = set(c.get("mlp_only_layers", default=[]) or [])
    sparse_layers = 0
    for index in range(layers):
        n.add("attention", attn)
        n.add("norms", norms_per_layer)
        is_sparse = per_layer_moe is not None and index not in mlp_only and (index + 1) % sparse_step == 0
        if is_sparse and per_layer_moe is not None:
            per_layer_moe()
            sparse_layers += 1
        else:
            n.add("mlp", dense_mlp)
    if experts:
        dense_layers = layers - sparse_layers
    return ModelSpec(
        model_id=c.model_id, model_type=family, hidden=h, layers=layers, heads=heads, kv_heads=kv,
        head_dim=hd, intermediate=inter, vocab=vocab, tie_embeddings=tie, q_dim=q_dim, kv_dim=kv_dim,
        fused_qkv=family in ("phi3", "internlm2", "baichuan"), fused_gate_up=family == "phi3",
        sliding_window=_sliding_window(c, family),
        logit_softcapping=c.get("final_logit_softcapping") is not None,
        attention_softcapping=c.get("attn_logit_softcapping") is not None,
        experts=experts, experts_per_token=top_k, moe_intermediate=moe_inter,
        shared_expert_intermediate=shared_inter, dense_layers=dense_layers if experts else 0,
        checkpoint_dtype=_dtype(c), quantization=_quantization(c), parts=n.parts, max_positions=_positions(c),
    )


def _positions(c: ConfigFields) -> int | None:
    value = c.get("max_position_embeddings", "n_positions", "seq_length")
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None


def _sliding_window(c: ConfigFields, family: str) -> int | None:
    """The window SDPA must mask for: Mistral-style configs set `sliding_window`; Qwen2-family configs carry
    one too but only apply it with `use_sliding_window: true`. Gemma-3 interleaves windowed and full layers
    (layer_types): the window is kept, so the windowed layers' larger SDPA footprint is assumed on every
    layer (an over-estimate, never an under-estimate)."""
    window = c.get("sliding_window")
    if window is None or family == "gemma2" or c.get("use_sliding_window", default=True) is False:
        return None
    return int(window)


def _deepseek(c: ConfigFields, family: str) -> ModelSpec:
    """DeepSeek-V2/V3: MLA attention (modeling_deepseek_v2.DeepseekV2Attention) and routed + shared experts."""
    h = c.need_int("hidden_size")
    layers = c.need_int("num_hidden_layers")
    heads = c.need_int("num_attention_heads")
    vocab = c.need_int("vocab_size")
    inter = c.need_int("intermediate_size")
    q_lora = int(c.get("q_lora_rank", default=0) or 0)
    kv_lora = c.need_int("kv_lora_rank")
    rope, nope, v_hd = c.need_int("qk_rope_head_dim"), c.need_int("qk_nope_head_dim"), c.need_int("v_head_dim")
    qk_hd = rope + nope
    experts = int(c.get("n_routed_experts", default=0) or 0)
    shared = int(c.get("n_shared_experts", default=0) or 0)
    moe_inter = int(c.get("moe_intermediate_size", default=0) or 0)
    first_dense = int(c.get("first_k_dense_replace", default=0) or 0)
    freq = int(c.get("moe_layer_freq", default=1) or 1)
    tie = bool(c.get("tie_word_embeddings", default=False))
    n = _Counts()
    n.add("embeddings", vocab * h)
    n.add("lm_head", 0 if tie else vocab * h)
    n.add("norms", h)
    # q_a_proj + q_a_layernorm + q_b_proj with a q LoRA rank, else one q_proj
    q_params = h * q_lora + q_lora + q_lora * heads * qk_hd if q_lora else h * heads * qk_hd
    kv_params = h * (kv_lora + rope) + kv_lora + kv_lora * heads * (nope + v_hd)  # kv_a_proj_with_mqa, norm, kv_b
    attn = q_params + kv_params + heads * v_hd * h  # + o_proj
    dense_layers = 0
    for index in range(layers):
        n.add("attention", attn)
        n.add("norms", 2 * h)
        if experts and index >= first_dense and index % freq == 0:
            n.add("router", experts * h)  # gate.weight (e_score_correction_bias is a buffer)
            n.add("experts", experts * 3 * h * moe_inter)
            n.add("shared_experts", 3 * h * moe_inter * shared)
        else:
            dense_layers += 1
            n.add("mlp", 3 * h * inter)
    return ModelSpec(
        model_id=c.model_id, model_type=family, hidden=h, layers=layers, heads=heads, kv_heads=heads,
        head_dim=qk_hd, intermediate=inter, vocab=vocab, tie_embeddings=tie, q_dim=heads * qk_hd,
        kv_dim=heads * qk_hd, experts=experts, experts_per_token=int(c.get("num_experts_per_tok", default=0)),
        moe_intermediate=moe_inter, shared_expert_intermediate=shared * moe_inter,
        dense_layers=dense_layers if experts else 0, kv_lora_rank=kv_lora, q_lora_rank=q_lora,
        checkpoint_dtype=_dtype(c), quantization=_quantization(c), parts=n.parts, max_positions=_positions(c),
    )


def _gpt2(c: ConfigFields) -> ModelSpec:
    """GPT-2 (modeling_gpt2): Conv1D layers with bias, LayerNorm with bias, learned positions, tied head."""
    h, layers, heads = c.need_int("n_embd"), c.need_int("n_layer"), c.need_int("n_head")
    vocab, positions = c.need_int("vocab_size"), c.need_int("n_positions")
    inner = int(c.get("n_inner", default=4 * h) or 4 * h)
    n = _Counts()
    n.add("embeddings", vocab * h + positions * h)  # wte + wpe
    n.add("norms", 2 * h)  # ln_f
    for _ in range(layers):
        n.add("attention", _linear(h, 3 * h, True) + _linear(h, h, True))  # c_attn, c_proj
        n.add("mlp", _linear(h, inner, True) + _linear(inner, h, True))  # c_fc, c_proj
        n.add("norms", 4 * h)  # ln_1, ln_2 (weight + bias)
    return ModelSpec(
        model_id=c.model_id, model_type="gpt2", hidden=h, layers=layers, heads=heads, kv_heads=heads,
        head_dim=h // heads, intermediate=inner, vocab=vocab, tie_embeddings=True, q_dim=h, kv_dim=h,
        gated_mlp=False, fused_qkv=True, checkpoint_dtype=_dtype(c), parts=n.parts, max_positions=_positions(c),
    )


def _phi(c: ConfigFields) -> ModelSpec:
    """Phi-1/1.5/2 (modeling_phi): biased q/k/v/dense, LayerNorm, fc1/fc2 MLP, untied head with bias."""
    h, layers, heads = c.need_int("hidden_size"), c.need_int("num_hidden_layers"), c.need_int("num_attention_heads")
    kv = int(c.get("num_key_value_heads", default=heads))
    hd = h // heads
    vocab, inter = c.need_int("vocab_size"), c.need_int("intermediate_size")
    tie = bool(c.get("tie_word_embeddings", default=False))
    n = _Counts()
    n.add("embeddings", vocab * h)
    n.add("lm_head", 0 if tie else vocab * h + vocab)  # lm_head has a bias
    n.add("norms", 2 * h)  # final_layernorm
    for _ in range(layers):
        n.add("attention", _linear(h, heads * hd, True) + 2 * _linear(h, kv * hd, True) + _linear(heads * hd, h, True))
        if c.get("qk_layernorm", default=False):
            n.add("attention", 4 * hd)
        n.add("mlp", _linear(h, inter, True) + _linear(inter, h, True))
        n.add("norms", 2 * h)  # one shared input_layernorm (parallel attention + MLP)
    return ModelSpec(
        model_id=c.model_id, model_type="phi", hidden=h, layers=layers, heads=heads, kv_heads=kv, head_dim=hd,
        intermediate=inter, vocab=vocab, tie_embeddings=tie, q_dim=heads * hd, kv_dim=kv * hd, gated_mlp=False,
        checkpoint_dtype=_dtype(c), parts=n.parts, max_positions=_positions(c),
    )


def _qwen1(c: ConfigFields) -> ModelSpec:
    """Qwen-1 remote code (Qwen/Qwen-7B modeling_qwen.py): c_attn with bias, MLP width intermediate_size/2."""
    h, layers, heads = c.need_int("hidden_size"), c.need_int("num_hidden_layers"), c.need_int("num_attention_heads")
    vocab = c.need_int("vocab_size")
    ff = c.need_int("intermediate_size") // 2  # QWenMLP: ff_dim_in = config.intermediate_size // 2
    n = _Counts()
    n.add("embeddings", vocab * h)  # wte
    n.add("lm_head", vocab * h)  # lm_head (never tied)
    n.add("norms", h)  # ln_f (RMSNorm)
    for _ in range(layers):
        n.add("attention", _linear(h, 3 * h, True) + _linear(h, h, False))  # c_attn, c_proj (no bias)
        n.add("mlp", 3 * h * ff)  # w1, w2, c_proj
        n.add("norms", 2 * h)
    return ModelSpec(
        model_id=c.model_id, model_type="qwen", hidden=h, layers=layers, heads=heads, kv_heads=heads,
        head_dim=h // heads, intermediate=ff, vocab=vocab, tie_embeddings=False, q_dim=h, kv_dim=h,
        fused_qkv=True, checkpoint_dtype=_dtype(c), quantization=_quantization(c), parts=n.parts,
        max_positions=_positions(c),
    )


def _chatglm(c: ConfigFields) -> ModelSpec:
    """ChatGLM2/3 and GLM-4 remote code (THUDM modeling_chatglm.py): fused QKV with multi-query groups."""
    h, layers, heads = c.need_int("hidden_size"), c.need_int("num_layers"), c.need_int("num_attention_heads")
    vocab = c.need_int("padded_vocab_size", "vocab_size")
    ffn = c.need_int("ffn_hidden_size")
    kv_channels = int(c.get("kv_channels", default=h // heads))
    groups = int(c.get("multi_query_group_num", default=heads)) if c.get("multi_query_attention") else heads
    qkv_out = heads * kv_channels + 2 * groups * kv_channels
    qkv_bias = bool(c.get("add_qkv_bias", default=False)) or bool(c.get("add_bias_linear", default=False))
    n = _Counts()
    n.add("embeddings", vocab * h)
    n.add("lm_head", vocab * h)  # output_layer
    n.add("norms", h)  # final_layernorm
    for _ in range(layers):
        n.add("attention", _linear(h, qkv_out, qkv_bias) + _linear(heads * kv_channels, h, False))
        n.add("mlp", h * 2 * ffn + ffn * h)  # dense_h_to_4h (gate+up fused), dense_4h_to_h
        n.add("norms", 2 * h)
    return ModelSpec(
        model_id=c.model_id, model_type="chatglm", hidden=h, layers=layers, heads=heads, kv_heads=groups,
        head_dim=kv_channels, intermediate=ffn, vocab=vocab, tie_embeddings=False, q_dim=heads * kv_channels,
        kv_dim=groups * kv_channels, fused_qkv=True, fused_gate_up=True, checkpoint_dtype=_dtype(c),
        quantization=_quantization(c), parts=n.parts, max_positions=_positions(c),
    )


def _with_defaults(raw: Mapping[str, Any] | None, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """A sub-config as transformers builds it: the file's keys over the config class's defaults (a key
    written as null takes the default too, as the dataclass-style configs of transformers 5 do)."""
    merged = dict(defaults)
    merged.update({key: value for key, value in (raw or {}).items() if value is not None})
    return merged


# Config-class defaults, from transformers 5.24 `models/<family>/configuration_<family>.py` (class attributes).
# A multimodal config.json often writes only what differs from them (gemma-3-4b-it's text_config has no
# vocab_size, heads or head_dim; llava-1.5's text_config has no hidden_size), so the count needs them.
_QWEN2_5_VL_VISION = {"depth": 32, "hidden_size": 3584, "intermediate_size": 3420, "in_channels": 3, "patch_size": 14,
                      "spatial_merge_size": 2, "temporal_patch_size": 2, "out_hidden_size": 3584}
_QWEN3_VL_VISION = {"depth": 27, "hidden_size": 1152, "intermediate_size": 4304, "in_channels": 3, "patch_size": 16,
                    "spatial_merge_size": 2, "temporal_patch_size": 2, "out_hidden_size": 3584,
                    "num_position_embeddings": 2304, "deepstack_visual_indexes": [8, 16, 24]}
_QWEN3_5_VISION = {**_QWEN3_VL_VISION, "deepstack_visual_indexes": []}  # Qwen3.5 drops the deepstack mergers
_QWEN3_VL_TEXT = {"vocab_size": 151936, "hidden_size": 4096, "intermediate_size": 22016, "num_hidden_layers": 32,
                  "num_attention_heads": 32, "head_dim": 128, "attention_bias": False}
_QWEN3_VL_MOE_TEXT = {"vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 24,
                      "num_attention_heads": 16, "num_key_value_heads": 16, "decoder_sparse_step": 1,
                      "moe_intermediate_size": 1408, "num_experts_per_tok": 4, "num_experts": 60,
                      "attention_bias": False}
_GEMMA3_TEXT = {"vocab_size": 262208, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
                "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "max_position_embeddings": 131072,
                "tie_word_embeddings": True, "attention_bias": False, "sliding_window": 4096}
_SIGLIP_VISION = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
                  "num_channels": 3, "image_size": 224, "patch_size": 16, "vision_use_head": True}
_LLAMA_TEXT = {"vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
               "num_attention_heads": 32, "max_position_embeddings": 2048, "tie_word_embeddings": False,
               "attention_bias": False, "mlp_bias": False}
# LlavaConfig.sub_configs_defaults: a CLIP vision tower of llava-1.5's shape when the file gives none
_LLAVA_CLIP_VISION = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                      "num_attention_heads": 16, "num_channels": 3, "image_size": 336, "patch_size": 14}
_CLIP_VISION = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
                "num_channels": 3, "image_size": 224, "patch_size": 32}
_GPT_OSS = {"num_hidden_layers": 36, "num_local_experts": 128, "vocab_size": 201088, "hidden_size": 2880,
            "intermediate_size": 2880, "head_dim": 64, "num_attention_heads": 64, "num_key_value_heads": 8,
            "sliding_window": 128, "tie_word_embeddings": False, "max_position_embeddings": 131072,
            "num_experts_per_tok": 4, "attention_bias": True}


def _as_int(value: Any) -> int:
    """An image or patch size: transformers accepts an int or a (height, width) pair; the towers here are square."""
    if isinstance(value, list | tuple):
        if len(set(value)) != 1:
            raise UnsupportedArchitecture(f"non-square image/patch size {value!r} is not supported")
        value = value[0]
    return int(value)


def _qwen2_vl_vision(vision: Mapping[str, Any]) -> int:
    """Qwen2-VL vision tower (modeling_qwen2_vl: PatchEmbed, VisionBlock ×depth, PatchMerger)."""
    e = int(vision.get("embed_dim", 1280))
    depth = int(vision.get("depth", 32))
    mlp = int(e * float(vision.get("mlp_ratio", 4)))
    patch = int(vision.get("patch_size", 14))
    temporal = int(vision.get("temporal_patch_size", 2))
    channels = int(vision.get("in_chans", vision.get("in_channels", 3)))
    out = int(vision.get("hidden_size", 3584))
    merge = int(vision.get("spatial_merge_size", 2))
    attention = _linear(e, 3 * e, True) + _linear(e, e, True)  # qkv, proj
    block = 2 * e + attention + 2 * e + _linear(e, mlp, True) + _linear(mlp, e, True)  # norm1, norm2, fc1, fc2
    merged = e * merge * merge
    merger = 2 * e + _linear(merged, merged, True) + _linear(merged, out, True)  # ln_q + 2-layer MLP
    return channels * temporal * patch * patch * e + depth * block + merger  # Conv3d without bias


def _qwen2_5_vl_vision(raw: Mapping[str, Any]) -> int:
    """Qwen2.5-VL vision tower (modeling_qwen2_5_vl): Conv3d patch embed without bias; blocks with RMSNorm
    (weight only), qkv/proj with bias and a gated gate/up/down MLP with bias of width intermediate_size; the
    PatchMerger: RMSNorm ln_q + two linears with bias, the second to out_hidden_size."""
    v = _with_defaults(raw, _QWEN2_5_VL_VISION)
    e, width, merge = int(v["hidden_size"]), int(v["intermediate_size"]), int(v["spatial_merge_size"])
    patch, temporal = _as_int(v["patch_size"]), _as_int(v["temporal_patch_size"])
    block = (2 * e + _linear(e, 3 * e, True) + _linear(e, e, True)  # norm1, norm2, qkv, proj
             + 2 * _linear(e, width, True) + _linear(width, e, True))  # gate_proj, up_proj, down_proj
    merged = e * merge * merge
    merger = e + _linear(merged, merged, True) + _linear(merged, int(v["out_hidden_size"]), True)
    return int(v["in_channels"]) * temporal * patch * patch * e + int(v["depth"]) * block + merger


def _qwen3_vl_vision(raw: Mapping[str, Any], defaults: Mapping[str, Any]) -> int:
    """Qwen3-VL / Qwen3.5 vision tower (modeling_qwen3_vl.Qwen3VLVisionModel): Conv3d patch embed with bias,
    a learned position embedding, blocks with LayerNorm and biased qkv/proj/fc1/fc2, the PatchMerger
    (LayerNorm over the embed dim + two linears), and one more merger per deepstack index whose LayerNorm
    spans the merged width (use_postshuffle_norm)."""
    v = _with_defaults(raw, defaults)
    e, width, merge = int(v["hidden_size"]), int(v["intermediate_size"]), int(v["spatial_merge_size"])
    patch, temporal = _as_int(v["patch_size"]), _as_int(v["temporal_patch_size"])
    out = int(v["out_hidden_size"])
    block = 4 * e + _linear(e, 3 * e, True) + _linear(e, e, True) + _linear(e, width, True) + _linear(width, e, True)
    merged = e * merge * merge
    mlp = _linear(merged, merged, True) + _linear(merged, out, True)
    deepstack = len(v.get("deepstack_visual_indexes") or [])
    patch_embed = int(v["in_channels"]) * temporal * patch * patch * e + e
    positions = int(v["num_position_embeddings"]) * e
    return patch_embed + positions + int(v["depth"]) * block + (2 * e + mlp) + deepstack * (2 * merged + mlp)


def _clip_like_vision(v: Mapping[str, Any], *, class_token: bool, patch_bias: bool, pre_norm: bool) -> int:
    """CLIP (modeling_clip.CLIPVisionTransformer) and SigLIP (modeling_siglip.SiglipVisionTransformer) towers:
    Conv2d patch embedding, learned positions (+1 for CLIP's class token), encoder layers of biased q/k/v/out
    and fc1/fc2 with two LayerNorms, a final LayerNorm (CLIP also a pre-LayerNorm)."""
    e, width, layers = int(v["hidden_size"]), int(v["intermediate_size"]), int(v["num_hidden_layers"])
    patch = _as_int(v["patch_size"])
    patches = (_as_int(v["image_size"]) // patch) ** 2
    embeddings = int(v["num_channels"]) * patch * patch * e + (e if patch_bias else 0)
    embeddings += (patches + 1) * e + e if class_token else patches * e  # position embedding (+ class embedding)
    layer = 4 * _linear(e, e, True) + _linear(e, width, True) + _linear(width, e, True) + 4 * e
    return embeddings + layers * layer + 2 * e + (2 * e if pre_norm else 0)


def _siglip_vision(raw: Mapping[str, Any]) -> int:
    v = _with_defaults(raw, _SIGLIP_VISION)
    total = _clip_like_vision(v, class_token=False, patch_bias=True, pre_norm=False)
    if v.get("vision_use_head"):  # SiglipMultiheadAttentionPoolingHead: probe, nn.MultiheadAttention, LayerNorm, MLP
        e, width = int(v["hidden_size"]), int(v["intermediate_size"])
        total += (e + (3 * e * e + 3 * e) + _linear(e, e, True) + 2 * e
                  + _linear(e, width, True) + _linear(width, e, True))
    return total


def _multimodal_text(c: ConfigFields, defaults: Mapping[str, Any], tie_default: bool) -> ConfigFields:
    """The text sub-config with its class defaults; tie_word_embeddings is the top-level config's (the one
    `tie_weights` reads), falling back to the top-level class default."""
    text = _with_defaults(c.raw.get("text_config"), defaults)
    text["tie_word_embeddings"] = bool(c.get("tie_word_embeddings", default=tie_default))
    return ConfigFields(text, c.model_id)


def _with_vision(spec: ModelSpec, vision: int, model_type: str, c: ConfigFields) -> ModelSpec:
    parts = dict(spec.parts)
    parts["vision"] = parts.get("vision", 0) + vision
    return replace(spec, model_type=model_type, parts=parts, checkpoint_dtype=_dtype(c),
                   quantization=_quantization(c))


def _qwen3_vl(c: ConfigFields, model_type: str) -> ModelSpec:
    """Qwen3-VL (modeling_qwen3_vl) and Qwen3-VL-MoE (modeling_qwen3_vl_moe): a Qwen3 / Qwen3-MoE text model
    (q_norm/k_norm; routed experts without a shared expert) and the Qwen3-VL vision tower with deepstack."""
    moe = model_type == "qwen3_vl_moe"
    text = _multimodal_text(c, _QWEN3_VL_MOE_TEXT if moe else _QWEN3_VL_TEXT, tie_default=False)
    spec = _llama_like(text, family="qwen3_moe" if moe else "qwen3", tie_default=False)
    return _with_vision(spec, _qwen3_vl_vision(c.raw.get("vision_config") or {}, _QWEN3_VL_VISION), model_type, c)


def _gemma3(c: ConfigFields) -> ModelSpec:
    """Gemma-3 (modeling_gemma3): text layers with q_norm/k_norm and four RMSNorms, tied head by default; the
    multimodal model adds a SigLIP vision tower and Gemma3MultiModalProjector (mm_input_projection_weight
    vision×text and mm_soft_emb_norm)."""
    if str(c.get("model_type", default="")).lower() == "gemma3_text" or "text_config" not in c.raw:
        return _llama_like(ConfigFields(_with_defaults(c.raw, _GEMMA3_TEXT), c.model_id), family="gemma3_text",
                           tie_default=True)
    text = _multimodal_text(c, _GEMMA3_TEXT, tie_default=True)  # Gemma3Config.tie_word_embeddings = True
    spec = _llama_like(text, family="gemma3_text", tie_default=True)
    vision = _with_defaults(c.raw.get("vision_config"), _SIGLIP_VISION)
    projector = int(vision["hidden_size"]) * spec.hidden + int(vision["hidden_size"])
    return _with_vision(spec, _siglip_vision(vision) + projector, "gemma3", c)


def _llava(c: ConfigFields) -> ModelSpec:
    """LLaVA-1.5 (modeling_llava): a Llama text model, a CLIP vision tower (every layer is built, although
    vision_feature_layer -2 reads the second-to-last) and a two-linear projector with bias."""
    text_raw = c.raw.get("text_config") or {}
    text_type = str(text_raw.get("model_type", "llama")).lower()
    vision_raw = c.raw.get("vision_config") or {}
    vision_type = str(vision_raw.get("model_type", "clip_vision_model")).lower()
    if text_type != "llama" or vision_type != "clip_vision_model":
        raise UnsupportedArchitecture(
            f"'{clip(c.model_id, 200)}' is a LLaVA model with a {describe(text_type)} text model and a "
            f"{describe(vision_type)} vision tower; "
            "vram-check counts LLaVA with a Llama text model and a CLIP vision tower only")
    text = _multimodal_text(c, _LLAMA_TEXT, tie_default=False)
    spec = _llama_like(text, family="llama", tie_default=False)
    vision = _with_defaults(vision_raw, _CLIP_VISION if vision_raw else _LLAVA_CLIP_VISION)
    tower = _clip_like_vision(vision, class_token=True, patch_bias=False, pre_norm=True)
    layers = c.get("vision_feature_layer", default=-2)
    feature_layers = len(layers) if isinstance(layers, list) else 1
    bias = bool(c.get("multimodal_projector_bias", default=True))
    projector = (_linear(int(vision["hidden_size"]) * feature_layers, spec.hidden, bias)
                 + _linear(spec.hidden, spec.hidden, bias))
    return _with_vision(spec, tower + projector, "llava", c)


def _gpt_oss(c: ConfigFields) -> ModelSpec:
    """gpt-oss (modeling_gpt_oss): biased q/k/v/o and one attention-sink scalar per head; every layer a
    sparse MoE with a biased router and biased experts (gate_up_proj h→2i, down_proj i→h, fused per expert).
    The checkpoint stores the experts in MXFP4, but LLaMA-Factory loads it with Mxfp4Config(dequantize=True)
    (model_utils/quantization.py), so the weights train at the load dtype: no quantization is recorded."""
    v = ConfigFields(_with_defaults(c.raw, _GPT_OSS), c.model_id)
    h, layers, heads = v.need_int("hidden_size"), v.need_int("num_hidden_layers"), v.need_int("num_attention_heads")
    kv, hd, vocab = v.need_int("num_key_value_heads"), v.need_int("head_dim"), v.need_int("vocab_size")
    experts, top_k, inter = v.need_int("num_local_experts"), v.need_int("num_experts_per_tok"), v.need_int(
        "intermediate_size")
    bias = bool(v.get("attention_bias", default=True))
    tie = bool(v.get("tie_word_embeddings", default=False))
    n = _Counts()
    n.add("embeddings", vocab * h)
    n.add("lm_head", 0 if tie else vocab * h)
    n.add("norms", h)
    for _ in range(layers):
        n.add("attention", _linear(h, heads * hd, bias) + 2 * _linear(h, kv * hd, bias)
              + _linear(heads * hd, h, bias) + heads)  # + sinks
        n.add("router", _linear(h, experts, True))
        n.add("experts", experts * (_linear(h, 2 * inter, True) + _linear(inter, h, True)))
        n.add("norms", 2 * h)
    kinds = list(v.get("layer_types", default=[]) or [])
    window = v.get("sliding_window") if not kinds or "sliding_attention" in kinds else None
    # The config.json has no dtype: transformers' dtype="auto" (LLaMA-Factory's loader) then takes the first
    # floating dtype in the checkpoint (modeling_utils.get_state_dict_dtype); gpt-oss stores every tensor but
    # the MXFP4 experts in bfloat16 (vLLM's gpt-oss announcement, vllm-project.github.io@d767c2fe).
    dtype = _dtype(c) if c.get("torch_dtype", "dtype") is not None else "bfloat16"
    return ModelSpec(
        model_id=c.model_id, model_type="gpt_oss", hidden=h, layers=layers, heads=heads, kv_heads=kv, head_dim=hd,
        intermediate=inter, vocab=vocab, tie_embeddings=tie, q_dim=heads * hd, kv_dim=kv * hd, experts=experts,
        experts_per_token=top_k, moe_intermediate=inter, sliding_window=int(window) if window else None,
        checkpoint_dtype=dtype, quantization=None, parts=n.parts, max_positions=_positions(v),
    )


def _qwen3_5(c: ConfigFields) -> ModelSpec:
    """Qwen3.5 (modeling_qwen3_5) and Qwen3.5-MoE (modeling_qwen3_5_moe): hybrid layers — Gated DeltaNet linear
    attention and gated full attention (q_proj emits query + output gate) every `full_attention_interval` —
    with a dense MLP, or (MoE) a router, routed experts, a shared expert and its sigmoid gate (h→1), in every
    layer; plus a Qwen3-VL vision tower without deepstack mergers."""
    moe = str(c.get("model_type", default="")).lower() in ("qwen3_5_moe", "qwen3_5_moe_text")
    text = ConfigFields(dict(c.raw.get("text_config") or c.raw), c.model_id)
    h, layers = text.need_int("hidden_size"), text.need_int("num_hidden_layers")
    heads, kv = text.need_int("num_attention_heads"), text.need_int("num_key_value_heads")
    hd, vocab = text.need_int("head_dim"), text.need_int("vocab_size")
    inter = 0 if moe else text.need_int("intermediate_size")
    kinds = list(text.get("layer_types", default=[]) or [])
    if len(kinds) != layers:
        interval = int(text.get("full_attention_interval", default=4))
        kinds = ["full_attention" if (i + 1) % interval == 0 else "linear_attention" for i in range(layers)]
    gate = 2 if text.get("attn_output_gate", default=True) else 1
    full = h * heads * hd * gate + 2 * h * kv * hd + heads * hd * h + 2 * hd  # q(+gate), k, v, o, q/k norms
    key_dim = text.need_int("linear_num_key_heads") * text.need_int("linear_key_head_dim")
    v_heads = text.need_int("linear_num_value_heads")
    value_dim = v_heads * text.need_int("linear_value_head_dim")
    conv = (2 * key_dim + value_dim) * int(text.get("linear_conv_kernel_dim", default=4))  # depthwise, no bias
    # in_proj_qkvz, in_proj_ba, conv1d, dt_bias + A_log, gated RMSNorm, out_proj
    linear = (h * (2 * key_dim + 2 * value_dim) + h * 2 * v_heads + conv + 2 * v_heads
              + text.need_int("linear_value_head_dim") + value_dim * h)
    experts = top_k = moe_inter = shared_inter = 0
    if moe:
        experts, top_k = text.need_int("num_experts"), text.need_int("num_experts_per_tok")
        moe_inter, shared_inter = text.need_int("moe_intermediate_size"), text.need_int(
            "shared_expert_intermediate_size")
    tie = bool(c.get("tie_word_embeddings", default=False))
    n = _Counts()
    n.add("embeddings", vocab * h)
    n.add("lm_head", 0 if tie else vocab * h)
    n.add("norms", h)
    for kind in kinds:
        n.add("attention", full if kind == "full_attention" else linear)
        if moe:
            n.add("router", experts * h)  # Qwen3_5MoeTopKRouter.weight
            n.add("experts", experts * 3 * h * moe_inter)  # gate_up_proj (2i×h) + down_proj (h×i) per expert
            n.add("shared_experts", 3 * h * shared_inter + h)  # shared_expert MLP + shared_expert_gate
        else:
            n.add("mlp", 3 * h * inter)
        n.add("norms", 2 * h)
    vision = c.raw.get("vision_config") or {}
    if vision:
        n.add("vision", _qwen3_vl_vision(vision, {**_QWEN3_5_VISION, "out_hidden_size": h}))
    return ModelSpec(
        model_id=c.model_id, model_type="qwen3_5_moe" if moe else "qwen3_5", hidden=h, layers=layers, heads=heads,
        kv_heads=kv, head_dim=hd, intermediate=inter, vocab=vocab, tie_embeddings=tie, q_dim=heads * hd,
        kv_dim=kv * hd, experts=experts, experts_per_token=top_k, moe_intermediate=moe_inter,
        shared_expert_intermediate=shared_inter, dense_layers=0,
        checkpoint_dtype=_dtype(c), quantization=_quantization(c), parts=n.parts, max_positions=_positions(text),
    )


def _internlm2(c: ConfigFields) -> ModelSpec:
    """InternLM2 remote code: wqkv fused, w1/w3/w2 MLP; same counts as llama with its own names."""
    remapped = dict(c.raw)
    remapped.setdefault("attention_bias", c.get("bias", default=False))
    return _llama_like(ConfigFields(remapped, c.model_id), family="internlm2", tie_default=False)


def _baichuan(c: ConfigFields) -> ModelSpec:
    """Baichuan/Baichuan2 remote code: W_pack (fused q/k/v, no bias), llama MLP, NormHead lm_head."""
    return _llama_like(c, family="baichuan", tie_default=False)


_LLAMA_FAMILIES: dict[str, bool] = {  # model_type → default of tie_word_embeddings in its config class
    "llama": False, "mistral": False, "qwen2": False, "qwen3": False, "gemma": True, "gemma2": True,
    "phi3": False, "mixtral": False, "qwen2_moe": False, "qwen3_moe": False, "yi": False,
}


_OTHER_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_5", "qwen3_5_moe", "qwen3_vl", "qwen3_vl_moe", "gemma3",
                   "gemma3_text", "llava", "gpt_oss", "deepseek_v2", "deepseek_v3", "gpt2", "phi", "qwen", "chatglm",
                   "internlm2", "baichuan")


def _vision_spec(config: Mapping[str, Any]) -> VisionSpec | None:
    """The vision tower's shapes from config.json's vision_config (Qwen2-VL: embed_dim/mlp_ratio; Qwen2.5-VL,
    Qwen3-VL, Qwen3.5: hidden_size/intermediate_size; CLIP/SigLIP towers: image_size)."""
    vision = config.get("vision_config")
    if not isinstance(vision, Mapping):
        return None
    v = ConfigFields(vision, "vision_config")
    hidden = int(v.get("embed_dim", "hidden_size", default=0) or 0)
    depth = int(v.get("depth", "num_hidden_layers", default=0) or 0)
    patch = int(v.get("patch_size", "spatial_patch_size", default=0) or 0)
    if not hidden or not depth or not patch:
        return None
    intermediate = int(v.get("intermediate_size", default=0) or 0) or int(hidden * float(v.get("mlp_ratio",
                                                                                             default=4)))
    fixed = "spatial_merge_size" not in vision  # no merging: a fixed-resolution tower
    image_size = int(v.get("image_size", default=0) or 0) if fixed else 0
    return VisionSpec(hidden=hidden, depth=depth, intermediate=intermediate,
                      heads=int(v.get("num_heads", "num_attention_heads", default=16) or 16), patch=patch,
                      merge=int(v.get("spatial_merge_size", default=1) or 1),
                      temporal=int(v.get("temporal_patch_size", default=1) or 1),
                      image_size=image_size or None,
                      out_hidden=int(v.get("out_hidden_size", default=0) or 0) or int(config.get("hidden_size", 0)
                                                                                      or 0))


def model_spec_from_config(config: Mapping[str, Any], model_id: str) -> ModelSpec:
    """Count the parameters of the causal-LM model that `config` describes, exactly, by part; with the
    checkpoint's quantization_config and the vision tower's shapes."""
    spec = _count_from_config(config, model_id)
    quant = config.get("quantization_config") if isinstance(config, Mapping) else None
    return replace(spec, quantization_config=dict(quant) if isinstance(quant, Mapping) else {},
                   vision=_vision_spec(config) if spec.vision_params else None)


def _count_from_config(config: Mapping[str, Any], model_id: str) -> ModelSpec:
    """The parameters of the causal-LM model that `config` describes, exactly, by part."""
    if not isinstance(config, Mapping):
        raise UnsupportedArchitecture(f"config.json of '{clip(model_id, 200)}' is not a JSON object")
    c = ConfigFields(config, model_id)
    model_type = str(c.get("model_type", default="")).lower()
    architectures = [str(a) for a in c.get("architectures", default=[]) or []]
    if model_type in ("qwen2_vl", "qwen2_5_vl"):
        text = dict(config.get("text_config") or config)
        text.setdefault("tie_word_embeddings", config.get("tie_word_embeddings", False))
        spec = _llama_like(ConfigFields(text, model_id), family="qwen2", tie_default=False)
        raw_vision = config.get("vision_config") or {}
        vision = _qwen2_vl_vision(raw_vision) if model_type == "qwen2_vl" else _qwen2_5_vl_vision(raw_vision)
        return _with_vision(spec, vision, model_type, c)
    if model_type in _LLAMA_FAMILIES:
        return _llama_like(c, family=model_type, tie_default=_LLAMA_FAMILIES[model_type])
    if model_type in ("qwen3_5", "qwen3_5_text", "qwen3_5_moe", "qwen3_5_moe_text"):
        return _qwen3_5(c)
    if model_type in ("qwen3_vl", "qwen3_vl_moe"):
        return _qwen3_vl(c, model_type)
    if model_type in ("gemma3", "gemma3_text"):
        return _gemma3(c)
    if model_type == "llava":
        return _llava(c)
    if model_type == "gpt_oss":
        return _gpt_oss(c)
    if model_type in ("deepseek_v2", "deepseek_v3"):
        return _deepseek(c, model_type)
    if model_type == "gpt2":
        return _gpt2(c)
    if model_type == "phi":
        return _phi(c)
    if model_type == "qwen" or "QWenLMHeadModel" in architectures:
        return _qwen1(c)
    if model_type == "chatglm" or any("ChatGLM" in a for a in architectures):
        return _chatglm(c)
    if model_type == "internlm2":
        return _internlm2(c)
    if model_type in ("baichuan",) or any("Baichuan" in a for a in architectures):
        return _baichuan(c)
    known = ", ".join(sorted([*_LLAMA_FAMILIES, *_OTHER_FAMILIES]))
    raise UnsupportedArchitecture(
        f"'{clip(model_id, 200)}' has model_type {describe(model_type or '?')}, which vram-check cannot count from "
        "config.json "
        f"(known: {known}); and no safetensors header with parameter counts was available"
    )


def model_spec_from_safetensors(config: Mapping[str, Any] | None, model_id: str,
                                parameter_count: int, dtype: str) -> ModelSpec:
    """An architecture we cannot count: take the exact total from the safetensors header.

    Shapes for the activation model still come from config.json's common fields when present.
    """
    c = ConfigFields(config or {}, model_id)
    h = int(c.get("hidden_size", "n_embd", "d_model", default=0) or 0)
    layers = int(c.get("num_hidden_layers", "num_layers", "n_layer", default=0) or 0)
    heads = int(c.get("num_attention_heads", "n_head", default=1) or 1)
    kv = int(c.get("num_key_value_heads", "multi_query_group_num", default=heads) or heads)
    vocab = int(c.get("vocab_size", "padded_vocab_size", default=0) or 0)
    inter = int(c.get("intermediate_size", "ffn_hidden_size", "n_inner", default=4 * h) or 4 * h)
    hd = int(c.get("head_dim", "kv_channels", default=(h // heads) if heads else 0) or 0)
    parts = dict.fromkeys(PARTS, 0)
    parts["other"] = parameter_count
    return ModelSpec(
        model_id=model_id, model_type=str(c.get("model_type", default="unknown")), hidden=h, layers=layers,
        heads=heads, kv_heads=kv, head_dim=hd, intermediate=inter, vocab=vocab,
        tie_embeddings=bool(c.get("tie_word_embeddings", default=False)), q_dim=heads * hd, kv_dim=kv * hd,
        checkpoint_dtype=dtype, parts=parts, source="safetensors header",
    )

