"""The smallest changes that make a plan fit a GPU, each applied to the YAML text and re-estimated.

Candidates are ordered by how much they change training (keep the effective batch first; a different
method last). Every candidate edits the YAML text, re-parses it with `parse_plan` and re-estimates, so a
suggestion's number is exactly what the edited file gives.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from estimator.errors import InputError
from estimator.memory import World, estimate
from estimator.model import ModelSpec
from estimator.plan import TrainingPlan, parse_plan
from estimator.runtime import Fit, judge_band

LF_DEEPSPEED = "examples/deepspeed"  # LLaMA-Factory's shipped configs (bundled in estimator/catalog/deepspeed)


@dataclass(frozen=True)
class Edit:
    line: int | None  # 1-based line replaced; None when appended at the end
    old: str | None
    new: str


@dataclass(frozen=True)
class Candidate:
    changes: dict[str, Any]
    edits: tuple[Edit, ...]
    text: str  # the YAML after the edits
    why: str
    cost: str
    world: World | None = None  # a different GPU count (no YAML edit)


@dataclass(frozen=True)
class ScoredCandidate:
    """A candidate change with the estimate the edited YAML gives."""

    changes: dict[str, Any]
    edits: tuple[Edit, ...]
    peak_bytes: int
    verdict: Fit  # the edited config's band against the GPU (estimator.runtime.judge_band)
    why: str
    cost: str


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def set_key(text: str, key: str, value: Any) -> tuple[str, Edit]:
    """Set a top-level key in YAML text, keeping indentation and a trailing comment; append if absent."""
    lines = text.splitlines()
    pattern = re.compile(rf"^(?P<indent>\s*){re.escape(key)}\s*:\s*(?P<value>[^#\n]*?)(?P<comment>\s+#.*)?$")
    for index, line in enumerate(lines):
        match = pattern.match(line)
        if match and not match.group("indent"):
            new = f"{key}: {_format(value)}{match.group('comment') or ''}"
            lines[index] = new
            return "\n".join(lines) + "\n", Edit(index + 1, line, new)
    new_line = f"{key}: {_format(value)}"
    if lines:  # a GitHub suggestion replaces a line: extend the last one
        last = lines[-1]
        lines.append(new_line)
        return "\n".join(lines) + "\n", Edit(len(lines) - 1, last, f"{last}\n{new_line}")
    return new_line + "\n", Edit(None, None, new_line)


def _apply(text: str, changes: dict[str, Any]) -> tuple[str, tuple[Edit, ...]]:
    edits: list[Edit] = []
    for key, value in changes.items():
        text, edit = set_key(text, key, value)
        edits.append(edit)
    return text, tuple(edits)


def _candidate(text: str, changes: dict[str, Any], why: str, cost: str) -> Candidate:
    new_text, edits = _apply(text, changes)
    return Candidate(changes, edits, new_text, why, cost)


def deepspeed_path(plan: TrainingPlan, name: str, read_file: Callable[[str], str] | None) -> str:
    """Where `name` (e.g. ds_z3_config.json) lives for this config: beside the DeepSpeed file it already uses,
    or in a usual folder of the repository, else LLaMA-Factory's shipped path (resolved offline)."""
    current = plan.raw.get("deepspeed")
    folders = [current.rsplit("/", 1)[0]] if isinstance(current, str) and "/" in current else []
    folders += ["deepspeed", "ds_configs", "configs/deepspeed", LF_DEEPSPEED]
    if read_file is None:
        return f"{LF_DEEPSPEED}/{name}"
    for folder in folders:
        path = f"{folder}/{name}"
        try:
            read_file(path)
        except (FileNotFoundError, InputError):
            continue
        return path
    return f"{LF_DEEPSPEED}/{name}"


def candidates(text: str, plan: TrainingPlan, model: ModelSpec, world: World,
               read_file: Callable[[str], str] | None = None) -> Iterator[Candidate]:
    """Single changes, least disruptive first."""
    bs, ga = plan.per_device_train_batch_size, plan.gradient_accumulation_steps
    factor = 2
    while bs // factor >= 1:  # keep the effective batch: micro-batch ↓, accumulation ↑
        new_bs = bs // factor
        if bs % factor == 0:
            yield _candidate(text, {"per_device_train_batch_size": new_bs, "gradient_accumulation_steps": ga * factor},
                             f"micro-batch {bs} → {new_bs} with gradient accumulation {ga} → {ga * factor}: "
                             "activations and logits shrink, the effective batch size stays "
                             f"{plan.effective_batch_size(world.world_size)}",
                             "slower steps (smaller matmuls); same effective batch size")
        factor *= 2
    if not plan.gradient_checkpointing:
        yield _candidate(text, {"disable_gradient_checkpointing": False},
                         "gradient checkpointing keeps one hidden state per layer instead of all activations",
                         "about 20-30 % more compute (each layer's forward runs twice)")
    if not plan.liger and plan.stage in ("pt", "sft"):
        yield _candidate(text, {"enable_liger_kernel": True},
                         "Liger's fused linear cross-entropy never materialises the logits (vocab × tokens)",
                         "needs the liger-kernel package; no numerical change expected")
    if plan.attention == "eager":
        yield _candidate(text, {"flash_attn": "fa2"},
                         "FlashAttention-2 does not store the L×L attention matrix",
                         "needs flash-attn and an Ampere or newer GPU")
    if world.world_size > 1 and plan.zero_stage < 3 and plan.finetuning_type in ("full", "freeze") \
            and not plan.pure_bf16:
        yield _candidate(text, {"deepspeed": deepspeed_path(plan, "ds_z3_config.json", read_file)},
                         f"ZeRO-3 shards weights, gradients and optimizer states over the {world.world_size} GPUs",
                         "more communication per step (parameters are gathered layer by layer)")
    if not plan.eight_bit_optimizer and plan.deepspeed is None and not (plan.use_galore or plan.use_apollo):
        yield _candidate(text, {"optim": "paged_adamw_8bit"},
                         "8-bit AdamW keeps 2 bytes of state per trainable parameter instead of 8",
                         "needs bitsandbytes; 8-bit optimizer states (usually on par in quality)")
    if world.world_size > 1 and plan.finetuning_type in ("full", "freeze") and not plan.pure_bf16 and \
            not (plan.deepspeed and plan.deepspeed.offload_optimizer):
        yield _candidate(text, {"deepspeed": deepspeed_path(plan, "ds_z3_offload_config.json", read_file)},
                         "ZeRO-3 with parameters and optimizer states offloaded to CPU memory",
                         "much slower steps; needs about 16 bytes of host RAM per parameter")
    if plan.finetuning_type == "full" and not plan.pure_bf16 and plan.zero_stage < 3 and not plan.use_badam:
        changes: dict[str, Any] = {"pure_bf16": True}
        if plan.bf16:
            changes["bf16"] = False
        yield _candidate(text, changes,
                         "pure bf16 keeps weights, gradients and optimizer states in bf16 (8 instead of 16 B/param)",
                         "no fp32 master weights: small updates can be lost to bf16 rounding")
    for cutoff in (plan.cutoff_len * 3 // 4, plan.cutoff_len // 2, plan.cutoff_len // 4):
        cutoff = max(8, cutoff - cutoff % 8)
        if cutoff < plan.cutoff_len:
            yield _candidate(text, {"cutoff_len": cutoff},
                             f"shorter sequences: cutoff_len {plan.cutoff_len} → {cutoff}",
                             "samples longer than the cutoff are truncated")
    if plan.finetuning_type in ("full", "freeze"):
        yield _candidate(text, {"finetuning_type": "lora"},
                         "LoRA trains small adapters: no gradients or optimizer states for the base weights",
                         "a different method: adapters instead of full weights (quality may differ)")


def _evaluate(candidate: Candidate, path: str, read_file: Callable[[str], str] | None, model: ModelSpec,
              world: World, capacity_bytes: int, headroom: float) -> ScoredCandidate | None:
    try:
        new_plan = parse_plan(candidate.text, path, read_file, world.world_size)
    except InputError:
        return None  # a change LLaMA-Factory would reject is no suggestion
    result = estimate(model, new_plan, world)
    low, high = result.peak_range_bytes
    return ScoredCandidate(candidate.changes, candidate.edits, result.peak_bytes,
                           judge_band(low, high, capacity_bytes, headroom), candidate.why, candidate.cost)


def suggest(text: str, path: str, plan: TrainingPlan, model: ModelSpec, world: World, capacity_bytes: int,
            headroom: float = 0.10, read_file: Callable[[str], str] | None = None, limit: int = 4
            ) -> list[ScoredCandidate]:
    """Up to `limit` single changes that make the plan fit (below the headroom), least disruptive first;
    if none does alone, the best pairs of them."""
    singles: list[tuple[Candidate, ScoredCandidate]] = []
    for candidate in candidates(text, plan, model, world, read_file):
        result = _evaluate(candidate, path, read_file, model, world, capacity_bytes, headroom)
        if result is not None:
            singles.append((candidate, result))
    found = _first_per_key([s for _, s in singles if s.verdict == "fit"], limit)
    if found:
        return found
    # nothing fits alone: combine the two changes that save the most with each other
    helpful = sorted(singles, key=lambda pair: pair[1].peak_bytes)[:6]
    pairs: list[ScoredCandidate] = []
    for i, (first, _) in enumerate(helpful):
        for second, _ in helpful[i + 1:]:
            if set(first.changes) & set(second.changes):
                continue
            changes = {**first.changes, **second.changes}
            combo = _candidate(text, changes, f"{first.why}; and {second.why}", f"{first.cost}; {second.cost}")
            result = _evaluate(combo, path, read_file, model, world, capacity_bytes, headroom)
            if result is not None and result.verdict == "fit":
                pairs.append(result)
    return _first_per_key(pairs, limit)


def _first_per_key(found: list[ScoredCandidate], limit: int) -> list[ScoredCandidate]:
    """One suggestion per set of keys (the least disruptive of e.g. several cutoff_len values)."""
    seen: set[frozenset[str]] = set()
    result: list[ScoredCandidate] = []
    for suggestion in found:
        keys = frozenset(suggestion.changes)
        if keys in seen:
            continue
        seen.add(keys)
        result.append(suggestion)
        if len(result) == limit:
            break
    return result

