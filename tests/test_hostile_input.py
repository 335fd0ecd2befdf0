"""Hostile input (issue 13), end to end: what anyone who can open a pull request or write a comment sends,
through the real service (uvicorn on loopback, the default worker processes, the fake GitHub and Hub) and
through `vram-check check` as a subprocess.

Each probe is a row of the issue's table; after each, a signed ping must still answer within a second
(the service stays responsive). The comment is checked the way GitHub reads it: parsed as CommonMark with
tables (markdown-it-py), plus the GitHub-only syntaxes (mentions, bare links, issue references) on the
raw text.
"""

from __future__ import annotations

import json
import queue
import random
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.github import FakeGitHub, FakeGitHubState
from fakes.hub import FakeHub, FakeHubState
from fakes.service import RunningService, comment_payload, fixture, pull_request_payload
from markdown_it import MarkdownIt
from markdown_it.token import Token
from test_app_pull_request import FULL_8B, lora

from bot.render.markdown import MARKER
from bot.settings import Settings
from bot.slash import HELP_MARKER
from estimator.source import MAX_YAML_EXPANDED_CHARS

ROOT = Path(__file__).resolve().parent.parent
SECRET = "hostile-tests-secret"
TOKEN = "ghp_hostile_tests"
POLICY = """\
paths: ["configs/**/*.yaml"]
pools:
  - {name: a100, gpu: A100-80GB, per_node: 8}
  - {name: dev, gpu: RTX-4090, per_node: 1}
default_pool: a100
"""

# -- the hostile files (row numbers of issue 13's table in the comments) -------------------------------


def alias_bomb() -> str:
    """Row 2 of the issue: the classic "billion laughs", under 600 bytes: nine levels of nine aliases
    expand to 9**9 (387 million) strings."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefgh":
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    return "model_name_or_path: Qwen/Qwen2.5-0.5B\nstage: sft\n" + "\n".join(lines) + f"\nlora_target: *{previous}\n"


def long_alias() -> str:
    """The same bomb in characters instead of values: one 10 KB string aliased 10,000 times (60 KB of YAML,
    100 MB once expanded; 10,001 values, well under the value budget). An error message that quoted the
    value built all 100 MB."""
    return ("model_name_or_path: Qwen/Qwen2.5-0.5B\nstage: sft\nfinetuning_type: lora\n"
            f"lora_target: &s {'x' * 10_000}\nflash_attn: [" + ",".join(["*s"] * 10_000) + "]\n")


DEEP = "model_name_or_path: Qwen/Qwen2.5-0.5B\nstage: sft\nx: " + "[" * 500 + "]" * 500 + "\n"  # 1.2 KB
HUGE_TARGET = FULL_8B + "# vram-check: gpu=RTX-4090 gpus=100000 nodes=100000\n"
HOSTILE_NAME = "configs/</details><h1>x</h1>.yaml"
HOSTILE_VALUE = "@everyone <img src=https://evil.example/x.png> [x](https://evil.example/a) `` ` #1 www.evil.example"
HOSTILE_DEEPSPEED = lora() + f"deepspeed: '{HOSTILE_VALUE}'\n"


def bomb_assert_short(text: str) -> None:
    """No message quotes an expanded value: every line of the output is short."""
    assert max((len(line) for line in text.splitlines()), default=0) < 2_000


# -- the service ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(FakeGitHubState(token=TOKEN)) as fake:
        yield fake


@pytest.fixture(scope="module")
def hub() -> Iterator[FakeHub]:
    with FakeHub(FakeHubState()) as fake:
        yield fake


@pytest.fixture(scope="module")
def service(github: FakeGitHub, hub: FakeHub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    settings = Settings(webhook_secret=SECRET, token=TOKEN, api_url=github.url, hf_endpoint=hub.url,
                        hf_cache_dir=tmp_path_factory.mktemp("hf"), github_retries=0,
                        worker_mode="process", workers=2)  # the production default
    with RunningService(settings) as running:
        yield running


def ping_seconds(service: RunningService) -> float:
    started = time.perf_counter()
    response = service.deliver("ping", fixture("ping.json"))
    assert response.status_code == 200 and response.json() == {"outcome": "pong"}
    return time.perf_counter() - started


def assert_responsive(service: RunningService) -> None:
    assert ping_seconds(service) < 1.0


_numbers = iter(range(1, 10_000))


def open_pull(github: FakeGitHub, files: dict[str, str | None]) -> tuple[str, int, str, str]:
    number = next(_numbers)
    repo = f"acme/hostile-{number}"
    github.state.add_repo(repo, base_files={".github/vram-check.yml": POLICY})
    head = github.state.open_pull(repo, number, head_files=files)
    github.state.repos[repo].permissions.update({"writer": "write", "stranger": "read"})
    return repo, number, head, github.state.repos[repo].pulls[number].base_sha


def check(service: RunningService, github: FakeGitHub, files: dict[str, str | None]) -> tuple[str, int, str, str]:
    """Open a pull request, deliver `opened`, wait for the job; returns (repo, number, head, summary)."""
    repo, number, head, base = open_pull(github, files)
    response = service.deliver("pull_request", pull_request_payload("opened", repo, number, head, base))
    assert response.status_code == 202, response.text
    assert_responsive(service)
    service.wait_idle(timeout=60)
    [summary] = [c.body for c in github.state.comments(repo, number) if c.body.startswith(MARKER + "\n")]
    return repo, number, head, summary


def statuses(github: FakeGitHub, repo: str) -> list[tuple[str, str]]:
    return [(s["sha"], s["state"]) for s in github.state.repos[repo].statuses]


def section(summary: str, path: str) -> str:
    """The line of the summary that reports `path`'s error."""
    [line] = [line for line in summary.splitlines() if line.startswith("⛔ **") and path in line]
    return line


# -- rows 1 and 2: YAML bombs and deep nesting ------------------------------------------------------------


def test_yaml_bombs_and_deep_nesting_are_errors_for_their_file_only(service: RunningService,
                                                                      github: FakeGitHub) -> None:
    repo, _, head, summary = check(service, github, {
        "configs/bomb.yaml": alias_bomb(), "configs/long.yaml": long_alias(), "configs/deep.yaml": DEEP,
        "configs/good.yaml": lora()})
    assert len(alias_bomb()) < 600 and len(DEEP) < 1_300
    assert "YAML expands to more than 50,000 values" in section(summary, "configs/bomb.yaml")
    assert f"YAML expands to more than {MAX_YAML_EXPANDED_CHARS // 1_000_000} MB of text" in section(
        summary, "configs/long.yaml")
    assert "configs/deep.yaml:3: YAML nested more than 64 levels deep" in section(summary, "configs/deep.yaml")
    assert "| `configs/good.yaml` | a100 · 8× A100-80GB-SXM | ✅ fits |" in summary
    bomb_assert_short(summary)
    assert statuses(github, repo) == [(head, "failure")]  # errors fail the check; the status is there


def test_cli_check_reports_each_bomb_and_still_judges_the_rest(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "vram-check.yml").write_text(POLICY)
    for name, text in {"bomb": alias_bomb(), "long": long_alias(), "deep": DEEP, "good": lora(),
                       "huge": HUGE_TARGET}.items():
        (configs / f"{name}.yaml").write_text(text)
    out = cli("check", "--format", "json", cwd=tmp_path)
    assert out.returncode == 1, out.stderr  # configs with errors fail the check (DESIGN.md: 1), no crash
    assert "Traceback" not in out.stderr
    bomb_assert_short(out.stdout + out.stderr)
    report = json.loads(out.stdout)["configs"]
    assert "YAML expands to more than 50,000 values" in report["configs/bomb.yaml"]["error"]
    assert "MB of text" in report["configs/long.yaml"]["error"]
    assert "YAML nested more than 64 levels deep" in report["configs/deep.yaml"]["error"]
    assert "gpus= must be a whole number from 1 to 72, got '100000'" in report["configs/huge.yaml"]["error"]
    assert report["configs/good.yaml"]["verdicts"][0]["verdict"] == "fit"


# -- row 3: a diagnose comment from a stranger --------------------------------------------------------------


def test_a_diagnose_comment_of_65k_backticks_is_not_parsed_before_the_permission_check(
        service: RunningService, github: FakeGitHub) -> None:
    repo, number, _, _ = open_pull(github, {"configs/good.yaml": lora()})
    body = "/vram-check diagnose\n" + "`" * 65_000
    comment_id = github.state.add_comment(repo, number, body, "stranger")
    started = time.perf_counter()
    response = service.deliver("issue_comment", comment_payload(repo, number, body, login="stranger",
                                                                comment_id=comment_id))
    answered = time.perf_counter() - started
    assert response.status_code == 202 and response.json() == {"outcome": "queued"}
    assert_responsive(service)
    assert answered < 1.0  # the handler only looked for the command line
    service.wait_idle(timeout=60)
    [reply] = [c.body for c in github.state.comments(repo, number) if c.body.startswith(HELP_MARKER)]
    assert "write access" in reply  # refused before anything else was read


def test_a_writer_diagnose_with_a_pathological_fence_is_answered(service: RunningService,
                                                                   github: FakeGitHub) -> None:
    """13,000 lines that each open a fence and none that closes one: the old fence regex scanned to the end
    of the comment from every one of them (quadratic: ~45 s for these 65 KB, on the event loop)."""
    repo, number, _, _ = open_pull(github, {"configs/good.yaml": lora()})
    body = "/vram-check diagnose\n" + "```a\n" * 13_000
    comment_id = github.state.add_comment(repo, number, body, "writer")
    response = service.deliver("issue_comment", comment_payload(repo, number, body, login="writer",
                                                                comment_id=comment_id))
    assert response.status_code == 202
    assert_responsive(service)
    service.wait_idle(timeout=60)
    [reply] = [c.body for c in github.state.comments(repo, number) if c.body.startswith(HELP_MARKER)]
    assert "No out-of-memory error found in the log." in reply  # the unclosed block runs to the end


def test_a_comment_longer_than_github_allows_is_refused_at_the_door(service: RunningService,
                                                                     github: FakeGitHub) -> None:
    repo, number, _, _ = open_pull(github, {"configs/good.yaml": lora()})
    body = "/vram-check diagnose\n```\n" + "x" * 70_000 + "\n```\n"
    response = service.deliver("issue_comment", comment_payload(repo, number, body, login="writer"))
    assert response.status_code == 400 and response.json() == {"outcome": "malformed"}


# -- row 4: numbers in target comments and slash commands ---------------------------------------------------


def test_huge_gpu_counts_in_a_target_comment_are_refused_and_the_job_ends(service: RunningService,
                                                                           github: FakeGitHub) -> None:
    repo, _, head, summary = check(service, github, {"configs/huge.yaml": HUGE_TARGET,
                                                     "configs/good.yaml": lora()})
    assert ("gpus= must be a whole number from 1 to 72, got '100000'"
            in section(summary, "configs/huge.yaml"))
    assert "| `configs/good.yaml` | a100 · 8× A100-80GB-SXM | ✅ fits |" in summary
    assert statuses(github, repo) == [(head, "failure")]


def test_what_if_at_the_largest_stated_size_finishes(service: RunningService, github: FakeGitHub) -> None:
    """72 GPUs per node on 1,024 nodes (the stated maxima), for a config that fits on no number of GPUs
    (a full fine-tune without ZeRO keeps the whole model state on each): the searches are bounded. Past the
    maxima, a command is refused (4096 × 4096 GPUs was a 16.8-million-step search)."""
    repo, number, _, _ = open_pull(github, {"configs/full.yaml": FULL_8B})
    for body in ("/vram-check gpu=RTX-4090 gpus=72 nodes=1024", "/vram-check gpu=RTX-4090 gpus=4096 nodes=4096"):
        comment_id = github.state.add_comment(repo, number, body, "writer")
        response = service.deliver("issue_comment", comment_payload(repo, number, body, login="writer",
                                                                    comment_id=comment_id))
        assert response.status_code == 202
        assert_responsive(service)
        service.wait_idle(timeout=60)
    what_if, refused = [c.body for c in github.state.comments(repo, number) if c.body.startswith(HELP_MARKER)]
    assert "What-if: gpu=RTX-4090 gpus=72 nodes=1024" in what_if and "❌ no fit" in what_if
    assert "gpus must be a whole number from 1 to 72, not '4096'" in refused


# -- row 5: everything from the pull request escaped --------------------------------------------------------


def tokens(markdown: str) -> list[Token]:
    """Every token GitHub's CommonMark + tables reading of `markdown` gives, children included."""
    found: list[Token] = []
    for token in MarkdownIt("commonmark").enable("table").parse(markdown):
        found.append(token)
        found.extend(token.children or [])
    return found


def assert_inert(markdown: str) -> None:
    """No link, image or foreign HTML; no live mention, bare link or issue reference; the folds balanced
    (counted in the HTML GitHub reads: inside a code span `</details>` is text)."""
    parsed = tokens(markdown)
    assert not [t for t in parsed if t.type in ("link_open", "image")]
    html = [t.content.strip() for t in parsed if t.type in ("html_inline", "html_block")]
    for chunk in html:
        assert "<img" not in chunk and "<h1" not in chunk and "</details><" not in chunk
    # GitHub links mentions, bare URLs and issue references in text (entities decoded) and in HTML text,
    # never in code
    for chunk in [t.content for t in parsed if t.type == "text"] + html:
        assert "@everyone" not in chunk and "://evil" not in chunk and "www.evil" not in chunk
        assert "#1 " not in chunk
    opened = sum(chunk.count("<details") for chunk in html)
    assert opened == sum(chunk.count("</details>") for chunk in html)


def test_file_names_and_values_from_the_pull_request_are_inert(service: RunningService,
                                                                 github: FakeGitHub) -> None:
    _, _, _, summary = check(service, github, {HOSTILE_NAME: lora(), "configs/ds.yaml": HOSTILE_DEEPSPEED})
    assert_inert(summary)
    parsed = tokens(summary)
    assert HOSTILE_NAME in [t.content for t in parsed if t.type == "code_inline"]  # shown, as code
    # the table keeps its shape: every row has the header's 8 cells
    rows: list[int] = []
    table = parsed[[t.type for t in parsed].index("table_open"):[t.type for t in parsed].index("table_close")]
    for token in table:
        if token.type == "tr_open":
            rows.append(0)
        elif token.type in ("th_open", "td_open"):
            rows[-1] += 1
    assert rows and set(rows) == {8}
    # the value is still there for the author to read, made inert
    assert "@&#8203;everyone &lt;img src=https:&#8203;//evil.example/x.png&gt;" in summary


def test_slash_command_values_are_inert_in_replies(service: RunningService, github: FakeGitHub) -> None:
    repo, number, _, _ = open_pull(github, {"configs/good.yaml": lora()})
    for body in (f"/vram-check pool='{HOSTILE_VALUE}' gpus=1",
                 f"/vram-check explain '{HOSTILE_NAME} @everyone'",
                 "/vram-check gpu='<img src=x> @everyone'",
                 "/vram-check frobnicate=<h1>@everyone</h1>"):
        comment_id = github.state.add_comment(repo, number, body, "writer")
        response = service.deliver("issue_comment", comment_payload(repo, number, body, login="writer",
                                                                    comment_id=comment_id))
        assert response.status_code == 202
        service.wait_idle(timeout=60)
    replies = [c.body for c in github.state.comments(repo, number) if c.body.startswith(HELP_MARKER)]
    assert len(replies) == 4
    for reply in replies:
        assert_inert(reply)


# -- row 6: the sticky comment is ours only -----------------------------------------------------------------


def test_a_marker_comment_by_the_author_is_never_adopted(service: RunningService, github: FakeGitHub) -> None:
    repo, number, head, base = open_pull(github, {"configs/full.yaml": FULL_8B})
    fake = f"{MARKER}\n### 🧮 vram-check\n\n**✅ All 1 config fit** on the declared GPUs\n"
    github.state.add_comment(repo, number, fake, "Codertocat")
    response = service.deliver("pull_request", pull_request_payload("opened", repo, number, head, base))
    assert response.status_code == 202
    service.wait_idle(timeout=60)
    comments = github.state.comments(repo, number)
    assert [(c.login, c.body) for c in comments if c.login == "Codertocat"] == [("Codertocat", fake)]
    [ours] = [c.body for c in comments if c.login == "vram-check[bot]"]
    assert ours.startswith(MARKER + "\n") and "❌" in ours
    assert statuses(github, repo) == [(head, "failure")]


def test_a_refused_edit_still_ends_with_a_status(service: RunningService, github: FakeGitHub) -> None:
    repo, number, head, base = open_pull(github, {"configs/good.yaml": lora()})
    response = service.deliver("pull_request", pull_request_payload("opened", repo, number, head, base))
    assert response.status_code == 202
    service.wait_idle(timeout=60)
    new_head = github.state.push(repo, number, {"configs/full.yaml": FULL_8B})
    github.state.fail("PATCH", rf"/repos/{repo}/issues/comments/\d+$", 403)  # e.g. a locked conversation
    response = service.deliver("pull_request", pull_request_payload("synchronize", repo, number, new_head, base))
    assert response.status_code == 202
    service.wait_idle(timeout=60)
    assert statuses(github, repo) == [(head, "success"), (new_head, "failure")]


# -- row 7: secrets never printed ------------------------------------------------------------------------


def serve(env: dict[str, str], wait_for: str | None, timeout: float = 60.0) -> tuple[int | None, str]:
    """Start `vram-check serve` (a subprocess), read stderr until `wait_for` appears (None: until it exits by
    itself) or `timeout` passes; then stop it."""
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", "0"],
                               cwd=ROOT, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stream = process.stderr
    assert stream is not None
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line)
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen = ""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                if process.poll() is not None and not reader.is_alive() and lines.empty():
                    break
                continue
            seen += line
            if wait_for is not None and wait_for in line:
                break
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(timeout=10)
        while not lines.empty():
            seen += lines.get()
    return process.returncode, seen


@pytest.mark.parametrize("shape", ["quoted", "quoted-escaped-newlines", "single-quoted"])
def test_a_quoted_private_key_is_used_and_never_printed(shape: str) -> None:
    from test_app_auth import keypair

    private, _ = keypair()
    value = {"quoted": f'"{private}"', "quoted-escaped-newlines": '"' + private.strip().replace("\n", "\\n") + '"',
             "single-quoted": f"'{private}'"}[shape]
    _, stderr = serve({"GITHUB_WEBHOOK_SECRET": "s", "GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": value},
                      wait_for="Uvicorn running")
    assert "Uvicorn running" in stderr, stderr[-2000:]
    body_lines = [line for line in private.splitlines() if not line.startswith("-----")]
    assert not any(line in stderr for line in body_lines)


@pytest.mark.parametrize("shape", ["truncated", "body-only", "corrupted"])
def test_a_malformed_private_key_stops_the_start_without_showing_it(shape: str) -> None:
    from test_app_auth import keypair

    private, _ = keypair()
    lines = private.strip().splitlines()
    value = {"truncated": '"' + "\n".join(lines[:8]) + '"',
             "body-only": "".join(lines[1:-1]),
             "corrupted": "\n".join([lines[0], *(line[::-1] for line in lines[1:-1]), lines[-1]])}[shape]
    code, stderr = serve({"GITHUB_WEBHOOK_SECRET": "s", "GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": value},
                         wait_for=None)
    assert code == 2 and "GITHUB_APP_PRIVATE_KEY" in stderr, stderr[-2000:]
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
    for line in lines[1:-1]:
        for piece in (line, line[::-1], line[10:40]):
            assert piece not in stderr


# -- row 8: metrics labels from a fixed set --------------------------------------------------------------


def event_labels(service: RunningService) -> set[str]:
    text = service.client.get(f"{service.url}/metrics").text
    labels = set()
    for line in text.splitlines():
        if line.startswith("vram_check_deliveries_total{"):
            labels.add(line.split('event="', 1)[1].split('"', 1)[0])
    return labels


def test_random_event_names_do_not_grow_the_metrics(service: RunningService) -> None:
    size_before = len(service.client.get(f"{service.url}/metrics").content)
    rng = random.Random(13)
    for _ in range(300):
        event = "".join(rng.choices(string.ascii_lowercase + "_", k=rng.randint(3, 60)))
        response = service.client.post(f"{service.url}/webhook", content=b"{}",
                                       headers={"X-GitHub-Event": event, "Content-Type": "application/json"})
        assert response.status_code == 401
    assert_responsive(service)
    assert event_labels(service) <= {"ping", "pull_request", "issue_comment", "installation", "other"}
    assert len(service.client.get(f"{service.url}/metrics").content) < size_before + 2_000


# -- row 9: JSON depth -------------------------------------------------------------------------------------


def test_signed_json_nested_200000_deep_is_a_400(service: RunningService) -> None:
    for body in (b"[" * 200_000 + b"]" * 200_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
        response = service.deliver("pull_request", body)
        assert response.status_code == 400 and response.json() == {"outcome": "malformed"}
        assert_responsive(service)


# -- row 10: one message for every model id that is not a Hub id ----------------------------------------------


def test_model_ids_get_the_same_message_whatever_is_on_the_services_disk(service: RunningService,
                                                                         github: FakeGitHub) -> None:
    existing = next(f"{a.name}/{b.name}" for a in sorted(Path.cwd().iterdir()) if a.is_dir()
                    and a.name[0].isalnum() for b in sorted(a.iterdir()) if b.is_dir() and b.name[0].isalnum())
    assert Path(existing).is_dir()  # relative to the service's working directory (the test's)
    models = {"exists": existing, "absent": "no-such-org/no-such-model",
              "path-exists": f"./{existing}", "path-absent": "./no-such-org/no-such-model"}
    _, _, _, summary = check(service, github, {f"configs/{name}.yaml": lora(model)
                                               for name, model in models.items()})

    def message(name: str) -> str:
        path = f"configs/{name}.yaml"
        return section(summary, path).replace(models[name], "ID").replace(path, "PATH")

    assert message("exists") == message("absent")
    assert "not found on the Hub" in message("exists")
    assert message("path-exists") == message("path-absent")
    assert "is not a Hugging Face Hub model id" in message("path-exists")


# -- the CLI -------------------------------------------------------------------------------------------------


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"})


def test_cli_text_output_shows_control_characters_instead_of_obeying_them(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    name = "configs/\x1b]0;pwned\x07\x1b[2Jsft.yaml"
    (tmp_path / name).write_text(lora())
    out = cli("check", name, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\x07" not in out.stdout
    assert "configs/\\x1b]0;pwned\\x07\\x1b[2Jsft.yaml: FIT" in out.stdout


def test_cli_estimate_bounds_gpu_counts(tmp_path: Path) -> None:
    (tmp_path / "sft.yaml").write_text(FULL_8B)
    out = cli("estimate", "sft.yaml", "--gpu", "RTX-4090", "--gpus", "100000", cwd=tmp_path)
    assert out.returncode == 2 and "--gpus must be from 1 to 72, got 100000" in out.stderr

