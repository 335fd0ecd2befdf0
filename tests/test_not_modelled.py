"""A setup the estimator does not model: no confident number, no verdict, no suggestion. The report carries
"modelled": false and the parts in "not_modelled"; the verdict is unknown (❔ with the reason); `check` and
`estimate` exit 0 for it unless the policy's fail_on lists unknown. Real processes, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bot.render.markdown import render_markdown
from bot.render.text import render_text
from estimator.hub import ModelResolver
from rules.gate import judge
from rules.pipeline import check_configs
from rules.policy import load_policy
from rules.sources import ParsedFiles, WorkingTree

ROOT = Path(__file__).parent.parent
MEGATRON = """\
model_name_or_path: Qwen/Qwen2.5-7B
stage: sft
do_train: true
finetuning_type: full
bf16: true
per_device_train_batch_size: 1
cutoff_len: 4096
tensor_model_parallel_size: 4
pipeline_model_parallel_size: 2
"""


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"})


def test_json_says_not_modelled_and_the_verdict_is_unknown(tmp_path: Path) -> None:
    (tmp_path / "mca.yaml").write_text(MEGATRON)
    out = cli("estimate", "mca.yaml", "--gpu", "H100", "--gpus", "8", "--format", "json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["modelled"] is False and data["status"] == "unknown"
    assert any("Megatron" in part for part in data["not_modelled"])
    assert {v["verdict"] for v in data["verdicts"]} == {"unknown"}  # the target and the comparison pools
    assert data["verdicts"][0]["min_gpus"] is None and data["suggestions"] == []


def test_text_and_markdown_show_why_and_no_number(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "mca.yaml").write_text(MEGATRON)
    policy = load_policy("paths: ['configs/*.yaml']\npools:\n  - {name: h100, gpu: H100-80GB, per_node: 8}\n")
    report = check_configs(["configs/mca.yaml"], ParsedFiles(WorkingTree(tmp_path)), policy,
                           ModelResolver(offline=True))
    markdown = render_markdown(report)
    assert "❔ unknown" in markdown and "Megatron" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| `configs/mca.yaml`"))
    assert "| — |" in row  # no peak in the table
    text = render_text(report)
    assert "UNKNOWN" in text and "not modelled" in text and "Megatron" in text
    assert judge(report, policy).exit_code == 0
    strict = load_policy("paths: ['configs/*.yaml']\npools:\n  - {name: h100, gpu: H100-80GB, per_node: 8}\n"
                         "fail_on: [no-fit, unknown]\n")
    assert judge(report, strict).exit_code == 1


def test_check_exits_0_unless_fail_on_unknown(tmp_path: Path) -> None:
    (tmp_path / ".github").mkdir()
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "mca.yaml").write_text(MEGATRON)
    policy = "paths: ['configs/*.yaml']\npools:\n  - {name: h100, gpu: H100-80GB, per_node: 8}\n"
    (tmp_path / ".github" / "vram-check.yml").write_text(policy)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    out = cli("check", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "UNKNOWN" in out.stdout
    (tmp_path / ".github" / "vram-check.yml").write_text(policy + "fail_on: unknown\n")
    assert cli("check", cwd=tmp_path).returncode == 1


def test_deepspeed_autotp_and_ppo_are_not_modelled() -> None:
    from estimator.memory import World, estimate
    from estimator.plan import parse_plan

    model = ModelResolver(offline=True).resolve("Qwen/Qwen2.5-7B")
    autotp = parse_plan("model_name_or_path: x\ndo_train: true\nfinetuning_type: full\nbf16: true\n"
                        "deepspeed: {zero_optimization: {stage: 2}, tensor_parallel: {autotp_size: 2}}\n", "c.yaml",
                        world_size=4)
    assert any("AutoTP" in part for part in estimate(model, autotp, World(4)).not_modelled)
    ppo = parse_plan("model_name_or_path: x\ndo_train: true\nstage: ppo\nreward_model: saves/rm\nbf16: true\n",
                     "c.yaml")
    assert any("ppo" in part for part in estimate(model, ppo, World()).not_modelled)
