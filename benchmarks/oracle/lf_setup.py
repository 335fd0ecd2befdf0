"""Prepare a transformers model the way LLaMA-Factory (v0.9.5 / HEAD ff6d4d1) prepares it for training.

Each step cites the LF code it follows (research note llamafactory.md §3):

1. load dtype: ``torch_dtype="auto"`` -> the checkpoint's own dtype from config.json
   (``model/loader.py``; LF >= 0.9.4).  No ``torch_dtype`` in the config -> float32.
2. gradient checkpointing (``model/model_utils/checkpointing.py::prepare_model_for_training``): on
   unless ``disable_gradient_checkpointing``; ``torch.utils.checkpoint`` with ``use_reentrant=True``;
   only layers holding a trainable parameter are checkpointed, and the layer's first floating
   tensor argument (the hidden states) gets ``requires_grad_(True)`` first.
3. ``model/adapter.py::init_adapter``: full -> all params trainable; freeze -> the last
   ``freeze_trainable_layers`` (default 2) decoder layers trainable; lora -> PEFT LoRA on every
   ``nn.Linear`` of the decoder except ``lm_head`` (``lora_target: all``); then every trainable
   parameter is cast to float32 unless ``pure_bf16`` (the ZeRO-3/BAdam exceptions are not traced).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import transformers
from torch import nn
from torch.utils.checkpoint import checkpoint

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


@dataclass(frozen=True)
class Method:
    finetuning_type: str = "full"  # full | freeze | lora
    pure_bf16: bool = False
    bf16: bool = True  # HF Trainer bf16 AMP (autocast); False under pure_bf16
    gradient_checkpointing: bool = True
    attention: str = "sdpa"  # sdpa | eager | fa2
    lora_rank: int = 8
    lora_alpha: int = 16
    freeze_trainable_layers: int = 2


def checkpoint_dtype(config: transformers.PretrainedConfig) -> torch.dtype:
    """LF >= 0.9.4 loads with torch_dtype="auto": the dtype written in config.json (else float32)."""
    name = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if isinstance(name, torch.dtype):
        return name
    return DTYPES.get(str(name), torch.float32)


def _layer_of(func: Callable[..., Any]) -> nn.Module:
    """The decoder layer a checkpointed call belongs to (HF passes partial(forward, layer, **kw))."""
    target = func.func if isinstance(func, functools.partial) else func
    owner = getattr(target, "__self__", None)
    if owner is None and isinstance(func, functools.partial) and func.args:
        owner = func.args[0]
    if not isinstance(owner, nn.Module):
        raise TypeError(f"cannot find the module of checkpointed call {func!r}")
    return owner


def lf_gradient_checkpointing_func(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """LF's ``custom_gradient_checkpointing_func`` semantics over reentrant torch checkpointing."""
    layer = _layer_of(func)
    if not any(p.requires_grad for p in layer.parameters()):
        return func(*args, **kwargs)
    for arg in args:
        if torch.is_tensor(arg) and torch.is_floating_point(arg):
            arg.requires_grad_(True)
            break
    return checkpoint(func, *args, use_reentrant=True, **kwargs)


def enable_lf_gradient_checkpointing(model: nn.Module) -> None:
    model._set_gradient_checkpointing(  # type: ignore[operator]
        enable=True, gradient_checkpointing_func=lf_gradient_checkpointing_func
    )
    model.config.use_cache = False  # type: ignore[union-attr]


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    best: nn.ModuleList | None = None
    for name, module in model.named_modules():
        is_layers = isinstance(module, nn.ModuleList) and name.endswith("layers") and "visual" not in name
        if is_layers and (best is None or len(module) > len(best)):
            best = module
    if best is None:
        raise ValueError("no decoder layer list found")
    return best


def setup_freeze(model: nn.Module, trainable_layers: int) -> None:
    """LF ``_setup_freeze_tuning``: last N layers (all their modules) trainable, the rest frozen."""
    layers = decoder_layers(model)
    trainable = {id(p) for layer in list(layers)[max(0, len(layers) - trainable_layers) :] for p in layer.parameters()}
    for param in model.parameters():
        param.requires_grad_(id(param) in trainable)


def lora_target_modules(model: nn.Module) -> list[str]:
    """LF ``find_all_linear_modules``: every nn.Linear leaf name except the output layer."""
    names = set()
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and not name.endswith("lm_head") and "visual" not in name:
            names.add(name.split(".")[-1])
    return sorted(names)


def setup_lora(model: nn.Module, method: Method) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    from benchmarks.oracle.patches import module_to_without_swap

    config = LoraConfig(
        r=method.lora_rank,
        lora_alpha=method.lora_alpha,
        lora_dropout=0.0,
        target_modules=lora_target_modules(model),
        task_type="CAUSAL_LM",
    )
    with module_to_without_swap():
        return get_peft_model(model, config)  # type: ignore[no-any-return]


def cast_trainable_to_fp32(model: nn.Module) -> None:
    for param in model.parameters():
        if param.requires_grad:
            param.data = param.data.to(torch.float32)


def prepare(model: nn.Module, method: Method) -> nn.Module:
    """Steps 2-3 above on an already-built model (step 1 is the build dtype)."""
    if method.gradient_checkpointing:
        enable_lf_gradient_checkpointing(model)
    if method.finetuning_type == "full":
        for param in model.parameters():
            param.requires_grad_(True)
    elif method.finetuning_type == "freeze":
        setup_freeze(model, method.freeze_trainable_layers)
    elif method.finetuning_type == "lora":
        for param in model.parameters():
            param.requires_grad_(False)
        model = setup_lora(model, method)
    else:
        raise ValueError(f"unsupported finetuning_type {method.finetuning_type!r}")
    if not method.pure_bf16:
        cast_trainable_to_fp32(model)
    return model
