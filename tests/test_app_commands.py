"""`/vram-check` commands typed in pull-request comments, end to end (the real issue_comment delivery
rewritten for the test repository), plus the parser on its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakes.github import FakeGitHub, FakeGitHubState
from fakes.service import RunningService, comment_payload
from test_app_pull_request import FULL_8B, POLICY, lora

from bot.render.markdown import MARKER
from bot.settings import Settings
from bot.slash import HELP_MARKER, SlashCommand, parse_command

SECRET = "command-tests-secret"
TOKEN = "ghp_command_tests"


def test_parser_grammar() -> None:
    assert parse_command("Thanks!") is None
    assert parse_command("/vram-checks") is None
    assert parse_command("/vram-check") == SlashCommand(action="run")
    assert parse_command("please look\n  /VRAM-Check  HELP") == SlashCommand(action="help")
    assert parse_command("/vram-check pool=dev GPUS=2 gpu='H100 80GB'") == SlashCommand(
        action="what-if", pool="dev", gpus=2, gpu="H100 80GB")
    assert parse_command("/vram-check explain ./configs/My Run.yaml") == SlashCommand(
        action="help", problem="`explain` takes exactly one config path")
    assert parse_command('/vram-check explain "./configs/My Run.yaml"') == SlashCommand(
        action="explain", config="configs/My Run.yaml")
    unknown = parse_command("/vram-check frobnicate")
    assert unknown is not None and unknown.action == "help" and "frobnicate" in (unknown.problem or "")
    bad = parse_command("/vram-check gpus=0")
    assert bad is not None and bad.action == "help" and "gpus" in (bad.problem or "")
    unbalanced = parse_command("/vram-check pool='dev")
    assert unbalanced is not None and unbalanced.action == "help"
    diagnose = parse_command("/vram-check diagnose\n```\ntorch.OutOfMemoryError: CUDA out of memory.\n```\n")
    assert diagnose == SlashCommand(action="diagnose", log_text="torch.OutOfMemoryError: CUDA out of memory.\n")


service_github: FakeGitHub  # the module's fake, for the comment() helper


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    global service_github
    with FakeGitHub(FakeGitHubState(token=TOKEN)) as fake:
        service_github = fake
        yield fake


@pytest.fixture(scope="module")
def service(github: FakeGitHub) -> Iterator[RunningService]:
    settings = Settings(webhook_secret=SECRET, token=TOKEN, api_url=github.url,
                        github_retries=0, worker_mode="thread", workers=2)
    with RunningService(settings) as running:
        yield running


_numbers = iter(range(1, 10_000))


def pull(github: FakeGitHub) -> tuple[str, int]:
    number = next(_numbers)
    repo = f"acme/commands-{number}"
    github.state.add_repo(repo, base_files={".github/vram-check.yml": POLICY})
    github.state.open_pull(repo, number, head_files={"configs/sft.yaml": lora(), "configs/full.yaml": FULL_8B})
    github.state.repos[repo].permissions.update({"writer": "write", "boss": "admin", "reader": "read"})
    return repo, number


def comment(service: RunningService, repo: str, number: int, body: str, login: str = "writer") -> int:
    comment_id = service_github.state.add_comment(repo, number, body, login)
    payload = comment_payload(repo, number, body, login=login, comment_id=comment_id)
    response = service.deliver("issue_comment", payload)
    assert response.status_code == 202 and response.json() == {"outcome": "queued"}, response.text
    service.wait_idle()
    return comment_id


def replies(github: FakeGitHub, repo: str, number: int) -> list[str]:
    return [c.body for c in github.state.comments(repo, number) if c.body.startswith(HELP_MARKER)]


def test_rerun_by_a_writer_reacts_and_writes_the_summary(service: RunningService, github: FakeGitHub) -> None:
    repo, number = pull(github)
    comment_id = comment(service, repo, number, "/vram-check")
    assert [(r["comment_id"], r["content"]) for r in github.state.repos[repo].reactions] == [(comment_id, "eyes")]
    [summary] = [c.body for c in github.state.comments(repo, number) if c.login == "vram-check[bot]"]
    assert summary.startswith(MARKER) and "configs/full.yaml" in summary


def test_a_reader_gets_a_polite_refusal_and_nothing_runs(service: RunningService, github: FakeGitHub) -> None:
    repo, number = pull(github)
    comment(service, repo, number, "/vram-check pool=dev", login="reader")
    [refusal] = replies(github, repo, number)
    assert "@reader" in refusal and "write access" in refusal
    assert github.state.repos[repo].reactions == []
    assert github.state.requests_matching("GET", rf"/repos/{repo}/pulls/{number}/files") == []


def test_permission_lookup_failure_fails_closed(service: RunningService, github: FakeGitHub) -> None:
    repo, number = pull(github)
    github.state.fail("GET", rf"/repos/{repo}/collaborators/writer/permission", 500)
    comment(service, repo, number, "/vram-check")
    [refusal] = replies(github, repo, number)
    assert "write access" in refusal
    assert not any(c.body.startswith(MARKER + "\n") for c in github.state.comments(repo, number))


def test_help_and_unknown_commands_get_the_help(service: RunningService, github: FakeGitHub) -> None:
    repo, number = pull(github)
    comment(service, repo, number, "/vram-check help")
    comment(service, repo, number, "/VRAM-CHECK frobnicate", login="boss")
    help_text, unknown = replies(github, repo, number)
    assert "/vram-check explain CONFIG" in help_text
    assert "unknown command 'frobnicate'" in unknown and "/vram-check explain CONFIG" in unknown


def test_what_if_answers_in_a_reply_and_keeps_the_summary(service: RunningService, github: FakeGitHub) -> None:
    repo, number = pull(github)
    comment(service, repo, number, "/vram-check")
    summary_before = github.state.comments(repo, number)[1].body
    comment(service, repo, number, "/vram-check gpu=H200 gpus=1")
    [what_if] = replies(github, repo, number)
    assert "What-if: gpu=H200 gpus=1" in what_if and "H200" in what_if
    assert github.state.comments(repo, number)[1].body == summary_before
    comment(service, repo, number, "/vram-check pool=nosuchpool")
    assert "no pool named 'nosuchpool'" in replies(github, repo, number)[-1]


def test_explain_opens_one_config(service: RunningService, github: FakeGitHub) -> None:
    repo, number = pull(github)
    comment(service, repo, number, "/vram-check explain configs/full.yaml")
    [explained] = replies(github, repo, number)
    assert "<details open>" in explained and "configs/full.yaml" in explained
    assert "configs/sft.yaml" not in explained
    comment(service, repo, number, "/vram-check explain configs/other.yaml")
    assert "is not a training config this pull request changes" in replies(github, repo, number)[-1]


def test_diagnose_replies(service: RunningService, github: FakeGitHub) -> None:
    repo, number = pull(github)
    log = ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity "
           "of 79.15 GiB of which 1.02 GiB is free. Of the allocated memory 75.10 GiB is allocated by PyTorch, "
           "and 1.53 GiB is reserved by PyTorch but unallocated.")
    comment(service, repo, number, f"/vram-check diagnose\n```\n{log}\n```")
    [reply] = replies(github, repo, number)
    assert "2.0" in reply  # the 2.00 GiB allocation the log reports
