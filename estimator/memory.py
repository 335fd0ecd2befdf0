"""Per-GPU memory of a (ModelSpec, TrainingPlan, World): components, phases, and the three peaks.

peak = max over phases (model load, end of forward, start of backward, backward, optimizer step) of what
is live then. Components are reported as they stand at the peak phase, so they add up to allocated.
Sources: research/llamafactory.md (LLaMA-Factory dtype rules), research/estimators.md §2 (DeepSpeed
buffers), research/trace.md (traced HF training steps).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from estimator import activations as act
from estimator.constants import (
    CUBLAS_WORKSPACE_BYTES,
    DTYPE_BYTES,
    INT8_BYTES_PER_PARAM,
    NF4_BYTES_PER_PARAM,
)
from estimator.errors import InputError
from estimator.model import ModelSpec
from estimator.plan import TrainingPlan
from estimator.runtime import runtime, setup_class
from estimator.trainable import Trainable, decoder_linears, trainable

COMPONENTS = ("weights", "gradients", "optimizer", "activations", "logits", "buffers")


@dataclass(frozen=True)
class World:
    gpus_per_node: int = 1
    nodes: int = 1

    def __post_init__(self) -> None:
        if self.gpus_per_node < 1 or self.nodes < 1:
            raise InputError(f"GPU count must be at least 1 (got {self.gpus_per_node} per node × {self.nodes} nodes)")

    @property
    def world_size(self) -> int:
        return self.gpus_per_node * self.nodes


@dataclass(frozen=True)
class Estimate:
    components: dict[str, int]  # at the peak phase; they sum to allocated_bytes
    allocated_bytes: int  # torch.cuda.max_memory_allocated()
    reserved_bytes: int  # torch.cuda.max_memory_reserved()
    peak_bytes: int  # device memory in use (nvidia-smi): reserved + CUDA context + NCCL
    peak_phase: str
    phases: dict[str, int]  # allocated bytes per phase
    overhead_bytes: int  # CUDA context + NCCL, outside the caching allocator
    trainable_params: int
    peak_range_bytes: tuple[int, int] = (0, 0)  # where ~90 % of real nvidia-smi peaks fall (estimator/runtime.py)
    band: str = ""  # the band's basis, for reports
    assumptions: tuple[str, ...] = field(default_factory=tuple)

    @property
    def peak_low_bytes(self) -> int:
        return self.peak_range_bytes[0]

    @property
    def peak_high_bytes(self) -> int:
        return self.peak_range_bytes[1]

    def to_json(self) -> dict[str, object]:
        components: dict[str, int] = dict(self.components)
        components["overhead"] = self.overhead_bytes
        return {"components": components, "allocated_bytes": self.allocated_bytes,
                "reserved_bytes": self.reserved_bytes, "peak_bytes": self.peak_bytes,
                "peak_range_bytes": list(self.peak_range_bytes), "band": self.band,
                "peak_phase": self.peak_phase, "phases": dict(self.phases)}


# --- precision --------------------------------------------------------------------------------------


def _load_bytes(model: ModelSpec, plan: TrainingPlan) -> int:
    """LF ≥ 0.9.4 loads with torch_dtype="auto" (model/loader.py): the checkpoint's dtype, whatever the
    precision flags say — so pure_bf16 on a float32 checkpoint trains in float32 (traced by the oracle)."""
    return DTYPE_BYTES.get(model.checkpoint_dtype, 4)


def _deepspeed_half(plan: TrainingPlan) -> bool:
    """DeepSpeed bf16/fp16 engines cast the module to half precision (engine._configure_distributed_model)."""
    ds = plan.deepspeed
    return ds is not None and bool(ds.bf16 or ds.fp16)


def _trainable_bytes(model: ModelSpec, plan: TrainingPlan) -> int:
    """Bytes per trainable parameter as it sits on the GPU (also the gradient and torch-optimizer state dtype)."""
    if _deepspeed_half(plan):
        return 2
    if plan.upcast_trainable_to_fp32:
        return 4  # model/adapter.py: "Upcasting trainable params to float32."
    return _load_bytes(model, plan)


def _embeddings_train(plan: TrainingPlan) -> bool:
    return plan.finetuning_type == "full" or any(
        m in ("embed_tokens", "wte", "tok_embeddings") for m in plan.freeze_extra_modules)


def precision(model: ModelSpec, plan: TrainingPlan) -> act.Precision:
    """Matmuls produce half precision under HF autocast (bf16/fp16 flags) or with half weights; the residual
    stream has the embedding's dtype (fp32 when LF upcast a trainable embedding)."""
    half_weights = _deepspeed_half(plan) or _load_bytes(model, plan) == 2
    matmul = 2 if plan.bf16 or plan.fp16 or half_weights else 4
    if _deepspeed_half(plan):
        residual = 2
    elif _embeddings_train(plan) and plan.upcast_trainable_to_fp32:
        residual = 4
    else:
        residual = _load_bytes(model, plan)
    return act.Precision(residual_bytes=residual, matmul_bytes=min(matmul, residual))


# --- model states ------------------------------------------------------------------------------------


def _quantized_linear_params(model: ModelSpec) -> int:
    """bitsandbytes replaces every nn.Linear but lm_head; embeddings and norms keep the load dtype."""
    return sum(model.parts.get(k, 0) for k in ("attention", "mlp", "experts", "shared_experts"))


def _frozen_base_bytes(model: ModelSpec, plan: TrainingPlan, frozen: int, quantization_bit: int | None) -> float:
    load = _load_bytes(model, plan)
    if quantization_bit is None and model.quantization is None:
        return float(frozen * load)
    per_param = NF4_BYTES_PER_PARAM if (quantization_bit or 4) <= 4 else INT8_BYTES_PER_PARAM
    quantized = min(frozen, _quantized_linear_params(model))
    return quantized * per_param + (frozen - quantized) * load


def weights_bytes(model: ModelSpec, plan: TrainingPlan, world: World, t: Trainable) -> tuple[int, int]:
    """(policy weights, extra reference/reward model weights) per GPU in steady state."""
    n = world.world_size
    if plan.zero_stage == 3:  # partitioned low-precision params (lp_param_buffer, stage3.py): 2·P/N
        lp = 2 if _deepspeed_half(plan) else 4
        policy = 0 if plan.deepspeed and plan.deepspeed.offload_param else lp * model.total_params // n
    elif _deepspeed_half(plan):  # ZeRO-0/1/2: full bf16 module replica
        policy = 2 * model.total_params
    else:
        base_trainable = t.params - t.adapter_params
        policy = int(base_trainable * _trainable_bytes(model, plan)
                     + _frozen_base_bytes(model, plan, t.frozen_params, plan.quantization_bit)
                     + t.adapter_params * _trainable_bytes(model, plan))
    extra = 0
    copies = (1 if plan.ref_model_is_extra_copy else 0) + (1 if plan.stage == "ppo" and
                                                           plan.reward_model_type == "full" else 0)
    if copies:
        one = _frozen_base_bytes(model, plan, model.total_params, plan.ref_model_quantization_bit)
        # TRL prepare_deepspeed: ZeRO-3 shards the reference model, ZeRO-0/1/2 replicate it
        extra = int(copies * one / (n if plan.zero_stage == 3 else 1))
    return policy, extra


def gradient_bytes(model: ModelSpec, plan: TrainingPlan, world: World, t: Trainable) -> int:
    n = world.world_size
    grad = _trainable_bytes(model, plan)
    if plan.use_galore and plan.galore_layerwise:  # per-parameter optimizer hooks free each grad at once
        return grad * max(lin.n_in * lin.n_out for lin in decoder_linears(model))
    if plan.zero_stage >= 2:  # partitioned gradients (contiguous_gradients); on CPU with optimizer offload
        if plan.deepspeed and plan.deepspeed.offload_optimizer:
            return 0
        return grad * t.params // n
    return grad * t.params  # ZeRO-0/1, DDP, single GPU: full gradients


def optimizer_bytes(model: ModelSpec, plan: TrainingPlan, world: World, t: Trainable) -> int:
    """AdamW: exp_avg + exp_avg_sq like the parameter; DeepSpeed adds the fp32 master copy (12 B/param)."""
    n = world.world_size
    if plan.deepspeed and plan.deepspeed.offload_optimizer:
        return 0
    if plan.deepspeed is not None:
        per_param = 4 + _state_bytes_per_param(plan, 4)  # fp32 master + states (zero/stage_1_and_2.py)
        shards = n if plan.zero_stage >= 1 else 1
        return int(per_param * t.params / shards)
    if plan.use_galore or plan.use_apollo:
        return int(_projected_states(model, plan, t))
    return int(_state_bytes_per_param(plan, _trainable_bytes(model, plan)) * t.params)


def _state_bytes_per_param(plan: TrainingPlan, param_bytes: int) -> float:
    optim = plan.optim
    if plan.eight_bit_optimizer:
        return 2.0  # bitsandbytes 8-bit Adam: two uint8 states (+ per-block absmax, < 1 %)
    if optim.startswith("adafactor"):
        return 0.05  # factored second moment: rows + columns per matrix, no momentum (beta1=None)
    if optim in ("sgd",):
        return 0.0
    if optim in ("lion_32bit", "paged_lion_32bit", "lion"):
        return float(param_bytes)  # one momentum buffer
    return 2.0 * param_bytes  # AdamW family: exp_avg + exp_avg_sq (torch/optim/adamw.py zeros_like(param))


def _projected_states(model: ModelSpec, plan: TrainingPlan, t: Trainable) -> float:
    """GaLore/APOLLO (trainer_utils.py _create_galore_optimizer): Adam states on the rank-r projection of
    each targeted matrix (r × max side) plus the projector (min side × r); other params plain Adam."""
    rank = plan.galore_rank if plan.use_galore else plan.apollo_rank
    state = _state_bytes_per_param(plan, _trainable_bytes(model, plan))
    projected_params = 0
    total = 0.0
    for lin in decoder_linears(model):
        projected_params += lin.count * lin.n_in * lin.n_out
        total += lin.count * (state * rank * max(lin.n_in, lin.n_out) + 4 * rank * min(lin.n_in, lin.n_out))
    rest = max(0, t.params - projected_params)
    return total + state * rest


# --- activations ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActivationBytes:
    saved: int  # held from the end of the forward to the start of the backward
    working: int  # one layer's recomputation + its gradient temporaries during backward (checkpointing)
    autocast_cache: int  # bf16 copies of fp32 weights cached by autocast during the forward


def activation_bytes(model: ModelSpec, plan: TrainingPlan, t: Trainable) -> ActivationBytes:
    sequences = plan.sequences_per_micro_batch
    seq_len = plan.cutoff_len
    tokens = sequences * seq_len
    p = precision(model, plan)
    lora = plan.finetuning_type in ("lora", "oft") and not plan.use_badam
    mode = "adapters" if lora else "full"
    moe = model.experts > 0

    def layer(kind: str, is_moe: bool) -> int:
        return act.layer_bytes_per_token(model, p, attention=plan.attention, seq_len=seq_len, trainable=kind,
                                         liger=plan.liger, moe=is_moe)

    def stack(kind: str) -> int:  # all decoder layers, dense and MoE
        if not moe:
            return model.layers * layer(kind, False)
        return model.dense_layers * layer(kind, False) + model.moe_layers * layer(kind, True)

    full_layer = max(layer(mode, moe), layer(mode, False))
    checkpoint_input = p.residual_bytes * model.hidden  # the layer input saved by torch.utils.checkpoint
    final_norm = act.norm_bytes(model.hidden, p, plan.finetuning_type == "full", 1)
    if plan.finetuning_type == "freeze" or plan.use_badam:
        # LF's checkpointing wrapper (checkpointing.py) checkpoints only layers holding trainable params and
        # marks their input as requiring grad; the frozen layers below run with no autograd record at all
        trained = t.trained_layers
        per_token = trained * (checkpoint_input if plan.gradient_checkpointing else full_layer)
    elif plan.gradient_checkpointing:
        per_token = model.layers * checkpoint_input
    else:
        per_token = stack(mode)
    if plan.unsloth_gc and plan.gradient_checkpointing:
        per_token = 0  # unsloth GC offloads the checkpointed hidden states to CPU
    saved = tokens * (per_token + final_norm)
    working = 0
    if plan.gradient_checkpointing:
        # recomputing one layer rebuilds its saved tensors; its backward adds gradient temporaries of
        # the widest tensors (≈ two of the MLP width)
        working = tokens * (full_layer + 2 * p.matmul_bytes * max(model.intermediate, model.moe_intermediate))
    if plan.attention == "eager" or (plan.neat_packing and plan.attention != "fa2"):
        saved += act.eager_mask_bytes(sequences, seq_len, p)
    elif plan.attention == "sdpa":
        saved += act.sliding_window_mask_bytes(model, sequences, seq_len)
    if (plan.bf16 or plan.fp16) and _load_bytes(model, plan) == 4 and lora and not plan.gradient_checkpointing:
        # a frozen fp32 linear under autocast runs on a bf16 cast of its weight, which its backward keeps
        # (frozen weights are not in autocast's cache): 2 bytes per frozen decoder weight (oracle-traced)
        saved += 2 * sum(lin.count * lin.n_in * lin.n_out for lin in decoder_linears(model))
    if (plan.bf16 or plan.fp16) and _load_bytes(model, plan) == 4 and (lora or plan.finetuning_type == "freeze"):
        # autocast casts the frozen fp32 lm_head for the logits matmul; its backward (grad of the hidden
        # states) keeps that bf16 copy (frozen weights are not in autocast's cache, so it is saved instead)
        saved += 2 * model.vocab * model.hidden
    cache = 0
    if (plan.bf16 or plan.fp16) and _trainable_bytes(model, plan) == 4 and not lora:
        # autocast caches a bf16 copy of every trainable fp32 weight a matmul used until the autocast region
        # exits (torch autocast cached_cast: leaf tensors that require grad); the lm_head only when it trains
        linears = sum(lin.count * lin.n_in * lin.n_out for lin in decoder_linears(model))
        cache = 2 * linears * t.trained_layers // max(1, model.layers)
        if plan.finetuning_type == "full":
            cache += 2 * model.vocab * model.hidden
    return ActivationBytes(saved=saved, working=working, autocast_cache=cache)


# --- buffers -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BufferBytes:
    persistent: int  # DDP buckets, ZeRO reduce buckets, ZeRO-3 fp32 gradient buffer, cuBLAS workspace
    gathered: int  # ZeRO-3 parameters gathered for the current module + prefetch (forward / backward)
    step: int  # transient at the optimizer step (ZeRO-1/2 fp32 gradient partition, allgather bucket)
    turnaround: int = 0  # ZeRO-3 parameters kept gathered across the forward → backward turn


def buffer_bytes(model: ModelSpec, plan: TrainingPlan, world: World, t: Trainable) -> BufferBytes:
    n = world.world_size
    ds = plan.deepspeed
    persistent = CUBLAS_WORKSPACE_BYTES
    gathered = step = 0
    if ds is None:
        if n > 1:  # torch DDP Reducer: flat bucket copies of all gradients (gradient_as_bucket_view=False)
            persistent += _trainable_bytes(model, plan) * t.params
        return BufferBytes(persistent, 0, 0)
    half = 2 if _deepspeed_half(plan) else 4
    if plan.zero_stage in (1, 2):
        # stage_1_and_2.py setup_buckets: IPG bucket(s) of reduce_bucket_size elements, doubled by overlap_comm
        persistent += half * ds.reduce_bucket(model.hidden) * (2 if ds.overlap_comm else 1)
        if not ds.offload_optimizer:
            # at the step: fp32 copy of the gradient partition, then allgather of updated params
            step = 4 * t.params // n + half * ds.allgather_bucket_size
    elif plan.zero_stage == 3:
        persistent += half * ds.reduce_bucket(model.hidden)  # stage3.py IPG bucket
        if not ds.offload_optimizer:
            # initialize_optimizer_states: fp32 gradient buffer of the largest sub-group (derived)
            persistent += 4 * min(t.params // n, ds.sub_group_size)
        largest_unit = max(model.vocab * model.hidden,
                           model.parts.get("experts", 0) // max(1, model.moe_layers) if model.experts else 0,
                           max(lin.n_in * lin.n_out for lin in decoder_linears(model)))
        gathered = half * (largest_unit + ds.prefetch_bucket(model.hidden))
        # partitioned_param_coordinator.py: a module's params are not released when they are reused within
        # stage3_max_reuse_distance, as the last layers and lm_head are at the forward → backward turn;
        # stage3_max_live_parameters bounds them (research/estimators.md §2.2, derived from the code)
        turnaround = half * min(ds.max_live_parameters, model.total_params)
        return BufferBytes(persistent, gathered, step, turnaround)
    elif n > 1:  # ZeRO-0: DeepSpeed's own allreduce buckets
        persistent += half * ds.reduce_bucket(model.hidden)
    return BufferBytes(persistent, gathered, step)


# --- phases ----------------------------------------------------------------------------------------------


def estimate(model: ModelSpec, plan: TrainingPlan, world: World) -> Estimate:
    """The per-GPU peak of `plan` training `model` on `world`."""
    t = trainable(model, plan)
    policy_w, extra_w = weights_bytes(model, plan, world, t)
    weights = policy_w + extra_w
    grads = gradient_bytes(model, plan, world, t)
    optim = optimizer_bytes(model, plan, world, t)
    acts = activation_bytes(model, plan, t)
    buffers = buffer_bytes(model, plan, world, t)
    tokens = plan.sequences_per_micro_batch * plan.cutoff_len
    liger_fused = plan.liger and plan.stage in ("pt", "sft")
    logits = act.logits_bytes(model, tokens, liger_fused=liger_fused, weight_bytes=_trainable_bytes(model, plan),
                              logits_dtype_bytes=precision(model, plan).matmul_bytes)
    if plan.stage in ("dpo", "kto") and plan.uses_ref_model:
        # the reference forward runs after the policy forward (LF dpo/trainer.py get_batch_loss_metrics)
        # while the policy's saved fp32 log-softmax (4·T·V) is live: + a second logits transient
        logits = act.LogitsBytes(logits.forward + 4 * tokens * model.vocab, logits.backward_start)
    # gradients already accumulated from earlier micro-batches are live in the forward and backward
    held_grads = grads if (plan.gradient_accumulation_steps > 1 or plan.zero_stage >= 2) else 0
    lm_head_grad = (_trainable_bytes(model, plan) * model.vocab * model.hidden
                    if plan.finetuning_type == "full" and plan.zero_stage < 2 else 0)

    base = weights + optim + buffers.persistent
    phases: dict[str, dict[str, int]] = {
        "forward": {"weights": weights, "optimizer": optim, "gradients": held_grads,
                    "activations": acts.saved + acts.autocast_cache, "logits": logits.forward,
                    "buffers": buffers.persistent + buffers.gathered},
        "backward start": {"weights": weights, "optimizer": optim, "gradients": held_grads,
                           "activations": acts.saved + (0 if acts.working else acts.autocast_cache),
                           "logits": logits.backward_start,
                           "buffers": buffers.persistent + max(buffers.gathered, buffers.turnaround)},
        "backward": _backward_phase(weights, optim, grads, held_grads, lm_head_grad, acts, t, model, plan,
                                    buffers.persistent + buffers.gathered, _tied_embedding_transient(model, plan)),
        "optimizer step": {"weights": weights, "optimizer": optim + _optimizer_step_temp(model, plan, t),
                           "gradients": grads, "activations": 0, "logits": 0,
                           "buffers": buffers.persistent + buffers.step},
    }
    load = _load_transient(model, plan, t)
    if load > base:
        phases["model load"] = {"weights": load, "optimizer": 0, "gradients": 0, "activations": 0, "logits": 0,
                                "buffers": 0}
    totals = {name: sum(parts.values()) for name, parts in phases.items()}
    peak_phase = max(totals, key=lambda name: totals[name])
    allocated = totals[peak_phase]
    setup = setup_class(world_size=world.world_size, zero_stage=plan.zero_stage, finetuning_type=plan.finetuning_type,
                        quantized=plan.quantization_bit is not None or model.quantization is not None)
    components = {name: phases[peak_phase].get(name, 0) for name in COMPONENTS}
    states = components["weights"] + components["gradients"] + components["optimizer"]
    device = runtime(allocated, fixed_shapes=plan.packing, world_size=world.world_size, setup=setup,
                     states_bytes=states)
    return Estimate(
        components=components, allocated_bytes=allocated, reserved_bytes=device.reserved_bytes,
        peak_bytes=device.peak_bytes, peak_phase=peak_phase, phases=totals, overhead_bytes=device.overhead_bytes,
        trainable_params=t.params, peak_range_bytes=(device.low_bytes, device.high_bytes),
        band=device.band.describe(), assumptions=_assumptions(model, plan, world, t),
    )


def _tied_embedding_transient(model: ModelSpec, plan: TrainingPlan) -> int:
    """A tied, trainable embedding gets its gradient twice: lm_head's first, then embedding_dense_backward's
    V×h at the very end of backward, accumulated into it — the oracle traces 2 × V·h × gradient bytes live
    on top of all other gradients there (fake-CPU kernels; a CUDA kernel may need only one)."""
    if not model.tie_embeddings or not _embeddings_train(plan) or plan.zero_stage >= 2:
        return 0
    return 2 * model.vocab * model.hidden * _trainable_bytes(model, plan)


def _backward_phase(weights: int, optim: int, grads: int, held: int, lm_head_grad: int, acts: ActivationBytes,
                    t: Trainable, model: ModelSpec, plan: TrainingPlan, buffers: int,
                    tied_transient: int = 0) -> dict[str, int]:
    """During backward, saved activations are freed layer by layer while new gradients appear: both change
    linearly, so the peak is at one end — just after the lm_head gradient (all activations still saved) or
    at the first layer (all gradients but that layer's) — plus one layer's recomputation with checkpointing."""
    new_grads = grads - held
    layer_grads = new_grads // max(1, t.trained_layers) if plan.gradient_checkpointing else 0
    at_start = acts.saved + min(lm_head_grad, new_grads) + acts.working
    at_end = max(new_grads - layer_grads + acts.working, new_grads + tied_transient)
    if at_start >= at_end:
        gradients, activations = held + min(lm_head_grad, new_grads), acts.saved + acts.working
    elif new_grads - layer_grads + acts.working > new_grads + tied_transient:
        gradients, activations = held + new_grads - layer_grads, acts.working
    else:
        gradients, activations = held + new_grads + tied_transient, 0
    return {"weights": weights, "optimizer": optim, "gradients": gradients, "activations": activations,
            "logits": 0, "buffers": buffers}


def _optimizer_step_temp(model: ModelSpec, plan: TrainingPlan, t: Trainable) -> int:
    """torch AdamW: fused keeps no temporaries; foreach copies exp_avg_sq for _foreach_sqrt (trace.md §4);
    single-tensor holds temporaries of the largest parameter."""
    if plan.deepspeed is not None or plan.eight_bit_optimizer:
        return 0
    state = _trainable_bytes(model, plan)
    if plan.optim in ("adamw_torch", "adamw_hf"):
        return state * t.params  # foreach implementation (the default for plain torch.optim.AdamW on CUDA)
    return 0


def _load_transient(model: ModelSpec, plan: TrainingPlan, t: Trainable) -> int:
    """Without ZeRO-3 every rank loads the whole model onto its GPU and LF casts trainable params to fp32
    there (model/adapter.py; issue #3510: "14B*4 = 56G")."""
    if plan.zero_stage == 3 or not plan.upcast_trainable_to_fp32:
        return 0
    base_trainable = t.params - t.adapter_params
    return int(4 * t.params + _frozen_base_bytes(model, plan, model.total_params - base_trainable,
                                                 plan.quantization_bit))


def _assumptions(model: ModelSpec, plan: TrainingPlan, world: World, t: Trainable) -> tuple[str, ...]:
    notes = list(plan.assumptions)
    load = _load_bytes(model, plan)
    notes.append(f"weights loaded in {model.checkpoint_dtype} "
                 f"({load} B/param; LLaMA-Factory ≥ 0.9.4 loads the checkpoint's dtype)")
    if plan.pure_bf16 and load == 4:
        notes.append("pure_bf16 with a float32 checkpoint: LLaMA-Factory ≥ 0.9.4 keeps the checkpoint's float32 "
                     "weights, so this trains in fp32 (convert the checkpoint to bf16 to get pure bf16)")
    if plan.upcast_trainable_to_fp32 and not _deepspeed_half(plan):
        notes.append("trainable parameters upcast to fp32 (LLaMA-Factory init_adapter)")
    notes.append(f"sequence length {plan.cutoff_len} (cutoff_len: the longest batch, worst case) × "
                 f"{plan.sequences_per_micro_batch} sequences per micro-batch")
    if plan.stage in ("rm", "dpo"):
        notes.append("pairwise stage: chosen + rejected sequences double the micro-batch")
    if plan.ref_model_is_extra_copy:
        notes.append("a frozen reference model copy on each GPU" if plan.zero_stage < 3
                     else "a frozen reference model, sharded by ZeRO-3")
    if plan.evaluates and plan.per_device_eval_batch_size > plan.per_device_train_batch_size:
        notes.append(f"evaluation batch {plan.per_device_eval_batch_size} > training batch: not in this peak")
    if world.world_size > 1:
        notes.append(f"{world.world_size} GPUs ({world.nodes} node(s) × {world.gpus_per_node})")
    notes.append(f"trainable parameters: {t.params:,} of {model.total_params:,}")
    if plan.stage == "ppo":
        notes.append("PPO generation (KV cache, value head) is approximated by the SFT step")
    return tuple(notes)

