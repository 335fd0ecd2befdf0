"""FSDP and FSDP2 per-GPU memory: sharded states, the gathered working set, reduce-scatter buffers, offload, loading.

How accelerate (≤ 1.11, LLaMA-Factory's pin) wraps a LLaMA-Factory model: TRANSFORMER_BASED_WRAP makes every
class of model._no_split_modules (each decoder layer, each vision block) an FSDP unit; the root unit keeps
the rest — embeddings, final norm, lm_head (accelerate utils/fsdp_utils.py fsdp2_prepare_model,
dataclasses.py set_auto_wrap_policy). NO_WRAP makes the whole model one unit. Per rank, with N ranks in a
shard group (GPUs per node for HYBRID_SHARD, 1 for NO_SHARD), in bytes (c = 2 under bf16/fp16 mixed
precision: the unsharded copies are in the compute dtype):

* sharded states: each parameter's 1/N slice in its own dtype — LF upcasts trainable parameters to fp32 before
  wrapping (model/adapter.py, since v0.9.3), frozen ones keep the load dtype, bitsandbytes 4-bit packs stay
  packed in their bf16 quant_storage (quantization.py:188) and their absmax state is replicated; the gradient
  slices in the parameter's dtype; optimizer states on the slices (FSDP2 _fsdp_param.py DTensor shards,
  FSDP1 flat_param.py FlatParameter shards).
* forward: the root unit is gathered from its pre-forward to the end of the forward and is not resharded
  after it (FSDP1 _runtime_utils.py:486-499; FSDP2 the same for the root group); FSDP2 keeps the last
  all-gather's flat output buffer until the next copy-out (_fsdp_collectives.py foreach_all_gather) →
  c·(R + U); FSDP1 c·R (a layer's unsharded copy is freed after its forward).
* backward, at a decoder layer: root and layer parameters unsharded, the next unit prefetched, the layer's
  unsharded gradients and — FSDP2 — the previous layer's reduce-scatter input kept until the next
  reduce-scatter (_fsdp_param_group.py reduce_scatter_states); the lm_head's unsharded gradient waits for the
  root's post-backward in the final callback: FSDP2 c·(R + 4U + H), FSDP1 c·(R + 4U + H) with prefetch.
* end of the backward (the root's post-backward): root parameters, its unsharded gradients and their
  concatenation into the reduce-scatter input: FSDP2 c·(2R + U), FSDP1 c·(2R + H + E).
* no reshard after forward (FSDP2 reshard_after_forward: false, FSDP1 SHARD_GRAD_OP): every unit stays
  gathered from its forward to its backward, c·P at the forward → backward turn.
* CPU offload: sharded parameters, gradients and the optimizer step live on the CPU.
* loading: with cpu_ram_efficient_loading (an accelerate launch) rank 0 loads on the CPU, the others on meta,
  units reach the GPU one at a time (FSDP1 also concatenates the unit into its FlatParameter); otherwise
  LLaMA-Factory passes device_map and every rank first holds the whole model with its fp32-upcast trainable
  parameters before FSDP shards it (patcher.py:428-434).

Mixed precision follows HF TrainingArguments (bf16/fp16 flags, else the accelerate config's
mixed_precision); with it, accelerate upcasts every trainable parameter to fp32 before sharding, pure_bf16 or
not. Activations are bf16 (the gathered parameters are). Checked against a trace of accelerate's own wrapping
on torch's fake process group under fake tensors: benchmarks/oracle/fsdp_compare.py, docs/accuracy.md §5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from estimator import quantization as quant
from estimator.model import ModelSpec
from estimator.trainable import Trainable, per_layer_params

if TYPE_CHECKING:
    from estimator.memory import World
    from estimator.plan import TrainingPlan


@dataclass(frozen=True)
class FsdpBuffers:
    """Unsharded copies and communication buffers (on top of the sharded states), at the points that matter."""

    forward: int  # end of the forward: the root gathered (+ FSDP2's retained all-gather output)
    turnaround: int  # start of the backward
    layer: int  # inside a decoder layer's backward: unsharded params, prefetch, reduce-scatter input
    layer_gradients: int  # ... and the unsharded gradients there (lm_head's, the layer's)
    end: int  # the root's post-backward at the end: root params (+ the last reduce-scatter input)
    end_gradients: int  # ... and the root's unsharded gradients
    missing_at_layer: int  # trainable parameters whose gradient shard does not exist yet at the layer point
    missing_at_end: int  # ... and at the end (the root's: reduce-scattered in the final callback)


def shard_group(plan: TrainingPlan, world: World) -> int:
    """Ranks that share one copy of the states."""
    assert plan.fsdp is not None
    if not plan.fsdp.shards_states:
        return 1
    if plan.fsdp.hybrid:
        return world.gpus_per_node
    return world.world_size


def _compute_bytes(plan: TrainingPlan, stored: int) -> int:
    """Bytes per gathered parameter: the compute dtype with mixed precision, else the stored dtype."""
    return 2 if plan.mixed_precision != "no" else stored


@dataclass(frozen=True)
class Units:
    """Parameters and trainable parameters of the root and of the largest wrapped unit."""

    root: int
    root_trainable: int
    head: int  # lm_head (the embedding when tied)
    embed: int
    layer: int
    layer_trainable: int


def units(model: ModelSpec, plan: TrainingPlan, t: Trainable) -> Units:
    assert plan.fsdp is not None
    embed = model.parts.get("embeddings", 0)
    head = model.parts.get("lm_head", 0) or embed
    root = embed + model.parts.get("lm_head", 0) + model.hidden
    layer = per_layer_params(model)
    if plan.fsdp.wrap_policy == "NO_WRAP":
        layer = root = model.total_params
    elif plan.fsdp.wrap_policy == "SIZE_BASED_WRAP" and plan.fsdp.min_num_params > layer:
        layer *= -(-plan.fsdp.min_num_params // max(1, layer))
    full = plan.finetuning_type == "full" and not plan.use_badam
    root_trainable = root if full else 0
    layer_trainable = layer if full else t.params // max(1, t.trained_layers)
    return Units(root, root_trainable, head if full else 0, embed if full else 0, layer, layer_trainable)


def _unit_bytes(model: ModelSpec, plan: TrainingPlan, params: int, c: int, fmt: quant.QuantFormat | None) -> int:
    """Gathered bytes of a unit: packed linears keep their packed bytes (stored as bf16 quant_storage)."""
    if fmt is None or params == 0:
        return c * params
    linear_share = quant.packed_params(model, plan.versions.transformers) / max(1, model.total_params)
    packed = int(params * linear_share)
    return int(packed * fmt.bytes_per_param) + c * (params - packed)


def sharded_weights(model: ModelSpec, plan: TrainingPlan, world: World, stored: float, replicated: int) -> int:
    """Every parameter's slice in its own dtype, plus bitsandbytes' quant_state, whole on every rank."""
    assert plan.fsdp is not None
    if plan.fsdp.offload_params:
        return replicated
    return int(stored / shard_group(plan, world)) + replicated


def sharded_gradients(plan: TrainingPlan, world: World, t: Trainable, grad_bytes: int) -> int:
    assert plan.fsdp is not None
    if plan.fsdp.offload_params:
        return 0
    return grad_bytes * t.params // shard_group(plan, world)


def sharded_optimizer(plan: TrainingPlan, world: World, states: float) -> int:
    assert plan.fsdp is not None
    if plan.fsdp.offload_params:
        return 0  # the optimizer steps the CPU copies
    return int(states / shard_group(plan, world))


def buffers(model: ModelSpec, plan: TrainingPlan, world: World, t: Trainable, fmt: quant.QuantFormat | None,
            trainable_bytes: int) -> FsdpBuffers:
    assert plan.fsdp is not None
    cfg = plan.fsdp
    c = _compute_bytes(plan, trainable_bytes)
    u = units(model, plan, t)
    root = _unit_bytes(model, plan, u.root, c, None)  # embeddings and lm_head are never packed
    layer = _unit_bytes(model, plan, u.layer, c, fmt)
    layer_grads = c * u.layer_trainable
    head_grad = c * u.head
    missing_layer, missing_end = u.root_trainable + 2 * u.layer_trainable, u.root_trainable
    if not cfg.shards_states:  # NO_SHARD: the compute copies (_mp_shard) of the root and the unit; grads in place
        return FsdpBuffers(forward=root + layer, turnaround=root + layer, layer=root + layer, layer_gradients=0,
                           end=root, end_gradients=0, missing_at_layer=0, missing_at_end=0)
    prefetch = layer if (cfg.version == 2 or cfg.backward_prefetch != "NO_PREFETCH") else 0
    if cfg.version == 2:
        forward = root + layer  # the root, and the last all-gather's retained output
        at_layer, at_layer_grads = root + layer + prefetch + layer_grads, head_grad + layer_grads
        at_end, at_end_grads = root + layer_grads, c * u.root_trainable  # + the last layer's RS input
        # inside the root's foreach_reduce (_fsdp_collectives.py:578-588): its reduce-scatter input, the
        # lm_head gradient the loop still holds, the bf16 reduce-scatter output and its fp32 cast (2 + 4 B)
        reduce = c * u.root_trainable + 6 * u.root_trainable // shard_group(plan, world)
        if reduce + head_grad > at_end + at_end_grads:
            at_end, at_end_grads = reduce, head_grad
    else:
        forward = root
        at_layer, at_layer_grads = root + layer + prefetch, head_grad + 2 * layer_grads  # views + flat concat
        at_end, at_end_grads = root, c * (u.head + u.embed) + c * u.root_trainable
    # backward start: the root, and the last layer prefetched by the root's pre-backward hook (FSDP1; FSDP2
    # with accelerate <= 1.11, whose root hook sits on the loss)
    turnaround = root + prefetch
    if not cfg.reshard_after_forward:  # every unit gathered from its forward to its backward
        whole = _unit_bytes(model, plan, model.total_params, c, fmt)
        forward = whole + (layer if cfg.version == 2 else 0)
        turnaround = whole
        at_layer = whole  # the first layer's backward: nothing freed, no gradient shard landed yet
        missing_layer = t.params
    return FsdpBuffers(forward, turnaround, at_layer, at_layer_grads, at_end, at_end_grads, missing_layer,
                       missing_end)


def load_transient(model: ModelSpec, plan: TrainingPlan, world: World, t: Trainable, stored: float,
                   whole: float, fmt: quant.QuantFormat | None = None) -> int:
    """Loading and wrapping. Rank-0 CPU loading (an accelerate launch with cpu_ram_efficient_loading): FSDP2
    broadcasts one full fp32 parameter at a time into its shard (accelerate fsdp_utils.py:648-663); FSDP1 moves a
    unit to the GPU and concatenates it into its FlatParameter (two copies of the unit). Otherwise every rank
    holds the whole model with its fp32 trainable parameters (device_map) next to the shards FSDP cuts from it,
    until the full copy is dropped (FSDP1 concatenates the root as well)."""
    assert plan.fsdp is not None
    n = shard_group(plan, world)
    stored_trainable = 4 if plan.stored_trainable_fp32 else 2
    frozen = 2  # the load dtype of the frozen parameters (bf16 checkpoints)
    u = units(model, plan, t)
    if not plan.fsdp_loading:
        # FSDP2 cuts new shards next to the full copy; FSDP1 flattens in place (+ one bf16 lm_head-sized copy)
        extra = stored / n if plan.fsdp.version == 2 else 2 * max(u.head, u.embed, model.vocab * model.hidden)
        return int(whole + extra)
    # one unit (FSDP2: one parameter) in full on the GPU, in its stored bytes: trainable parameters in their
    # upcast dtype, frozen ones in the load dtype, packed linears packed
    root = stored_trainable * u.root_trainable + frozen * (u.root - u.root_trainable)
    layer = _unit_bytes(model, plan, u.layer - u.layer_trainable, frozen, fmt) + stored_trainable * u.layer_trainable
    if plan.fsdp.version == 2:
        vocab_tensor = model.vocab * model.hidden
        largest_tensor = max(stored_trainable * vocab_tensor if u.root_trainable else frozen * vocab_tensor,
                             layer // 4)
        return int(stored / n + largest_tensor)
    return int(stored / n + 2 * max(layer, root))


def not_modelled(model: ModelSpec, plan: TrainingPlan, world: World) -> list[str]:
    assert plan.fsdp is not None
    found = []
    if plan.fsdp.hybrid and world.nodes < 2:
        found.append(f"{plan.fsdp.sharding} on one node ({plan.fsdp.source}): hybrid sharding needs several")
    if plan.use_kt and plan.fsdp.offload_params:
        found.append("KTransformers with FSDP parameter offload")
    return found
