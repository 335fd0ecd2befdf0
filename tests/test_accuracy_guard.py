"""Accuracy guard: the estimator's allocated_bytes stays within 3% of the trace oracle.

Each point builds the real transformers model (Qwen2.5-0.5B / Llama-3.2-1B widths, depth cut to 4
layers to keep it to a few seconds) on fake tensors, runs two LLaMA-Factory-style training steps
(benchmarks/oracle/trace.py) and compares the traced peak with ``estimator.memory.estimate`` for the
same config.json and the same LLaMA-Factory YAML.  The 3% bound is the project's accuracy target
(issue 3), not a value read off the output.  Needs the ``oracle`` extra (torch, transformers, peft,
accelerate); skipped without torch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.oracle.compare import lf_yaml  # noqa: E402
from benchmarks.oracle.grid import LF_FLASH_ATTN  # noqa: E402
from benchmarks.oracle.lf_setup import Method  # noqa: E402
from benchmarks.oracle.trace import Shape, run_trace  # noqa: E402
from estimator.constants import CUBLAS_WORKSPACE_BYTES  # noqa: E402
from estimator.memory import World, estimate  # noqa: E402
from estimator.model import model_spec_from_config  # noqa: E402
from estimator.plan import parse_plan  # noqa: E402

CATALOG = REPO_ROOT / "estimator" / "catalog"
TARGET = 0.03
LAYERS = 4

POINTS = [
    pytest.param("Qwen__Qwen2.5-0.5B.json", Method("full", gradient_checkpointing=True), Shape(1, 512)),
    ("Qwen__Qwen2.5-0.5B.json", Method("full", pure_bf16=True, bf16=False, gradient_checkpointing=False),
     Shape(1, 512)),
    ("Qwen__Qwen2.5-7B.json", Method("full", pure_bf16=True, bf16=False, gradient_checkpointing=False), Shape(1, 512)),
    ("Qwen__Qwen2.5-0.5B.json", Method("lora", gradient_checkpointing=True), Shape(2, 512)),
    ("Qwen__Qwen2.5-0.5B.json", Method("lora", gradient_checkpointing=False), Shape(1, 1024)),
    ("Qwen__Qwen2.5-0.5B.json", Method("freeze", gradient_checkpointing=True), Shape(1, 1024)),
    ("Qwen__Qwen2.5-0.5B.json", Method("freeze", gradient_checkpointing=False, attention="eager"), Shape(1, 512)),
    pytest.param("meta-llama__Llama-3.2-1B.json", Method("full", gradient_checkpointing=False, attention="fa2"),
                 Shape(1, 1024)),
    ("meta-llama__Meta-Llama-3-8B.json", Method("full", gradient_checkpointing=False, attention="fa2"), Shape(1, 1024)),
]  # fmt: skip


def _row(config_file: str, method: Method, shape: Shape) -> dict[str, str]:
    return {
        "model": "guard/" + config_file.removesuffix(".json"),
        "finetuning_type": method.finetuning_type,
        "lora_rank": str(method.lora_rank),
        "freeze_trainable_layers": str(method.freeze_trainable_layers),
        "cutoff_len": str(shape.cutoff),
        "per_device_train_batch_size": str(shape.batch),
        "flash_attn": LF_FLASH_ATTN[method.attention],
        "pure_bf16": str(method.pure_bf16),
        "bf16": str(method.bf16 and not method.pure_bf16),
        "disable_gradient_checkpointing": str(not method.gradient_checkpointing),
    }


@pytest.mark.parametrize(
    ("config_file", "method", "shape"),
    POINTS,
    ids=lambda value: (
        value.removesuffix(".json").split("__")[-1] if isinstance(value, str)
        else f"{value.batch}x{value.cutoff}" if isinstance(value, Shape)
        else f"{value.finetuning_type}-pure{int(value.pure_bf16)}"
        f"-gc{int(value.gradient_checkpointing)}-{value.attention}"
    ),
)  # fmt: skip
def test_estimate_within_3_percent_of_trace(config_file: str, method: Method, shape: Shape) -> None:
    config = json.loads((CATALOG / config_file).read_text())
    config["num_hidden_layers"] = LAYERS
    traced = run_trace(config, method, shape)
    assert traced.layers == LAYERS

    model = model_spec_from_config(config, "guard/" + config_file)
    plan = parse_plan(lf_yaml(_row(config_file, method, shape)), "guard.yaml")
    estimated = estimate(model, plan, World())

    assert model.total_params == traced.base_params  # same architecture on both sides
    traceable = estimated.allocated_bytes - CUBLAS_WORKSPACE_BYTES  # the trace cannot see cuBLAS workspaces
    error = (traceable - traced.peak) / traced.peak
    assert abs(error) <= TARGET, (
        f"estimate {traceable:,} B (without cuBLAS workspace) vs oracle {traced.peak:,} B ({error:+.2%}); "
        f"estimate phases {estimated.phases}, oracle phases {traced.phases}"
    )
