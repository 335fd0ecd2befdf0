"""The Action run as GitHub runs it: its entry point `bot.action.main` with the Actions environment (inputs as
INPUT_* variables, run in this process for speed: it reads nothing else), a real
pull_request event (fixtures/github-webhooks/pull_request.opened.json, rewritten to point at a local git
repository holding examples/), and GITHUB_STEP_SUMMARY / GITHUB_OUTPUT files; the comment path against the
fake GitHub on loopback through PyGithub.

Expected verdicts come from first principles, not from the estimator's output:
- `qwen2.5_7b_full_sft_no_ds.yaml`: full fine-tuning of Qwen2.5-7B (7.6 B parameters) without DeepSpeed keeps
  at least 16 bytes per parameter on every GPU (fp32 weights 4 + gradients 4 + Adam moments 8; ZeRO paper
  §3.1) = 122 GB > 80 GB of an A100-80GB: no fit on its target pool a100.
- `qwen3_qlora_sft.yaml`: QLoRA of Qwen3-8B (8.2 B parameters at 4 bits ≈ 4.1 GB, 0.5 byte each) with LoRA
  rank 8 on a 24 GB RTX 4090: fits with room to spare.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fakes.github import FakeGitHub, FakeGitHubState

from bot import action
from bot.action import escape_data, escape_property
from bot.render.markdown import MARKER

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
EVENT = ROOT / "tests" / "fixtures" / "github-webhooks" / "pull_request.opened.json"
REPO = "octo-org/training-configs"
TOKEN = "ghp_action_tests_token"
NO_FIT = "configs/qwen2.5_7b_full_sft_no_ds.yaml"
FITS = "configs/qwen3_qlora_sft.yaml"
# The base commit holds the policy, the DeepSpeed JSONs and these two configs; the pull request adds the rest.
BASE_CONFIGS = (FITS, "configs/llama3_full_sft_ds3.yaml")


@dataclass
class ActionRun:
    returncode: int
    stdout: str
    stderr: str
    summary: str
    outputs: dict[str, str]

    def annotations(self, level: str) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith(f"::{level} ")]


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A config repository: a base commit with two configs, then the pull request's head commit adding the rest of
    examples/ (actions/checkout checks out a commit: every file is tracked)."""
    work = tmp_path / "repo"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    for item in (".github", "deepspeed", *BASE_CONFIGS):
        source = EXAMPLES / item
        target = work / item
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy(source, target)
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "base")
    shutil.copytree(EXAMPLES / "configs", work / "configs", dirs_exist_ok=True)
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "head")
    return work


def event_file(tmp_path: Path, base_sha: str, *, head_repo: str = REPO, number: int = 7) -> Path:
    payload = json.loads(EVENT.read_text(encoding="utf-8"))
    pull = payload["pull_request"]
    pull["number"] = payload["number"] = number
    pull["base"]["sha"] = base_sha
    pull["base"]["ref"] = "main"
    pull["base"]["repo"]["full_name"] = REPO
    pull["head"]["repo"]["full_name"] = head_repo
    pull["head"]["sha"] = "a" * 40
    payload["repository"]["full_name"] = REPO
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def run_action(cwd: Path, tmp_path: Path, inputs: dict[str, str], *, event: Path | None = None,
               api_url: str | None = None, event_name: str = "pull_request") -> ActionRun:
    summary = tmp_path / "summary.md"
    outputs = tmp_path / "outputs.txt"
    for file in (summary, outputs):
        file.write_text("", encoding="utf-8")
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
        "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event_name, "GITHUB_WORKSPACE": str(cwd),
        "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs), "RUNNER_TEMP": str(tmp_path),
        "GITHUB_REPOSITORY": REPO, "INPUT_COMMENT": "false", "INPUT_FORMAT": "text",
    }
    if event is not None:
        env["GITHUB_EVENT_PATH"] = str(event)
    if api_url is not None:
        env["GITHUB_API_URL"] = api_url
    env.update({f"INPUT_{name.upper()}": value for name, value in inputs.items()})
    # The Action's entry point (python -m bot.action) in this process: it reads only `env` and the working
    # directory, as action.yml's step runs it.
    stdout, stderr = io.StringIO(), io.StringIO()
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = action.main(env)
    finally:
        os.chdir(previous)
    parsed = dict(line.split("=", 1) for line in outputs.read_text(encoding="utf-8").splitlines() if line)
    return ActionRun(code, stdout.getvalue(), stderr.getvalue(), summary.read_text(encoding="utf-8"), parsed)


def test_pull_request_checks_the_changed_configs_and_fails_on_no_fit(repo: Path, tmp_path: Path) -> None:
    base = git(repo, "rev-parse", "HEAD~1")
    result = run_action(repo, tmp_path, {}, event=event_file(tmp_path, base))

    assert result.returncode == 1, result.stderr  # fail_on: no-fit in examples/.github/vram-check.yml
    report = json.loads(Path(result.outputs["report-path"]).read_text(encoding="utf-8"))
    checked = set(report["configs"])
    added = {f"configs/{p.name}" for p in (EXAMPLES / "configs").glob("*.yaml")} - set(BASE_CONFIGS)
    assert checked == added  # only what the pull request changed; the base's two configs are untouched
    assert report["configs"][NO_FIT]["verdicts"][0]["verdict"] == "no-fit"
    assert result.outputs["verdict"] == "no-fit"
    no_fit = [p for p, c in report["configs"].items() if c["verdicts"] and c["verdicts"][0]["verdict"] == "no-fit"]
    assert result.outputs["no-fit-count"] == str(len(no_fit)) and NO_FIT in no_fit

    assert result.summary.startswith(MARKER)
    assert f"`{NO_FIT}`" in result.summary and f"`{FITS}`" not in result.summary
    errors = result.annotations("error")
    assert any(line.startswith(f"::error file={NO_FIT},title=vram-check%3A no-fit::") for line in errors)
    assert len(errors) == len(no_fit)  # one error per config that fails its pool; nothing else is an error
    assert not any(FITS in line for line in result.stdout.splitlines() if line.startswith("::"))


def test_fail_on_never_passes_with_the_same_outputs(repo: Path, tmp_path: Path) -> None:
    base = git(repo, "rev-parse", "HEAD~1")
    result = run_action(repo, tmp_path, {"fail-on": "never"}, event=event_file(tmp_path, base))
    assert result.returncode == 0, result.stderr
    assert result.outputs["verdict"] == "no-fit"
    assert not result.annotations("error")  # nothing fails the policy now: no-fit is shown as a warning
    assert any(f"file={NO_FIT}," in line for line in result.annotations("warning"))


def test_push_without_event_checks_every_config(tmp_path: Path) -> None:
    result = run_action(EXAMPLES, tmp_path, {"report-path": str(tmp_path / "r.json")}, event_name="push")
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert set(report["configs"]) == {f"configs/{p.name}" for p in (EXAMPLES / "configs").glob("*.yaml")}
    assert result.outputs["report-path"] == str(tmp_path / "r.json")
    # examples/ sits inside this repository: annotation paths are relative to the workspace (here examples/)
    assert any(f"file={NO_FIT}," in line for line in result.annotations("error"))


@dataclass
class GitHubFake:
    state: FakeGitHubState
    url: str


@pytest.fixture
def github() -> Iterator[GitHubFake]:
    state = FakeGitHubState(token=TOKEN)
    with FakeGitHub(state) as server:
        state.add_repo(REPO, base_files={"README.md": "configs"})
        state.open_pull(REPO, 7, head_files={"configs/x.yaml": "x"})
        yield GitHubFake(state, server.url)


def test_comment_is_created_then_edited_in_place(repo: Path, tmp_path: Path, github: GitHubFake) -> None:
    base = git(repo, "rev-parse", "HEAD~1")
    event = event_file(tmp_path, base)
    url = github.url
    inputs = {"comment": "true", "github-token": TOKEN}

    first = run_action(repo, tmp_path, inputs, event=event, api_url=url)
    comments = github.state.comments(REPO, 7)
    assert len(comments) == 1 and comments[0].body.startswith(MARKER)
    assert f"`{NO_FIT}`" in comments[0].body
    assert first.outputs["comment-url"].endswith(f"#issuecomment-{comments[0].id}")

    (repo / NO_FIT).unlink()  # a new push: the no-fit config is gone
    second = run_action(repo, tmp_path, inputs, event=event, api_url=url)
    comments = github.state.comments(REPO, 7)
    assert len(comments) == 1  # never a second summary
    assert f"`{NO_FIT}`" not in comments[0].body
    assert len(github.state.requests_matching("PATCH", rf"/issues/comments/{comments[0].id}$")) == 1
    assert second.outputs["comment-url"] == first.outputs["comment-url"]
    assert all(r.authorization == f"token {TOKEN}" for r in github.state.requests)


def test_fork_pull_request_degrades_to_summary_and_annotations(repo: Path, tmp_path: Path,
                                                               github: GitHubFake) -> None:
    base = git(repo, "rev-parse", "HEAD~1")
    event = event_file(tmp_path, base, head_repo="someone/training-configs")
    result = run_action(repo, tmp_path, {"comment": "true", "github-token": TOKEN}, event=event,
                        api_url=github.url)
    assert github.state.requests == []  # a read-only token is not even tried
    assert "from a fork" in result.summary and result.outputs["comment-url"] == ""
    assert any("from a fork" in line for line in result.annotations("warning"))
    assert result.annotations("error")  # the verdicts are still annotated


def test_token_that_may_not_write_degrades(repo: Path, tmp_path: Path, github: GitHubFake) -> None:
    github.state.fail("POST", r"/issues/7/comments$", 403, times=5)
    base = git(repo, "rev-parse", "HEAD~1")
    result = run_action(repo, tmp_path, {"comment": "true", "github-token": TOKEN},
                        event=event_file(tmp_path, base), api_url=github.url)
    assert result.returncode == 1  # the verdicts decide, not the comment
    assert github.state.comments(REPO, 7) == []
    assert "pull-requests: write" in result.summary
    assert f"`{NO_FIT}`" in result.summary


def test_missing_policy_file_is_an_input_error(repo: Path, tmp_path: Path) -> None:
    result = run_action(repo, tmp_path, {"policy": "ci/missing.yml"}, event_name="push")
    assert result.returncode == 2
    expected = "::error title=vram-check::vram-check: ci/missing.yml: policy file not found"
    assert result.annotations("error") == [expected]
    assert "policy file not found" in result.summary and result.outputs["verdict"] == "error"
    assert "Traceback" not in result.stderr


def test_unknown_base_ref_is_an_input_error(repo: Path, tmp_path: Path) -> None:
    result = run_action(repo, tmp_path, {"base": "no-such-branch"}, event=event_file(tmp_path, "b" * 40))
    assert result.returncode == 2
    assert "base ref 'no-such-branch' not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_shallow_clone_without_the_base_says_how_to_fetch_it(repo: Path, tmp_path: Path) -> None:
    base = git(repo, "rev-parse", "HEAD~1")
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(clone)], check=True)
    result = run_action(clone, tmp_path, {}, event=event_file(tmp_path, base))
    assert result.returncode == 2
    assert "shallow clone" in result.stderr and "fetch-depth: 0" in result.stderr
    assert "shallow clone" in result.summary


def test_no_changed_configs_succeeds_with_a_note(repo: Path, tmp_path: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    result = run_action(repo, tmp_path, {}, event=event_file(tmp_path, head))
    assert result.returncode == 0
    assert result.outputs["verdict"] == "none" and result.outputs["no-fit-count"] == "0"
    assert f"No training configs changed since `{head[:12]}`" in result.summary
    assert result.annotations("error") == [] and result.annotations("warning") == []


def test_annotations_are_escaped_and_capped_at_githubs_limit(repo: Path, tmp_path: Path) -> None:
    base = git(repo, "rev-parse", "HEAD~1")
    source = (EXAMPLES / NO_FIT).read_text(encoding="utf-8")
    names = [f"configs/big,run:{i:02d}.yaml" for i in range(12)]
    for name in names:
        (repo / name).write_text(source, encoding="utf-8")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "twelve more")
    result = run_action(repo, tmp_path, {}, event=event_file(tmp_path, base))
    errors = result.annotations("error")
    assert len(errors) == 10  # GitHub shows at most 10 error annotations per step
    assert sum("big%2Crun%3A" in line for line in errors) >= 8  # ',' and ':' escaped in the file property
    notices = [line for line in result.stdout.splitlines() if line.startswith("::notice")]
    cut = int(result.outputs["no-fit-count"]) - 10  # every no-fit config is an error annotation
    assert len(notices) == 1 and re.search(rf"\b{cut}\b more annotation", notices[0])


def test_escaping_follows_the_actions_toolkit() -> None:
    # actions/toolkit packages/core/src/command.ts: escapeData %→%25 \r→%0D \n→%0A; escapeProperty also :→%3A ,→%2C
    assert escape_data("50% used\r\nnext: a,b") == "50%25 used%0D%0Anext: a,b"
    assert escape_property("dir/a,b:c%.yaml\n") == "dir/a%2Cb%3Ac%25.yaml%0A"


def test_changed_only_false_checks_every_config_of_a_pull_request(repo: Path, tmp_path: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")  # nothing changed since this base
    result = run_action(repo, tmp_path, {"changed-only": "false"}, event=event_file(tmp_path, head))
    report = json.loads(Path(result.outputs["report-path"]).read_text(encoding="utf-8"))
    assert set(report["configs"]) == {f"configs/{p.name}" for p in (EXAMPLES / "configs").glob("*.yaml")}
    verdicts = {c["verdicts"][0]["verdict"] for c in report["configs"].values()}
    assert verdicts == {"fit", "tight", "no-fit"}  # examples/ shows all three on the target pools


def test_bad_input_values_are_named(tmp_path: Path) -> None:
    result = run_action(EXAMPLES, tmp_path, {"fail-on": "sometimes"}, event_name="push")
    assert result.returncode == 2
    assert "input 'fail-on' takes no-fit, tight, unknown, never" in result.stderr
