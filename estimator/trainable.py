"""Which parameters train, and the weight matrices optimizers with per-matrix state (GaLore, Adafactor) see."""

from __future__ import annotations

from dataclasses import dataclass

from estimator.model import ModelSpec
from estimator.plan import TrainingPlan

# LoRA target names → the projection they mean, per family naming (model/model_utils/misc.py
# find_all_linear_modules collects every nn.Linear except lm_head / output_layer / vision modules).
_ALIASES = {
    "q_proj": "q", "k_proj": "k", "v_proj": "v", "o_proj": "o", "gate_proj": "gate", "up_proj": "up",
    "down_proj": "down", "c_attn": "qkv", "w_pack": "qkv", "query_key_value": "qkv", "qkv_proj": "qkv",
    "wqkv": "qkv", "c_proj": "o", "dense": "o", "wo": "o", "w1": "gate", "w3": "up", "w2": "down",
    "gate_up_proj": "gate_up", "dense_h_to_4h": "gate_up", "dense_4h_to_h": "down", "fc1": "up", "fc2": "down",
    "c_fc": "up",
}


@dataclass(frozen=True)
class Linear:
    name: str
    n_in: int
    n_out: int
    count: int  # how many of these in the model (layers × experts)


def decoder_linears(model: ModelSpec) -> list[Linear]:
    """The nn.Linear layers of the decoder stack (not embeddings, lm_head or routed experts)."""
    h, layers = model.hidden, model.layers
    mlp_layers = model.dense_layers if model.experts else layers
    linears = [
        Linear("q", h, model.q_dim, layers),
        Linear("k", h, model.kv_dim, layers),
        Linear("v", h, model.kv_dim, layers),
        Linear("o", model.q_dim, h, layers),
    ]
    if model.kv_lora_rank:  # MLA: kv_a (h → kv_lora + rope) and kv_b (kv_lora → heads·(nope + v))
        linears[1] = Linear("k", h, model.kv_lora_rank, layers)
        linears[2] = Linear("v", model.kv_lora_rank, model.q_dim, layers)
    if model.gated_mlp:
        linears += [Linear("gate", h, model.intermediate, mlp_layers), Linear("up", h, model.intermediate, mlp_layers),
                    Linear("down", model.intermediate, h, mlp_layers)]
    else:
        linears += [Linear("up", h, model.intermediate, mlp_layers), Linear("down", model.intermediate, h, mlp_layers)]
    if model.shared_expert_intermediate:
        s = model.shared_expert_intermediate
        linears += [Linear("gate", h, s, model.moe_layers), Linear("up", h, s, model.moe_layers),
                    Linear("down", s, h, model.moe_layers)]
    return linears


def targeted_linears(model: ModelSpec, plan: TrainingPlan) -> list[Linear]:
    """The nn.Linear modules `lora_target: all` (and GaLore/APOLLO `all`) reach: LLaMA-Factory's
    find_all_linear_modules (model/model_utils/misc.py:28-52) keeps every module whose class name contains
    "Linear" but lm_head. transformers 4 builds MoE experts and routers from nn.Linear, so they are targeted;
    transformers 5 fuses the experts into 3-D parameters and makes the router a Parameter, which are not
    (transformers 5.24 models/qwen3_moe/modeling_qwen3_moe.py:210-257; measured on the meta device,
    /work/notes/methods.md §7)."""
    linears = decoder_linears(model)
    if model.experts and plan.versions.transformers < 5:
        count = model.moe_layers * model.experts
        width = model.moe_intermediate
        linears += [Linear("gate", model.hidden, width, count), Linear("up", model.hidden, width, count),
                    Linear("down", width, model.hidden, count)]
        if model.model_type not in ("deepseek_v2", "deepseek_v3"):  # DeepSeek's MoEGate is not an nn.Linear
            linears.append(Linear("router", model.hidden, model.experts, model.moe_layers))
    return linears


def _targets(plan: TrainingPlan) -> set[str] | None:
    """None = all linear layers; else the canonical projection names the YAML's lora_target names."""
    names = {t.lower() for t in plan.lora_target}
    if "all" in names:
        return None
    wanted: set[str] = set()
    for name in names:
        canonical = _ALIASES.get(name, name)
        wanted.update({"q", "k", "v"} if canonical == "qkv" else {"gate", "up"} if canonical == "gate_up" else
                      {canonical})
    return wanted


def oft_block(n_in: int, plan: TrainingPlan) -> int:
    """OFT's block size for a linear with `n_in` inputs: oft_block_size, or in/oft_rank when the blocks are given
    by their number; PEFT moves a size that does not divide n_in to the nearest divisor
    (peft 0.18.1 tuners/oft/layer.py:446-459, 505-523)."""
    wanted = plan.oft_block_size or max(1, n_in // max(1, plan.oft_rank))
    divisors = [d for d in range(1, n_in + 1) if n_in % d == 0]
    return min(divisors, key=lambda d: (abs(d - wanted), d))


def oft_params(model: ModelSpec, plan: TrainingPlan) -> int:
    """OFT rotates each targeted linear's input with r = in/b skew-symmetric b×b blocks, stored as their
    b(b−1)/2 upper entries (peft tuners/oft/layer.py:466-474, OFTRotationModule weight [r, b(b−1)/2]): in·(b−1)/2
    per linear, whatever its output width. Targets come from lora_target (adapter.py:229-232; oft_target is
    parsed but unused)."""
    targets = _targets(plan)
    total = 0
    for linear in targeted_linears(model, plan):
        if targets is None or linear.name in targets:
            block = oft_block(linear.n_in, plan)
            total += linear.count * (linear.n_in // block) * (block * (block - 1) // 2)
    return total


def lora_params(model: ModelSpec, plan: TrainingPlan) -> int:
    """LoRA adds A (r×in) and B (out×r) per targeted linear (peft LoraLayer); DoRA adds a magnitude (out)."""
    targets = _targets(plan)
    total = 0
    for linear in targeted_linears(model, plan):
        if targets is None or linear.name in targets:
            total += linear.count * plan.lora_rank * (linear.n_in + linear.n_out)
            if plan.use_dora:
                total += linear.count * linear.n_out
    return total


def modules_to_save_params(model: ModelSpec, plan: TrainingPlan) -> int:
    """additional_target: peft keeps a trainable full copy of each named module (embed_tokens, lm_head)."""
    total = 0
    for name in (t.lower() for t in plan.additional_target):
        if name in ("embed_tokens", "wte", "tok_embeddings", "word_embeddings", "lm_head", "output", "output_layer"):
            total += model.vocab * model.hidden
    return total


def per_layer_params(model: ModelSpec) -> int:
    """Average parameters of one decoder layer (everything but embeddings, lm_head, final norm, vision)."""
    body = sum(model.parts.get(k, 0) for k in ("attention", "mlp", "experts", "router", "shared_experts", "norms"))
    return max(0, body - model.hidden) // max(1, model.layers)


@dataclass(frozen=True)
class Trainable:
    params: int  # parameters with requires_grad
    adapter_params: int  # of which new adapter weights (LoRA/DoRA) or modules_to_save copies
    frozen_params: int  # base parameters that stay frozen (load dtype / quantized)
    trained_layers: int  # decoder layers holding trainable parameters (for activation saving)


def trainable(model: ModelSpec, plan: TrainingPlan) -> Trainable:
    """model/adapter.py: _setup_full_tuning / _setup_freeze_tuning / _setup_lora_tuning."""
    vision = model.vision_params if plan.freeze_vision_tower else 0  # freeze_vision_tower default True
    if plan.finetuning_type == "full" and not plan.use_badam:
        params = model.total_params - vision
        return Trainable(params, 0, vision, model.layers)
    if plan.use_badam:  # BAdam layer mode: one block trains at a time (trainer_utils.py _create_badam_optimizer)
        block = per_layer_params(model)
        return Trainable(block, 0, model.total_params - block, 1)
    if plan.finetuning_type == "freeze":
        layers = min(abs(plan.freeze_trainable_layers), model.layers)
        params = layers * per_layer_params(model)
        extra = {m.lower() for m in plan.freeze_extra_modules}
        if extra & {"embed_tokens", "wte", "tok_embeddings"}:
            params += model.parts.get("embeddings", 0)
        if extra & {"lm_head", "output", "output_layer"}:
            params += model.parts.get("lm_head", 0) or model.vocab * model.hidden
        return Trainable(params, 0, model.total_params - params, layers)
    # lora / oft: adapters on the targeted linears
    method = oft_params(model, plan) if plan.finetuning_type == "oft" else lora_params(model, plan)
    adapters = method + modules_to_save_params(model, plan)
    return Trainable(adapters, adapters, model.total_params, model.layers)
