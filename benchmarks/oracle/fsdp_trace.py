"""Per-rank peak tensor memory of FSDP2 / FSDP1 training as LLaMA-Factory runs it, traced on one CPU
process that plays rank 0 of N through torch's fake process group.

Stack reproduced (versions here: torch 2.13.0+cpu, transformers 5.24.0, accelerate 1.15.0):
  * process group: ``dist.init_process_group("fake", store=FakeStore(), rank=0, world_size=N)``
    (torch/testing/_internal/distributed/fake_pg.py) - every collective is a no-op with the right
    output shapes, so each rank's allocations happen exactly as on a real rank (FSDP is SPMD).
  * model: transformers ``*ForCausalLM`` built from a config.json (layers reduced with --layers),
    in the checkpoint dtype (LF >= 0.9.4 loads torch_dtype="auto"), trainable params upcast to fp32
    (LF model/adapter.py), LF gradient checkpointing (use_reentrant=False under FSDP2, True under
    FSDP1 - LF forces non-reentrant only for FSDP_VERSION=2).  The model is built on the host
    *before* tracking starts: under FSDP LF loads it on CPU (no device_map), so it is not GPU memory.
  * wrapping: FSDP2 -> accelerate's own ``fsdp2_prepare_model`` (accelerate/utils/fsdp_utils.py:751)
    with a stub Accelerator, ``MixedPrecisionPolicy`` from ``plugin.set_mixed_precision("bf16")``
    (param=reduce=output=bf16, utils/dataclasses.py:2109-2143).  FSDP1 -> ``FullyShardedDataParallel``
    with the kwargs accelerate passes (accelerator.py:1930-1945) + accelerate's fp32 flat-param
    upcast (accelerator.py:1998-2037) + autocast/convert_outputs_to_fp32 (accelerator.py:1824-1835).
    The host->GPU move of each unit (``_move_states_to_device`` / FSDP1 ``_move_module_to_device``)
    is emulated by a clone inside the tracker so the load-time transient is counted.
  * step: forward (HF causal-LM loss), backward, grad clipping 1.0, AdamW(fused=True), zero_grad.

Usage (from the repository root, with the oracle extra installed):
  python -m benchmarks.oracle.fsdp_trace CONFIG.json --fsdp 2 --world 8 --layers 4 --batch 1 --cutoff 2048 \
      [--gc 1] [--reshard 1] [--offload] [--real] [--no-upcast] [--strategy FULL_SHARD] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import transformers
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.testing._internal.distributed.fake_pg import FakeStore
from torch.utils.checkpoint import checkpoint

from benchmarks.oracle import patches
from benchmarks.oracle.fsdp_tracker import FsdpTracker
from benchmarks.oracle.lf_setup import checkpoint_dtype
from benchmarks.oracle.trace import _model_class, build_config
from benchmarks.oracle.tracker import tracking


# ---------------------------------------------------------------------------------------------------
# LF gradient checkpointing (model/model_utils/checkpointing.py: custom_gradient_checkpointing_func)
def _layer_of(func: Any) -> torch.nn.Module:
    target = func.func if isinstance(func, functools.partial) else func
    owner = getattr(target, "__self__", None)
    if owner is None and isinstance(func, functools.partial) and func.args:
        owner = func.args[0]
    return owner


def make_gc_func(use_reentrant: bool):
    def gc_func(func: Any, *args: Any, **kwargs: Any) -> Any:
        layer = _layer_of(func)
        if layer is not None and not any(p.requires_grad for p in layer.parameters()):
            return func(*args, **kwargs)
        for arg in args:
            if torch.is_tensor(arg) and torch.is_floating_point(arg):
                arg.requires_grad_(True)
                break
        return checkpoint(func, *args, use_reentrant=use_reentrant, **kwargs)

    return gc_func


# ---------------------------------------------------------------------------------------------------
# host -> device move emulation: on a GPU, fully_shard / FSDP1 copy each unit's full params to the GPU
# before sharding; here device == cpu so nothing would be copied.  Clone instead (inside the tracker).
DEVICE = "cpu"  # --device cuda: real GPU check (real tensors, fake PG), see notes §Oracle


def _emulate_fsdp2_move() -> None:
    from torch.distributed.fsdp._fully_shard import _fsdp_init, _fully_shard

    def _move_states_to_device(params, buffers, device):
        for tensor in [*params, *buffers]:
            if tensor.device.type == "meta":
                continue
            tensor.data = tensor.data.clone()

    _fsdp_init._move_states_to_device = _move_states_to_device
    if hasattr(_fully_shard, "_move_states_to_device"):
        _fully_shard._move_states_to_device = _move_states_to_device


@dataclass
class StubParallelism:
    fsdp_dim_names: tuple[str, ...] = ("dp_shard",)


class StubState:
    def __init__(self, plugin: Any) -> None:
        self.fsdp_plugin = plugin


class StubAccelerator:
    """What accelerate.utils.fsdp_utils.fsdp2_prepare_model reads from the Accelerator."""

    def __init__(self, plugin: Any, mesh: Any, mixed_precision: str) -> None:
        self.state = StubState(plugin)
        self.torch_device_mesh = mesh
        self.parallelism_config = StubParallelism(
            tuple(mesh.mesh_dim_names) if mesh is not None and mesh.mesh_dim_names else ("dp_shard",))
        self.mixed_precision = mixed_precision
        self.is_main_process = True
        self.device = torch.device(DEVICE)


def _bytes(tensors: list[torch.Tensor]) -> int:
    from torch.distributed._tools.common_utils import get_untyped_storages

    seen: dict[int, int] = {}
    for t in tensors:
        for st in get_untyped_storages(t):
            seen[id(st)] = st.nbytes()
    return sum(seen.values())


def wrap_fsdp2(model: torch.nn.Module, mesh: Any, args: argparse.Namespace) -> torch.nn.Module:
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.fsdp_utils import fsdp2_prepare_model

    plugin = FullyShardedDataParallelPlugin(
        fsdp_version=2,
        auto_wrap_policy="transformer_based_wrap",
        reshard_after_forward=bool(args.reshard),
        cpu_offload=bool(args.offload),
        cpu_ram_efficient_loading=(args.load == "ram_efficient"),
        state_dict_type="SHARDED_STATE_DICT",
    )
    if args.bf16:
        plugin.set_mixed_precision("bf16")  # accelerate/state.py:1015 does this for mixed_precision=bf16
    acc = StubAccelerator(plugin, mesh, "bf16" if args.bf16 else "no")
    if args.load == "ram_efficient":
        # play a non-main rank: it allocates `torch.empty(full size)` on the device for every broadcast
        # (fsdp_utils.py:648-663); rank 0 does `full_param.to(device)` instead (:627-629), same size
        acc.is_main_process = False
    if args.acc_layout == "1.11":
        return fsdp2_prepare_model_v111(acc, model, plugin)
    return fsdp2_prepare_model(acc, model)


def wrap_fsdp1(model: torch.nn.Module, args: argparse.Namespace) -> torch.nn.Module:
    """FullyShardedDataParallel with the kwargs accelerate passes (accelerator.py:1930-1945), then
    accelerate's fp32 upcast of every trainable flat param (accelerator.py:1998-2037)."""
    from accelerate.utils.dataclasses import get_module_class_from_name
    from torch.distributed.fsdp import (
        BackwardPrefetch,
        CPUOffload,
        MixedPrecision,
        ShardingStrategy,
    )
    from torch.distributed.fsdp import (
        FullyShardedDataParallel as FSDP,
    )
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

    classes = {get_module_class_from_name(model, n) for n in model._no_split_modules}
    policy = functools.partial(transformer_auto_wrap_policy, transformer_layer_cls=classes)
    mp = MixedPrecision(param_dtype=torch.bfloat16, reduce_dtype=torch.bfloat16,
                        buffer_dtype=torch.bfloat16) if args.bf16 else None
    prefetch = None if args.backward_prefetch == "NO_PREFETCH" else BackwardPrefetch[args.backward_prefetch]
    fsdp_model = FSDP(
        model,
        sharding_strategy=ShardingStrategy[args.strategy],
        cpu_offload=CPUOffload(offload_params=bool(args.offload)),
        auto_wrap_policy=policy,
        mixed_precision=mp,
        sync_module_states=False,
        backward_prefetch=prefetch,
        forward_prefetch=bool(args.forward_prefetch),
        use_orig_params=bool(args.use_orig_params),
        limit_all_gathers=True,
        device_id=torch.device(DEVICE),
        **({"device_mesh": args._mesh} if args.replicate > 1 else {}),
    )
    if args.bf16:
        for module in FSDP.fsdp_modules(fsdp_model):
            if not module._has_params:
                continue
            p = module._flat_param
            if p.dtype != torch.float32 and p.requires_grad:
                p.data = p.data.to(torch.float32)
                module._handle._orig_param_dtype = torch.float32
    return fsdp_model


def fsdp2_prepare_model_v111(acc: Any, model: torch.nn.Module, plugin: Any) -> torch.nn.Module:
    """accelerate v1.11.0 src/accelerate/utils/fsdp_utils.py:602-712 (the version LLaMA-Factory pins,
    accelerate<=1.11.0): `original_sd = model.state_dict()` before sharding (:624), optional move to meta
    for cpu_ram_efficient_loading (:645-663), fully_shard every auto-wrapped module bottom-up (:665-670),
    then the root with the *same* kwargs (:672-673, so reshard_after_forward=plugin value, not the root
    heuristic): the root group holds embed_tokens + norm + lm_head; then fsdp2_load_full_state_dict
    (:675-678).  The fp32 upcast (:701-707) is a no-op here because LF already upcast the trainable params."""
    import copy

    from accelerate.utils.fsdp_utils import (
        fsdp2_load_full_state_dict,
        fsdp2_prepare_auto_wrap_policy,
        get_module_children_bottom_up,
    )
    from accelerate.utils.modeling import get_non_persistent_buffers
    from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

    plugin.set_auto_wrap_policy(model)
    original_sd = model.state_dict()
    kwargs = {
        "reshard_after_forward": plugin.reshard_after_forward,
        "offload_policy": plugin.cpu_offload,
        "mp_policy": plugin.mixed_precision_policy or MixedPrecisionPolicy(),
        "mesh": acc.torch_device_mesh[tuple(acc.parallelism_config.fsdp_dim_names)],
    }
    if plugin.cpu_ram_efficient_loading:
        fqns = get_non_persistent_buffers(model, recurse=True, fqns=True)
        buffers = copy.deepcopy({k: v for k, v in model.named_buffers() if k in fqns})
        model = model.to(torch.device("meta"))
    policy = fsdp2_prepare_auto_wrap_policy(plugin, model)
    for module in get_module_children_bottom_up(model)[:-1]:
        if policy(module) and not isinstance(module, FSDPModule):
            fully_shard(module, **kwargs)
    if not isinstance(model, FSDPModule):
        fully_shard(model, **kwargs)
    if plugin.cpu_ram_efficient_loading:
        fsdp2_load_full_state_dict(acc, model, original_sd)
        for fqn, buf in buffers.items():
            parent, name = fqn.rsplit(".", 1) if "." in fqn else ("", fqn)
            (model.get_submodule(parent) if parent else model).register_buffer(name, buf.clone(), persistent=False)
    return model


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    if not dist.is_initialized():
        dist.init_process_group("fake", store=FakeStore(), rank=0, world_size=args.world)
    from torch.distributed.device_mesh import init_device_mesh

    if args.replicate > 1:  # HSDP / HYBRID_SHARD: replicate across `replicate` groups, shard within
        mesh = init_device_mesh(DEVICE, (args.replicate, args.world // args.replicate),
                                mesh_dim_names=("dp_replicate", "dp_shard"))
    else:
        mesh = init_device_mesh(DEVICE, (args.world,), mesh_dim_names=("dp_shard",))  # outside fake mode
    args._mesh = mesh
    patches.apply()
    config = json.loads(Path(args.config).read_text())
    hf_config = build_config(config, args.layers)
    dtype = checkpoint_dtype(hf_config)
    tracker = FsdpTracker(log_events=args.events)
    if DEVICE == "cuda":  # GPU check: count only device tensors, and read the caching allocator per phase
        tracker.only_device = "cuda"
        tracker.cuda_peaks = {}
        _orig_phase = tracker.phase

        def _phase(name: str) -> None:
            if tracker.phases:
                torch.cuda.synchronize()
                tracker.cuda_peaks[tracker.phases[-1].name] = torch.cuda.max_memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            _orig_phase(name)

        tracker.phase = _phase
    tracker.instrument_fsdp()
    fake = contextlib.nullcontext() if args.real else FakeTensorMode(allow_non_fake_inputs=True)
    result: dict[str, Any] = {}
    with fake:
        # ---- host side (not GPU memory under FSDP: LF loads on CPU) -----------------------------
        # --load gpu: FSDP without cpu_ram_efficient_loading -> transformers' is_fsdp_enabled() is False
        # (transformers/distributed/fsdp.py:45-51 needs FSDP_CPU_RAM_EFFICIENT_LOADING=true), so LF passes
        # device_map={"": cuda:LOCAL_RANK} (LF parser.py:646, patcher.py:431-434): the whole model is loaded
        # onto every GPU and upcast there.  Build + upcast inside the tracker then.
        load_ctx = tracking(tracker) if args.load == "gpu" else contextlib.nullcontext()
        load_ctx.__enter__()
        if args.load == "gpu":
            tracker.phase("load")
        cls = _model_class(hf_config)
        kwargs = {"dtype": dtype, "attn_implementation": args.attention}
        model = (cls.from_config(hf_config, **kwargs) if cls is transformers.AutoModelForCausalLM
                 else cls._from_config(hf_config, **kwargs))
        n_params = sum(p.numel() for p in model.parameters())
        if args.gc:
            model._set_gradient_checkpointing(
                enable=True, gradient_checkpointing_func=make_gc_func(use_reentrant=(args.fsdp == 1)))
            model.config.use_cache = False
        for p in model.parameters():
            p.requires_grad_(True)
        if not args.no_upcast:  # LF init_adapter: cast trainable params to fp32 (host)
            for p in model.parameters():
                if p.requires_grad:
                    p.data = p.data.to(torch.float32)
        model.train()
        del p  # the loop variable would keep lm_head.weight's Parameter (and its device copy) alive
        if args.load == "gpu":
            load_ctx.__exit__(None, None, None)
        else:
            tracker.ignore_module(model)
        with tracking(tracker):
            tracker.phase("wrap")
            if args.fsdp == 1 and args.bf16:
                # accelerator.prepare_model (accelerator.py:1824-1835), before FSDP wrapping:
                # native_amp -> model.forward = convert_outputs_to_fp32(autocast(bf16)(forward))
                from types import MethodType

                from accelerate.utils import convert_outputs_to_fp32
                fwd = torch.autocast("cpu", dtype=torch.bfloat16)(model.forward.__func__)
                model.forward = MethodType(convert_outputs_to_fp32(fwd), model)
            if args.fsdp == 2:
                if args.load == "host" and DEVICE == "cpu":
                    _emulate_fsdp2_move()
                # FakeTensors cannot be swapped by Module.to (patches.py docstring); the meta move of
                # cpu_ram_efficient_loading needs the .data path
                to_ctx = module_to_meta_by_replace() if args.load == "ram_efficient" else contextlib.nullcontext()
                with to_ctx:
                    model = wrap_fsdp2(model, mesh, args)
            else:
                if args.load == "host" and DEVICE == "cpu":
                    _emulate_fsdp1_move()
                model = wrap_fsdp1(model, args)
            after_wrap = tracker.live
            params = [p for p in model.parameters() if p.requires_grad]
            tracker.classifier = make_classifier(model, params, args.fsdp)
            optimizer = torch.optim.AdamW(params, lr=1e-5, fused=not args.offload,
                                          foreach=False if not args.offload else None)
            tracker.classifier = make_classifier(model, params, args.fsdp, optimizer)
            forward = model  # __call__: FSDP hooks run (Trainer calls model(**inputs))
            input_ids = torch.zeros((args.batch, args.cutoff), dtype=torch.long, device=DEVICE)
            labels = torch.zeros((args.batch, args.cutoff), dtype=torch.long, device=DEVICE)
            phase_state: dict[str, dict[str, int]] = {}
            for step in range(1, args.steps + 1):
                tracker.phase(f"fwd{step}")
                out = forward(input_ids=input_ids, labels=labels, use_cache=False)
                loss = out.loss
                del out
                tracker.phase(f"bwd{step}")
                loss.backward()
                del loss
                grads = _bytes([p.grad for p in params if p.grad is not None])
                tracker.phase(f"opt{step}")
                if args.fsdp == 1:
                    model.clip_grad_norm_(1.0)
                else:
                    torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                phase_state[f"step{step}"] = {"grads_before_zero": grads}
            if DEVICE == "cuda":
                torch.cuda.synchronize()
                tracker.cuda_peaks[tracker.phases[-1].name] = torch.cuda.max_memory_allocated()
            tracker.close()
            state = [t for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t)]
            result = {
                "fsdp": args.fsdp, "world": args.world, "layers": hf_config.num_hidden_layers,
                "params": n_params, "batch": args.batch, "cutoff": args.cutoff, "gc": args.gc,
                "reshard": args.reshard, "offload": args.offload, "strategy": args.strategy,
                "acc_layout": args.acc_layout if args.fsdp == 2 else None, "load": args.load,
                "replicate": args.replicate, "config": str(args.config),
                "after_wrap": after_wrap,
                "sharded_params": _bytes(params),
                "optimizer": _bytes(state),
                "grads": phase_state[f"step{args.steps}"]["grads_before_zero"],
                "phases": {p.name: {"start": p.start, "peak": p.peak, "end": p.end,
                                    "at": getattr(p, "peak_label", ""),
                                    "breakdown": getattr(p, "snapshot", {})} for p in tracker.phases},
                "peak": tracker.peak,
                "seconds": round(time.perf_counter() - started, 2),
                "device": DEVICE,
                "cuda_max_allocated": getattr(tracker, "cuda_peaks", None),
            }
            if args.events:
                result["events"] = tracker.events
                result["marks"] = tracker.marks
    return result


@contextlib.contextmanager
def module_to_meta_by_replace():
    """`model.to("meta")` (accelerate's cpu_ram_efficient_loading) cannot swap FakeTensors and cannot
    `set_data` a fake-cpu param to a fake-meta tensor; replace params/buffers by new meta ones instead
    (what `to("meta")` amounts to: the host copies are dropped)."""
    original = torch.nn.Module.to

    def to(module, *args, **kwargs):
        device, _dtype, _non_blocking, _ = torch._C._nn._parse_to(*args, **kwargs)
        if device is None or device.type != "meta":
            return original(module, *args, **kwargs)
        for sub in module.modules():
            for name, p in list(sub._parameters.items()):
                if p is not None:
                    sub._parameters[name] = torch.nn.Parameter(
                        torch.empty(p.shape, dtype=p.dtype, device="meta"), requires_grad=p.requires_grad)
            for name, b in list(sub._buffers.items()):
                if b is not None:
                    sub._buffers[name] = torch.empty(b.shape, dtype=b.dtype, device="meta")
        return module

    torch.nn.Module.to = to  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.nn.Module.to = original  # type: ignore[method-assign]


def _sids(t: Any) -> list[int]:
    from torch.distributed._tools.common_utils import get_untyped_storages
    if t is None or not torch.is_tensor(t):
        return []
    return [id(st) for st in get_untyped_storages(t)]


def make_classifier(model: torch.nn.Module, params: list, version: int, optimizer: Any = None):
    """Map live storages to FSDP memory categories for the per-phase peak breakdown."""
    def classify() -> dict[int, str]:
        cats: dict[int, str] = {}

        def put(t: Any, cat: str) -> None:
            for k in _sids(t):
                cats.setdefault(k, cat)

        if version == 2:
            from torch.distributed.fsdp import FSDPModule
            groups = []
            for m in model.modules():
                if isinstance(m, FSDPModule):
                    st = m._get_fsdp_state()
                    groups.extend(st._fsdp_param_groups)
            ctx = groups[0].comm_ctx if groups else None
            for g in groups:
                for fp in g.fsdp_params:
                    put(fp._sharded_param_data, "sharded_param")
                    put(fp.sharded_param.grad, "sharded_grad")
                    for t in fp.all_gather_outputs:
                        put(t, "unsharded_param")
                    if hasattr(fp, "_unsharded_param") and fp._unsharded_param.grad is not None:
                        put(fp._unsharded_param.grad, "unsharded_grad")
                if g._all_gather_result is not None:
                    put(g._all_gather_result.all_gather_output, "all_gather_buffer(prefetch)")
            if ctx is not None:
                if getattr(ctx, "all_gather_state", None) is not None:
                    put(ctx.all_gather_state.all_gather_result.all_gather_output, "all_gather_buffer(retained)")
                for rs in getattr(ctx, "reduce_scatter_states", []):
                    put(rs.reduce_scatter_input, "reduce_scatter_input(retained)")
        else:
            from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
            for m in FSDP.fsdp_modules(model):
                h = m._handle
                if h is None:
                    continue
                fp = h.flat_param
                put(getattr(fp, "_local_shard", None), "sharded_param")
                put(getattr(fp, "_mp_shard", None), "mp_shard(bf16 copy)")
                put(getattr(fp, "_full_param_padded", None), "unsharded_param")
                put(getattr(fp, "_full_prec_full_param_padded", None), "unsharded_param(fp32)")
                put(fp.grad, "sharded_grad")
                put(getattr(fp, "_saved_grad_shard", None), "sharded_grad")
                put(getattr(fp, "_cpu_grad", None), "sharded_grad(cpu)")
        for p in params:
            if p.grad is not None:
                put(p.grad, "sharded_grad" if version == 2 else "grad(view)")
        if optimizer is not None:
            for s in optimizer.state.values():
                for t in s.values():
                    put(t, "optimizer")
        return cats

    return classify


def _emulate_fsdp1_move() -> None:
    """FSDP1 moves each unit's not-yet-managed params to device_id before flattening
    (_init_utils.py:603 -> _move_module_to_device:977 -> _move_states_to_device:1031, `param.data =
    param.to(device)`); with device_id=cpu nothing moves, so clone instead (inside the tracker)."""
    from torch.distributed.fsdp import _init_utils

    def _move_states_to_device(params, buffers, device_from_device_id):
        with torch.no_grad():
            for tensor in [*params, *buffers]:
                if tensor.device.type != "meta":
                    tensor.data = tensor.data.clone()

    _init_utils._move_states_to_device = _move_states_to_device


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--fsdp", type=int, default=2, choices=[1, 2])
    ap.add_argument("--world", type=int, default=8)
    ap.add_argument("--layers", type=int, default=None)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--cutoff", type=int, default=2048)
    ap.add_argument("--gc", type=int, default=1)
    ap.add_argument("--reshard", type=int, default=1)
    ap.add_argument("--offload", action="store_true")
    ap.add_argument("--strategy", default="FULL_SHARD")
    ap.add_argument("--replicate", type=int, default=1, help="HSDP/HYBRID_SHARD replica groups (nodes)")
    ap.add_argument("--backward-prefetch", default="BACKWARD_PRE")
    ap.add_argument("--forward-prefetch", type=int, default=0)
    ap.add_argument("--use-orig-params", type=int, default=1)
    ap.add_argument("--no-upcast", action="store_true")
    ap.add_argument("--bf16", type=int, default=1)
    ap.add_argument("--load", default="host", choices=["host", "gpu", "ram_efficient"],
                    help="host: model on CPU, FSDP moves each unit to the GPU (cpu_ram_efficient_loading off but "
                         "no device_map); gpu: LF's real path without cpu_ram_efficient_loading (device_map=GPU); "
                         "ram_efficient: FSDP2 cpu_ram_efficient_loading (meta + broadcast)")
    ap.add_argument("--acc-layout", default="1.15", choices=["1.11", "1.15"],
                    help="FSDP2 unit layout of accelerate 1.11 (LF's pin: layers + root) or 1.15 (layers, embed, "
                         "tail [norm, lm_head] reshard_after_forward=False, root)")
    ap.add_argument("--attention", default="sdpa")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--real", action="store_true")
    ap.add_argument("--events", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                    help="cuda: real tensors on one GPU with the fake PG; compares the tracker with "
                         "torch.cuda.max_memory_allocated per phase (needs --real; untested here: no GPU)")
    args = ap.parse_args(argv)
    global DEVICE
    DEVICE = args.device
    if DEVICE == "cuda":
        args.real = True
    res = run(args)
    text = json.dumps({k: v for k, v in res.items() if k not in ("events", "marks")}, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
