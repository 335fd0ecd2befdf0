"""`vram-check diagnose` on real OOM messages users pasted in public issues (tests/fixtures/oom-logs).

Every expected number is read off the fixture's text by hand ("Tried to allocate 12.94 GiB" ->
12.94 × 2**30 bytes); the phase is the one the pasted frames show.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from bot.commands import diagnose as command
from bot.render.diagnose import render_json, render_markdown, render_text
from estimator.errors import InputError
from rules.diagnose import diagnose_file, diagnose_text

FIXTURES = Path(__file__).parent / "fixtures" / "oom-logs"
GiB = 2**30
MiB = 2**20


def gib(x: float) -> int:
    return round(x * GiB)


def mib(x: float) -> int:
    return round(x * MiB)


# file -> (expected fields of the first OOM event, phase)
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "llamafactory-1158-old-wording.log": (
        {"kind": "cuda", "device_index": 1, "requested_bytes": gib(12.94), "capacity_bytes": gib(79.35),
         "allocated_bytes": gib(77.65), "free_bytes": mib(316.12), "reserved_bytes": gib(77.66),
         "reserved_unallocated_bytes": gib(77.66) - gib(77.65)}, "unknown"),
    "llamafactory-1221-adamw-exp-avg-sq.log": (
        {"kind": "cuda", "device_index": 5, "requested_bytes": gib(3.14), "capacity_bytes": gib(31.75),
         "allocated_bytes": gib(28.28), "free_bytes": gib(1.95), "reserved_bytes": gib(28.28)}, "optimizer-step"),
    "llamafactory-2622-truncated-message.log": (
        {"kind": "cuda", "device_index": 4, "requested_bytes": gib(25.88), "capacity_bytes": None,
         "complete": False}, "unknown"),
    "llamafactory-2908-backward.log": (
        {"kind": "cuda", "device_index": 0, "requested_bytes": mib(134.00), "capacity_bytes": gib(39.39),
         "free_bytes": mib(107.94), "process_in_use_bytes": gib(39.28), "allocated_bytes": gib(37.86),
         "reserved_unallocated_bytes": mib(93.47), "reserved_bytes": gib(37.86) + mib(93.47)}, "backward"),
    "llamafactory-4263-truncated-backward.log": (
        {"kind": "cuda", "device_index": None, "requested_bytes": mib(112.00), "complete": False}, "backward"),
    "llamafactory-5491-ascend-npu-load.log": (
        {"kind": "npu", "device": "NPU", "device_index": 2, "requested_bytes": mib(386.00),
         "capacity_bytes": gib(60.97), "allocated_bytes": gib(59.57), "free_bytes": mib(16.54),
         "reserved_bytes": gib(60.06)}, "model-loading"),
    "llamafactory-6800-dpo-cross-entropy.log": (
        {"kind": "cuda", "exception": "torch.OutOfMemoryError", "device_index": 3, "requested_bytes": gib(4.64),
         "capacity_bytes": gib(31.74), "free_bytes": gib(1.41), "process_in_use_bytes": gib(30.26),
         "allocated_bytes": gib(23.51), "reserved_unallocated_bytes": gib(5.51)}, "loss-logits"),
    "llamafactory-7532-deepspeed-zero3-optimizer.log": (
        {"kind": "cuda", "device_index": 1, "requested_bytes": gib(3.39), "capacity_bytes": gib(79.32),
         "free_bytes": gib(2.40), "process_in_use_bytes": gib(76.92), "allocated_bytes": gib(73.28),
         "reserved_unallocated_bytes": gib(1.59)}, "optimizer-step"),
    "llamafactory-7781-load-meta-model.log": (
        {"kind": "cuda", "rank": 3, "device_index": 3, "requested_bytes": mib(270.00), "capacity_bytes": gib(23.65),
         "free_bytes": mib(208.06), "process_in_use_bytes": gib(23.44), "allocated_bytes": gib(22.87),
         "reserved_unallocated_bytes": mib(6.23)}, "model-loading"),
    "pytorch-111729-old-wording-allowed.log": (
        {"kind": "cuda", "device_index": 3, "requested_bytes": gib(4.00), "capacity_bytes": gib(11.93),
         "allocated_bytes": gib(10.67), "free_bytes": mib(515.38), "allowed_bytes": gib(11.93),
         "reserved_bytes": gib(10.92)}, "forward"),
    "pytorch-4921-nccl-cuda-failure.log": ({"kind": "nccl", "requested_bytes": None}, "communication"),
    "deepspeed-3312-wrapped-old-wording.log": (
        {"kind": "cuda", "device_index": 0, "requested_bytes": mib(198.00), "capacity_bytes": gib(31.75),
         "allocated_bytes": gib(28.05), "free_bytes": mib(137.69), "reserved_bytes": gib(28.08),
         "complete": True}, "unknown"),
    "trl-1626-no-gpu-index-fragmentation.log": (
        {"kind": "cuda", "device": "GPU", "device_index": None, "requested_bytes": gib(20.39),
         "capacity_bytes": gib(22.19), "free_bytes": gib(11.72), "process_in_use_bytes": gib(10.22),
         "allocated_bytes": gib(7.48), "reserved_unallocated_bytes": gib(2.43)}, "unknown"),
    "nccl-962-calloc-out-of-memory.log": ({"kind": "nccl", "requested_bytes": 6291456}, "communication"),
    "llama-cookbook-320-fragmentation-backward.log": (
        {"kind": "cuda", "device_index": 0, "requested_bytes": gib(10.08), "capacity_bytes": gib(22.20),
         "free_bytes": mib(687.12), "process_in_use_bytes": gib(21.53), "allocated_bytes": gib(9.71),
         "reserved_unallocated_bytes": gib(10.61)}, "backward"),
    "belle-257-cross-entropy-old-wording.log": (
        {"kind": "cuda", "device_index": 1, "requested_bytes": gib(9.14), "capacity_bytes": gib(39.41),
         "allocated_bytes": gib(26.21), "free_bytes": gib(5.86), "reserved_bytes": gib(31.99)}, "loss-logits"),
    "falcontune-19-checkpoint-save.log": (
        {"kind": "cuda", "requested_bytes": None, "capacity_bytes": None, "complete": False}, "checkpoint-save"),
    "nemo-automodel-3907-wrapped-new-wording.log": (
        {"kind": "cuda", "device_index": 0, "requested_bytes": mib(720.00), "capacity_bytes": gib(184.31),
         "free_bytes": mib(443.94), "allocated_bytes": gib(171.63), "reserved_unallocated_bytes": gib(2.00)},
        "backward"),
    "vllm-ascend-1987-npu-old-wording.log": (
        {"kind": "npu", "device_index": 0, "requested_bytes": gib(3.47), "capacity_bytes": gib(60.97),
         "allocated_bytes": gib(58.92), "free_bytes": gib(1.66), "reserved_bytes": gib(58.95)}, "unknown"),
    "llamacpp-20431-cudamalloc.log": ({"kind": "other", "requested_bytes": mib(144817.04)}, "unknown"),
}


def test_every_fixture_has_a_case_and_a_source() -> None:
    logs = {p.name for p in FIXTURES.glob("*.log")}
    assert logs == set(CASES)
    sources = (FIXTURES / "SOURCES.md").read_text()
    assert all(name in sources for name in logs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_numbers_and_phase(name: str) -> None:
    expected, phase = CASES[name]
    diagnosis = diagnose_file(FIXTURES / name)
    assert diagnosis.oom_found
    event = diagnosis.events[0]
    for field, value in expected.items():
        assert getattr(event, field) == value, field
    assert event.phase == phase


def test_two_ranks_of_one_paste_are_two_events() -> None:
    diagnosis = diagnose_file(FIXTURES / "llamafactory-7781-load-meta-model.log")
    assert [(e.rank, e.device_index) for e in diagnosis.events] == [(3, 3), (5, 5)]
    text = render_text(diagnosis)
    assert "ranks 3, 5" in text  # folded into one OOM in the report


def test_causes_name_the_number_behind_them() -> None:
    dpo = diagnose_file(FIXTURES / "llamafactory-6800-dpo-cross-entropy.log").events[0]
    messages = {c.id: c.message for c in dpo.causes}
    # 5.51 GiB reserved-but-unallocated exceeds the 4.64 GiB request: fragmentation.
    assert "5.5 GiB" in messages["fragmentation"]
    assert "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True" in messages["fragmentation"]
    assert "logits" in messages
    assert messages["preference-model"].startswith("DPO")  # "stage: dpo" in the pasted config
    npu = diagnose_file(FIXTURES / "llamafactory-5491-ascend-npu-load.log").events[0]
    # NPU: 60.06 - 59.57 GiB reserved-unallocated ≥ the 386 MiB request; NPU's own allocator variable.
    assert "PYTORCH_NPU_ALLOC_CONF" in {c.id: c.message for c in npu.causes}["fragmentation"]
    adam = diagnose_file(FIXTURES / "llamafactory-1221-adamw-exp-avg-sq.log").events[0]
    assert {"optimizer-states", "working-set"} <= {c.id for c in adam.causes}
    cut = diagnose_file(FIXTURES / "llamafactory-2622-truncated-message.log").events[0]
    assert cut.causes[0].id == "truncated"


def test_fp32_upcast_at_load_uses_the_logged_parameter_count() -> None:
    # LLaMA-Factory's own log lines (format as printed in hiyouga/LlamaFactory#4898), then a load-time OOM.
    log = "\n".join([
        "[INFO|2025-01-04 14:23:13] llamafactory.model.adapter:157 >> Upcasting trainable params to float32.",
        "[INFO|2025-01-04 14:23:13] llamafactory.model.loader:157 >> trainable params: 7,615,616,512 || "
        "all params: 7,615,616,512 || trainable%: 100.0000",
        (FIXTURES / "llamafactory-7781-load-meta-model.log").read_text(),
    ])
    event = diagnose_text(log).events[0]
    upcast = {c.id: c.message for c in event.causes}["fp32-upcast"]
    assert f"{4 * 7_615_616_512 / GiB:.1f} GiB" in upcast  # 4 bytes × trainable parameters


def test_log_without_oom_reports_measured_peaks(tmp_path: Path) -> None:
    # LLaMA-Factory RECORD_VRAM=1 lines (GiB) and an nvidia-smi table row.
    log = tmp_path / "trainer_log.jsonl"
    log.write_text("\n".join([
        json.dumps({"current_steps": 10, "total_steps": 100, "loss": 1.5, "vram_allocated": 20.5,
                    "vram_reserved": 23.25}),
        json.dumps({"current_steps": 20, "total_steps": 100, "loss": 1.2, "vram_allocated": 21.75,
                    "vram_reserved": 23.0}),
        "|   0  NVIDIA A100-SXM4-80GB  On | 00000000:07:00.0 Off |  0 | N/A 45C P0 250W / 400W |"
        "  40536MiB / 81920MiB |  98%  Default |",
    ]) + "\n")
    diagnosis = diagnose_file(log)
    assert not diagnosis.oom_found
    assert diagnosis.peaks.allocated_bytes == gib(21.75)
    assert diagnosis.peaks.reserved_bytes == gib(23.25)
    assert diagnosis.peaks.device_used_bytes == 40536 * MiB
    assert diagnosis.peaks.device_total_bytes == 81920 * MiB
    text = render_text(diagnosis)
    assert "No out-of-memory error found" in text
    assert "max allocated 21.8 GiB" in text  # 21.75 GiB with one decimal
    args = _args(log)
    assert command.run(args) == 0


def test_binary_junk_is_tolerated(tmp_path: Path) -> None:
    import random

    junk = random.Random(7).randbytes(300_000)  # long stretches without newlines, invalid UTF-8, NULs
    real = (FIXTURES / "belle-257-cross-entropy-old-wording.log").read_bytes()
    log = tmp_path / "junk.log"
    log.write_bytes(junk + b"\n" + real + b"\x00\xff\xfe" + junk)
    diagnosis = diagnose_file(log)
    assert [e.requested_bytes for e in diagnosis.events] == [gib(9.14)]
    only_junk = tmp_path / "only-junk.bin"
    only_junk.write_bytes(junk.replace(b"\n", b""))
    assert not diagnose_file(only_junk).oom_found


def test_truncated_traceback_mid_message() -> None:
    full = (FIXTURES / "llamafactory-2908-backward.log").read_text()
    cut = full[: full.index("of which")]  # the paste stops after "total capacity"
    event = diagnose_text(cut).events[0]
    assert event.requested_bytes == mib(134.00)
    assert event.free_bytes is None and event.allocated_bytes is None
    assert not event.complete
    assert event.phase == "backward"


def test_log_from_another_framework() -> None:
    other = diagnose_file(FIXTURES / "llamacpp-20431-cudamalloc.log").events[0]
    assert [c.id for c in other.causes] == ["not-pytorch"]
    keras = "Epoch 1/10\n32/32 [==============================] - 3s 80ms/step - loss: 0.6931\n"
    assert not diagnose_text(keras).oom_found


def test_advice_text_alone_is_not_an_oom() -> None:
    assert not diagnose_text("Tip: lower the batch size to avoid out of memory errors.\n").oom_found


def test_events_are_bounded() -> None:
    line = (FIXTURES / "llamafactory-1158-old-wording.log").read_text().splitlines()[1]
    diagnosis = diagnose_text("\n".join([line] * 500))
    assert len(diagnosis.events) == 200 and diagnosis.events_dropped == 300
    assert "300 more" in render_text(diagnosis)


def test_markdown_and_json_renderings() -> None:
    diagnosis = diagnose_text((FIXTURES / "llamafactory-1158-old-wording.log").read_text())
    markdown = render_markdown(diagnosis)
    assert "| asked for | 12.9 GiB |" in markdown  # 12.94 GiB, one decimal
    assert "| device capacity | 79.3 GiB |" in markdown  # 79.35 GiB
    data = json.loads(render_json(diagnosis))
    assert data["schema"] == 1 and data["oom_found"] is True
    assert data["oom_events"][0]["requested_bytes"] == gib(12.94)
    assert data["oom_events"][0]["device_index"] == 1


def _args(log: Path, fmt: str = "text") -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return parser.parse_args([str(log), "--format", fmt])


def test_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert command.NAME == "diagnose"
    assert command.run(_args(FIXTURES / "llamafactory-1221-adamw-exp-avg-sq.log", "json")) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["oom_events"][0]["phase"] == "optimizer-step"
    with pytest.raises(InputError, match="not found"):
        command.run(_args(tmp_path / "missing.log"))
    with pytest.raises(InputError, match="directory"):
        command.run(_args(tmp_path))


LLAMA2_FULL_SFT = """\
model_name_or_path: meta-llama/Llama-2-7b-hf
stage: sft
do_train: true
finetuning_type: full
dataset: alpaca_en_demo
template: llama2
cutoff_len: 1024
per_device_train_batch_size: 1
bf16: true
output_dir: saves/llama2-7b/full/sft
"""


def test_config_compares_estimate_with_measured_peaks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from estimator.hub import ModelResolver
    from estimator.memory import World, estimate
    from estimator.plan import load_plan

    config = tmp_path / "llama2_full_sft.yaml"
    config.write_text(LLAMA2_FULL_SFT)
    log = tmp_path / "trainer_log.jsonl"
    log.write_text(json.dumps({"current_steps": 5, "vram_allocated": 70.25, "vram_reserved": 74.5}) + "\n")
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args([str(log), "--config", str(config), "--format", "json"])
    assert command.run(args) == 0
    data = json.loads(capsys.readouterr().out)
    expected = estimate(ModelResolver().resolve("meta-llama/Llama-2-7b-hf"), load_plan(config), World())
    rows = {row["what"]: row for row in data["estimate"]["vs_measured"]}
    assert rows["max allocated (measured)"] == {"what": "max allocated (measured)",
                                                "estimated_bytes": expected.allocated_bytes,
                                                "measured_bytes": gib(70.25)}
    assert rows["max reserved (measured)"]["measured_bytes"] == gib(74.5)


def test_config_says_whether_the_estimate_predicted_the_oom(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "llama2_full_sft.yaml"
    config.write_text(LLAMA2_FULL_SFT)
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    # hiyouga/LlamaFactory#1221: LLaMA-7B full fine-tuning on a V100 32 GB died in the AdamW step.
    args = parser.parse_args([str(FIXTURES / "llamafactory-1221-adamw-exp-avg-sq.log"), "--config", str(config),
                              "--gpu", "V100-32GB"])
    assert command.run(args) == 1
    out = capsys.readouterr().out
    assert "the estimate predicted this OOM" in out  # full fp32 AdamW states alone exceed 32 GB for 6.7B
    assert "allocated in optimizer step" in out
