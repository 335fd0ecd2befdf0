"""Memory sizes as logs print them ("12.94 GiB", "316.12 MiB", "0 bytes") and as we show them."""

from __future__ import annotations

from estimator.units import GiB, MiB

# PyTorch's allocator messages use binary units (torch/csrc: format_size divides by 1024);
# DeepSpeed's see_memory_usage prints "GB" for bytes / 1024**3, so GB/MB/KB are read as binary too.
_UNIT_BYTES = {
    "b": 1,
    "byte": 1,
    "bytes": 1,
    "k": 1 << 10,
    "kb": 1 << 10,
    "kib": 1 << 10,
    "m": MiB,
    "mb": MiB,
    "mib": MiB,
    "g": GiB,
    "gb": GiB,
    "gib": GiB,
    "t": 1 << 40,
    "tb": 1 << 40,
    "tib": 1 << 40,
    "p": 1 << 50,
    "pb": 1 << 50,
    "pib": 1 << 50,
}

# starts only where a number starts and never gives digits back (possessive): linear on any text, where a
# plain (\d+...) tried every position inside a long run of digits (quadratic)
SIZE_PATTERN = r"(?<![\d.])(\d++(?:\.\d++)?)\s*+(bytes|byte|[KMGTP]i?B|[KMGTP]\b|B\b)"


def size_to_bytes(value: str, unit: str) -> int:
    """'12.94', 'GiB' -> 13894019153 (value × 2**30, rounded to a whole byte)."""
    return round(float(value) * _UNIT_BYTES[unit.lower()])


def format_bytes(n: int | None) -> str:
    """GiB with one decimal from 1 GiB up; whole MiB below, where 0.1 GiB steps would hide the number."""
    if n is None:
        return "n/a"
    if abs(n) >= GiB:
        return f"{n / GiB:.1f} GiB"
    return f"{n / MiB:.0f} MiB"
