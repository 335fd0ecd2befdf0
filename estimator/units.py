"""How sizes are shown to users: GiB (2^30 bytes) with one decimal."""

from __future__ import annotations

MiB = 1 << 20
GiB = 1 << 30


def gib(size: int | float) -> str:
    """Bytes → '12.3 GiB'."""
    return f"{size / GiB:.1f} GiB"


def signed_gib(size: int | float) -> str:
    """A change or a margin: '+1.2 GiB', '−0.4 GiB', '±0.0 GiB'."""
    sign = "+" if size > 0 else "−" if size < 0 else "±"
    return f"{sign}{abs(size) / GiB:.1f} GiB"


def gib_range(value: int, low: int, high: int) -> str:
    """A peak with its error band: '31.2 GiB (29.5–34.0)'."""
    return f"{value / GiB:.1f} GiB ({low / GiB:.1f}–{high / GiB:.1f})"
