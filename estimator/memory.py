"""Per-GPU memory of a (ModelSpec, TrainingPlan, World): components, phases, and the three peaks.

peak = max over phases (model load, end of forward, start of backward, backward, optimizer step, evaluation)
of what is live then. Components are reported as they stand at the peak phase, so they add up to allocated.
Sources: research/llamafactory.md (LLaMA-Factory dtype rules), research/estimators.md §2 (DeepSpeed
buffers), research/trace.md (traced HF training steps), /work/notes/methods.md (quantization, optimizers,
OFT, Unsloth, KTransformers, vision, prediction), estimator/fsdp.py (FSDP).

A part of the setup the estimator does not model is listed in `Estimate.not_modelled`; the numbers are then
partial and no verdict is given (rules/verdicts.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from estimator import activations as act
from estimator import fsdp as fsdp_memory
from estimator import quantization as quant
from estimator.constants import CUBLAS_WORKSPACE_BYTES, DTYPE_BYTES
from estimator.errors import InputError, RejectedConfig
from estimator.llamafactory_rules import CheckpointFacts, checkpoint_rejections
from estimator.model import ModelSpec
from estimator.plan import TrainingPlan
from estimator.runtime import runtime, setup_class
from estimator.trainable import Trainable, decoder_linears, targeted_linears, trainable
from estimator.vision import vision_activation_bytes, vision_patches

COMPONENTS = ("weights", "gradients", "optimizer", "activations", "logits", "buffers")
UNSLOTH_CE_CHUNK_BYTES = 4 << 30  # unsloth_zoo fused_losses/cross_entropy_loss.py:140-175: target ≤ 4 GiB


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
    not_modelled: tuple[str, ...] = ()  # parts of this setup the estimator does not model (then no verdict)

    @property
    def modelled(self) -> bool:
        """False when part of the setup is not modelled: the numbers are partial and no verdict is given."""
        return not self.not_modelled

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
                "peak_phase": self.peak_phase, "phases": dict(self.phases), "modelled": self.modelled,
                "not_modelled": list(self.not_modelled)}


# --- precision --------------------------------------------------------------------------------------


def _load_bytes(model: ModelSpec, plan: TrainingPlan) -> int:
    """LF ≥ 0.9.4 loads with torch_dtype="auto" (model/loader.py): the checkpoint's dtype, whatever the
    precision flags say — so pure_bf16 on a float32 checkpoint trains in float32 (traced by the oracle).
    Unsloth loads in the compute dtype (unsloth.py:36-48); a prediction run in infer_dtype (patcher.py:322-325)."""
    if plan.use_unsloth and plan.task == "train":
        return 2  # compute dtype: bf16/fp16, or infer_optim_dtype's bf16 on Ampere+ (extras/misc.py:241-248)
    if plan.task != "train":
        infer = str(plan.raw.get("infer_dtype") or "auto").lower()
        if infer != "auto":
            return DTYPE_BYTES.get(infer, 2)
    return DTYPE_BYTES.get(model.checkpoint_dtype, 4)


def _deepspeed_half(plan: TrainingPlan) -> bool:
    """DeepSpeed bf16/fp16 engines cast the module to half precision (engine._configure_distributed_model)."""
    ds = plan.deepspeed
    return ds is not None and bool(ds.bf16 or ds.fp16)


def _fsdp_half(plan: TrainingPlan) -> bool:
    """FSDP with mixed precision gathers parameters in the compute dtype (accelerate sets param_dtype from
    mixed_precision, which HF TrainingArguments takes from bf16/fp16 or the launcher: training_args.py:1614)."""
    return plan.fsdp is not None and plan.mixed_precision != "no"


def _trainable_bytes(model: ModelSpec, plan: TrainingPlan) -> int:
    """Bytes per trainable parameter as it sits on the GPU (also the gradient and torch-optimizer state dtype)."""
    if _deepspeed_half(plan):
        return 2
    if plan.stored_trainable_fp32:
        return 4  # model/adapter.py: "Upcasting trainable params to float32." (or accelerate's FSDP upcast)
    return _load_bytes(model, plan)


def _embeddings_train(plan: TrainingPlan) -> bool:
    return plan.finetuning_type == "full" or any(
        m in ("embed_tokens", "wte", "tok_embeddings") for m in plan.freeze_extra_modules)


def precision(model: ModelSpec, plan: TrainingPlan) -> act.Precision:
    """Matmuls produce half precision under HF autocast (bf16/fp16 flags) or with half weights; the residual
    stream has the embedding's dtype (fp32 when LF upcast a trainable embedding; the gathered bf16 copy under
    FSDP mixed precision)."""
    half_weights = _deepspeed_half(plan) or _fsdp_half(plan) or _load_bytes(model, plan) == 2
    if plan.finetuning_type == "full" and plan.upcast_trainable_to_fp32 and not plan.use_badam \
            and not (_deepspeed_half(plan) or _fsdp_half(plan)):
        half_weights = False  # every weight was cast to fp32: without autocast the matmuls run in fp32
    matmul = 2 if plan.bf16 or plan.fp16 or half_weights else 4
    if _deepspeed_half(plan) or _fsdp_half(plan):
        residual = 2
    elif _embeddings_train(plan) and plan.upcast_trainable_to_fp32:
        residual = 4
    else:
        residual = _load_bytes(model, plan)
    return act.Precision(residual_bytes=residual, matmul_bytes=min(matmul, residual))


# --- which model is on the GPU ---------------------------------------------------------------------------


def gpu_model(model: ModelSpec, plan: TrainingPlan) -> ModelSpec:
    """KTransformers keeps the routed experts (and their LoRA) on the CPU, all but kt_num_gpu_experts per layer
    (kt-kernel sft/wrapper.py:180-240); the router, shared experts, attention, embeddings stay on the GPU and
    the MoE layer's expert activations are CPU tensors (methods.md §3)."""
    if not plan.use_kt or not model.experts:
        return model
    kept = min(plan.kt_num_gpu_experts, model.experts)
    parts = dict(model.parts)
    parts["experts"] = model.parts.get("experts", 0) * kept // model.experts
    return replace(model, parts=parts, experts_per_token=min(model.experts_per_token, kept))


def weight_format(model: ModelSpec, plan: TrainingPlan, bits: int | None = None,
                  own_bits: bool = False) -> quant.QuantFormat | None:
    """The storage of the frozen linears of the policy (or, with own_bits, of a model quantized with `bits`)."""
    chosen = bits if own_bits else plan.quantization_bit
    return quant.weight_format(model, chosen, plan.quantization_method, plan.double_quantization,
                               unsloth=plan.use_unsloth)


def _frozen_base_bytes(model: ModelSpec, plan: TrainingPlan, frozen: int, fmt: quant.QuantFormat | None,
                       load_bytes: int | None = None) -> float:
    """Frozen parameters: packed linears in their format, everything else in the load dtype."""
    load = _load_bytes(model, plan) if load_bytes is None else load_bytes
    if fmt is None:
        return float(frozen * load)
    tf = plan.versions.transformers
    packed = min(frozen, quant.packed_params(model, tf))
    return packed * fmt.bytes_per_param + fmt.bytes_per_linear * quant.packed_linears(model, tf) \
        + (frozen - packed) * load


def _replicated_quant_state(model: ModelSpec, plan: TrainingPlan, fmt: quant.QuantFormat | None) -> int:
    """bitsandbytes' quant_state (absmax) is a Python attribute, not a parameter: ZeRO-3 and FSDP shard the
    packed weights but every rank keeps the whole state (methods.md §1.5)."""
    if fmt is None or not fmt.replicated_bytes_per_param:
        return 0
    return int(fmt.replicated_bytes_per_param * quant.packed_params(model, plan.versions.transformers))


# --- model states ------------------------------------------------------------------------------------


def _extra_model_bytes(model: ModelSpec, plan: TrainingPlan, world: World) -> int:
    """Frozen reference model (trainer_utils.py create_ref_model): with `ref_model` it is loaded with
    ref_model_quantization_bit (default none, even for a QLoRA policy); without, a copy built from the policy's
    own arguments (same quantization_bit). TRL's prepare_deepspeed shards it under ZeRO-3 and casts it to half
    under ZeRO-0/1/2; FSDP shards it (dpo/trainer.py:100-106)."""
    if not plan.ref_model_is_extra_copy:
        return 0
    if plan.ref_model is not None:
        fmt = weight_format(model, plan, plan.ref_model_quantization_bit, own_bits=True)
    else:
        fmt = weight_format(model, plan)
    load = 2 if _deepspeed_half(plan) else _load_bytes(model, plan)
    one = _frozen_base_bytes(model, plan, model.total_params, fmt, load)
    shards = world.world_size if plan.zero_stage == 3 or (plan.fsdp is not None and plan.fsdp.shards_states) else 1
    if plan.fsdp is not None and plan.fsdp.hybrid:
        shards = world.gpus_per_node
    return int(one / shards)


def weights_bytes(model: ModelSpec, plan: TrainingPlan, world: World, t: Trainable) -> tuple[int, int]:
    """(policy weights, extra reference model weights) per GPU in steady state."""
    n = world.world_size
    fmt = weight_format(model, plan)
    base_trainable = t.params - t.adapter_params
    extra = _extra_model_bytes(model, plan, world)
    if plan.fsdp is not None:
        stored = _frozen_base_bytes(model, plan, t.frozen_params, fmt) + _trainable_bytes(model, plan) * t.params
        return fsdp_memory.sharded_weights(model, plan, world, stored, _replicated_quant_state(model, plan, fmt)), \
            extra
    if plan.zero_stage == 3:  # partitioned low-precision params (lp_param_buffer, stage3.py): 2·P/N
        lp = 2 if _deepspeed_half(plan) else 4
        if plan.deepspeed and plan.deepspeed.offload_param:
            return 0, extra
        if fmt is None:
            return lp * model.total_params // n, extra
        # bnb 4-bit under ZeRO-3: zero.Init partitions every parameter, Params4bit as bf16 storage of packed
        # bytes (partition_parameters.py:1117-1123); the absmax state stays whole on every rank
        frozen = _frozen_base_bytes(model, plan, t.frozen_params, fmt, lp)
        return int((frozen + lp * t.params) / n) + _replicated_quant_state(model, plan, fmt), extra
    if _deepspeed_half(plan):  # ZeRO-0/1/2: module.half()/bfloat16() — integer (and bf16-stored) packs untouched
        return int(_frozen_base_bytes(model, plan, t.frozen_params, fmt, 2) + 2 * t.params), extra
    policy = int(base_trainable * _trainable_bytes(model, plan)
                 + _frozen_base_bytes(model, plan, t.frozen_params, fmt)
                 + t.adapter_params * _trainable_bytes(model, plan))
    return policy, extra


def _largest_trainable_tensor(model: ModelSpec, plan: TrainingPlan) -> int:
    """Elements of the largest trainable parameter: the embedding or the output layer when they train."""
    widest = max(lin.n_in * lin.n_out for lin in targeted_linears(model, plan))
    if _embeddings_train(plan):
        widest = max(widest, model.vocab * model.hidden)
    return widest


def gradient_bytes(model: ModelSpec, plan: TrainingPlan, world: World, t: Trainable) -> int:
    n = world.world_size
    grad = _trainable_bytes(model, plan)
    if (plan.use_galore and plan.galore_layerwise) or (plan.use_apollo and plan.apollo_layerwise):
        # one optimizer per parameter stepped and zeroed in its post-accumulate-grad hook (trainer_utils.py
        # 248-285, 335-360): only the gradient being produced is live — at most the largest trainable tensor
        return grad * _largest_trainable_tensor(model, plan)
    if plan.fsdp is not None:
        return fsdp_memory.sharded_gradients(plan, world, t, grad)
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
        states = _projected_states(model, plan, t)
    elif plan.use_adam_mini:
        states = _adam_mini_states(model, plan, t)
    elif plan.use_muon:
        states = _muon_states(model, plan, t)
    else:
        states = _state_bytes_per_param(plan, _trainable_bytes(model, plan)) * t.params
    if plan.fsdp is not None:
        return fsdp_memory.sharded_optimizer(plan, world, states)
    return int(states)


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
    each targeted matrix (r × max side) plus the projector (min side × r, in the gradient's dtype: galore-torch
    galore_projector.py:12-30, apollo-torch random_projector.py:97-136); other params plain Adam."""
    rank = plan.galore_rank if plan.use_galore else plan.apollo_rank
    param_bytes = _trainable_bytes(model, plan)
    state = _state_bytes_per_param(plan, param_bytes)
    target = str(plan.raw.get("galore_target" if plan.use_galore else "apollo_target") or "all").lower()
    wanted = {name.strip() for name in target.split(",")}
    projected_params = 0
    total = 0.0
    for lin in targeted_linears(model, plan):
        if "all" not in wanted and not _galore_match(lin.name, wanted):
            continue
        projected_params += lin.count * lin.n_in * lin.n_out
        total += lin.count * (state * rank * max(lin.n_in, lin.n_out) + param_bytes * rank * min(lin.n_in,
                                                                                                lin.n_out))
    rest = max(0, t.params - projected_params)
    return total + state * rest


def _galore_match(name: str, wanted: set[str]) -> bool:
    """galore_target names modules by substring (trainer_utils.py:205-216): mlp / self_attn / q_proj ..."""
    groups = {"mlp": {"gate", "up", "down"}, "self_attn": {"q", "k", "v", "o"}, "attn": {"q", "k", "v", "o"}}
    return any(name in groups.get(item, set()) or item.removesuffix("_proj") == name for item in wanted)


def _adam_mini_states(model: ModelSpec, plan: TrainingPlan, t: Trainable) -> float:
    """Adam-mini 1.1.1 (adam_mini.py:230-400): a full first moment m, and one second-moment value per output
    row (embeddings, lm_head, v/o, MLP), per head (q/k) or per tensor (norms) — fp32 scalars."""
    param_bytes = _trainable_bytes(model, plan)
    rows = sum(lin.count * lin.n_out for lin in targeted_linears(model, plan))
    if _embeddings_train(plan):
        rows += 2 * model.vocab
    return param_bytes * t.params + 4 * rows


def _muon_states(model: ModelSpec, plan: TrainingPlan, t: Trainable) -> float:
    """Muon (LF third_party/muon/muon.py:176-177, 209-210): one momentum buffer for trainable 2-D weights whose
    name has no embed/lm_head; AdamW's two states for the rest (embeddings, lm_head, norms, biases, and the
    3-D fused experts of transformers 5)."""
    param_bytes = _trainable_bytes(model, plan)
    if plan.finetuning_type in ("lora", "oft"):
        muon = t.adapter_params
    else:
        muon = sum(lin.count * lin.n_in * lin.n_out for lin in targeted_linears(model, plan))
        muon = min(muon * t.trained_layers // max(1, model.layers), t.params)
    return param_bytes * muon + 2 * param_bytes * max(0, t.params - muon)


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
    if lora and plan.lora_dropout > 0 and plan.finetuning_type == "lora":
        # peft lora/layer.py: lora_A(dropout(x)) keeps the dropout output and its mask per distinct input
        per_token_dropout = _dropout_bytes(model, plan, p)
        per_token += per_token_dropout * (1 if plan.gradient_checkpointing else model.layers)
        full_layer += per_token_dropout
    saved = tokens * (per_token + final_norm)
    unsloth_offload = plan.use_unsloth and plan.cutoff_len >= 512
    if (plan.unsloth_gc and plan.gradient_checkpointing) or unsloth_offload:
        # checkpointed hidden states go to the CPU: LF's own (checkpointing.py:63-97) keeps none on the GPU;
        # Unsloth (unsloth_zoo gradient_checkpointing.py:705-860) keeps the last layer's input and up to two
        # staging buffers of one hidden state each
        kept = 3 * tokens * checkpoint_input if unsloth_offload else 0
        saved = tokens * final_norm + kept
    working = 0
    if plan.gradient_checkpointing or plan.use_unsloth:
        # recomputing one layer rebuilds its saved tensors; its backward adds gradient temporaries of
        # the widest tensors (≈ two of the MLP width)
        working = tokens * (full_layer + 2 * p.matmul_bytes * max(model.intermediate, model.moe_intermediate))
    if plan.attention == "eager" or (plan.neat_packing and plan.attention != "fa2"):
        saved += act.eager_mask_bytes(sequences, seq_len, p)
    elif plan.attention == "sdpa":
        saved += act.sliding_window_mask_bytes(model, sequences, seq_len)
    if plan.router_logits and model.experts:
        saved += 4 * tokens * model.experts * model.moe_layers  # output_router_logits (fp32 softmax inputs)
    if (plan.bf16 or plan.fp16) and _load_bytes(model, plan) == 4 and lora and not plan.gradient_checkpointing:
        # a frozen fp32 linear under autocast runs on a bf16 cast of its weight, which its backward keeps
        # (frozen weights are not in autocast's cache): 2 bytes per frozen decoder weight (oracle-traced)
        saved += 2 * sum(lin.count * lin.n_in * lin.n_out for lin in decoder_linears(model))
    if (plan.bf16 or plan.fp16) and _load_bytes(model, plan) == 4 and (lora or plan.finetuning_type == "freeze"):
        # autocast casts the frozen fp32 lm_head for the logits matmul; its backward (grad of the hidden
        # states) keeps that bf16 copy (frozen weights are not in autocast's cache, so it is saved instead)
        saved += 2 * model.vocab * model.hidden
    fmt = weight_format(model, plan)
    if fmt is not None and fmt.saves_dequantized:
        # gptqmodel's torch kernel dequantizes and matmuls with plain autograd (qlinear/torch.py:368-372): the
        # bf16 weight is saved for backward — every packed layer without checkpointing, one layer with it
        packed_layer = 2 * quant.packed_params(model, plan.versions.transformers) // max(1, model.layers)
        if plan.gradient_checkpointing:
            working += packed_layer
        else:
            saved += packed_layer * model.layers
    cache = 0
    if (plan.bf16 or plan.fp16) and _trainable_bytes(model, plan) == 4 and not lora and not _fsdp_half(plan):
        # autocast caches a bf16 copy of every trainable fp32 weight a matmul used until the autocast region
        # exits (torch autocast cached_cast: leaf tensors that require grad); the lm_head only when it trains
        linears = sum(lin.count * lin.n_in * lin.n_out for lin in decoder_linears(model))
        cache = 2 * linears * t.trained_layers // max(1, model.layers)
        if plan.finetuning_type == "full":
            cache += 2 * model.vocab * model.hidden
    vision = vision_activation_bytes(model, plan, p)
    return ActivationBytes(saved=saved + vision.saved, working=max(working, vision.working), autocast_cache=cache)


def _dropout_bytes(model: ModelSpec, plan: TrainingPlan, p: act.Precision) -> int:
    """Per token and layer: peft applies one nn.Dropout per adapter, so each targeted linear keeps a dropped copy
    of its input (adapter dtype, fp32 after LF's upcast) and a bool mask (torch native_dropout)."""
    adapter_dtype = 4 if plan.upcast_trainable_to_fp32 and not _deepspeed_half(plan) else p.matmul_bytes
    per_layer = sum(lin.n_in for lin in decoder_linears(model))
    return per_layer * (adapter_dtype + 1)


# --- buffers -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BufferBytes:
    persistent: int  # DDP buckets, ZeRO reduce buckets, ZeRO-3 fp32 gradient buffer, cuBLAS workspace
    gathered: int  # ZeRO-3 / FSDP parameters gathered for the current unit + prefetch (forward / backward)
    step: int  # transient at the optimizer step (ZeRO-1/2 fp32 gradient partition, allgather bucket)
    turnaround: int = 0  # parameters kept gathered across the forward → backward turn
    backward: int = 0  # extra during backward only (FSDP reduce-scatter buffers)
    fsdp: fsdp_memory.FsdpBuffers | None = None  # FSDP's unsharded copies at each point of the backward

    @property
    def forward(self) -> int:
        return self.gathered


def buffer_bytes(model: ModelSpec, plan: TrainingPlan, world: World, t: Trainable) -> BufferBytes:
    n = world.world_size
    ds = plan.deepspeed
    persistent = CUBLAS_WORKSPACE_BYTES
    gathered = step = 0
    fmt = weight_format(model, plan)
    dequant = 2 * quant.largest_linear(model) if fmt is not None else 0  # the dequantized weight of one matmul
    if plan.fsdp is not None:
        found = fsdp_memory.buffers(model, plan, world, t, fmt, _trainable_bytes(model, plan))
        return BufferBytes(persistent, found.forward + dequant, 0, found.turnaround + dequant, fsdp=found)
    if ds is None:
        if n > 1:  # torch DDP Reducer: flat bucket copies of all gradients (gradient_as_bucket_view=False)
            persistent += _trainable_bytes(model, plan) * t.params
        return BufferBytes(persistent, dequant, 0)
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
        gathered = half * (largest_unit + ds.prefetch_bucket(model.hidden)) + dequant
        # partitioned_param_coordinator.py: a module's params are not released when they are reused within
        # stage3_max_reuse_distance, as the last layers and lm_head are at the forward → backward turn;
        # stage3_max_live_parameters bounds them (research/estimators.md §2.2, derived from the code)
        turnaround = half * min(ds.max_live_parameters, model.total_params)
        return BufferBytes(persistent, gathered, step, turnaround)
    elif n > 1:  # ZeRO-0: DeepSpeed's own allreduce buckets
        persistent += half * ds.reduce_bucket(model.hidden)
    return BufferBytes(persistent, dequant, step)


# --- phases ----------------------------------------------------------------------------------------------


def check_model(model: ModelSpec, plan: TrainingPlan) -> None:
    """RejectedConfig for what LLaMA-Factory refuses once it sees the checkpoint (a pre-quantized model under
    ZeRO-3/FSDP, with full/freeze tuning, with DoRA)."""
    method = model.quantization_config.get("quant_method") if model.quantization_config else None
    found = checkpoint_rejections(plan.raw, CheckpointFacts(str(method) if method else None), plan.zero_stage,
                                  version=plan.versions.llamafactory, fsdp_loading=plan.fsdp_loading)
    if found:
        first = found[0]
        raise RejectedConfig(f"LLaMA-Factory rejects this config: {first.text}", file=plan.path, key=first.key,
                             line=plan.line_of(first.key))


def estimate(model: ModelSpec, plan: TrainingPlan, world: World) -> Estimate:
    """The per-GPU peak of `plan` training `model` on `world`."""
    on_gpu = gpu_model(model, plan)
    if plan.task in ("predict", "eval", "none"):
        return _inference_estimate(model, on_gpu, plan, world)
    t = trainable(on_gpu, plan)
    policy_w, extra_w = weights_bytes(on_gpu, plan, world, t)
    weights = policy_w + extra_w
    grads = gradient_bytes(on_gpu, plan, world, t)
    optim = optimizer_bytes(on_gpu, plan, world, t)
    acts = activation_bytes(on_gpu, plan, t)
    buffers = buffer_bytes(on_gpu, plan, world, t)
    tokens = plan.sequences_per_micro_batch * plan.cutoff_len
    logits = _logits(on_gpu, plan, tokens)
    # gradients already accumulated from earlier micro-batches are live in the forward and backward; ZeRO-2/3
    # preallocates its gradient partitions, FSDP allocates each unit's shard as its reduce-scatter lands
    sharded_grads = plan.zero_stage >= 2
    held_grads = grads if (plan.gradient_accumulation_steps > 1 or sharded_grads) else 0
    grad_shards = fsdp_memory.shard_group(plan, world) if plan.fsdp is not None else 1
    lm_head_grad = (_trainable_bytes(on_gpu, plan) * on_gpu.vocab * on_gpu.hidden // grad_shards
                    if plan.finetuning_type == "full" and not sharded_grads else 0)

    base = weights + optim + buffers.persistent
    phases: dict[str, dict[str, int]] = {
        "forward": {"weights": weights, "optimizer": optim, "gradients": held_grads,
                    "activations": acts.saved + acts.autocast_cache, "logits": logits.forward,
                    "buffers": buffers.persistent + buffers.forward},
        "backward start": {"weights": weights, "optimizer": optim, "gradients": held_grads,
                           "activations": acts.saved + (0 if acts.working else acts.autocast_cache),
                           "logits": logits.backward_start,
                           "buffers": buffers.persistent + max(buffers.gathered, buffers.turnaround)},
        "backward": _backward_phase(weights, optim, grads, held_grads, lm_head_grad, acts, t, on_gpu, plan,
                                    buffers.persistent + buffers.gathered + buffers.backward,
                                    _tied_embedding_transient(on_gpu, plan)) if buffers.fsdp is None else
        _fsdp_backward_phase(weights, optim, grads, held_grads, acts, buffers, _trainable_bytes(on_gpu, plan),
                             fsdp_memory.shard_group(plan, world)),
        "optimizer step": {"weights": weights, "optimizer": optim + _optimizer_step_temp(on_gpu, plan, t, world),
                           "gradients": grads, "activations": 0, "logits": 0,
                           "buffers": buffers.persistent + buffers.step},
    }
    if plan.evaluates and plan.per_device_eval_batch_size > 0:
        # evaluation during training (HF evaluation_loop after an optimizer step, gradients freed by
        # zero_grad(set_to_none=True)): a no-grad forward of the eval batch and its loss
        eval_tokens = plan.per_device_eval_batch_size * (2 if plan.stage in ("rm", "dpo") else 1) * plan.cutoff_len
        phases["evaluation"] = {"weights": weights, "optimizer": optim, "gradients": grads if sharded_grads else 0,
                                "activations": _forward_transient(on_gpu, plan, eval_tokens),
                                "logits": act.logits_bytes(on_gpu, eval_tokens, liger_fused=False, weight_bytes=0,
                                                           logits_dtype_bytes=precision(on_gpu, plan).matmul_bytes
                                                           ).forward,
                                "buffers": buffers.persistent + buffers.gathered}
    load = _load_transient(on_gpu, plan, world, t)
    if load > base:
        phases["model load"] = {"weights": load, "optimizer": 0, "gradients": 0, "activations": 0, "logits": 0,
                                "buffers": 0}
    return _finish(on_gpu, plan, world, phases, t.params, _assumptions(model, plan, world, t))


def _finish(model: ModelSpec, plan: TrainingPlan, world: World, phases: dict[str, dict[str, int]],
            trainable_params: int, assumptions: tuple[str, ...]) -> Estimate:
    totals = {name: sum(parts.values()) for name, parts in phases.items()}
    peak_phase = max(totals, key=lambda name: totals[name])
    allocated = totals[peak_phase]
    setup = setup_of(model, plan, world)
    components = {name: phases[peak_phase].get(name, 0) for name in COMPONENTS}
    states = components["weights"] + components["gradients"] + components["optimizer"]
    device = runtime(allocated, fixed_shapes=plan.packing, world_size=world.world_size, setup=setup,
                     states_bytes=states)
    return Estimate(
        components=components, allocated_bytes=allocated, reserved_bytes=device.reserved_bytes,
        peak_bytes=device.peak_bytes, peak_phase=peak_phase, phases=totals, overhead_bytes=device.overhead_bytes,
        trainable_params=trainable_params, peak_range_bytes=(device.low_bytes, device.high_bytes),
        band=device.band.describe(), assumptions=assumptions, not_modelled=not_modelled(model, plan, world),
    )


def setup_of(model: ModelSpec, plan: TrainingPlan, world: World) -> str:
    """The kind of setup the error band is kept for (estimator.runtime.setup_class; FSDP runs on their own)."""
    quantized = weight_format(model, plan) is not None
    if plan.fsdp is not None and world.world_size > 1:
        return "multi/fsdp"
    return setup_class(world_size=world.world_size, zero_stage=plan.zero_stage, finetuning_type=plan.finetuning_type,
                       quantized=quantized)


def not_modelled(model: ModelSpec, plan: TrainingPlan, world: World) -> tuple[str, ...]:
    """The plan's unmodelled parts, and those that depend on the model or the GPU count."""
    found = list(plan.not_modelled)
    problem = quant.unsupported(model, plan.versions.transformers)
    if problem:
        found.append(problem)
    if (plan.quantization_bit is not None or model.quantization_config) and model.parts.get("other"):
        found.append("quantized weights of a model counted from its safetensors header (which linears are packed "
                     "is unknown)")
    if model.vision_params and model.vision is None:
        found.append(f"the vision tower of '{model.model_id}' (vram-check cannot read its vision_config shapes)")
    if plan.use_kt and not model.experts:
        found.append("use_kt on a dense model: KTransformers offloads MoE experts only")
    if plan.fsdp is not None:
        found += fsdp_memory.not_modelled(model, plan, world)
    if plan.use_unsloth and model.experts:
        found.append("Unsloth on an MoE model (its MoE kernels are not modelled)")
    return tuple(dict.fromkeys(found))


def _logits(model: ModelSpec, plan: TrainingPlan, tokens: int) -> act.LogitsBytes:
    liger_fused = plan.liger and plan.stage in ("pt", "sft")
    if plan.use_unsloth and plan.stage in ("pt", "sft"):
        # unsloth_fused_ce_loss (unsloth_zoo fused_losses/cross_entropy_loss.py:140-234): lm_head + CE in
        # n_chunks = 4·ceil(4·T·V / target / 4) chunks of the fp32 logits, target ≤ 4 GiB; each chunk's logits,
        # their gradient and a softmax temporary are live (3 chunks, inferred), plus grad_inputs (T·h, compute
        # dtype) allocated up front
        fp32_logits = 4 * tokens * model.vocab
        chunks = 4 * -(-fp32_logits // (4 * UNSLOTH_CE_CHUNK_BYTES))
        chunk = -(-fp32_logits // chunks)
        grads = 2 * tokens * model.hidden
        return act.LogitsBytes(3 * chunk + grads, grads)
    # Liger allocates a gradient for the output layer's weight only when it trains (fused_linear_cross_entropy.py)
    head_trains = _embeddings_train(plan) or any(m in ("lm_head", "output", "output_layer")
                                                 for m in (*plan.additional_target, *plan.freeze_extra_modules))
    logits = act.logits_bytes(model, tokens, liger_fused=liger_fused,
                              weight_bytes=_trainable_bytes(model, plan) if head_trains else 0,
                              logits_dtype_bytes=precision(model, plan).matmul_bytes)
    if plan.stage in ("dpo", "kto") and plan.uses_ref_model:
        # the reference forward runs after the policy forward (LF dpo/trainer.py get_batch_loss_metrics)
        # while the policy's saved fp32 log-softmax (4·T·V) is live: + a second logits transient
        logits = act.LogitsBytes(logits.forward + 4 * tokens * model.vocab, logits.backward_start)
    if plan.use_eaft_loss and not liger_fused:
        # _eaft_cross_entropy (trainer_utils.py:786-810): source[valid_mask] copies the fp32 logits
        logits = act.LogitsBytes(logits.forward + 4 * tokens * model.vocab, logits.backward_start)
    return logits


def _tied_embedding_transient(model: ModelSpec, plan: TrainingPlan) -> int:
    """A tied, trainable embedding gets its gradient twice: lm_head's first, then embedding_dense_backward's
    V×h at the very end of backward, accumulated into it — the oracle traces 2 × V·h × gradient bytes live
    on top of all other gradients there (fake-CPU kernels; a CUDA kernel may need only one)."""
    if not model.tie_embeddings or not _embeddings_train(plan) or plan.zero_stage >= 2 or plan.fsdp is not None:
        return 0
    return 2 * model.vocab * model.hidden * _trainable_bytes(model, plan)


def _fsdp_backward_phase(weights: int, optim: int, grads: int, held: int, acts: ActivationBytes,
                         buffers: BufferBytes, grad_bytes: int, shards: int) -> dict[str, int]:
    """FSDP's backward peaks inside a decoder layer (its unsharded params and gradients, the prefetched unit,
    the reduce-scatter input, the lm_head gradient waiting for the root, one layer's recomputation) or at the
    root's post-backward at the very end (estimator/fsdp.py); gradient shards land unit by unit."""
    found = buffers.fsdp
    assert found is not None
    new = grads - held

    def landed(missing: int) -> int:
        return held + max(0, new - grad_bytes * missing // shards)

    at_layer = {"weights": weights, "optimizer": optim,
                "gradients": landed(found.missing_at_layer) + found.layer_gradients,
                "activations": acts.working, "logits": 0, "buffers": buffers.persistent + found.layer}
    at_end = {"weights": weights, "optimizer": optim, "gradients": landed(found.missing_at_end) + found.end_gradients,
              "activations": 0, "logits": 0, "buffers": buffers.persistent + found.end}
    return max(at_layer, at_end, key=lambda parts: sum(parts.values()))


def _backward_phase(weights: int, optim: int, grads: int, held: int, lm_head_grad: int, acts: ActivationBytes,
                    t: Trainable, model: ModelSpec, plan: TrainingPlan, buffers: int,
                    tied_transient: int = 0, unsharded_grads: int = 0) -> dict[str, int]:
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
    return {"weights": weights, "optimizer": optim, "gradients": gradients + unsharded_grads,
            "activations": activations, "logits": 0, "buffers": buffers}


def _optimizer_step_temp(model: ModelSpec, plan: TrainingPlan, t: Trainable, world: World) -> int:
    """torch AdamW: fused keeps no temporaries; foreach copies exp_avg_sq for _foreach_sqrt (trace.md §4);
    single-tensor holds temporaries of the largest parameter. Muon's Newton-Schulz iteration works on a bf16
    copy of the largest matrix (X, X·Xᵀ and its square: muon.py:48-76); Adam-mini's grad² and update of the
    largest tensor (adam_mini.py); GaLore's SVD of the largest projected gradient in fp32 (galore_projector.py
    67-84: the fp32 matrix and its U, Vh factors)."""
    if plan.deepspeed is not None or plan.eight_bit_optimizer:
        return 0
    state = _trainable_bytes(model, plan)
    if plan.use_muon and not (plan.use_galore or plan.use_apollo or plan.use_badam or plan.use_adam_mini):
        n = max(lin.n_in * lin.n_out for lin in targeted_linears(model, plan))
        k = min(min(lin.n_in, lin.n_out) for lin in targeted_linears(model, plan)
                if lin.n_in * lin.n_out == n)
        return state * n + 2 * n + 2 * 2 * k * k
    if plan.use_adam_mini and not (plan.use_galore or plan.use_apollo or plan.use_badam):
        return 2 * state * _largest_trainable_tensor(model, plan)
    if plan.use_galore:
        lin = max(targeted_linears(model, plan), key=lambda x: x.n_in * x.n_out)
        k = min(lin.n_in, lin.n_out)
        return 4 * (lin.n_in * lin.n_out + lin.n_in * k + k * lin.n_out)
    if plan.optim in ("adamw_torch", "adamw_hf"):
        # foreach implementation (the default for plain torch.optim.AdamW on CUDA): a copy of exp_avg_sq —
        # of the local shards under FSDP, on the CPU with FSDP offload
        if plan.fsdp is not None:
            return 0 if plan.fsdp.offload_params else state * t.params // fsdp_memory.shard_group(plan, world)
        return state * t.params
    return 0


def load_transient_bytes(model: ModelSpec, plan: TrainingPlan, world: World) -> int:
    """GPU memory while the model loads and the launcher wraps it (reported as a phase only when it is the
    peak)."""
    on_gpu = gpu_model(model, plan)
    return _load_transient(on_gpu, plan, world, trainable(on_gpu, plan))


def _load_transient(model: ModelSpec, plan: TrainingPlan, world: World, t: Trainable) -> int:
    """Without ZeRO-3 every rank loads the whole model onto its GPU and LF casts trainable params to fp32
    there (model/adapter.py; issue #3510: "14B*4 = 56G"). A quantized model skips zero.Init under ZeRO-3
    (modeling_utils.py:1435 needs_zero3_init) and bitsandbytes places it on the current GPU
    (quantizer_bnb_4bit.py:94-97): every rank holds the whole packed model before DeepSpeed partitions it."""
    fmt = weight_format(model, plan)
    if plan.fsdp is not None:
        stored_trainable = _trainable_bytes(model, plan)
        stored = _frozen_base_bytes(model, plan, t.frozen_params, fmt) + stored_trainable * t.params
        base_trainable = t.params - t.adapter_params
        whole = stored_trainable * t.params + _frozen_base_bytes(model, plan, model.total_params - base_trainable,
                                                                 fmt)
        return fsdp_memory.load_transient(model, plan, world, t, stored, whole, fmt)
    if plan.zero_stage == 3:
        if fmt is None:
            return 0
        return int(_frozen_base_bytes(model, plan, t.frozen_params, fmt) + 4 * t.params)
    if not plan.upcast_trainable_to_fp32:
        return 0
    base_trainable = t.params - t.adapter_params
    return int(4 * t.params + _frozen_base_bytes(model, plan, model.total_params - base_trainable, fmt))


# --- prediction and evaluation without training ---------------------------------------------------------


def _forward_transient(model: ModelSpec, plan: TrainingPlan, tokens: int) -> int:
    """A no-grad forward keeps nothing: its peak is one decoder layer's temporaries — the MLP's gate, up and
    product (3·I) and the residual, norm and attention output (≈ 4·h), in the compute dtype; an MoE layer
    computes top-k expert rows plus the fp32 router logits (methods.md §9)."""
    p = precision(model, plan)
    dense = tokens * (3 * model.intermediate + 4 * model.hidden) * p.matmul_bytes
    moe = 0
    if model.experts:
        moe = tokens * (model.experts_per_token * 2 * model.moe_intermediate * p.matmul_bytes
                        + 4 * model.experts + 4 * model.hidden * p.matmul_bytes)
    eager = 0
    if plan.attention == "eager":  # the mask and one layer's fp32 scores and their half copy (B·H·L²)
        eager = act.eager_mask_bytes(tokens // max(1, plan.cutoff_len), plan.cutoff_len, p) \
            + (4 + p.matmul_bytes) * model.heads * tokens * plan.cutoff_len
    return max(dense, moe) + eager


def kv_cache_bytes(model: ModelSpec, plan: TrainingPlan, sequences: int, length: int) -> int:
    """transformers DynamicCache (cache_utils.py:136): keys and values of every layer for every token, in the
    compute dtype (MLA models cache the expanded per-head keys and values)."""
    bytes_ = precision(model, plan).matmul_bytes
    return sequences * length * model.layers * 2 * model.kv_dim * bytes_


def _inference_estimate(model: ModelSpec, on_gpu: ModelSpec, plan: TrainingPlan, world: World) -> Estimate:
    """do_predict / do_eval without do_train: the model loads for inference (no upcast, requires_grad off,
    loader.py:216-218); LoRA adapters are merged unless the model is quantized (adapter.py:163-200).
    Generation (predict_with_generate): the KV cache of eval batch × beams × (prompt ≤ cutoff_len +
    max_new_tokens), the prefill of one layer, the last position's logits (generation/utils.py:2952-2956) and
    the sampling temporaries. Evaluation: a forward with the loss over the eval batch."""
    fmt = weight_format(on_gpu, plan)
    weights = int(_frozen_base_bytes(on_gpu, plan, on_gpu.total_params, fmt))
    if plan.zero_stage == 3:
        weights //= world.world_size
    sequences = plan.per_device_eval_batch_size * (2 if plan.stage in ("rm", "dpo") else 1)
    prompt_tokens = sequences * plan.cutoff_len
    phases: dict[str, dict[str, int]] = {}
    buffers = CUBLAS_WORKSPACE_BYTES + (2 * quant.largest_linear(on_gpu) if fmt is not None else 0)
    if plan.task == "predict" and plan.predict_with_generate:
        beams = max(1, plan.num_beams)
        length = plan.cutoff_len + plan.max_new_tokens
        cache = kv_cache_bytes(on_gpu, plan, sequences * beams, length) if plan.use_kv_cache else 0
        prefill_tokens = prompt_tokens * beams if plan.use_kv_cache else sequences * beams * length
        vocab_temps = sequences * beams * on_gpu.vocab * (4 + 12)  # fp32 logits + top-p sort (values, indices)
        phases["prefill"] = {"weights": weights, "activations": _forward_transient(on_gpu, plan, prefill_tokens)
                             + cache, "logits": vocab_temps, "buffers": buffers}
        phases["generation"] = {"weights": weights, "activations": cache, "logits": vocab_temps, "buffers": buffers}
    else:
        logits = act.logits_bytes(on_gpu, prompt_tokens, liger_fused=False, weight_bytes=0,
                                  logits_dtype_bytes=precision(on_gpu, plan).matmul_bytes).forward
        phases["evaluation"] = {"weights": weights, "activations": _forward_transient(on_gpu, plan, prompt_tokens),
                                "logits": logits, "buffers": buffers}
    full = {name: {c: parts.get(c, 0) for c in COMPONENTS} for name, parts in phases.items()}
    notes = [*plan.assumptions,
             f"{plan.task} only (no do_train): weights loaded for inference in "
             f"{_load_bytes(on_gpu, plan)} B/param, no gradients or optimizer states"]
    if plan.task == "predict" and plan.predict_with_generate:
        notes.append(f"generation: {sequences} sequence(s) × {max(1, plan.num_beams)} beam(s), prompt ≤ cutoff_len "
                     f"{plan.cutoff_len} + max_new_tokens {plan.max_new_tokens}, KV cache "
                     f"{'on' if plan.use_kv_cache else 'off'}")
    if fmt is not None:
        notes.append(f"weights: {fmt.name}")
    return _finish(on_gpu, plan, world, full, 0, tuple(notes))


# --- assumptions -----------------------------------------------------------------------------------------


def _launcher_words(plan: TrainingPlan, world: World) -> str:
    if plan.fsdp is not None:
        return plan.fsdp.describe()
    if plan.deepspeed is not None:
        offload = [name for name, on in (("optimizer", plan.deepspeed.offload_optimizer),
                                         ("parameters", plan.deepspeed.offload_param)) if on]
        return f"DeepSpeed ZeRO-{plan.zero_stage}" + (f" (offload: {', '.join(offload)})" if offload else "") + \
            f" ({plan.deepspeed.path})"
    if plan.ray_num_workers > 1:
        return f"Ray (USE_RAY=1): {plan.ray_num_workers} workers, one GPU each, DDP"
    if world.world_size > 1:
        return "torchrun DDP (each GPU holds the whole model state)"
    return "one process on one GPU"


def _kernels(model: ModelSpec, plan: TrainingPlan) -> str:
    parts = [{"sdpa": "SDPA", "eager": "eager attention", "fa2": "FlashAttention-2",
              "fa3": "FlashAttention-3"}.get(plan.attention, plan.attention)]
    if plan.liger:
        parts.append("Liger kernels (fused cross-entropy)" if plan.stage in ("pt", "sft") else "Liger kernels")
    if plan.use_unsloth:
        parts.append("Unsloth (fused cross-entropy in ≤ 4 GiB chunks, offloaded checkpointing; its LoRA kernels "
                     "are counted as plain PEFT, an upper bound)")
    if plan.unsloth_gc and not plan.use_unsloth:
        parts.append("LLaMA-Factory's Unsloth-style checkpointing (hidden states on the CPU)")
    return ", ".join(parts)


def _assumptions(model: ModelSpec, plan: TrainingPlan, world: World, t: Trainable) -> tuple[str, ...]:
    notes = list(plan.assumptions)
    load = _load_bytes(model, plan)
    notes.append(f"launcher: {_launcher_words(plan, world)}")
    notes.append(f"optimizer: {plan.optimizer_name}")
    notes.append(f"kernels: {_kernels(model, plan)}")
    notes.append(f"weights loaded in {model.checkpoint_dtype} "
                 f"({load} B/param; LLaMA-Factory ≥ 0.9.4 loads the checkpoint's dtype)")
    fmt = weight_format(model, plan)
    if fmt is not None:
        notes.append(f"frozen linears stored as {fmt.name} ({fmt.bytes_per_param:.3f} B/param; embeddings, norms, "
                     "lm_head" + (" and fused MoE experts" if model.experts and plan.versions.transformers >= 5
                                  else "") + " stay 16-bit)")
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
        notes.append("a frozen reference model copy on each GPU" if plan.zero_stage < 3 and plan.fsdp is None
                     else "a frozen reference model, sharded")
    if plan.use_kt and model.experts:
        notes.append(f"KTransformers: routed experts on the CPU ({plan.kt_num_gpu_experts} per layer on the GPU)")
    if model.experts and plan.finetuning_type in ("lora", "oft"):
        notes.append(f"transformers {plan.versions.transformers}.x: routed experts "
                     + ("are" if plan.versions.transformers < 5 else "are not") + " LoRA targets")
    if model.vision is not None and model.vision_params:
        patches = vision_patches(model, plan)
        notes.append(f"vision: the largest single image or video per sequence ({patches:,} patches at "
                     f"image_max_pixels {plan.image_max_pixels:,}, video {plan.video_maxlen} frames at "
                     f"{plan.video_max_pixels:,} px); its tokens count within cutoff_len")
    if world.world_size > 1:
        notes.append(f"{world.world_size} GPUs ({world.nodes} node(s) × {world.gpus_per_node})")
    notes.append(f"trainable parameters: {t.params:,} of {model.total_params:,}")
    notes.append(plan.versions.describe())
    return tuple(notes)
