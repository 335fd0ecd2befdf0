"""Trace the peak tensor memory of LLaMA-Factory training steps on fake tensors.

The real transformers model is built from a config.json under ``FakeTensorMode`` (fake ``cpu``
device: shapes and dtypes only, nothing allocated), prepared as LLaMA-Factory prepares it
(``lf_setup``), and run for ``steps`` training steps the way HF Trainer runs them:

* forward: ``model(input_ids=..., labels=...)`` -> HF's causal-LM loss (``ForCausalLMLoss``:
  logits ``.float()``, cross-entropy over every position); with ``bf16`` AMP the forward runs under
  ``torch.autocast(dtype=bfloat16)`` and accelerate's ``convert_outputs_to_fp32`` wraps it, as
  ``Accelerator.prepare_model`` does for ``mixed_precision="bf16"``;
* backward: ``loss.backward()`` after the outputs are dropped (``Trainer.compute_loss`` returns
  only the loss);
* optimizer: ``clip_grad_norm_(max_norm=1.0, foreach=True)`` (LF/HF default ``max_grad_norm``),
  ``torch.optim.AdamW(fused=True)`` (HF ``adamw_torch_fused``, the Trainer default on torch>=2.8;
  passed explicitly because under fake tensors the default silently picks the single-tensor
  path, trace.md §4), then ``zero_grad(set_to_none=True)``.

Batches are unpadded rows of exactly ``cutoff_len`` tokens (no attention_mask, as a packed or
full-length batch; the worst case the estimator assumes).  ``LiveStorageTracker`` records the
peak of live storage bytes per phase (fwd/bwd/opt of each step); step 2 is the steady state.

Usage: ``python -m benchmarks.oracle.trace CONFIG.json --method full --attention sdpa --gc 1
--batch 1 --cutoff 2048 [--layers N] [--pure-bf16] [--no-amp]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import transformers
from torch._subclasses.fake_tensor import FakeTensorMode

from benchmarks.oracle import fake_flash, patches
from benchmarks.oracle.lf_setup import Method, checkpoint_dtype, prepare
from benchmarks.oracle.tracker import LiveStorageTracker, tracking

ATTN_IMPLEMENTATION = {"sdpa": "sdpa", "eager": "eager", "fa2": fake_flash.NAME}


@dataclass(frozen=True)
class Shape:
    batch: int
    cutoff: int


@dataclass
class TraceResult:
    layers: int
    peak: int  # overall peak, 512-B rounded (compare with max_memory_allocated)
    peak_raw: int
    phases: dict[str, int]  # phase name -> peak (rounded)
    after_model: int  # live bytes after building + preparing the model
    weights: int
    gradients: int  # bytes of .grad at the end of the last backward
    optimizer: int  # optimizer state bytes
    trainable: int  # trainable parameter count
    total_params: int  # including LoRA adapters
    base_params: int  # the transformers model before LF's adapters
    seconds: float
    attention_ops: list[str] = field(default_factory=list)


def build_config(config: Mapping[str, Any], layers: int | None) -> transformers.PretrainedConfig:
    data = dict(config)
    if layers is not None:
        text = data.get("text_config")
        target = text if isinstance(text, dict) and "num_hidden_layers" in text else data
        target["num_hidden_layers"] = layers
        for key in ("layer_types", "mlp_only_layers"):
            if isinstance(target.get(key), list):
                target[key] = [v for v in target[key] if not isinstance(v, int) or v < layers][:layers] or None
                if key == "layer_types":
                    target[key] = config_layer_types(config, layers)
    model_type = data.pop("model_type")
    return transformers.AutoConfig.for_model(model_type, **data)  # type: ignore[no-any-return]


def config_layer_types(config: Mapping[str, Any], layers: int) -> list[str] | None:
    types = config.get("layer_types")
    if not isinstance(types, list):
        return None
    return [types[i % len(types)] for i in range(layers)]


def _model_class(config: transformers.PretrainedConfig) -> Any:
    for name in getattr(config, "architectures", None) or []:
        cls = getattr(transformers, name, None)
        if isinstance(cls, type):
            return cls
    return transformers.AutoModelForCausalLM


@contextlib.contextmanager
def _autocast(enabled: bool) -> Iterator[None]:
    if enabled:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield
    else:
        yield


def _forward(model: torch.nn.Module, amp: bool, device_type: str = "cpu") -> Any:
    """HF Trainer's forward: with bf16 AMP, accelerate wraps it in autocast + convert_outputs_to_fp32."""
    if not amp:
        return model.forward
    from accelerate.utils import convert_outputs_to_fp32

    return convert_outputs_to_fp32(torch.autocast(device_type, dtype=torch.bfloat16)(model.forward))


def _bytes(tensors: list[torch.Tensor]) -> int:
    return sum(t.untyped_storage().nbytes() for t in {id(t): t for t in tensors}.values())


def run_trace(
    config: Mapping[str, Any],
    method: Method,
    shape: Shape,
    layers: int | None = None,
    steps: int = 2,
    real: bool = False,
) -> TraceResult:
    """One fake-tensor trace of ``steps`` LF training steps; returns the per-phase peaks.

    ``real=True`` runs the same steps on real CPU tensors (small configs only): the check that the
    fake trace and real execution agree (fa2 is fake-only)."""
    patches.apply()
    fake_flash.register()
    started = time.perf_counter()
    hf_config = build_config(config, layers)
    dtype = checkpoint_dtype(hf_config)
    tracker = LiveStorageTracker()
    fake = contextlib.nullcontext() if real else FakeTensorMode(allow_non_fake_inputs=True)
    with fake, tracking(tracker):
        cls = _model_class(hf_config)
        kwargs = {"dtype": dtype, "attn_implementation": ATTN_IMPLEMENTATION[method.attention]}
        if cls is transformers.AutoModelForCausalLM:
            model = cls.from_config(hf_config, **kwargs)
        else:
            model = cls._from_config(hf_config, **kwargs)
        base_params = sum(p.numel() for p in model.parameters())
        model = prepare(model, method)
        model.train()
        tracker.track_module(model)
        after_model = tracker.live
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-5, fused=True)
        forward = _forward(model, method.bf16 and not method.pure_bf16)
        input_ids = torch.zeros((shape.batch, shape.cutoff), dtype=torch.long)
        labels = torch.zeros((shape.batch, shape.cutoff), dtype=torch.long)
        for step in range(1, steps + 1):
            tracker.phase(f"fwd{step}")
            outputs = forward(input_ids=input_ids, labels=labels, use_cache=False)
            loss = outputs.loss
            del outputs
            tracker.phase(f"bwd{step}")
            loss.backward()
            del loss
            gradients = _bytes([p.grad for p in params if p.grad is not None])
            tracker.phase(f"opt{step}")
            torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        state = [t for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t)]
        optimizer_bytes = _bytes(state)
        weights = _bytes(list(model.parameters()))
        total_params = sum(p.numel() for p in model.parameters())
        trainable = sum(p.numel() for p in params)
    return TraceResult(
        layers=hf_config.get_text_config().num_hidden_layers,
        peak=tracker.peak,
        peak_raw=tracker.peak_raw,
        phases={p.name: p.peak for p in tracker.phases},
        after_model=after_model,
        weights=weights,
        gradients=gradients,
        optimizer=optimizer_bytes,
        trainable=trainable,
        total_params=total_params,
        base_params=base_params,
        seconds=round(time.perf_counter() - started, 2),
        attention_ops=sorted(op for op in tracker.ops if "attention" in op or "flash" in op or "softmax" in op),
    )


@dataclass
class Extrapolated:
    layers: int
    peak: int
    phases: dict[str, int]
    probes: list[TraceResult]
    linear: bool  # True when the per-phase peaks were extrapolated from reduced-layer traces


def _extrapolate(a: int, b: int, la: int, lb: int, target: int) -> int:
    slope = (b - a) / (lb - la)
    return round(a + slope * (target - la))


def trace_extrapolated(
    config: Mapping[str, Any],
    method: Method,
    shape: Shape,
    probe_layers: tuple[int, int] | None = (4, 6),
    steps: int = 2,
) -> Extrapolated:
    """Trace at two reduced layer counts and extrapolate every phase peak linearly to the real depth.

    Memory is linear in the layer count (checked in ``linearity.py``); the overall peak is the max of
    the extrapolated phase peaks.  ``probe_layers=None`` traces the full depth.
    """
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    full = int(text["num_hidden_layers"])
    if probe_layers is None or probe_layers[1] >= full:
        result = run_trace(config, method, shape, None, steps)
        return Extrapolated(full, result.peak, result.phases, [result], False)
    first = run_trace(config, method, shape, probe_layers[0], steps)
    second = run_trace(config, method, shape, probe_layers[1], steps)
    phases = {
        name: _extrapolate(first.phases[name], second.phases[name], probe_layers[0], probe_layers[1], full)
        for name in first.phases
    }
    return Extrapolated(full, max(phases.values()), phases, [first, second], True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fake-tensor trace of LF training steps")
    parser.add_argument("config", type=Path)
    parser.add_argument("--method", default="full", choices=["full", "freeze", "lora"])
    parser.add_argument("--attention", default="sdpa", choices=list(ATTN_IMPLEMENTATION))
    parser.add_argument("--gc", type=int, default=1)
    parser.add_argument("--pure-bf16", action="store_true")
    parser.add_argument("--no-amp", action="store_true")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--cutoff", type=int, default=512)
    parser.add_argument("--layers", type=int, default=None)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--real", action="store_true", help="real CPU tensors instead of fake ones")
    args = parser.parse_args(argv)
    method = Method(
        finetuning_type=args.method,
        pure_bf16=args.pure_bf16,
        bf16=not args.no_amp and not args.pure_bf16,
        gradient_checkpointing=bool(args.gc),
        attention=args.attention,
    )
    config = json.loads(args.config.read_text())
    result = run_trace(config, method, Shape(args.batch, args.cutoff), args.layers, args.steps, args.real)
    print(json.dumps({"method": asdict(replace(method)), **asdict(result)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
