"""The App, the Action and the CLI decide pass/fail the same way (rules.gate), for every combination of the verdict on
the config's target pool and on a comparison pool, under two `fail_on` settings, and for a config LLaMA-Factory
would refuse.

One repository per case: a policy with two single-GPU pools of custom memory, sized around the config's own
estimated peak and its error band [low, high] so that each pool's verdict is known by construction (headroom 0.10;
verdicts hold the band against the GPU): capacity high/0.8 → fit (the top below 90 %), the point estimate → tight
(the band crosses the capacity), low/1.2 → no-fit (even the bottom is above it). The expected outcome follows from
the policy (DESIGN.md): only the target pool counts; no-fit fails; tight fails only under `fail_on: tight`; a config
with an error fails whatever the verdicts. Each front runs through its public entry point: `vram-check check`
(bot.cli.main), the Action (bot.action.main with the Actions environment), the App (a signed delivery into the
running service, answered with a commit status on the fake GitHub).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fakes.github import FakeGitHub, FakeGitHubState
from fakes.service import RunningService, pull_request_payload

from bot import action
from bot.cli import main as cli_main
from bot.settings import Settings
from estimator.hub import ModelResolver
from estimator.memory import World, estimate
from estimator.plan import parse_plan
from estimator.units import GiB

SECRET = "fronts-agree-secret"
TOKEN = "ghp_fronts_agree"
CONFIG = """\
model_name_or_path: Qwen/Qwen2.5-0.5B
stage: sft
do_train: true
finetuning_type: lora
cutoff_len: 512
per_device_train_batch_size: 1
bf16: true
"""
REFUSED = CONFIG + "per_device_train_batchsize: 2\n"  # the typo LLaMA-Factory's parser stops on
VERDICTS = ("fit", "tight", "no-fit")


@dataclass(frozen=True)
class Case:
    target: str
    other: str
    fail_on: str  # "" (the default, no-fit) or "tight"
    refused: bool = False

    @property
    def fails(self) -> bool:
        failing = {"no-fit", "tight"} if self.fail_on == "tight" else {"no-fit"}
        return self.refused or self.target in failing

    @property
    def name(self) -> str:
        return f"target-{self.target}-other-{self.other}{'-fail-on-tight' if self.fail_on else ''}" + \
            ("-refused" if self.refused else "")


CASES = [Case(target, other, fail_on)
         for fail_on, target, other in itertools.product(("", "tight"), VERDICTS, VERDICTS)]
CASES += [Case("fit", "fit", "", refused=True), Case("fit", "no-fit", "tight", refused=True)]


def peak_bytes() -> tuple[int, int, int]:
    """The config's estimated peak and band on one GPU (both pools have one GPU per node: both see them)."""
    plan = parse_plan(CONFIG, "configs/c.yaml", world_size=1)
    result = estimate(ModelResolver(offline=True).resolve(plan.model_name_or_path), plan, World(1, 1))
    return result.peak_bytes, *result.peak_range_bytes


def policy(case: Case, peak: tuple[int, int, int]) -> str:
    point, low, high = peak

    def memory(verdict: str) -> float:
        capacity = {"fit": high / 0.8, "tight": point, "no-fit": low / 1.2}[verdict]
        return round(capacity / GiB, 4)

    fail_on = f"fail_on: {case.fail_on}\n" if case.fail_on else ""
    return (f'paths: ["configs/**/*.yaml"]\npools:\n  - {{name: target, memory_gib: {memory(case.target)}}}\n'
            f"  - {{name: other, memory_gib: {memory(case.other)}}}\ndefault_pool: target\n{fail_on}")


def write_repo(root: Path, case: Case, peak: tuple[int, int, int]) -> Path:
    (root / ".github").mkdir(parents=True)
    (root / ".github" / "vram-check.yml").write_text(policy(case, peak), encoding="utf-8")
    (root / "configs").mkdir()
    (root / "configs" / "c.yaml").write_text(REFUSED if case.refused else CONFIG, encoding="utf-8")
    return root


def cli_fails(repo: Path) -> bool:
    code = cli_main(["check", str(repo), "--format", "json"])
    assert code in (0, 1)
    return code == 1


def action_fails(repo: Path, tmp: Path) -> tuple[bool, str]:
    outputs = tmp / "outputs.txt"
    outputs.write_text("", encoding="utf-8")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push", "GITHUB_WORKSPACE": str(repo),
           "GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(tmp / "summary.md"), "RUNNER_TEMP": str(tmp),
           "INPUT_PATHS": str(repo), "INPUT_COMMENT": "false", "INPUT_FORMAT": "json", "HF_HUB_OFFLINE": "1"}
    code = action.main(env)
    assert code in (0, 1)
    values = dict(line.split("=", 1) for line in outputs.read_text(encoding="utf-8").splitlines() if line)
    return code == 1, values["verdict"]


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(FakeGitHubState(token=TOKEN)) as fake:
        yield fake


@pytest.fixture(scope="module")
def service(github: FakeGitHub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    settings = Settings(webhook_secret=SECRET, token=TOKEN, api_url=github.url,
                        github_retries=0, worker_mode="thread", workers=2,
                        hf_cache_dir=tmp_path_factory.mktemp("hf"))
    with RunningService(settings) as running:
        yield running


def app_fails(service: RunningService, github: FakeGitHub, case: Case, peak: tuple[int, int, int]) -> bool:
    repo = f"acme/{case.name}"
    github.state.add_repo(repo, base_files={".github/vram-check.yml": policy(case, peak)})
    head = github.state.open_pull(repo, 1, head_files={"configs/c.yaml": REFUSED if case.refused else CONFIG})
    base = github.state.repos[repo].pulls[1].base_sha
    assert service.deliver("pull_request", pull_request_payload("opened", repo, 1, head, base)).status_code == 202
    service.wait_idle()
    [status] = github.state.repos[repo].statuses
    assert status["state"] in ("success", "failure")
    return status["state"] == "failure"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_the_three_fronts_reach_the_same_outcome(case: Case, tmp_path: Path, service: RunningService,
                                                 github: FakeGitHub, capsys: pytest.CaptureFixture[str]) -> None:
    peak = peak_bytes()
    repo = write_repo(tmp_path / "repo", case, peak)
    cli = cli_fails(repo)
    action_result, verdict = action_fails(repo, tmp_path)
    app = app_fails(service, github, case, peak)
    capsys.readouterr()
    assert (cli, action_result, app) == (case.fails, case.fails, case.fails)
    assert verdict == ("error" if case.refused else case.target)  # the Action's output names the target's verdict
