"""FSDP and FSDP2 per-GPU memory: sharded states, the gathered working set, reduce-scatter buffers, offload, loading.

How accelerate wraps a LLaMA-Factory model (TRANSFORMER_BASED_WRAP: every decoder layer — and vision block —
is one FSDP unit; the root unit keeps what is left: embeddings, final norm, lm_head; NO_WRAP: the whole model
is one unit) and what each unit costs, per rank, with N ranks sharing a shard group (N = GPUs per node for
HYBRID_SHARD, 1 for NO_SHARD):

* sharded states: every parameter's 1/N slice in its own dtype — LF upcasts trainable parameters to fp32
  before wrapping (model/adapter.py, since v0.9.3), frozen ones keep the load dtype, bitsandbytes 4-bit packs
  stay packed in their bf16 quant_storage; gradients as 1/N slices in the parameter's dtype; optimizer states
  built on the slices (torch FSDP2 _fsdp_param.py: sharded DTensor parameters; FSDP1 flat_param.py: sharded
  FlatParameter, grads reduce-scattered into the shard's dtype).
* the unsharded working set: a unit's parameters all-gathered in the compute dtype (MixedPrecisionPolicy
  param_dtype = bf16 from mixed precision; the parameter dtype without it) while it runs. FSDP2 keeps the
  all-gather output of the last unit until the next all-gather's copy-out (_fsdp_collectives.py
  foreach_all_gather / copy-out into separately allocated unsharded parameters), so two units' worth are live;
  FSDP1 keeps the root unit unsharded from its forward to the end of the backward (_runtime_utils.py
  _post_forward_reshard: the root is not resharded after forward) and one wrapped unit at a time (plus one
  prefetched with BACKWARD_PRE in the backward).
* no reshard after forward (FSDP2 reshard_after_forward: false, FSDP1 SHARD_GRAD_OP): every unit stays gathered
  from its forward to its backward — the whole model in the compute dtype at the forward → backward turn.
* reduce-scatter: FSDP2 keeps the last unit's reduce-scatter input (its unsharded gradients in the reduce dtype)
  until the next reduce-scatter (_fsdp_param_group.py reduce_scatter_state); FSDP1 accumulates the root's
  unsharded gradient in fp32 until the root's post-backward at the very end of the backward.
* CPU offload: sharded parameters, gradients and the optimizer step live on the CPU; the GPU holds the gathered
  units and the activations.
* loading: with cpu_ram_efficient_loading (and an accelerate launch) rank 0 loads on the CPU, the others on
  meta, and units move to the GPU one at a time; otherwise LLaMA-Factory passes device_map and every rank first
  holds the whole model (fp32-upcast trainable parameters included) before FSDP shards it (patcher.py:428-434).

Checked against a trace of the real stack on torch's fake process group under fake tensors
(/work/scratch/fsdp_oracle, docs/accuracy.md "FSDP").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from estimator import quantization as quant
from estimator.model import ModelSpec
from estimator.trainable import Trainable, per_layer_params

if TYPE_CHECKING:
    from estimator.memory import World
    from estimator.plan import TrainingPlan

FrozenBytes = Callable[[ModelSpec, "TrainingPlan", int, "quant.QuantFormat | None", "int | None"], float]
TrainableBytes = Callable[[ModelSpec, "TrainingPlan"], int]


@dataclass(frozen=True)
class FsdpBuffers:
    persistent: int  # always live (none beyond the cuBLAS workspace today)
    gathered: int  # unsharded units live while a unit computes (forward and backward)
    step: int  # transient at the optimizer step
    turnaround: int  # gathered at the forward → backward turn
    backward: int  # extra during the backward only (reduce-scatter input, root gradient)


def shard_group(plan: TrainingPlan, world: World) -> int:
    """Ranks that share one copy of the states."""
    assert plan.fsdp is not None
    if not plan.fsdp.shards_states:
        return 1
    if plan.fsdp.hybrid:
        return world.gpus_per_node
    return world.world_size


def _compute_bytes(model: ModelSpec, plan: TrainingPlan, trainable_bytes: int) -> int:
    """Bytes per gathered parameter: the compute dtype with mixed precision, else the stored dtype."""
    if plan.bf16 or plan.fp16:
        return 2
    return max(trainable_bytes, 2)


def root_params(model: ModelSpec) -> int:
    """The root unit under TRANSFORMER_BASED_WRAP: embeddings, final norm and lm_head."""
    return model.parts.get("embeddings", 0) + model.parts.get("lm_head", 0) + model.hidden


def unit_params(model: ModelSpec, plan: TrainingPlan) -> int:
    """Parameters of the largest wrapped unit (the whole model with NO_WRAP; consecutive layers up to
    min_num_params with SIZE_BASED_WRAP)."""
    assert plan.fsdp is not None
    layer = per_layer_params(model)
    if plan.fsdp.wrap_policy == "NO_WRAP":
        return model.total_params
    if plan.fsdp.wrap_policy == "SIZE_BASED_WRAP" and plan.fsdp.min_num_params > layer:
        return layer * -(-plan.fsdp.min_num_params // max(1, layer))
    return layer


def sharded_weights(model: ModelSpec, plan: TrainingPlan, world: World, t: Trainable,
                    fmt: quant.QuantFormat | None, frozen_bytes: FrozenBytes, trainable_bytes: TrainableBytes,
                    replicated: int) -> int:
    """Every parameter's slice in its own dtype (trainable: fp32 after LF's upcast), plus bitsandbytes'
    quant_state, which stays whole on every rank."""
    assert plan.fsdp is not None
    if plan.fsdp.offload_params:
        return replicated
    n = shard_group(plan, world)
    stored = frozen_bytes(model, plan, t.frozen_params, fmt, None) + trainable_bytes(model, plan) * t.params
    return int(stored / n) + replicated


def sharded_gradients(model: ModelSpec, plan: TrainingPlan, world: World, t: Trainable, grad_bytes: int) -> int:
    assert plan.fsdp is not None
    if plan.fsdp.offload_params:
        return 0
    return grad_bytes * t.params // shard_group(plan, world)


def sharded_optimizer(plan: TrainingPlan, world: World, states: float) -> int:
    assert plan.fsdp is not None
    if plan.fsdp.offload_params:
        return 0  # the optimizer steps the CPU copies
    return int(states / shard_group(plan, world))


def buffers(model: ModelSpec, plan: TrainingPlan, world: World, t: Trainable,
            fmt: quant.QuantFormat | None) -> FsdpBuffers:
    assert plan.fsdp is not None
    cfg = plan.fsdp
    trainable_bytes = 4 if plan.upcast_trainable_to_fp32 else 2
    c = _compute_bytes(model, plan, trainable_bytes)
    packed = fmt.bytes_per_param / 2 if fmt is not None else 1.0  # a packed linear gathers its packed bytes
    layer = int(unit_params(model, plan) * (packed if fmt is not None else 1.0))
    root = root_params(model)
    if cfg.wrap_policy == "NO_WRAP":
        root = layer
    largest = max(layer, root)
    whole = int(c * model.total_params * (packed if fmt is not None else 1.0))
    if cfg.version == 2:
        gathered = 2 * c * largest  # the unit computing + the retained all-gather output
        backward = c * layer  # the last unit's reduce-scatter input, retained
    else:
        prefetch = c * layer if cfg.backward_prefetch != "NO_PREFETCH" else 0
        gathered = c * (root + layer) + (c * layer if cfg.forward_prefetch else 0)
        # the root's unsharded gradient accumulates in fp32 until its post-backward at the end (trace: 4·U_root)
        root_trainable = root if plan.finetuning_type == "full" else 0
        backward = prefetch + 4 * root_trainable - trainable_bytes * root_trainable // shard_group(plan, world)
    turnaround = whole + c * largest if not cfg.reshard_after_forward else gathered
    return FsdpBuffers(persistent=0, gathered=int(gathered), step=0, turnaround=int(turnaround),
                       backward=int(max(0, backward)))


def load_transient(model: ModelSpec, plan: TrainingPlan, world: World, t: Trainable,
                   fmt: quant.QuantFormat | None, frozen_bytes: FrozenBytes) -> int:
    """With rank-0 CPU loading only one unit at a time reaches the GPU in full before it is sharded; otherwise
    every rank holds the whole model with its fp32 trainable parameters (LF's device_map + upcast)."""
    assert plan.fsdp is not None
    stored_trainable = 4 if plan.upcast_trainable_to_fp32 else 2
    if not plan.fsdp_loading:
        base_trainable = t.params - t.adapter_params
        return int(stored_trainable * t.params + frozen_bytes(model, plan, model.total_params - base_trainable, fmt,
                                                              None))
    n = shard_group(plan, world)
    sharded = (frozen_bytes(model, plan, t.frozen_params, fmt, None) + stored_trainable * t.params) / n
    largest = max(unit_params(model, plan), root_params(model))
    copies = 1 if plan.fsdp.version == 2 else 2  # FSDP1 flattens the unit into a FlatParameter first
    return int(sharded + copies * stored_trainable * largest)


def not_modelled(model: ModelSpec, plan: TrainingPlan, world: World) -> list[str]:
    assert plan.fsdp is not None
    found = []
    if plan.fsdp.hybrid and world.nodes < 2:
        found.append(f"{plan.fsdp.sharding} on one node ({plan.fsdp.source}): hybrid sharding needs several")
    if plan.deepspeed is not None:
        found.append("FSDP together with DeepSpeed")
    if plan.use_kt and plan.fsdp.offload_params:
        found.append("KTransformers with FSDP parameter offload")
    return found
