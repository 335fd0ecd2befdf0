"""rules.gate.judge: the one decision the App, the Action and the CLI share (their agreement is tested end to
end in test_fronts_agree.py)."""

from __future__ import annotations

import pytest

from estimator.units import GiB
from rules.gate import judge
from rules.policy import load_policy
from rules.report import ConfigReport, Finding, RunReport, Verdict

POLICY = """\
pools:
  - {name: big, gpu: A100-80GB, per_node: 8}
  - {name: small, gpu: RTX-4090, per_node: 2}
"""


def verdict(pool: str, name: str, peak_gib: float = 40.0) -> Verdict:
    usable = int(79 * GiB)
    return Verdict(pool=pool, gpu="A100-80GB", gpus=8, capacity_bytes=usable, peak_bytes=int(peak_gib * GiB),
                   verdict=name, min_gpus=1, headroom_bytes=usable - int(peak_gib * GiB))  # type: ignore[arg-type]


def config(target: str, *others: str, findings: tuple[Finding, ...] = (), peak_gib: float = 40.0) -> ConfigReport:
    return ConfigReport(path="c.yaml", target=verdict("big", target, peak_gib),
                        others=tuple(verdict("small", name) for name in others), findings=findings)


@pytest.mark.parametrize(("fail_on", "target", "fails"), [
    ("", "fit", False), ("", "tight", False), ("", "no-fit", True), ("", "unknown", False),
    ("fail_on: tight\n", "tight", True), ("fail_on: tight\n", "unknown", False),
    ("fail_on: unknown\n", "unknown", True), ("fail_on: unknown\n", "tight", False),
    ("fail_on: never\n", "no-fit", False),
])
def test_the_target_verdict_decides_under_fail_on(fail_on: str, target: str, fails: bool) -> None:
    gate = judge(RunReport((config(target),)), load_policy(POLICY + fail_on))
    assert gate.passed is not fails
    assert gate.exit_code == (1 if fails else 0)
    assert gate.worst == target


@pytest.mark.parametrize("other", ["fit", "tight", "no-fit", "unknown"])
def test_comparison_pools_never_fail_a_check(other: str) -> None:
    assert judge(RunReport((config("fit", other),)), load_policy(POLICY + "fail_on: [tight, unknown]\n")).passed


def test_a_config_llamafactory_would_refuse_fails_whatever_fail_on_says() -> None:
    refused = config("fit", findings=(Finding("unknown-key", "error", "unknown key 'x'", 3),))
    for fail_on in ("", "fail_on: never\n"):
        gate = judge(RunReport((refused,)), load_policy(POLICY + fail_on))
        assert not gate.passed and gate.worst == "error"
        assert gate.failing[0].reason == "line 3: unknown key 'x'"
    warned = config("fit", findings=(Finding("duplicate-key", "warning", "twice", 3),))
    assert judge(RunReport((warned,)), load_policy(POLICY)).passed


def test_a_config_that_could_not_be_checked_fails() -> None:
    gate = judge(RunReport((ConfigReport(path="c.yaml", error="c.yaml: malformed YAML"),)), load_policy(POLICY))
    assert not gate.passed and gate.failing[0].reason == "c.yaml: malformed YAML"


def test_fail_above_fails_a_fitting_config_above_the_fraction() -> None:
    policy = load_policy(POLICY + "fail_above: 0.8\n")  # 0.8 × 79 GiB = 63.2 GiB
    assert not judge(RunReport((config("fit", peak_gib=64),)), policy).passed
    assert judge(RunReport((config("fit", peak_gib=63),)), policy).passed
    assert judge(RunReport((config("unknown", peak_gib=70),)), policy).passed  # no number to hold against it


def test_no_configs_pass() -> None:
    gate = judge(RunReport(()), load_policy(POLICY))
    assert gate.passed and gate.worst == "none"
