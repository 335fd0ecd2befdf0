"""How a config is launched, as far as it decides memory: an accelerate config file, or HF's `fsdp` keys.

LLaMA-Factory runs FSDP through `accelerate launch --config_file X.yaml src/train.py cfg.yaml` (every FSDP
example) or through HF TrainingArguments' `fsdp` / `fsdp_config` keys in the training YAML. The accelerate
file also says how many processes run (num_processes × num_machines) and can select DeepSpeed instead.

Sources: accelerate 1.15 utils/launch.py:304-330 (what the config file exports to the workers: FSDP_VERSION,
FSDP_SHARDING_STRATEGY / FSDP_RESHARD_AFTER_FORWARD, FSDP_OFFLOAD_PARAMS, FSDP_CPU_RAM_EFFICIENT_LOADING,
...), accelerate utils/dataclasses.py:1594-1880 (FullyShardedDataParallelPlugin defaults: version 1,
FULL_SHARD / reshard_after_forward True), transformers 5.24 training_args.py:2775-2930 (`fsdp`/`fsdp_config`
keys → plugin args; version 2 by default, `full_shard`/`shard_grad_op` map to reshard_after_forward).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from estimator.deepspeed import DeepSpeedConfig, parse_deepspeed
from estimator.errors import InputError
from estimator.source import describe, parse_json

SHARDING_STRATEGIES = ("FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD", "HYBRID_SHARD", "HYBRID_SHARD_ZERO2")
WRAP_POLICIES = ("TRANSFORMER_BASED_WRAP", "SIZE_BASED_WRAP", "NO_WRAP")
KNOWN_DISTRIBUTED = ("NO", "MULTI_GPU", "FSDP", "DEEPSPEED")  # what the estimator models


@dataclass(frozen=True)
class FsdpConfig:
    """The FSDP settings that decide per-GPU memory."""

    source: str  # the accelerate config's path, or "<yaml> (fsdp keys)"
    version: int = 1  # 1: FullyShardedDataParallel (flat parameters); 2: fully_shard (per-parameter DTensors)
    sharding: str = "FULL_SHARD"  # FSDP1 strategy; FSDP2 maps reshard_after_forward to FULL_SHARD / SHARD_GRAD_OP
    offload_params: bool = False  # CPUOffload: sharded params, gradients and the optimizer step on the CPU
    cpu_ram_efficient_loading: bool = False  # rank 0 loads on the CPU, the others on meta; LF then skips device_map
    wrap_policy: str = "TRANSFORMER_BASED_WRAP"
    min_num_params: int = 0  # SIZE_BASED_WRAP threshold
    backward_prefetch: str = "BACKWARD_PRE"  # FSDP1: BACKWARD_PRE / BACKWARD_POST / NO_PREFETCH
    forward_prefetch: bool = False
    activation_checkpointing: bool = False  # FSDP's own activation checkpointing of each wrapped layer
    from_training_args: bool = False  # set by the YAML's fsdp keys rather than an accelerate config

    @property
    def reshard_after_forward(self) -> bool:
        """FULL_SHARD / HYBRID_SHARD free the gathered parameters after each unit's forward."""
        return self.sharding in ("FULL_SHARD", "HYBRID_SHARD")

    @property
    def shards_states(self) -> bool:
        return self.sharding != "NO_SHARD"

    @property
    def hybrid(self) -> bool:
        """HYBRID_SHARD(_ZERO2): shard inside a node, replicate across nodes."""
        return self.sharding.startswith("HYBRID")

    def describe(self) -> str:
        parts = [f"FSDP{self.version}", self.sharding if self.version == 1 else
                 ("reshard after forward" if self.reshard_after_forward else "no reshard after forward")]
        if self.offload_params:
            parts.append("CPU offload")
        parts.append("rank-0 CPU loading" if self.cpu_ram_efficient_loading else "every rank loads the model")
        return ", ".join(parts) + f" ({self.source})"

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "version": self.version, "sharding": self.sharding,
                "reshard_after_forward": self.reshard_after_forward, "offload_params": self.offload_params,
                "cpu_ram_efficient_loading": self.cpu_ram_efficient_loading, "wrap_policy": self.wrap_policy,
                "min_num_params": self.min_num_params, "backward_prefetch": self.backward_prefetch,
                "activation_checkpointing": self.activation_checkpointing}


@dataclass(frozen=True)
class Launcher:
    """An accelerate config file, parsed."""

    path: str
    distributed_type: str  # NO, MULTI_GPU, FSDP, DEEPSPEED, MEGATRON_LM, XLA, ...
    num_processes: int | None = None  # all GPUs over all machines
    num_machines: int | None = None
    mixed_precision: str | None = None
    fsdp: FsdpConfig | None = None
    deepspeed: DeepSpeedConfig | None = None
    use_cpu: bool = False
    origin: str = ""  # how the launcher was named: policy, target comment, the YAML's own comment
    problem: str | None = None  # why it could not be read (then the estimate is not modelled)

    @property
    def processes_per_machine(self) -> int | None:
        if self.num_processes is None:
            return None
        machines = self.num_machines or 1
        return max(1, self.num_processes // machines)

    def not_modelled(self) -> list[str]:
        """Parts of this launcher the estimator does not model."""
        if self.problem is not None:
            return [self.problem]
        found = []
        if self.distributed_type not in KNOWN_DISTRIBUTED:
            found.append(f"accelerate distributed_type {self.distributed_type} ({self.path}): only NO, MULTI_GPU, "
                         "FSDP and DEEPSPEED are modelled")
        if self.use_cpu:
            found.append(f"use_cpu: true in {self.path}: training on the CPU")
        return found

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "origin": self.origin, "distributed_type": self.distributed_type,
                "num_processes": self.num_processes, "num_machines": self.num_machines,
                "mixed_precision": self.mixed_precision}


ReadFile = Callable[[str], str]


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1", "on")
    return bool(value)


def _count(section: Mapping[str, Any], key: str, path: str) -> int | None:
    value = section.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise InputError(f"accelerate config: '{key}' must be a whole number, got {describe(value)}", file=path)
    number = int(str(value).strip())
    if not 1 <= number <= 1_000_000:
        raise InputError(f"accelerate config: '{key}' must be between 1 and 1000000, got {number}", file=path)
    return number


def _choice(value: Any, choices: tuple[str, ...], what: str, path: str) -> str:
    text = str(value).strip().upper()
    if text.isdigit() and what == "fsdp_sharding_strategy" and 1 <= int(text) <= len(choices):
        return choices[int(text) - 1]  # accelerate accepts the enum's number too
    if text not in choices:
        raise InputError(f"accelerate config: '{what}' must be one of {', '.join(choices)}, got {describe(value)}",
                         file=path)
    return text


def _fsdp_from_accelerate(section: Mapping[str, Any], path: str) -> FsdpConfig:
    """`fsdp_config:` of an accelerate config (keys with the fsdp_ prefix)."""
    cfg = {str(k).removeprefix("fsdp_"): v for k, v in section.items()}
    version = int(str(cfg.get("version", 1)).strip() or 1) if str(cfg.get("version", 1)).strip().isdigit() else 0
    if version not in (1, 2):
        raise InputError(f"accelerate config: 'fsdp_version' must be 1 or 2, got {describe(cfg.get('version'))}",
                         file=path)
    if version == 2:
        reshard = cfg.get("reshard_after_forward", True)
        sharding = "FULL_SHARD" if _truthy(reshard) else "SHARD_GRAD_OP"
    else:
        raw = cfg.get("sharding_strategy", cfg.get("reshard_after_forward", "FULL_SHARD"))
        if isinstance(raw, bool):
            sharding = "FULL_SHARD" if raw else "SHARD_GRAD_OP"
        else:
            sharding = _choice(raw, SHARDING_STRATEGIES, "fsdp_sharding_strategy", path)
    # accelerate utils/dataclasses.py:1893/1910: no backward prefetch and NO_WRAP when the file names none
    prefetch = str(cfg.get("backward_prefetch") or "NO_PREFETCH").strip().upper()
    return FsdpConfig(
        source=path, version=version, sharding=sharding, offload_params=_truthy(cfg.get("offload_params", False)),
        cpu_ram_efficient_loading=_truthy(cfg.get("cpu_ram_efficient_loading", True)),
        wrap_policy=_choice(cfg.get("auto_wrap_policy") or "NO_WRAP", WRAP_POLICIES,
                            "fsdp_auto_wrap_policy", path),
        min_num_params=int(cfg.get("min_num_params", 0) or 0),
        backward_prefetch=prefetch if prefetch in ("BACKWARD_PRE", "BACKWARD_POST") else "NO_PREFETCH",
        forward_prefetch=_truthy(cfg.get("forward_prefetch", False)),
        activation_checkpointing=_truthy(cfg.get("activation_checkpointing", False)),
    )


def parse_accelerate_config(data: Any, path: str, read_file: ReadFile | None = None) -> Launcher:
    """An accelerate config (the YAML `accelerate config` writes); DeepSpeed files it names are read too."""
    if not isinstance(data, Mapping):
        raise InputError("accelerate config must be a mapping of keys (distributed_type, num_processes, ...)",
                         file=path)
    distributed = str(data.get("distributed_type", "NO") or "NO").strip().upper()
    fsdp = None
    deepspeed = None
    if distributed == "FSDP":
        section = data.get("fsdp_config") or {}
        if not isinstance(section, Mapping):
            raise InputError("accelerate config: 'fsdp_config' must be a mapping", file=path)
        fsdp = _fsdp_from_accelerate(section, path)
    elif distributed == "DEEPSPEED":
        deepspeed = _deepspeed_from_accelerate(data.get("deepspeed_config") or {}, path, read_file)
    mixed = data.get("mixed_precision")
    return Launcher(path=path, distributed_type=distributed, num_processes=_count(data, "num_processes", path),
                    num_machines=_count(data, "num_machines", path),
                    mixed_precision=str(mixed).strip().lower() if mixed is not None else None, fsdp=fsdp,
                    deepspeed=deepspeed, use_cpu=_truthy(data.get("use_cpu", False)))


def _deepspeed_from_accelerate(section: Any, path: str, read_file: ReadFile | None) -> DeepSpeedConfig:
    """accelerate's deepspeed_config: a deepspeed_config_file, or the plugin's own keys (zero_stage, offload
    devices) — accelerate utils/dataclasses.py DeepSpeedPlugin."""
    if not isinstance(section, Mapping):
        raise InputError("accelerate config: 'deepspeed_config' must be a mapping", file=path)
    file = section.get("deepspeed_config_file")
    if file:
        if read_file is None:
            raise InputError(f"accelerate config: cannot read deepspeed_config_file '{describe(file)}'", file=path)
        try:
            text = read_file(str(file))
        except FileNotFoundError:
            raise InputError(f"accelerate config: deepspeed_config_file '{describe(file)}' not found in the "
                             "repository", file=path) from None
        return parse_deepspeed(parse_json(text, str(file)), str(file))
    stage = section.get("zero_stage", 2)
    zero: dict[str, Any] = {"stage": int(stage) if str(stage).isdigit() else stage}
    for key, name in (("offload_optimizer_device", "offload_optimizer"), ("offload_param_device", "offload_param")):
        device = str(section.get(key, "none") or "none")
        if device != "none":
            zero[name] = {"device": device}
    return parse_deepspeed({"zero_optimization": zero, "bf16": {"enabled": "auto"}, "fp16": {"enabled": "auto"}},
                           f"{path} (deepspeed_config)")


def fsdp_from_training_args(raw: Mapping[str, Any], path: str, read_file: ReadFile | None,
                            transformers_major: int) -> FsdpConfig | None:
    """HF TrainingArguments' `fsdp` (a string or a list of options) and `fsdp_config` (a mapping or a JSON path),
    as transformers 5.24 training_args.py:2775-2930 reads them (4.x: FSDP1 by default)."""
    value = raw.get("fsdp")
    if value in (None, "", False, [], "false", "False"):
        return None
    if value is True or (isinstance(value, str) and value.strip().lower() == "true"):
        items: list[str] = []
    elif isinstance(value, str):
        items = value.split()
    elif isinstance(value, list):
        items = [str(item) for item in value]
    else:
        raise InputError(f"'fsdp' must be a list of options (full_shard, auto_wrap, offload, ...), got "
                         f"{describe(value)}", file=path, key="fsdp")
    config = raw.get("fsdp_config") or {}
    if isinstance(config, str):
        if read_file is None:
            raise InputError(f"cannot read fsdp_config '{describe(config)}'", file=path, key="fsdp_config")
        try:
            config = parse_json(read_file(config), config)
        except FileNotFoundError:
            raise InputError(f"fsdp_config '{describe(config)}' not found in the repository", file=path,
                             key="fsdp_config") from None
    if not isinstance(config, Mapping):
        raise InputError(f"'fsdp_config' must be a mapping or a JSON file, got {describe(config)}", file=path,
                         key="fsdp_config")
    cfg = {str(k).removeprefix("fsdp_"): v for k, v in config.items()}
    default_version = 2 if transformers_major >= 5 else 1
    version = int(cfg.get("version", default_version)) if str(cfg.get("version", default_version)).isdigit() else 0
    if version not in (1, 2):
        raise InputError(f"fsdp_config version must be 1 or 2, got {describe(cfg.get('version'))}", file=path,
                         key="fsdp_config")
    options = [item.strip().upper() for item in items]
    sharding = next((o for o in options if o in SHARDING_STRATEGIES), "FULL_SHARD")
    if "reshard_after_forward" in cfg:
        reshard = cfg["reshard_after_forward"]
        if isinstance(reshard, str) and reshard.strip().upper() in SHARDING_STRATEGIES:
            sharding = reshard.strip().upper()
        else:
            sharding = "FULL_SHARD" if _truthy(reshard) else "SHARD_GRAD_OP"
    if version == 2 and sharding not in ("FULL_SHARD", "SHARD_GRAD_OP"):
        raise InputError(f"fsdp {sharding.lower()} is only available with FSDP1 (set fsdp_config version: 1)",
                         file=path, key="fsdp")
    prefetch = str(cfg.get("backward_prefetch", "NO_PREFETCH") or "NO_PREFETCH").strip().upper()
    return FsdpConfig(
        source=f"{path} (fsdp keys)", version=version, sharding=sharding, from_training_args=True,
        offload_params="OFFLOAD" in options or _truthy(cfg.get("cpu_offload", False)),
        cpu_ram_efficient_loading=_truthy(cfg.get("cpu_ram_efficient_loading", False)),
        wrap_policy=str(cfg.get("auto_wrap_policy", "TRANSFORMER_BASED_WRAP")).upper(),
        min_num_params=int(cfg.get("min_num_params", 0) or 0),
        backward_prefetch=prefetch if prefetch in ("BACKWARD_PRE", "BACKWARD_POST") else "NO_PREFETCH",
        forward_prefetch=_truthy(cfg.get("forward_prefetch", False)),
        activation_checkpointing=_truthy(cfg.get("activation_checkpointing", False)),
    )
