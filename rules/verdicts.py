"""fit / tight / no-fit for a pool, the fewest GPUs that fit, and the largest batch and cutoff that fit."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from estimator.memory import Estimate, World, estimate
from estimator.model import ModelSpec
from estimator.plan import TrainingPlan
from rules.gpus import GPU
from rules.report import Verdict, VerdictName

# The sizing searches are binary searches over these ranges (memory grows with batch and with sequence
# length), so each costs at most log2 of its range in estimates: 12 and 17.
MAX_BATCH_SEARCH = 4096
MAX_CUTOFF_SEARCH = 1 << 20


def classify(peak_bytes: int, usable_bytes: int, headroom: float) -> VerdictName:
    """fit below (1 − headroom) of usable memory, tight up to all of it, no-fit above (DESIGN.md policy)."""
    if peak_bytes <= (1.0 - headroom) * usable_bytes:
        return "fit"
    if peak_bytes <= usable_bytes:
        return "tight"
    return "no-fit"


def world_for(gpus: int, per_node: int) -> World:
    """n GPUs of a pool whose nodes hold `per_node` each: full nodes first."""
    per = min(gpus, per_node)
    return World(gpus_per_node=per, nodes=math.ceil(gpus / per))


def fits(model: ModelSpec, plan: TrainingPlan, world: World, gpu: GPU) -> bool:
    return estimate(model, plan, world).peak_bytes <= gpu.usable_bytes


def min_gpus(model: ModelSpec, plan: TrainingPlan, gpu: GPU, per_node: int, max_gpus: int) -> int | None:
    """Fewest GPUs (1..max_gpus) on which the plan fits as written, in at most 2 + log2(max_gpus) estimates.

    One GPU is tried on its own: going from one GPU to two adds the DDP gradient buckets, DeepSpeed's
    ZeRO-0 buckets and the NCCL buffers (estimator/memory.py buffer_bytes, estimate), so two may need more
    than one. From two GPUs up, every world-dependent term of estimator/memory.py is either constant or
    divided by the world size, and world_for's world size never shrinks as n grows, so "fits" is monotone
    (false, then true) and a binary search finds the first n; tests/test_suggest_verdicts.py checks it
    against a linear scan. ZeRO-0/1/2 replicas and DDP never shrink below the weights, so they may never fit.
    max_gpus is the pool's size, itself bounded (rules.policy.target MAX_GPUS_PER_NODE × MAX_NODES)."""
    if fits(model, plan, world_for(1, per_node), gpu):
        return 1
    if max_gpus < 2 or not fits(model, plan, world_for(max_gpus, per_node), gpu):
        return None
    lo, hi = 2, max_gpus  # fits at hi
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(model, plan, world_for(mid, per_node), gpu):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _largest(lo: int, hi: int, ok: Callable[[int], bool]) -> int | None:
    """Largest value in [lo, hi] with ok(value) true, for ok monotone (true then false): at most
    1 + log2(hi - lo + 1) calls of ok."""
    if not ok(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def max_batch_size(model: ModelSpec, plan: TrainingPlan, world: World, gpu: GPU) -> int | None:
    return _largest(1, MAX_BATCH_SEARCH,
                    lambda b: fits(model, replace(plan, per_device_train_batch_size=b), world, gpu))


def max_cutoff_len(model: ModelSpec, plan: TrainingPlan, world: World, gpu: GPU) -> int | None:
    """Largest cutoff_len (a multiple of 8, as LF pads) that fits at the configured batch size."""
    best = _largest(1, MAX_CUTOFF_SEARCH // 8, lambda n: fits(model, replace(plan, cutoff_len=8 * n), world, gpu))
    return None if best is None else 8 * best


def verdict_for(pool_name: str, gpu: GPU, per_node: int, nodes: int, model: ModelSpec, plan: TrainingPlan,
                headroom: float, *, max_gpus: int | None = None, sizing: bool = True,
                result: Estimate | None = None) -> Verdict:
    world = World(gpus_per_node=per_node, nodes=nodes)
    result = result or estimate(model, plan, world)
    name = classify(result.peak_bytes, gpu.usable_bytes, headroom)
    return Verdict(
        pool=pool_name, gpu=gpu.name, gpus=world.world_size, capacity_bytes=gpu.usable_bytes,
        peak_bytes=result.peak_bytes, verdict=name,
        min_gpus=min_gpus(model, plan, gpu, per_node, max_gpus or world.world_size),
        max_batch_size=max_batch_size(model, plan, world, gpu) if sizing else None,
        max_cutoff_len=max_cutoff_len(model, plan, world, gpu) if sizing else None,
        headroom_bytes=gpu.usable_bytes - result.peak_bytes,
    )
