"""Name the likely causes of one OOM, one line each, with the number behind it.

Thresholds (judgement, not measurement; tuned on the fixtures):
- fragmentation: reserved-but-unallocated ≥ the failed request (the memory was there, in pieces),
  or ≥ max(1 GiB, 10 % of capacity);
- one oversized allocation: the request alone is ≥ 25 % of the device;
- saturated working set: allocated ≥ 85 % of capacity while the request was < 10 % of it;
- memory outside the allocator: capacity − free − held by this process ≥ 2 GiB (a CUDA context is ~0.5-1 GiB).
"""

from __future__ import annotations

from estimator.units import GiB, MiB
from rules.diagnose.diagnosis import Cause, LogContext, OomEvent
from rules.diagnose.sizes import format_bytes

FRAGMENTATION_FLOOR = GiB
FRAGMENTATION_FRACTION = 0.10
LARGE_REQUEST_FRACTION = 0.25
SATURATED_FRACTION = 0.85
OUTSIDE_ALLOCATOR_FLOOR = 2 * GiB
ADAMW_STATE_BYTES_PER_PARAM = 8  # exp_avg + exp_avg_sq in fp32 (torch.optim.AdamW)
FP32_BYTES_PER_PARAM = 4  # LLaMA-Factory upcasts trainable params to float32 (model/adapter.py)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%"


def _fragmentation(event: OomEvent) -> Cause | None:
    unused, requested, capacity = (
        event.reserved_unallocated_bytes,
        event.requested_bytes,
        event.capacity_bytes,
    )
    if unused is None:
        return None
    env = "PYTORCH_NPU_ALLOC_CONF" if event.kind == "npu" else "PYTORCH_CUDA_ALLOC_CONF"
    fix = f"set {env}=expandable_segments:True"
    if requested is not None and unused >= requested and unused >= 256 * MiB:
        return Cause(
            "fragmentation",
            f"fragmentation: {format_bytes(unused)} reserved by PyTorch but unallocated, "
            f"more than the {format_bytes(requested)} asked for, yet no free block was "
            f"large enough; {fix}",
        )
    floor = (
        max(FRAGMENTATION_FLOOR, int(FRAGMENTATION_FRACTION * capacity)) if capacity else FRAGMENTATION_FLOOR
    )
    if unused >= floor:
        share = f" ({_pct(unused, capacity)} of the device)" if capacity else ""
        return Cause(
            "fragmentation",
            f"fragmentation: {format_bytes(unused)}{share} reserved by PyTorch but "
            f"unallocated; {fix} so freed blocks can be reused",
        )
    return None


def _phase_cause(event: OomEvent, context: LogContext) -> Cause | None:
    requested = format_bytes(event.requested_bytes)
    settings = context.settings
    if event.phase == "loss-logits":
        cutoff = settings.get("cutoff_len")
        at = f" at cutoff_len {cutoff}" if cutoff else ""
        return Cause(
            "logits",
            f"logits{at}: the loss upcasts batch × sequence × vocab logits to fp32 (4 bytes "
            f"each); it failed allocating {requested}; lower cutoff_len or the batch, or use "
            f"Liger's fused cross-entropy (enable_liger_kernel: true)",
        )
    if event.phase == "optimizer-step":
        if context.trainable_params:
            states = ADAMW_STATE_BYTES_PER_PARAM * context.trainable_params
            count = f"{context.trainable_params:,}"
            basis = f"{format_bytes(states)} for {count} trainable parameters at 8 bytes each"
        else:
            basis = "8 bytes per trainable parameter"
        return Cause(
            "optimizer-states",
            f"optimizer states: AdamW allocates two fp32 states ({basis}) at the first "
            f"step; shard them (ZeRO-2/3), offload them, or use an 8-bit/paged optimizer",
        )
    if event.phase == "model-loading":
        if context.fp32_upcast_logged or context.trainable_params:
            amount = (
                f"{format_bytes(FP32_BYTES_PER_PARAM * context.trainable_params)} for "
                f"{context.trainable_params:,} trainable parameters"
                if context.trainable_params
                else "4 bytes per trainable parameter"
            )
            return Cause(
                "fp32-upcast",
                f"fp32 upcast at load: LLaMA-Factory casts trainable parameters to float32 on "
                f"every GPU before sharding ({amount}); ZeRO-3 or pure_bf16 avoids it",
            )
        held = format_bytes(event.allocated_bytes) if event.allocated_bytes is not None else "the weights"
        return Cause(
            "weights-at-load",
            f"the weights do not fit while loading ({held} allocated when it failed): "
            f"each GPU loads a full copy unless ZeRO-3 / FSDP shards it",
        )
    if event.phase == "evaluation":
        eval_batch = settings.get("per_device_eval_batch_size", "8 (the Hugging Face default)")
        train_batch = settings.get("per_device_train_batch_size", "not shown in the log")
        return Cause(
            "eval-batch",
            f"evaluation: per_device_eval_batch_size {eval_batch} vs "
            f"per_device_train_batch_size {train_batch}; evaluation also keeps logits for "
            f"metrics; set the eval batch no larger than the train batch",
        )
    if event.phase == "checkpoint-save":
        return Cause(
            "checkpoint-save",
            f"checkpoint save: gathering full weights or optimizer state on one device "
            f"needs room for a copy (failed allocating {requested}); save sharded or "
            f"leave headroom",
        )
    if event.phase == "communication" or event.kind == "nccl":
        return Cause(
            "nccl-buffers",
            f"NCCL could not allocate {requested} for its communication buffers: "
            f"PyTorch's cache held the rest of the GPU; leave headroom (smaller batch) "
            f"or start communication before the cache fills",
        )
    return None


def name_causes(event: OomEvent, context: LogContext) -> list[Cause]:
    causes: list[Cause] = []
    if not event.complete:
        causes.append(
            Cause(
                "truncated",
                "the message was cut before its numbers; paste the whole error for a precise diagnosis",
            )
        )
    fragmentation = _fragmentation(event)
    if fragmentation is not None:
        causes.append(fragmentation)
    phase = _phase_cause(event, context)
    if phase is not None:
        causes.append(phase)
    stage = context.preference_stage
    if stage is not None:
        causes.append(
            Cause(
                "preference-model",
                f"{stage.upper()} training: a reference model (a second copy of the "
                f"weights unless finetuning is LoRA) and chosen + rejected "
                f"sequences in one batch (2 × per_device_train_batch_size)",
            )
        )
    requested, capacity, allocated = event.requested_bytes, event.capacity_bytes, event.allocated_bytes
    if requested is not None and capacity and requested >= LARGE_REQUEST_FRACTION * capacity:
        causes.append(
            Cause(
                "large-allocation",
                f"one allocation of {format_bytes(requested)} "
                f"({_pct(requested, capacity)} of the device): typical of fp32 logits "
                f"or eager attention scores at long sequence length",
            )
        )
    elif allocated is not None and capacity and allocated >= SATURATED_FRACTION * capacity:
        causes.append(
            Cause(
                "working-set",
                f"PyTorch already had {format_bytes(allocated)} allocated "
                f"({_pct(allocated, capacity)} of {format_bytes(capacity)}); the "
                f"{format_bytes(requested)} request only tipped it over: the run's "
                f"steady state does not fit",
            )
        )
    outside = event.outside_allocator_bytes
    if outside is not None and outside >= OUTSIDE_ALLOCATOR_FLOOR:
        causes.append(
            Cause(
                "outside-allocator",
                f"{format_bytes(outside)} of the device is held outside PyTorch's "
                f"allocator (CUDA context, NCCL buffers, other processes): check "
                f"nvidia-smi for other processes",
            )
        )
    if event.kind == "other":
        causes.append(
            Cause(
                "not-pytorch",
                f"not a PyTorch allocator message: only the size asked for is known "
                f"({format_bytes(requested)})",
            )
        )
    if event.allowed_bytes is not None and capacity and event.allowed_bytes < 0.99 * capacity:
        causes.append(
            Cause(
                "memory-fraction",
                f"a memory fraction caps this process at "
                f"{format_bytes(event.allowed_bytes)} of "
                f"{format_bytes(capacity)}",
            )
        )
    elif (
        event.free_bytes is not None
        and requested is not None
        and event.free_bytes >= requested
        and fragmentation is None
    ):
        causes.append(
            Cause(
                "free-but-failed",
                f"the device reported {format_bytes(event.free_bytes)} free, more than "
                f"the {format_bytes(requested)} asked: a limit on the process "
                f"(memory fraction, MIG/vGPU) or another process allocating at the "
                f"same time",
            )
        )
    return causes
