"""fit / tight / no-fit for a pool, the fewest GPUs that fit, and the largest batch and cutoff that fit.

Every verdict and every search here holds the estimate's error band against the GPU (estimator.runtime
.judge_band): "fit" means the top of the band stays below the headroom line, so the advice is safe on a real
GPU, not only on the point estimate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from estimator.memory import Estimate, World, estimate
from estimator.model import ModelSpec
from estimator.plan import TrainingPlan
from estimator.runtime import judge_band
from rules.gpus import GPU
from rules.report import Verdict, VerdictName

# The sizing searches are binary searches over these ranges (memory grows with batch and with sequence
# length), so each costs at most log2 of its range in estimates: 12 and 17.
MAX_BATCH_SEARCH = 4096
MAX_CUTOFF_SEARCH = 1 << 20


def classify(result: Estimate, usable_bytes: int, headroom: float) -> VerdictName:
    """fit / tight / no-fit of an estimate's band against one GPU's usable memory."""
    low, high = result.peak_range_bytes
    return judge_band(low, high, usable_bytes, headroom)


def world_for(gpus: int, per_node: int) -> World:
    """n GPUs of a pool whose nodes hold `per_node` each: full nodes first."""
    per = min(gpus, per_node)
    return World(gpus_per_node=per, nodes=math.ceil(gpus / per))


def fits(model: ModelSpec, plan: TrainingPlan, world: World, gpu: GPU, headroom: float) -> bool:
    """The "fit" verdict: the band's top below the headroom line."""
    return classify(estimate(model, plan, world), gpu.usable_bytes, headroom) == "fit"


def min_gpus(model: ModelSpec, plan: TrainingPlan, gpu: GPU, per_node: int, max_gpus: int,
             headroom: float) -> int | None:
    """Fewest GPUs (1..max_gpus) on which the plan fits as written, in at most 2 + log2(max_gpus) estimates.

    One GPU is tried on its own: going from one GPU to two adds the DDP gradient buckets, DeepSpeed's
    ZeRO-0 buckets and the NCCL buffers (estimator/memory.py buffer_bytes, estimate), so two may need more
    than one. From two GPUs up, every world-dependent term of estimator/memory.py is either constant or
    divided by the world size, and world_for's world size never shrinks as n grows, so "fits" is monotone
    (false, then true) and a binary search finds the first n; tests/test_suggest_verdicts.py checks it
    against a linear scan. ZeRO-0/1/2 replicas and DDP never shrink below the weights, so they may never fit.
    max_gpus is the pool's size, itself bounded (rules.policy.target MAX_GPUS_PER_NODE × MAX_NODES)."""
    if fits(model, plan, world_for(1, per_node), gpu, headroom):
        return 1
    if max_gpus < 2 or not fits(model, plan, world_for(max_gpus, per_node), gpu, headroom):
        return None
    lo, hi = 2, max_gpus  # fits at hi
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(model, plan, world_for(mid, per_node), gpu, headroom):
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


def max_batch_size(model: ModelSpec, plan: TrainingPlan, world: World, gpu: GPU, headroom: float) -> int | None:
    return _largest(1, MAX_BATCH_SEARCH,
                    lambda b: fits(model, replace(plan, per_device_train_batch_size=b), world, gpu, headroom))


def max_cutoff_len(model: ModelSpec, plan: TrainingPlan, world: World, gpu: GPU, headroom: float) -> int | None:
    """Largest cutoff_len (a multiple of 8, as LF pads) that fits at the configured batch size."""
    best = _largest(1, MAX_CUTOFF_SEARCH // 8,
                    lambda n: fits(model, replace(plan, cutoff_len=8 * n), world, gpu, headroom))
    return None if best is None else 8 * best


def verdict_for(pool_name: str, gpu: GPU, per_node: int, nodes: int, model: ModelSpec, plan: TrainingPlan,
                headroom: float, *, max_gpus: int | None = None, sizing: bool = True,
                result: Estimate | None = None) -> Verdict:
    world = World(gpus_per_node=per_node, nodes=nodes)
    result = result or estimate(model, plan, world)
    if not result.modelled:  # part of the setup is not modelled: no verdict, no sizing (DESIGN.md "modelled")
        return Verdict(pool=pool_name, gpu=gpu.name, gpus=world.world_size, capacity_bytes=gpu.usable_bytes,
                       peak_bytes=result.peak_bytes, verdict="unknown", min_gpus=None,
                       headroom_bytes=gpu.usable_bytes - result.peak_bytes,
                       peak_range_bytes=result.peak_range_bytes)
    return Verdict(
        pool=pool_name, gpu=gpu.name, gpus=world.world_size, capacity_bytes=gpu.usable_bytes,
        peak_bytes=result.peak_bytes, verdict=classify(result, gpu.usable_bytes, headroom),
        min_gpus=min_gpus(model, plan, gpu, per_node, max_gpus or world.world_size, headroom),
        max_batch_size=max_batch_size(model, plan, world, gpu, headroom) if sizing else None,
        max_cutoff_len=max_cutoff_len(model, plan, world, gpu, headroom) if sizing else None,
        headroom_bytes=gpu.usable_bytes - result.peak_bytes, peak_range_bytes=result.peak_range_bytes,
    )
