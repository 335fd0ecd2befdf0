"""The one place that decides whether a set of checked configs passes the team's policy.

The App's check run, the Action's exit code and outputs, and the CLI's exit code all come from `judge`:

* a config with an error (LLaMA-Factory would refuse it: an unknown key, a rejected combination, a wrong
  type; or it could not be checked at all: unreadable file, unknown model) fails, whatever `fail_on` says;
* otherwise its verdict on its **target** pool fails when the policy's `fail_on` lists it (no-fit always,
  tight and unknown when asked; `never` lets every verdict pass);
* `fail_above` fails a config whose target-pool peak is above that fraction of usable memory, fit or not.

Verdicts on the other pools are for comparison and never fail a check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rules.policy import Policy
from rules.report import ConfigReport, RunReport, Status, worst_status

EXIT_PASS = 0
EXIT_FAIL = 1


@dataclass(frozen=True)
class ConfigOutcome:
    path: str
    status: Status
    fails: bool
    reason: str  # why it fails ("" when it passes)


@dataclass(frozen=True)
class GateResult:
    outcomes: tuple[ConfigOutcome, ...]

    @property
    def passed(self) -> bool:
        return not any(outcome.fails for outcome in self.outcomes)

    @property
    def failing(self) -> tuple[ConfigOutcome, ...]:
        return tuple(outcome for outcome in self.outcomes if outcome.fails)

    @property
    def worst(self) -> Status | Literal["none"]:
        """The worst status over the configs (as the Action's `verdict` output); "none" without configs."""
        return worst_status(outcome.status for outcome in self.outcomes)

    def count(self, status: Status) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.passed else EXIT_FAIL


def config_outcome(config: ConfigReport, policy: Policy) -> ConfigOutcome:
    status = config.status
    if status == "error":
        return ConfigOutcome(config.path, status, True, config.problem or "error")
    target = config.target
    assert target is not None  # a status other than "error" comes from the target verdict
    if status in policy.fail_on:
        return ConfigOutcome(config.path, status, True, f"{status} on pool '{target.pool}' "
                             f"(fail_on: {', '.join(sorted(policy.fail_on))})")
    if (policy.fail_above is not None and status != "unknown"
            and target.peak_bytes > policy.fail_above * target.capacity_bytes):
        share = 100 * target.peak_bytes / target.capacity_bytes
        return ConfigOutcome(config.path, status, True, f"{share:.0f}% of usable memory on pool '{target.pool}', "
                             f"above fail_above: {policy.fail_above:g}")
    return ConfigOutcome(config.path, status, False, "")


def judge(report: RunReport, policy: Policy) -> GateResult:
    """Pass or fail for every config of a run, under the policy."""
    return GateResult(tuple(config_outcome(config, policy) for config in report.configs))
