"""Show a Diagnosis as plain text, Markdown (pull-request comments) or JSON (all sizes in bytes).

A diagnosis quotes the pasted log (device names, frames, source lines, model ids): in Markdown each quote
goes through bot.render.escape, in text through escape.terminal.
"""

from __future__ import annotations

import json
from typing import Any

from bot.render import escape
from rules.diagnose.diagnosis import Diagnosis, OomEvent
from rules.diagnose.phases import PHASE_LABELS
from rules.diagnose.sizes import format_bytes

SCHEMA = 1
MAX_GROUPS_SHOWN = 10


def _groups(diagnosis: Diagnosis) -> list[list[OomEvent]]:
    """Events folded together when several ranks hit the same OOM."""
    groups: list[list[OomEvent]] = []
    for event in diagnosis.events:
        for group in groups:
            if group[0].same_failure(event):
                group.append(event)
                break
        else:
            groups.append([event])
    return groups


def _where(group: list[OomEvent]) -> str:
    first = group[0]
    device = first.device or first.kind.upper()
    indexes = sorted({e.device_index for e in group if e.device_index is not None})
    index = f" {', '.join(map(str, indexes))}" if indexes else ""
    ranks = sorted({e.rank for e in group if e.rank is not None})
    on_ranks = (
        f", ranks {', '.join(map(str, ranks))}" if len(ranks) > 1 else (f", rank {ranks[0]}" if ranks else "")
    )
    lines = ", ".join(str(e.line) for e in group[:5]) + (" …" if len(group) > 5 else "")
    return f"{device}{index}{on_ranks} (log line {lines})"


def _numbers(event: OomEvent) -> list[tuple[str, int | None]]:
    return [
        ("asked for", event.requested_bytes),
        ("device capacity", event.capacity_bytes),
        ("free on the device", event.free_bytes),
        ("in use by the process", event.process_in_use_bytes),
        ("allocated by PyTorch", event.allocated_bytes),
        ("reserved by PyTorch", event.reserved_bytes),
        ("reserved but unallocated", event.reserved_unallocated_bytes),
    ]


def _innermost(event: OomEvent) -> str:
    if not event.frames:
        return ""
    frame = event.frames[-1]
    code = f": {frame.code}" if frame.code else ""
    return f"{frame.describe()}{code}"


def _headline(diagnosis: Diagnosis) -> str:
    if not diagnosis.events:
        return "No out-of-memory error found in the log."
    count = len(diagnosis.events) + diagnosis.events_dropped
    groups = _groups(diagnosis)
    phases = sorted({PHASE_LABELS[g[0].phase] for g in groups})
    return f"{count} out-of-memory error{'s' if count != 1 else ''} found; phase: {', '.join(phases)}."


def _peaks_lines(diagnosis: Diagnosis) -> list[str]:
    peaks = diagnosis.peaks
    if not peaks.found:
        return [
            "No measured peaks in the log (LLaMA-Factory logs them with RECORD_VRAM=1; nvidia-smi "
            "lines and DeepSpeed memory lines are read too)."
        ]
    lines = []
    if peaks.allocated_bytes is not None:
        lines.append(f"max allocated {format_bytes(peaks.allocated_bytes)}")
    if peaks.reserved_bytes is not None:
        lines.append(f"max reserved {format_bytes(peaks.reserved_bytes)}")
    if peaks.device_used_bytes is not None:
        total = f" of {format_bytes(peaks.device_total_bytes)}" if peaks.device_total_bytes else ""
        lines.append(f"max device memory used {format_bytes(peaks.device_used_bytes)}{total}")
    return [
        f"Measured peaks ({', '.join(peaks.sources)}; {peaks.samples} samples): " + "; ".join(lines) + "."
    ]


def _comparison_rows(diagnosis: Diagnosis) -> list[tuple[str, str, str, str]]:
    comparison = diagnosis.comparison
    if comparison is None:
        return []
    rows = []
    for what, estimated, measured in comparison.rows:
        error = f"{100 * (estimated - measured) / measured:+.0f}%" if measured else "n/a"
        rows.append((what, format_bytes(estimated), format_bytes(measured), error))
    return rows


def render_text(diagnosis: Diagnosis) -> str:
    out = [
        f"vram-check diagnose: {diagnosis.source} ({diagnosis.lines_read:,} lines read)",
        _headline(diagnosis),
    ]
    groups = _groups(diagnosis)
    for number, group in enumerate(groups[:MAX_GROUPS_SHOWN], start=1):
        event = group[0]
        out.append("")
        out.append(
            f"OOM {number}: {event.kind.upper()} out of memory on {_where(group)}, "
            f"phase: {PHASE_LABELS[event.phase]}"
        )
        numbers = [f"{label} {format_bytes(value)}" for label, value in _numbers(event) if value is not None]
        if numbers:
            out.append("  " + "; ".join(numbers))
        if _innermost(event):
            out.append(f"  died in {_innermost(event)}")
        for cause in event.causes:
            out.append(f"  - {cause.message}")
    if len(groups) > MAX_GROUPS_SHOWN:
        out.append(f"… {len(groups) - MAX_GROUPS_SHOWN} more distinct OOMs (see --format json).")
    out.append("")
    out.extend(_peaks_lines(diagnosis))
    comparison = diagnosis.comparison
    if comparison is not None:
        out.append("")
        out.append(
            f"Estimate for {comparison.model_id}"
            + (f" on {comparison.gpu}" if comparison.gpu else "")
            + f": peak {format_bytes(comparison.estimated_peak_bytes)} per GPU."
        )
        for what, estimated, measured, error in _comparison_rows(diagnosis):
            out.append(f"  {what}: estimated {estimated}, measured {measured}, error {error}")
        for suggestion in comparison.suggestions:
            out.append(f"  suggestion ({suggestion.get('verdict')}, {_size(suggestion.get('peak_bytes'))}): "
                       f"{_changes(suggestion.get('changes'))} — {suggestion.get('why', '')}")
        out.extend(f"  note: {note}" for note in comparison.notes)
    out.extend(diagnosis.notes)
    return escape.terminal("\n".join(out) + "\n", lines=True)


def render_markdown(diagnosis: Diagnosis) -> str:
    """The bot's answer to `/vram-check diagnose` and the CLI's --format markdown."""
    out = ["### vram-check diagnose", "", f"**{_headline(diagnosis)}**", ""]
    groups = _groups(diagnosis)
    for number, group in enumerate(groups[:MAX_GROUPS_SHOWN], start=1):
        event = group[0]
        out.append(
            f"#### OOM {number}: {PHASE_LABELS[event.phase]} — {event.kind.upper()} on {escape.text(_where(group))}"
        )
        out.append("")
        rows = [(label, format_bytes(value)) for label, value in _numbers(event) if value is not None]
        if rows:
            out.extend(["| | |", "|---|---:|", *[f"| {label} | {value} |" for label, value in rows], ""])
        if _innermost(event):
            out.extend([f"Died in {escape.code(_innermost(event), width=300)}", ""])
        if event.causes:
            out.append("Likely causes:")
            out.extend(f"- {escape.text(cause.message)}" for cause in event.causes)
            out.append("")
    out.extend(_peaks_lines(diagnosis))
    comparison = diagnosis.comparison
    if comparison is not None:
        out.extend(
            [
                "",
                f"**Estimate vs measured** ({escape.text(comparison.model_id)}"
                + (f", {escape.text(comparison.gpu)}" if comparison.gpu else "")
                + ")",
                "",
                "| | estimated | measured | error |",
                "|---|---:|---:|---:|",
            ]
        )
        out.extend(
            f"| {what} | {est} | {meas} | {err} |" for what, est, meas, err in _comparison_rows(diagnosis)
        )
        if not comparison.rows:
            out.append(f"| peak per GPU | {format_bytes(comparison.estimated_peak_bytes)} | n/a | n/a |")
        out.extend(f"- suggestion ({escape.text(s.get('verdict'))}, {_size(s.get('peak_bytes'))}): "
                   f"{escape.code(_changes(s.get('changes')))} — {escape.text(s.get('why', ''))}"
                   for s in comparison.suggestions)
        out.extend(f"- note: {escape.text(note)}" for note in comparison.notes)
    out.extend(f"\n{escape.text(note)}" for note in diagnosis.notes)
    return "\n".join(out).rstrip() + "\n"


def _event_json(event: OomEvent) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "line": event.line,
        "rank": event.rank,
        "exception": event.exception,
        "device": event.device,
        "device_index": event.device_index,
        "complete": event.complete,
        "requested_bytes": event.requested_bytes,
        "capacity_bytes": event.capacity_bytes,
        "free_bytes": event.free_bytes,
        "allowed_bytes": event.allowed_bytes,
        "process_in_use_bytes": event.process_in_use_bytes,
        "allocated_bytes": event.allocated_bytes,
        "reserved_bytes": event.reserved_bytes,
        "reserved_unallocated_bytes": event.reserved_unallocated_bytes,
        "phase": event.phase,
        "phase_evidence": event.phase_evidence,
        "frames": [
            {"file": f.file, "line": f.line, "function": f.function, "code": f.code} for f in event.frames
        ],
        "causes": [{"id": c.id, "message": c.message} for c in event.causes],
        "message": event.message[:2000],
    }


def to_json_dict(diagnosis: Diagnosis) -> dict[str, Any]:
    peaks = diagnosis.peaks
    comparison = diagnosis.comparison
    return {
        "schema": SCHEMA,
        "source": diagnosis.source,
        "lines_read": diagnosis.lines_read,
        "oom_found": diagnosis.oom_found,
        "oom_events": [_event_json(e) for e in diagnosis.events],
        "oom_events_dropped": diagnosis.events_dropped,
        "measured_peaks": {
            "allocated_bytes": peaks.allocated_bytes,
            "reserved_bytes": peaks.reserved_bytes,
            "device_used_bytes": peaks.device_used_bytes,
            "device_total_bytes": peaks.device_total_bytes,
            "sources": peaks.sources,
            "samples": peaks.samples,
        },
        "run": {
            "settings": diagnosis.context.settings,
            "trainable_params": diagnosis.context.trainable_params,
            "fp32_upcast_logged": diagnosis.context.fp32_upcast_logged,
            "deepspeed": diagnosis.context.deepspeed,
            "zero_stage": diagnosis.context.zero_stage,
            "preference_stage": diagnosis.context.preference_stage,
        },
        "estimate": None
        if comparison is None
        else {
            "model": comparison.model_id,
            "gpu": comparison.gpu,
            "capacity_bytes": comparison.capacity_bytes,
            "peak_bytes": comparison.estimated_peak_bytes,
            "allocated_bytes": comparison.estimated_allocated_bytes,
            "reserved_bytes": comparison.estimated_reserved_bytes,
            "components": comparison.components,
            "vs_measured": [
                {"what": w, "estimated_bytes": e, "measured_bytes": m} for w, e, m in comparison.rows
            ],
            "suggestions": comparison.suggestions,
            "notes": comparison.notes,
        },
        "notes": diagnosis.notes,
    }


def render_json(diagnosis: Diagnosis) -> str:
    return json.dumps(to_json_dict(diagnosis), indent=2, ensure_ascii=False) + "\n"


def _changes(changes: object) -> str:
    """{'cutoff_len': 1024, 'liger': True} → 'cutoff_len: 1024, liger: true' (as the YAML would read)."""
    if not isinstance(changes, dict):
        return str(changes)
    return ", ".join(f"{key}: {str(value).lower() if isinstance(value, bool) else value}"
                     for key, value in changes.items())


def _size(value: object) -> str:
    return format_bytes(value) if isinstance(value, int) else "?"
