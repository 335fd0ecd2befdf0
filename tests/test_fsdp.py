"""FSDP and FSDP2 as launchers: the accelerate config and HF's fsdp keys, read from the same repository;
the per-GPU numbers against the oracle's traces of accelerate's own wrapping (benchmarks/results/fsdp_oracle,
made by benchmarks/oracle/fsdp_trace.py on torch's fake process group) and, where no trace exists (LoRA,
QLoRA, offload), against the terms derived from the FSDP source (estimator/fsdp.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from estimator.errors import InputError
from estimator.hub import ModelResolver
from estimator.launcher import fsdp_from_training_args, parse_accelerate_config
from estimator.memory import World, estimate, weights_bytes
from estimator.plan import TrainingPlan, parse_plan
from estimator.source import parse_yaml
from estimator.trainable import trainable
from estimator.versions import Versions
from rules.pipeline import CheckOptions, check_config
from rules.policy import load_policy
from rules.sources import ParsedFiles, WorkingTree

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.oracle.fsdp_compare import RESULTS, compare  # noqa: E402

EXAMPLES = REPO_ROOT / "tests" / "data" / "llamafactory_examples"
RESOLVER = ModelResolver(offline=True)
LLAMA = RESOLVER.resolve("meta-llama/Meta-Llama-3-8B")
DOUBLE_QUANT = 0.5 + 1 / 64 + 4 / 16384
FSDP2 = {"distributed_type": "FSDP", "mixed_precision": "bf16", "num_processes": 8,
         "fsdp_config": {"fsdp_version": 2, "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                         "fsdp_cpu_ram_efficient_loading": True, "fsdp_reshard_after_forward": True}}


def plan(text: str, accelerate: dict[str, Any] | None = None, **kwargs: Any) -> TrainingPlan:
    launcher = parse_accelerate_config(accelerate, "accelerate.yaml") if accelerate is not None else None
    return parse_plan("model_name_or_path: x\ndo_train: true\nper_device_train_batch_size: 1\n" + text,
                      "c.yaml", launcher=launcher, **kwargs)


# the traces of LLaMA-Factory's layouts (accelerate <= 1.11); the accelerate >= 1.13 and FSDP2 HSDP traces are
# shown by benchmarks/oracle/fsdp_compare.py but are not what LLaMA-Factory runs
TARGETED = [path for path in sorted(RESULTS.glob("*.json")) if compare(path).targeted]


@pytest.mark.parametrize("path", TARGETED, ids=lambda p: p.stem)
def test_within_3_percent_of_the_oracle_on_llamafactory_layouts(path: Path) -> None:
    row = compare(path)
    assert abs(row.error) <= 0.03, (f"{row.name}: estimate {row.estimated:,} B vs traced {row.traced:,} B "
                                    f"({row.error:+.2%}), phases {row.estimate.phases}")


def test_llama3_8b_full_on_eight_gpus_with_fsdp_is_no_longer_counted_as_ddp() -> None:
    # issue 11: 176 GiB per GPU "NO-FIT, add DeepSpeed" with FSDP read as DDP. Sharded fp32 params + grads +
    # AdamW are 16 B/param / 8 = 16 GB; the oracle traces 19.08 GiB in total (fsdp2v111_w8).
    fsdp = estimate(LLAMA, plan("finetuning_type: full\nbf16: true\ncutoff_len: 2048\n", FSDP2, world_size=8),
                    World(8))
    ddp = estimate(LLAMA, plan("finetuning_type: full\nbf16: true\ncutoff_len: 2048\n"), World(8))
    assert fsdp.modelled and fsdp.allocated_bytes < 22 << 30
    assert ddp.allocated_bytes > 16 * LLAMA.total_params  # DDP: every GPU holds the whole model state


def test_qlora_shards_the_packs_and_keeps_absmax_whole() -> None:
    # FSDP + QLoRA: quant_storage = bf16, so the packed nf4 bytes are flattened and sharded with the bf16
    # params; the absmax quant_state stays whole on every rank; adapters are fp32 (LF's upcast) and sharded
    n = 2
    p = plan("quantization_bit: 4\nbf16: true\n", FSDP2 | {"num_processes": n}, world_size=n)
    t = trainable(LLAMA, p)
    linears = LLAMA.parts["attention"] + LLAMA.parts["mlp"]
    rest = LLAMA.total_params - linears
    policy, _ = weights_bytes(LLAMA, p, World(n), t)
    expected = (linears * DOUBLE_QUANT + 2 * rest + 4 * t.params) / n + linears * (1 / 64 + 4 / 16384)
    assert policy == pytest.approx(expected, abs=n)


def test_pure_bf16_under_an_accelerate_bf16_launch_still_keeps_fp32_states() -> None:
    # HF TrainingArguments takes mixed_precision from ACCELERATE_MIXED_PRECISION when bf16/fp16 are off, and
    # accelerate upcasts every trainable parameter to fp32 before sharding when mixed precision is on
    p = plan("finetuning_type: full\npure_bf16: true\n", FSDP2, world_size=8)
    assert p.mixed_precision == "bf16" and not p.upcast_trainable_to_fp32 and p.stored_trainable_fp32
    policy, _ = weights_bytes(LLAMA, p, World(8), trainable(LLAMA, p))
    assert policy == 4 * LLAMA.total_params // 8


def test_cpu_offload_leaves_only_the_working_set_on_the_gpu() -> None:
    offload = FSDP2 | {"fsdp_config": FSDP2["fsdp_config"] | {"fsdp_offload_params": True}}
    e = estimate(LLAMA, plan("finetuning_type: full\nbf16: true\ncutoff_len: 2048\n", offload, world_size=8),
                 World(8))
    assert e.components["weights"] == 0 and e.components["optimizer"] == 0
    assert e.phases["optimizer step"] < 1 << 30  # nothing but the cuBLAS workspace at the (CPU) step


def test_loading_without_rank0_cpu_loading_puts_the_whole_model_on_every_gpu() -> None:
    # LF passes device_map unless transformers' is_fsdp_enabled() (ACCELERATE_USE_FSDP and
    # FSDP_CPU_RAM_EFFICIENT_LOADING): every rank holds the fp32-upcast model before FSDP shards it
    per_rank = FSDP2 | {"fsdp_config": FSDP2["fsdp_config"] | {"fsdp_cpu_ram_efficient_loading": False}}
    e = estimate(LLAMA, plan("finetuning_type: full\nbf16: true\n", per_rank, world_size=8), World(8))
    assert e.peak_phase == "model load" and e.phases["model load"] == 4 * LLAMA.total_params + \
        4 * LLAMA.total_params // 8


def test_hf_fsdp_keys_in_the_yaml() -> None:
    raw = parse_yaml("fsdp: [full_shard, auto_wrap]\n", "c.yaml").mapping()
    v2 = fsdp_from_training_args(raw, "c.yaml", None, 5)
    v1 = fsdp_from_training_args(raw, "c.yaml", None, 4)
    assert v2 is not None and v1 is not None and (v2.version, v1.version) == (2, 1)
    assert not v2.cpu_ram_efficient_loading and v2.reshard_after_forward
    offload = fsdp_from_training_args(parse_yaml("fsdp: full_shard offload\n", "c.yaml").mapping(), "c.yaml", None, 5)
    assert offload is not None and offload.offload_params
    with pytest.raises(InputError, match="only available with FSDP1"):
        fsdp_from_training_args(parse_yaml("fsdp: hybrid_shard\n", "c.yaml").mapping(), "c.yaml", None, 5)
    # transformers 5 sets no ACCELERATE_USE_FSDP for the YAML keys: every rank loads the whole model
    p = plan("finetuning_type: full\nbf16: true\nfsdp: full_shard auto_wrap\n"
             "fsdp_config: {cpu_ram_efficient_loading: true}\n", versions=Versions(transformers=5))
    assert p.fsdp is not None and not p.fsdp_loading
    assert plan("finetuning_type: full\nbf16: true\nfsdp: full_shard auto_wrap\n"
                "fsdp_config: {cpu_ram_efficient_loading: true}\n", versions=Versions(transformers=4)).fsdp_loading


def test_accelerate_config_keys() -> None:
    launcher = parse_accelerate_config(
        parse_yaml((EXAMPLES / "accelerate" / "fsdp_config_multiple_nodes.yaml").read_text(), "a.yaml").data,
        "a.yaml")
    assert (launcher.num_processes, launcher.num_machines, launcher.processes_per_machine) == (16, 2, 8)
    assert launcher.fsdp is not None and (launcher.fsdp.version, launcher.fsdp.sharding) == (1, "FULL_SHARD")
    assert launcher.fsdp.backward_prefetch == "BACKWARD_PRE" and launcher.fsdp.cpu_ram_efficient_loading
    with pytest.raises(InputError, match="fsdp_sharding_strategy"):
        parse_accelerate_config({"distributed_type": "FSDP", "fsdp_config": {"fsdp_sharding_strategy": "HALF"}},
                                "a.yaml")
    megatron = parse_accelerate_config({"distributed_type": "MEGATRON_LM"}, "a.yaml")
    assert megatron.not_modelled() and "MEGATRON_LM" in megatron.not_modelled()[0]


# --- the launcher through the pipeline ----------------------------------------------------------------------

ACCELERATE = (EXAMPLES / "accelerate" / "fsdp2_config.yaml").read_text()  # 2 processes, FSDP2
CONFIG = "model_name_or_path: meta-llama/Meta-Llama-3-8B\ndo_train: true\nfinetuning_type: full\nbf16: true\n" \
         "per_device_train_batch_size: 1\ncutoff_len: 1024\n"


def check(root: Path, config: str, policy: str = "pools:\n  - {name: h100, gpu: H100-80GB, per_node: 8}\n",
          launcher: str | None = None) -> Any:
    (root / "configs").mkdir(exist_ok=True)
    (root / "accel").mkdir(exist_ok=True)
    (root / "accel" / "fsdp2.yaml").write_text(ACCELERATE)
    (root / "configs" / "full.yaml").write_text(config)
    return check_config("configs/full.yaml", ParsedFiles(WorkingTree(root)), load_policy(policy), RESOLVER,
                        options=CheckOptions(sizing=False, launcher=launcher))


def test_policy_names_the_launcher_per_glob(tmp_path: Path) -> None:
    policy = "pools:\n  - {name: h100, gpu: H100-80GB, per_node: 8}\nlaunchers:\n  'configs/**': accel/fsdp2.yaml\n"
    report = check(tmp_path, CONFIG, policy)
    assert report.modelled and report.plan["fsdp"]["version"] == 2
    assert report.target.gpus == 2  # the accelerate config's num_processes
    assert report.plan["launcher"]["origin"] == "the policy's launchers map"


def test_target_comment_names_the_launcher(tmp_path: Path) -> None:
    report = check(tmp_path, "# vram-check: launcher=accel/fsdp2.yaml gpus=4\n" + CONFIG)
    assert report.plan["fsdp"]["version"] == 2 and report.target.gpus == 4  # gpus= wins over num_processes


def test_the_configs_own_launch_comment_is_read_and_a_missing_file_is_not_modelled(tmp_path: Path) -> None:
    own = "# accelerate launch \\\n#     --config_file accel/fsdp2.yaml src/train.py x.yaml\n" + CONFIG
    assert check(tmp_path, own).plan["fsdp"]["version"] == 2
    missing = check(tmp_path, own.replace("accel/fsdp2.yaml", "accel/gone.yaml"))
    assert missing.status == "unknown" and "accel/gone.yaml" in missing.not_modelled[0]
    assert missing.suggestions == ()


def test_a_named_launcher_that_is_missing_or_outside_is_an_error(tmp_path: Path) -> None:
    assert "not found" in (check(tmp_path, "# vram-check: launcher=accel/gone.yaml\n" + CONFIG).error or "")
    assert "inside the repository" in (check(tmp_path, CONFIG, launcher="../etc/x.yaml").error or "")
    too_big = ACCELERATE.replace("num_processes: 2", "num_processes: 16")
    (tmp_path / "accel" / "big.yaml").write_text(too_big)
    report = check(tmp_path, "# vram-check: launcher=accel/big.yaml\n" + CONFIG)
    assert "asks for 16 GPU(s) per node" in (report.error or "")


def test_qlora_fsdp_example_reaches_the_llamafactory_rejection_for_8_bits(tmp_path: Path) -> None:
    # quantization.py:188: 8-bit bnb under FSDP with rank-0 loading (is_fsdp_enabled) is rejected
    report = check(tmp_path, "# vram-check: launcher=accel/fsdp2.yaml\n" + CONFIG.replace(
        "finetuning_type: full", "finetuning_type: lora\nquantization_bit: 8"))
    assert report.error is not None and "Only 4-bit quantized model can use fsdp+qlora" in report.error


def test_fsdp_json_shape() -> None:
    p = plan("finetuning_type: full\nbf16: true\n", FSDP2, world_size=8)
    data = p.to_json()
    assert data["fsdp"]["version"] == 2 and data["launcher"]["num_processes"] == 8
    json.dumps(data)
