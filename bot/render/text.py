"""Plain-text report for terminals: a compact breakdown in GiB (one decimal), verdicts, findings, suggestions.

Paths, model ids and messages come from the repository: control characters in them are shown escaped
(bot.render.escape.terminal), never sent to the terminal.
"""

from __future__ import annotations

from bot.render import escape
from estimator.units import gib, gib_range, signed_gib
from rules.report import ConfigReport, RunReport

LABEL = {"fit": "FIT", "tight": "TIGHT", "no-fit": "NO-FIT", "unknown": "UNKNOWN", "error": "ERROR"}
BREAKDOWN = (("weights", "weights"), ("gradients", "gradients"), ("optimizer", "optimizer states"),
             ("activations", "activations"), ("logits", "logits + loss"), ("buffers", "buffers (DDP/ZeRO, cuBLAS)"))


def _without_path(error: str, path: str) -> str:
    """"configs/a.yaml:2: message" → "line 2: message" (the config's own path is already on the line)."""
    rest = error.removeprefix(f"{path}:").lstrip() if error.startswith(f"{path}:") else error
    line, sep, message = rest.partition(": ")
    return f"line {line}: {message}" if sep and line.isdigit() else rest


def render_config(config: ConfigReport) -> list[str]:
    if config.error is not None:  # could not be estimated: one line (plus the findings, if any)
        lines = [f"{config.path}: {LABEL[config.status]} — {_without_path(config.error, config.path)}"]
    else:
        lines = [f"{config.path}: {LABEL[config.status]}"]
    if config.error is None and config.errors:
        lines.append("  error: LLaMA-Factory would stop on this config (the findings marked error below)")
    estimate = config.estimate
    if estimate is not None and not estimate.modelled:
        lines.append("  no verdict: vram-check does not model part of this setup (the numbers below are partial):")
        lines += [f"    - {part}" for part in estimate.not_modelled]
    if estimate is not None and config.parameters is not None:
        target = config.plan.get("target", {})
        source = config.model_source or ""
        plain = source.startswith("Hugging Face Hub") or (source.startswith("bundled catalog")
                                                          and "identical" not in source)
        shown = "" if not source or plain else f" ({source})"
        lines.append(f"  model {config.model_id}{shown}: {config.parameters.total / 1e9:.2f} B parameters, "
                     f"{config.parameters.trainable / 1e6:,.1f} M trainable")
        lines.append(f"  per GPU at the peak ({estimate.peak_phase}), {target.get('gpus_per_node', 1)} GPU(s) × "
                     f"{target.get('nodes', 1)} node(s):")
        for key, label in BREAKDOWN:
            lines.append(f"    {label:<28} {gib(estimate.components.get(key, 0)):>10}")
        lines.append(f"    {'= allocated (torch)':<28} {gib(estimate.allocated_bytes):>10}")
        lines.append(f"    {'+ allocator cache':<28} {gib(estimate.reserved_bytes - estimate.allocated_bytes):>10}")
        lines.append(f"    {'+ CUDA context, NCCL':<28} {gib(estimate.overhead_bytes):>10}")
        lines.append(f"    {'= peak (nvidia-smi)':<28} {gib(estimate.peak_bytes):>10}")
        lines.append(f"    {'  real runs (error band)':<28} {gib(estimate.peak_low_bytes)} – "
                     f"{gib(estimate.peak_high_bytes)}  ({estimate.band})")
    for verdict in config.verdicts:
        sizing = ""
        if verdict.max_batch_size is not None or verdict.max_cutoff_len is not None:
            sizing = (f"; largest batch {verdict.max_batch_size or '—'}, largest cutoff_len "
                      f"{verdict.max_cutoff_len or '—'}")
        min_gpus: object = verdict.min_gpus
        if min_gpus is None:
            sharded = int(config.plan.get("zero_stage") or 0) > 0
            min_gpus = (f"more than the pool's {verdict.gpus}" if sharded
                        else "none: without ZeRO every GPU holds the whole model state")
        role = "" if verdict is config.target else ", comparison"
        if verdict.verdict == "unknown":
            lines.append(f"  pool {verdict.pool} ({verdict.gpus}× {verdict.gpu}{role}): {LABEL['unknown']} — "
                         f"{gib(verdict.capacity_bytes)} usable per GPU; not modelled, no verdict")
            continue
        lines.append(f"  pool {verdict.pool} ({verdict.gpus}× {verdict.gpu}{role}): {LABEL[verdict.verdict]} — "
                     f"{gib_range(verdict.peak_bytes, *verdict.peak_range_bytes)} of {gib(verdict.capacity_bytes)} "
                     "usable per GPU "
                     f"({signed_gib(verdict.headroom_bytes)} left); min GPUs {min_gpus}{sizing}")
    if config.base_delta is not None:
        what = ", ".join(config.base_changes) or "no memory-relevant key changed"
        lines.append(f"  vs base: {signed_gib(config.base_delta)} per GPU ({what})")
    for finding in config.findings:
        where = f"line {finding.line}: " if finding.line else ""
        lines.append(f"  {finding.severity}: {where}{finding.message} [{finding.rule}]")
    for suggestion in config.suggestions:
        changes = ", ".join(f"{k}: {str(v).lower() if isinstance(v, bool) else v}"
                            for k, v in suggestion.changes.items())
        lines.append(f"  suggestion ({LABEL[suggestion.verdict]}, {gib(suggestion.peak_bytes)}): {changes}")
        lines.append(f"      {suggestion.why}. Cost: {suggestion.cost}.")
    if estimate is not None and estimate.assumptions:
        lines.append("  assumptions: " + "; ".join(estimate.assumptions))
    return lines


def render_text(report: RunReport) -> str:
    lines: list[str] = []
    for note in report.notes:
        lines.append(f"note: {note}")
    if not report.configs:
        lines.append("No training configs to check.")
    for config in report.configs:
        if lines:
            lines.append("")
        lines.extend(render_config(config))
    if len(report.configs) > 1:
        counts = ", ".join(f"{report.count(status)} {status}" for status in ("error", "no-fit", "unknown", "tight")
                           if report.count(status))
        lines += ["", f"overall: {LABEL[report.overall]} ({len(report.configs)} configs"
                      + (f"; {counts})" if counts else ")")]
    return escape.terminal("\n".join(lines) + "\n", lines=True)
