"""`vram-check estimate` and `check` as a user runs them: real processes, real files, exit codes 0/1/2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
CONFIG = """### model
model_name_or_path: Qwen/Qwen2.5-0.5B

### method
stage: sft
do_train: true
finetuning_type: full

### train
per_device_train_batch_size: 1
cutoff_len: 1024
bf16: true
"""


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"})


def test_estimate_text_shows_breakdown_in_gib_and_assumptions(tmp_path: Path) -> None:
    (tmp_path / "sft.yaml").write_text(CONFIG)
    out = cli("estimate", "sft.yaml", "--gpu", "RTX 4090", "--gpus", "1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "optimizer states" in out.stdout and " GiB" in out.stdout
    assert "gradient checkpointing: on (LLaMA-Factory default)" in out.stdout


def test_estimate_json_contract(tmp_path: Path) -> None:
    (tmp_path / "sft.yaml").write_text(CONFIG)
    out = cli("estimate", "sft.yaml", "--gpu", "A100-80GB", "--format", "json", cwd=tmp_path)
    data = json.loads(out.stdout)
    assert data["schema"] == 1
    assert data["model"]["parameters"]["total"] == 494_032_768
    per_gpu = data["per_gpu"]
    for key in ("weights", "gradients", "optimizer", "activations", "logits", "overhead"):
        assert isinstance(per_gpu["components"][key], int)
    assert per_gpu["allocated_bytes"] < per_gpu["reserved_bytes"] < per_gpu["peak_bytes"]
    verdict = data["verdicts"][0]
    assert verdict["verdict"] in ("fit", "tight", "no-fit") and verdict["gpus"] == 1


def test_no_fit_exits_1_with_suggestions(tmp_path: Path) -> None:
    (tmp_path / "big.yaml").write_text(CONFIG.replace("Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-7B"))
    # full fine-tuning of 7.6 B parameters without ZeRO keeps ≥ 16 B/param (122 GB) on the one GPU: no fit on
    # an 80 GB A100; LoRA (frozen bf16 weights, 15 GB) is the change that fits
    out = cli("estimate", "big.yaml", "--gpu", "A100-80GB", "--gpus", "1", "--format", "json", cwd=tmp_path)
    assert out.returncode == 1
    data = json.loads(out.stdout)
    assert data["verdicts"][0]["verdict"] == "no-fit"
    assert {"finetuning_type": "lora"} in [s["changes"] for s in data["suggestions"]]


@pytest.mark.parametrize(("content", "message"), [
    ("model_name_or_path: [\n", "malformed YAML"),
    ("- not\n- a mapping\n", "expected a mapping"),
    ("model_name_or_path: nobody/no-such-model-xyz\nstage: sft\n", "no-such-model-xyz"),
    ("model_name_or_path: Qwen/Qwen2.5-0.5B\ndeepspeed: nowhere.json\n", "nowhere.json"),
    ("model_name_or_path: Qwen/Qwen2.5-0.5B\nper_device_train_batch_size: -1\n", "per_device_train_batch_size"),
])
def test_bad_input_is_exit_2_one_line_no_traceback(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "bad.yaml").write_text(content)
    out = cli("estimate", "bad.yaml", cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr and "bad.yaml" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_missing_file_and_unknown_gpu(tmp_path: Path) -> None:
    missing = cli("estimate", "nope.yaml", cwd=tmp_path)
    assert missing.returncode == 2 and "nope.yaml" in missing.stderr
    (tmp_path / "sft.yaml").write_text(CONFIG)
    gpu = cli("estimate", "sft.yaml", "--gpu", "GTX-9999", cwd=tmp_path)
    assert gpu.returncode == 2 and "GTX-9999" in gpu.stderr


def test_check_reports_every_config_even_when_one_is_broken(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(CONFIG)
    (tmp_path / "b.yaml").write_text(CONFIG.replace("cutoff_len: 1024", "cutoff_len: [oops"))
    (tmp_path / "notes.yaml").write_text("title: not a training config\n")
    out = cli("check", ".", "--format", "json", cwd=tmp_path)
    data = json.loads(out.stdout)
    assert set(data["configs"]) == {"a.yaml", "b.yaml"}
    assert data["configs"]["a.yaml"]["per_gpu"] is not None
    assert "malformed YAML" in data["configs"]["b.yaml"]["error"]
    assert out.returncode == 1  # a config that cannot be checked fails the check; 2 is for usage errors


def test_check_base_shows_the_memory_change(tmp_path: Path) -> None:
    git = ["git", "-c", "user.email=t@e", "-c", "user.name=t"]
    (tmp_path / "a.yaml").write_text(CONFIG)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=tmp_path, check=True)
    (tmp_path / "a.yaml").write_text(CONFIG.replace("cutoff_len: 1024", "cutoff_len: 4096"))
    out = cli("check", "--base", "HEAD", "--format", "json", cwd=tmp_path)
    config = json.loads(out.stdout)["configs"]["a.yaml"]
    assert config["base_delta_bytes"] > 0
    assert "cutoff_len 1024 → 4096" in config["base_changes"]
    missing = cli("check", "--base", "no-such-branch", cwd=tmp_path)
    assert missing.returncode == 2 and "no-such-branch" in missing.stderr


def test_diagnose_with_a_config_of_a_config_repository() -> None:
    """The config's DeepSpeed path resolves in its own repository (examples/ has .github/vram-check.yml)."""
    log = ROOT / "tests" / "fixtures" / "oom-logs" / "llamafactory-1221-adamw-exp-avg-sq.log"
    config = ROOT / "examples" / "configs" / "llama3_full_sft_ds3.yaml"
    out = cli("diagnose", str(log), "--config", str(config), "--gpu", "V100-32GB", "--gpus", "8", cwd=ROOT)
    assert out.returncode == 1, out.stderr  # an OOM was diagnosed
    assert "phase: optimizer step" in out.stdout
    assert "Estimate for meta-llama/Meta-Llama-3-8B on V100-32GB" in out.stdout
