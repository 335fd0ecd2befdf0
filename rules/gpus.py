"""The GPU catalog: memory a training process can really use, and what each GPU supports.

Data lives in rules/data/gpus.json (each entry cites where its numbers come from; see SOURCES.md).
Names are matched forgivingly: "a100-80g", "A100 80GB", "NVIDIA A100-SXM4-80GB" and "4090" all
resolve; an ambiguous family ("h100", "a100") resolves to its most common training SKU and says so.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from estimator.errors import InputError
from estimator.source import describe
from estimator.units import GiB, MiB

# The family token of every catalogued GPU; longer alternatives first so "a100" wins over "a10",
# "h200" over "h20", "l40s" over "l40" over "l4", "4090d" over "4090".
_FAMILY = re.compile(
    r"(mi300x|910b|b200|h200|h100|h800|h20|a100|a800|a6000|a10g|a10|l40s|l40|l20|l4|4090d|4090|3090|v100|t4)"
)
_MEMORY = re.compile(r"(\d+)g")
_FORMS = ("nvl", "sxm", "pcie")

# When a family has several SKUs and the name does not say which, the one LLaMA-Factory users
# most often train on (cloud and cluster offerings are SXM boards).
_DEFAULT_SKU = {
    "a100": "A100-80GB-SXM",
    "h100": "H100-SXM",
    "v100": "V100-32GB",
}


@dataclass(frozen=True)
class GPU:
    """One accelerator model: capacities in bytes, capabilities as the catalog records them."""

    name: str
    vendor: str  # "nvidia" | "amd" | "huawei" | "custom"
    nominal_bytes: int  # the marketed capacity ("80GB" → 80 × 2^30 bytes)
    total_bytes: int  # what nvidia-smi / npu-smi / rocm-smi prints as total
    usable_bytes: int  # what a process can allocate: cudaMemGetInfo total (PyTorch's "total capacity")
    compute_capability: tuple[int, int] | None
    bf16: bool | None  # None: unknown (custom pool)
    flash_attention_2: bool | None
    flash_attention_3: bool | None
    source: str
    note: str = ""

    @property
    def usable_gib(self) -> float:
        return self.usable_bytes / GiB

    @property
    def describe(self) -> str:
        """'A100-80GB-SXM (79.1 GiB usable)' — the name with its basis, for reports."""
        return f"{self.name} ({self.usable_gib:.1f} GiB usable)"


@dataclass(frozen=True)
class GpuMatch:
    """The GPU a user-typed name resolved to, and a note when the name was ambiguous."""

    gpu: GPU
    note: str | None


def _capabilities(vendor: str, cc: tuple[int, int] | None) -> tuple[bool, bool, bool, str]:
    """bf16, FA2, FA3 support and a note, from the vendor and compute capability."""
    if vendor == "nvidia" and cc is not None:
        # bf16 tensor cores and FlashAttention-2 need Ampere or newer (sm_80+, flash-attn README);
        # FlashAttention-3 is Hopper-only (sm_90, flash-attn "hopper/" README).
        ampere_or_newer = cc >= (8, 0)
        note = "" if cc < (10, 0) else "FlashAttention-2 needs a flash-attn build for sm_100 (CUDA >= 12.8)"
        return ampere_or_newer, ampere_or_newer, cc == (9, 0), note
    if vendor == "amd":
        # ROCm/flash-attention (CK backend) supports MI200/MI300 (gfx90a/gfx942); no FA3.
        return True, True, False, "FlashAttention-2 through the ROCm/flash-attention build"
    if vendor == "huawei":
        # Ascend NPUs support bf16; the flash-attn package does not run on them, but LLaMA-Factory
        # accepts flash_attn: fa2 on NPU (model_utils/attention.py) and transformers routes it to
        # torch_npu's fused attention.
        return True, True, False, "flash_attn: fa2 runs torch_npu's fused attention (no flash-attn package)"
    return False, False, False, ""


def _gpu_from_entry(entry: dict[str, Any]) -> GPU:
    cc = tuple(entry["cc"]) if entry["cc"] is not None else None
    compute_capability = (int(cc[0]), int(cc[1])) if cc is not None else None
    bf16, fa2, fa3, note = _capabilities(entry["vendor"], compute_capability)
    return GPU(
        name=entry["name"],
        vendor=entry["vendor"],
        nominal_bytes=int(entry["nominal_gb"]) * GiB,
        total_bytes=int(entry["smi_total_mib"]) * MiB,
        usable_bytes=int(entry["usable_mib"]) * MiB,
        compute_capability=compute_capability,
        bf16=bf16,
        flash_attention_2=fa2,
        flash_attention_3=fa3,
        source=entry["source"],
        note=note,
    )


@cache
def _catalog() -> tuple[tuple[GPU, tuple[str, ...]], ...]:
    text = resources.files("rules").joinpath("data/gpus.json").read_text(encoding="utf-8")
    entries = json.loads(text)["gpus"]
    return tuple((_gpu_from_entry(e), tuple(e["aliases"])) for e in entries)


def catalog() -> tuple[GPU, ...]:
    """Every catalogued GPU, in catalog order."""
    return tuple(gpu for gpu, _ in _catalog())


MAX_GPU_NAME_CHARS = 80


def _normalize(name: str) -> str:
    """Lower-case, vendor words dropped, "GB"/"GiB" → "g", SXM2/4/5 → "sxm", only letters and digits."""
    text = name.lower()
    text = re.sub(r"\b(nvidia|tesla|geforce|graphics|amd|instinct|huawei|hbm\d?e?)\b", " ", text)
    text = re.sub(r"(\d+)\s*(gib|gb|g)\b", r"\1g", text)
    text = re.sub(r"sxm\d", "sxm", text)
    return re.sub(r"[^a-z0-9]", "", text)


@cache
def _alias_index() -> dict[str, GPU]:
    index: dict[str, GPU] = {}
    for gpu, aliases in _catalog():
        for alias in (gpu.name, *aliases):
            index.setdefault(_normalize(alias), gpu)
    return index


def _family_of(gpu: GPU) -> str:
    found = _FAMILY.search(_normalize(gpu.name))
    return found.group(1) if found else _normalize(gpu.name)


def _form_of(gpu: GPU) -> str | None:
    key = _normalize(gpu.name)
    return next((form for form in _FORMS if form in key), None)


def _unknown(name: str, family: list[GPU] | None = None) -> InputError:
    if family:
        suggestions = ", ".join(gpu.name for gpu in family[:3])
    else:
        by_key = {_normalize(gpu.name): gpu.name for gpu in catalog()}
        close = difflib.get_close_matches(_normalize(name), list(by_key), n=3, cutoff=0.0)
        suggestions = ", ".join(by_key[key] for key in close)
    return InputError(f"unknown GPU {describe(name)}; closest catalog names: {suggestions} "
                      "(or give the pool memory_gib: instead)")


def match_gpu(name: str) -> GpuMatch:
    """Resolve a user-typed GPU name; ambiguous names pick the family's most common SKU, with a note."""
    if len(name) > MAX_GPU_NAME_CHARS:  # the catalog's longest alias is ~40; nothing longer is a GPU name
        raise InputError(f"unknown GPU {describe(name)}: longer than {MAX_GPU_NAME_CHARS} characters")
    key = _normalize(name)
    if not key:
        raise InputError("empty GPU name")
    found = _FAMILY.search(key)
    if found is not None:
        family = found.group(1)
        rest = key[found.end():] + key[:found.start()]
        members = [gpu for gpu in catalog() if _family_of(gpu) == family]
        candidates = members
        memory = _MEMORY.search(rest)
        if memory is not None:
            gib = int(memory.group(1))
            candidates = [gpu for gpu in candidates if round(gpu.nominal_bytes / GiB) == gib]
        form = next((f for f in _FORMS if f in rest), None)
        if form is not None:
            candidates = [gpu for gpu in candidates if _form_of(gpu) in (form, None)]
        if candidates:
            default_name = _DEFAULT_SKU.get(family)
            chosen = next((gpu for gpu in candidates if gpu.name == default_name), candidates[0])
            # Only worth a note when the SKUs the name could mean differ in usable memory.
            ambiguous = len({gpu.usable_bytes for gpu in candidates}) > 1
            return GpuMatch(chosen, _ambiguity_note(name, chosen, candidates) if ambiguous else None)
        if key not in _alias_index():
            raise _unknown(name, members)
    exact = _alias_index().get(key)
    if exact is None:
        raise _unknown(name)
    return GpuMatch(exact, None)


def _ambiguity_note(name: str, chosen: GPU, candidates: list[GPU]) -> str:
    others = ", ".join(f"{g.name} {g.usable_gib:.1f} GiB" for g in candidates if g is not chosen)
    return (f"GPU '{name}' is ambiguous; assuming {chosen.name} ({chosen.usable_gib:.1f} GiB usable), "
            f"the most common training SKU (others: {others}); name the SKU to silence this note")


def find_gpu(name: str) -> GPU:
    """The catalog GPU for a forgiving name; InputError listing the 3 closest names if unknown."""
    return match_gpu(name).gpu


def custom_gpu(memory_gib: float) -> GPU:
    """A pool that declares its usable memory directly (`memory_gib:`); capabilities unknown."""
    if not memory_gib > 0:
        raise InputError(f"memory_gib must be a positive number of GiB, got {memory_gib}")
    usable = int(memory_gib * GiB)
    return GPU(
        name=f"{memory_gib:g}GiB",
        vendor="custom",
        nominal_bytes=usable,
        total_bytes=usable,
        usable_bytes=usable,
        compute_capability=None,
        bf16=None,
        flash_attention_2=None,
        flash_attention_3=None,
        source="declared by the policy (memory_gib)",
    )
