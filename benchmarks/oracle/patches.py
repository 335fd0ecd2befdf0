"""The one transformers patch the fake-'cpu' trace needs (research note trace.md, error 6).

``masking_utils.find_packed_sequence_indices`` treats a FakeTensor as "tracing" and returns a
packed-sequence index tensor, so ``create_causal_mask`` builds a dense [B, 1, L, L] mask and SDPA
runs with a mask instead of the causal fast path.  No exception, just wrong memory.  On a real GPU
the unpadded position ids 0..L-1 give ``None`` (one sequence per row); the patch returns that
answer for fake and meta position ids.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch._subclasses.fake_tensor import is_fake
from transformers import masking_utils

_original = masking_utils.find_packed_sequence_indices


def _find_packed_sequence_indices(position_ids: torch.Tensor) -> Any:
    if is_fake(position_ids) or position_ids.device.type == "meta":
        return None  # one unpadded sequence per row: what the real tensors give
    return _original(position_ids)


def apply() -> None:
    masking_utils.find_packed_sequence_indices = _find_packed_sequence_indices


def _to_by_data(module: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
    device, dtype, non_blocking, _ = torch._C._nn._parse_to(*args, **kwargs)
    for sub in module.modules():
        for tensor in [*sub._parameters.values(), *sub._buffers.values()]:
            if tensor is None:
                continue
            cast = dtype if dtype is not None and (tensor.is_floating_point() or tensor.is_complex()) else None
            tensor.data = tensor.data.to(device=device, dtype=cast, non_blocking=non_blocking)
    return module


@contextlib.contextmanager
def module_to_without_swap() -> Iterator[None]:
    """``Module.to`` swaps FakeTensor params with ``torch.utils.swap_tensors``, which fails
    ("Cannot swap ... weakref": FakeTensorMode memoizes fake tensors by weakref).  PEFT calls
    ``.to(device, dtype)`` on new adapter modules; inside this context ``Module.to`` assigns
    ``param.data`` instead, which is what it does for ordinary tensors (same bytes, same dtypes)."""
    original = torch.nn.Module.to
    torch.nn.Module.to = _to_by_data  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        torch.nn.Module.to = original  # type: ignore[method-assign]
