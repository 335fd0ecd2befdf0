"""Measured peaks a run logs about itself, folded into a running maximum (constant memory).

- LLaMA-Factory with RECORD_VRAM=1: trainer_log.jsonl lines carry "vram_allocated"/"vram_reserved",
  torch.cuda.max_memory_allocated()/max_memory_reserved() in GiB (LF extras/misc.py get_peak_memory).
- DeepSpeed see_memory_usage: "MA x GB Max_MA x GB CA x GB Max_CA x GB" (bytes / 1024**3, labelled GB);
  DeepSpeed's timer lines: "MaxMemAllocated=x GB".
- nvidia-smi tables and similar: "12345MiB / 81559MiB".
"""

from __future__ import annotations

import json
import re

from estimator.units import GiB, MiB
from rules.diagnose.diagnosis import MeasuredPeaks

_SMI_RE = re.compile(r"(?<!\d)(\d++)\s*+MiB\s*+/\s*+(\d++)\s*+MiB")  # anchored, possessive: linear
_DS_MEM_RE = re.compile(r"Max_MA\s+([\d.]+)\s*GB.*?Max_CA\s+([\d.]+)\s*GB")
_DS_TIMER_RE = re.compile(r"MaxMemAllocated=([\d.]+)\s*GB")


def _raise(peaks: MeasuredPeaks, name: str, value: int, source: str) -> None:
    current = getattr(peaks, name)
    if current is None or value > current:
        setattr(peaks, name, value)
    if source not in peaks.sources:
        peaks.sources.append(source)
    peaks.samples += 1


def _from_trainer_log(peaks: MeasuredPeaks, line: str) -> None:
    start = line.find("{")
    try:
        record = json.loads(line[start:])
    except ValueError:
        return
    if not isinstance(record, dict):
        return
    for key, name in (("vram_allocated", "allocated_bytes"), ("vram_reserved", "reserved_bytes")):
        value = record.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            _raise(peaks, name, round(value * GiB), "trainer_log.jsonl (RECORD_VRAM)")


def fold_line(peaks: MeasuredPeaks, line: str) -> None:
    """Update the running maxima with whatever the line reports."""
    if '"vram_' in line:
        _from_trainer_log(peaks, line)
        return
    if "MiB" in line:
        smi = _SMI_RE.search(line)
        if smi is not None:
            used, total = int(smi.group(1)) * MiB, int(smi.group(2)) * MiB
            if total > 0 and used <= total:
                _raise(peaks, "device_used_bytes", used, "nvidia-smi")
                if peaks.device_total_bytes is None or total > peaks.device_total_bytes:
                    peaks.device_total_bytes = total
            return
    if "Max_MA" in line:
        ds = _DS_MEM_RE.search(line)
        if ds is not None:
            _raise(peaks, "allocated_bytes", round(float(ds.group(1)) * GiB), "DeepSpeed see_memory_usage")
            _raise(peaks, "reserved_bytes", round(float(ds.group(2)) * GiB), "DeepSpeed see_memory_usage")
        return
    if "MaxMemAllocated=" in line:
        timer = _DS_TIMER_RE.search(line)
        if timer is not None:
            _raise(peaks, "allocated_bytes", round(float(timer.group(1)) * GiB), "DeepSpeed timer")
