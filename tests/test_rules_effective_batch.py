"""effective-batch-changed: per-device batch × accumulation × GPUs differs from the base branch's."""

from __future__ import annotations

from rules.checks import RuleContext, run_rules

BASE = "model_name_or_path: x\nstage: sft\nper_device_train_batch_size: 4\ngradient_accumulation_steps: 8\n"


def batch_findings(head: str, base: str | None, world_size: int = 8) -> list[tuple[str, int | None, str]]:
    ctx = RuleContext.from_yaml(head, "c.yaml", base_text=base, world_size=world_size)
    return [(f.severity, f.line, f.message) for f in run_rules(ctx) if f.rule == "effective-batch-changed"]


def test_changed_effective_batch_is_reported_as_info() -> None:
    head = BASE.replace("gradient_accumulation_steps: 8", "gradient_accumulation_steps: 16")
    found = batch_findings(head, BASE)
    assert [(severity, line) for severity, line, _ in found] == [("info", 4)]
    # 4 × 8 × 8 GPUs = 256 before, 4 × 16 × 8 = 512 after
    assert "256 → 512" in found[0][2]


def test_trading_micro_batch_for_accumulation_keeps_it_silent() -> None:
    head = BASE.replace("per_device_train_batch_size: 4", "per_device_train_batch_size: 2").replace(
        "gradient_accumulation_steps: 8", "gradient_accumulation_steps: 16")
    assert batch_findings(head, BASE) == []


def test_removed_key_falls_back_to_the_hf_default() -> None:
    head = BASE.replace("per_device_train_batch_size: 4\n", "")  # HF default per-device batch is 8
    found = batch_findings(head, BASE, world_size=1)
    assert "32 → 64" in found[0][2]


def test_no_base_version_no_finding() -> None:
    assert batch_findings(BASE, None) == []
