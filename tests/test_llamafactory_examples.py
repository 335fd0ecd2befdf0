"""Every config of LLaMA-Factory's own examples/ (ff6d4d1, tests/data/llamafactory_examples) through the whole
pipeline: each gets a number from a modelled path, or an explicit "unknown" naming the part that is not
modelled, or an error that is LLaMA-Factory's own; none crashes.

The repository is laid out as LLaMA-Factory's (examples/ at the root, where the configs' own paths point).
The policy names the launchers the examples' READMEs use where the YAML does not say it itself
(examples/extras/fsdp_qlora/train.sh, docs/en/advanced/ktransformers.md); the ascend FSDP examples name their
accelerate config in their own header comment. Models the bundled catalog does not have are stood in for by
a catalog model of the same family (the table below): the point is the training setup, not the model.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from estimator.errors import ModelNotFound
from estimator.hub import CATALOG_DIR, ModelResolver
from estimator.model import ModelSpec, model_spec_from_config
from rules.pipeline import CheckOptions, check_config
from rules.policy import load_policy
from rules.report import ConfigReport
from rules.sources import ParsedFiles, WorkingTree

EXAMPLES = Path(__file__).parent / "data" / "llamafactory_examples"
NOT_CONFIGS = ("accelerate/", "deepspeed/", "ktransformers/accelerate/", "extras/multi_tokens/")

POLICY = """\
llamafactory: main
pools:
  - {name: h100, gpu: H100-80GB, per_node: 8, nodes: 2}
launchers:
  "examples/extras/fsdp_qlora/*.yaml": examples/accelerate/fsdp_config.yaml
  "examples/ascend/qwen3vlmoe_lora_sft_fsdp.yaml": examples/accelerate/fsdp_config.yaml
  "examples/ktransformers/train_lora/*int8*.yaml": examples/ktransformers/accelerate/fsdp2_kt_int8.yaml
  "examples/ktransformers/train_lora/*.yaml": examples/ktransformers/accelerate/fsdp2_kt_bf16.yaml
"""

STAND_INS = {  # example model → catalog model of the same family
    "meta-llama/Meta-Llama-3-8B-Instruct": "meta-llama/Meta-Llama-3-8B",
    "models/llama3-8b-pro": "meta-llama/Meta-Llama-3-8B",
    "models/llama3-8b-instruct-pro": "meta-llama/Meta-Llama-3-8B",
    "meta-llama/Llama-3.2-1B-Instruct": "meta-llama/Llama-3.2-1B",
    "Qwen/Qwen2-1.5B-Instruct": "Qwen/Qwen2.5-1.5B",
    "Qwen/Qwen2.5-0.5B-Instruct": "Qwen/Qwen2.5-0.5B",
    "Qwen/Qwen3-4B-Instruct-2507": "Qwen/Qwen3-8B",
    "Qwen/Qwen3-4B": "Qwen/Qwen3-8B",
    "Qwen/Qwen3-0.6B": "Qwen/Qwen3-8B",
    "saves/qwen3-4b/full/sft": "Qwen/Qwen3-8B",
    "Qwen/Qwen3-30B-A3B-Instruct-2507": "Qwen/Qwen3-30B-A3B",
    "Qwen/Qwen3-235B-A22B-Instruct-2507": "Qwen/Qwen3-30B-A3B",
    "Qwen/Qwen3-VL-4B-Instruct": "Qwen/Qwen2-VL-7B-Instruct",
    "Qwen/Qwen3-VL-30B-A3B-Instruct": "Qwen/Qwen3-30B-A3B",
    "Qwen/Qwen2.5-VL-7B-Instruct": "Qwen/Qwen2-VL-7B-Instruct",
    "OpenMOSS-Team/MOSS-VL-Instruct-0708": "Qwen/Qwen2-VL-7B-Instruct",
    "Qwen/Qwen3.5-4B": "Qwen/Qwen3.5-27B",
    "Qwen/Qwen3.5-0.8B": "Qwen/Qwen3.5-27B",
    "Qwen/Qwen3.5-35B-A3B": "Qwen/Qwen3-30B-A3B",
    "Qwen/Qwen3.5-397B-A17B": "Qwen/Qwen3-30B-A3B",
    "deepseek-ai/DeepSeek-V3-0324-BF16": "deepseek-ai/DeepSeek-V2-Lite",
    "/path/to/DeepSeek-V3.1-source": "deepseek-ai/DeepSeek-V2-Lite",
}
# The pre-quantized checkpoints: Llama-3-8B with the quantization_config their config.json carries
PREQUANTIZED = {
    "TechxGenus/Meta-Llama-3-8B-Instruct-GPTQ": {"quant_method": "gptq", "bits": 4, "group_size": 128,
                                                 "desc_act": False, "sym": True},
    "TechxGenus/Meta-Llama-3-8B-Instruct-AWQ": {"quant_method": "awq", "bits": 4, "group_size": 128,
                                                "version": "gemm", "zero_point": True},
    "ISTA-DASLab/Meta-Llama-3-8B-Instruct-AQLM-2Bit-1x16": {"quant_method": "aqlm", "num_codebooks": 1,
                                                            "nbits_per_codebook": 16, "in_group_size": 8,
                                                            "out_group_size": 1},
}


class StandInResolver:
    """The bundled catalog, with stand-ins for the example models it does not have."""

    def __init__(self) -> None:
        self.catalog = ModelResolver(offline=True)

    def resolve(self, ref: str) -> ModelSpec:
        ref = ref.split("#")[0].strip()
        if ref in PREQUANTIZED:
            config: dict[str, Any] = json.loads((CATALOG_DIR / "meta-llama__Meta-Llama-3-8B.json").read_text())
            config["quantization_config"] = PREQUANTIZED[ref]
            config["torch_dtype"] = "float16"
            return model_spec_from_config(config, ref)
        try:
            return self.catalog.resolve(STAND_INS.get(ref, ref))
        except ModelNotFound:
            raise ModelNotFound(f"no stand-in for {ref}") from None


def example_configs() -> list[str]:
    return sorted(str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.yaml")
                  if not str(p.relative_to(EXAMPLES)).startswith(NOT_CONFIGS))


def run_all() -> Iterator[tuple[str, ConfigReport]]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(EXAMPLES, root / "examples")
        files = ParsedFiles(WorkingTree(root))
        policy = load_policy(POLICY)
        resolver = StandInResolver()
        for path in example_configs():
            yield path, check_config(f"examples/{path}", files, policy, resolver,
                                     options=CheckOptions(sizing=False))


REPORTS = dict(run_all())


def test_every_yaml_example_is_checked() -> None:
    assert len(REPORTS) == len(example_configs()) >= 80


def test_each_gets_a_number_an_unknown_with_the_part_named_or_a_llamafactory_error() -> None:
    for path, report in REPORTS.items():
        if report.status == "error":
            # only what LLaMA-Factory itself stops on: a rejected combination or an error finding
            assert report.problem is not None and ("LLaMA-Factory" in report.problem or report.errors), path
            continue
        assert report.estimate is not None and report.target is not None, path
        if report.status == "unknown":
            assert report.not_modelled and all(part.strip() for part in report.not_modelled), path
            assert report.target.verdict == "unknown" and report.suggestions == (), path
            assert report.to_json()["modelled"] is False, path
        else:
            assert report.modelled and report.target.verdict in ("fit", "tight", "no-fit"), path
            assert report.estimate.peak_bytes > 0, path


def test_what_is_modelled_and_what_is_not() -> None:
    def status(path: str) -> str:
        return REPORTS[path].status

    # FSDP through accelerate: the policy's launcher (2 processes) and the YAML's own launch comment
    qlora = REPORTS["extras/fsdp_qlora/llama3_lora_sft.yaml"]
    assert qlora.modelled and qlora.plan["fsdp"]["version"] == 1 and qlora.target is not None
    assert qlora.target.gpus == 2 and qlora.plan["launcher"]["origin"] == "the policy's launchers map"
    ascend = REPORTS["ascend/qwen3_5moe_lora_sft_fsdp2.yaml"]
    assert ascend.modelled and ascend.plan["fsdp"]["version"] == 2
    assert "own launch comment" in ascend.plan["launcher"]["origin"]
    # Ray's workers are the GPU count; KTransformers keeps the routed experts off the GPU
    assert REPORTS["train_lora/qwen3_lora_sft_ray.yaml"].target.gpus == 4  # type: ignore[union-attr]
    kt = REPORTS["ktransformers/train_lora/deepseek_v2_lora_sft_kt.yaml"]
    assert kt.modelled and kt.estimate is not None and kt.parameters is not None
    assert kt.estimate.components["weights"] < kt.parameters.total  # < 1 B/param: experts are on the CPU
    # prediction without training; pre-quantized checkpoints; quantized OFT
    assert REPORTS["extras/nlg_eval/llama3_lora_predict.yaml"].plan["task"] == "predict"
    for path in ("train_qlora/llama3_lora_sft_gptq.yaml", "train_qlora/llama3_lora_sft_awq.yaml",
                 "train_qlora/llama3_lora_sft_aqlm.yaml", "extras/qoft/llama3_oft_sft_gptq.yaml"):
        assert REPORTS[path].modelled, path
    # not modelled, each with its part named
    for prefix, part in (("megatron", "Megatron"), ("megatron_bridge", "Megatron"), ("v1/", "v1 schema"),
                         ("inference/", "inference config"), ("merge_lora/", "export config"),
                         ("extras/fp8/", "fp8"), ("extras/mod/", "mixture_of_depths"),
                         ("extras/llama_pro/", "use_llama_pro"), ("ascend/qwen3_full", "use_v1_kernels")):
        for path, report in REPORTS.items():
            if path.startswith(prefix):
                assert report.status == "unknown" and any(part in p for p in report.not_modelled), path
    # LLaMA-Factory's own rejections on the 16-GPU pool: the single-GPU recipes are distributed there
    assert status("extras/galore/llama3_full_sft.yaml") == "error"
    assert status("extras/badam/llama3_full_sft.yaml") == "error"
