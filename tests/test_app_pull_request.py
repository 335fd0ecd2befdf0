"""The pull-request flow end to end: real deliveries → the real service (uvicorn on loopback) → the real
pipeline (rules.check) → the fake GitHub through PyGithub and the fake Hub through huggingface_hub.

Expected verdicts are derived from first principles, not from the estimator's output: a full fine-tune
of Llama-3.1-8B (8.0 B parameters) with AdamW keeps at least 16 bytes per trainable parameter (fp32
weights 4 + gradients 4 + two Adam moments 8; Rajbhandari et al., ZeRO, §3.1 counts 16 bytes for mixed
precision) = 128 GB > 80 GB on one A100 without ZeRO: no fit. A LoRA run of Qwen2.5-0.5B (0.49 B
parameters, 2 bytes each in bf16 ≈ 1 GB frozen weights) at batch 1, cutoff 512 fits easily in 80 GB.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.github import FakeGitHub, FakeGitHubState
from fakes.hub import FakeHub, FakeHubState
from fakes.service import RunningService, pull_request_payload

from bot.render.markdown import MARKER
from bot.settings import Settings

SECRET = "webhook-secret-for-tests"
TOKEN = "ghp_pull_request_tests_token"
CATALOG = Path(__file__).resolve().parent.parent / "estimator" / "catalog"
POLICY = """\
paths: ["configs/**/*.yaml"]
pools:
  - {name: a100, gpu: A100-80GB, per_node: 1}
  - {name: dev, gpu: RTX-4090, per_node: 1}
default_pool: a100
"""
LORA = """\
### model
model_name_or_path: {model}
### method
stage: sft
do_train: true
finetuning_type: lora
lora_target: all
### dataset
cutoff_len: 512
### train
per_device_train_batch_size: 1
bf16: true
"""
FULL_8B = """\
### model
model_name_or_path: meta-llama/Llama-3.1-8B
### method
stage: sft
do_train: true
finetuning_type: full
### dataset
cutoff_len: 2048
### train
per_device_train_batch_size: 4
bf16: true
"""
BROKEN = "model_name_or_path: Qwen/Qwen2.5-0.5B\nstage: sft\n  finetuning_type: [lora\n"
HF_GOOD_TOKEN = "hf_allowed_reader"


def lora(model: str = "Qwen/Qwen2.5-0.5B") -> str:
    return LORA.format(model=model)


@pytest.fixture(scope="module")
def hub() -> Iterator[FakeHub]:
    state = FakeHubState()
    tiny = json.loads((CATALOG / "TinyLlama__TinyLlama-1.1B-Chat-v1.0.json").read_text())
    state.add_model("acme/tiny-llama", tiny)
    state.add_model("acme/gated-llama", tiny, gated=True, allowed_tokens=frozenset({HF_GOOD_TOKEN}))
    with FakeHub(state) as fake:
        yield fake


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(FakeGitHubState(token=TOKEN)) as fake:
        yield fake


@pytest.fixture(scope="module")
def service(github: FakeGitHub, hub: FakeHub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    settings = Settings(webhook_secret=SECRET, token=TOKEN, api_url=github.url, hf_endpoint=hub.url,
                        hf_cache_dir=tmp_path_factory.mktemp("hf-cache"),
                        github_retries=1, worker_mode="thread", workers=2)
    with RunningService(settings) as running:
        yield running


_numbers = iter(range(1, 10_000))


def open_pull(github: FakeGitHub, changes: dict[str, str | None], base: dict[str, str] | None = None
              ) -> tuple[str, int, str, str]:
    number = next(_numbers)
    repo = f"acme/configs-{number}"
    files = {".github/vram-check.yml": POLICY, "README.md": "# configs\n", **(base or {})}
    github.state.add_repo(repo, base_files=files)
    head = github.state.open_pull(repo, number, head_files=changes)
    base_sha = github.state.repos[repo].pulls[number].base_sha
    return repo, number, head, base_sha


def deliver_opened(service: RunningService, repo: str, number: int, head: str, base: str,
                   action: str = "opened", delivery_id: str | None = None) -> None:
    response = service.deliver("pull_request", pull_request_payload(action, repo, number, head, base),
                               delivery_id=delivery_id)
    assert response.status_code == 202, response.text


def summaries(github: FakeGitHub, repo: str, number: int) -> list[str]:
    return [c.body for c in github.state.comments(repo, number) if c.body.split("\n", 1)[0] == MARKER]


def test_first_comment_then_edit_on_synchronize(service: RunningService, github: FakeGitHub) -> None:
    repo, number, head, base = open_pull(github, {"configs/sft.yaml": lora()})
    deliver_opened(service, repo, number, head, base)
    service.wait_idle()
    [body] = summaries(github, repo, number)
    assert body.startswith(MARKER + "\n")
    assert "configs/sft.yaml" in body and "✅ fits" in body
    statuses = github.state.repos[repo].statuses
    assert [(s["sha"], s["state"], s["context"]) for s in statuses] == [(head, "success", "vram-check")]
    first_id = github.state.comments(repo, number)[0].id

    new_head = github.state.push(repo, number, {"configs/sft.yaml": FULL_8B})
    deliver_opened(service, repo, number, new_head, base, action="synchronize")
    service.wait_idle()
    [edited] = summaries(github, repo, number)
    assert github.state.comments(repo, number)[0].id == first_id  # the same comment, edited in place
    assert "❌ no fit" in edited and edited != body
    assert github.state.repos[repo].statuses[-1]["state"] == "failure"
    assert github.state.repos[repo].statuses[-1]["sha"] == new_head


def test_same_head_again_leaves_the_comment_untouched(service: RunningService, github: FakeGitHub) -> None:
    repo, number, head, base = open_pull(github, {"configs/sft.yaml": lora()})
    deliver_opened(service, repo, number, head, base, delivery_id="d-1")
    service.wait_idle()
    deliver_opened(service, repo, number, head, base, delivery_id="d-1")  # a redelivery: dropped
    deliver_opened(service, repo, number, head, base, action="reopened")  # a new delivery, same head
    service.wait_idle()
    assert len(summaries(github, repo, number)) == 1
    assert github.state.requests_matching("PATCH", rf"/repos/{repo}/issues/comments/") == []
    assert service.metric("vram_check_deliveries_total", event="pull_request", outcome="duplicate") >= 1


def test_racing_deliveries_give_one_summary(service: RunningService, github: FakeGitHub) -> None:
    repo, number, head, base = open_pull(github, {"configs/sft.yaml": lora()})
    threads = [threading.Thread(target=deliver_opened, args=(service, repo, number, head, base, action))
               for action in ("opened", "reopened", "synchronize", "ready_for_review", "synchronize")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    service.wait_idle()
    assert len(summaries(github, repo, number)) == 1
    assert len(github.state.comments(repo, number)) == 1


def test_no_training_config_means_no_comment(service: RunningService, github: FakeGitHub) -> None:
    repo, number, head, base = open_pull(github, {"README.md": "# configs\n\nMore words.\n",
                                                  "scripts/notes.yaml": "just: data\n"})
    deliver_opened(service, repo, number, head, base)
    service.wait_idle()
    assert github.state.comments(repo, number) == []
    [status] = github.state.repos[repo].statuses
    assert status["state"] == "success" and "no training config" in status["description"]


def test_a_broken_config_is_reported_and_the_others_still_checked(service: RunningService,
                                                                  github: FakeGitHub) -> None:
    repo, number, head, base = open_pull(github, {"configs/broken.yaml": BROKEN, "configs/sft.yaml": lora()})
    deliver_opened(service, repo, number, head, base)
    service.wait_idle()
    [body] = summaries(github, repo, number)
    assert "configs/broken.yaml" in body and "⛔ error" in body
    assert "configs/sft.yaml" in body and "✅ fits" in body
    assert service.client.get(f"{service.url}/healthz").status_code == 200
    assert service.metric("vram_check_failures_total", stage="config") >= 1


def test_hub_models_unknown_gated_and_served(service: RunningService, github: FakeGitHub) -> None:
    repo, number, head, base = open_pull(github, {
        "configs/missing.yaml": lora("acme/no-such-model"),
        "configs/gated.yaml": lora("acme/gated-llama"),
        "configs/tiny.yaml": lora("acme/tiny-llama"),
    })
    deliver_opened(service, repo, number, head, base)
    service.wait_idle()
    [body] = summaries(github, repo, number)
    table = {line.split("|")[1].strip(): line for line in body.splitlines() if line.startswith("| `configs/")}
    assert "⛔ error" in table["`configs/missing.yaml`"] and "⛔ error" in table["`configs/gated.yaml`"]
    assert "✅ fits" in table["`configs/tiny.yaml`"]
    assert "not found on the Hub" in body and "gated" in body
    assert service.metric("vram_check_hub_calls_total", outcome="error") >= 2


def test_a_path_as_model_is_refused(service: RunningService, github: FakeGitHub) -> None:
    repo, number, head, base = open_pull(github, {"configs/local.yaml": lora("/etc")})
    deliver_opened(service, repo, number, head, base)
    service.wait_idle()
    [body] = summaries(github, repo, number)
    assert "Hub ids" in body and "⛔ error" in body


def test_github_outage_is_survived_and_counted(service: RunningService, github: FakeGitHub) -> None:
    repo, number, head, base = open_pull(github, {"configs/sft.yaml": lora()})
    github.state.fail("GET", rf"/repos/{repo}/pulls/{number}/files$", 502, times=10)
    deliver_opened(service, repo, number, head, base)
    service.wait_idle()
    [failed] = summaries(github, repo, number)  # the job ends saying why, in the comment and the status
    assert "could not be checked: GitHub API error during listing changed files (HTTP 502)" in failed
    assert github.state.repos[repo].statuses[-1]["state"] == "failure"
    assert service.metric("vram_check_failures_total", stage="github") >= 1
    assert service.metric("vram_check_github_calls_total", outcome="error") >= 1
    github.state.failures.clear()
    deliver_opened(service, repo, number, head, base, action="synchronize")  # the next delivery recovers
    service.wait_idle()
    [body] = summaries(github, repo, number)
    assert "✅ fits" in body and github.state.repos[repo].statuses[-1]["state"] == "success"


def test_suggestions_on_diff_lines_become_one_review_not_repeated(service: RunningService,
                                                                  github: FakeGitHub) -> None:
    repo, number, head, base = open_pull(github, {"configs/full.yaml": FULL_8B})
    deliver_opened(service, repo, number, head, base)
    service.wait_idle()
    reviews = github.state.repos[repo].reviews.get(number, [])
    comments = github.state.repos[repo].review_comments.get(number, [])
    [body] = summaries(github, repo, number)
    if comments:  # the estimator proposed edits of lines of the new file (all of it is in the diff)
        assert len(reviews) == 1
        assert all("```suggestion" in c["body"] and "<!-- vram-check:suggestion fp=" in c["body"]
                   for c in comments)
        assert "Posted as a suggested change in the review" in body
    deliver_opened(service, repo, number, head, base, action="reopened")
    service.wait_idle()
    assert len(github.state.repos[repo].reviews.get(number, [])) == len(reviews)  # no duplicates


def test_no_secret_in_logs_or_comments(service: RunningService, github: FakeGitHub,
                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    repo, number, head, base = open_pull(github, {"configs/sft.yaml": lora()})
    github.state.fail("POST", rf"/repos/{repo}/statuses/", 500, times=5)
    deliver_opened(service, repo, number, head, base)
    service.deliver("pull_request", pull_request_payload("opened", repo, number, head, base), secret="wrong")
    service.wait_idle()
    text = caplog.text + "".join(c.body for c in github.state.comments(repo, number))
    assert TOKEN not in text and SECRET not in text


def test_every_file_of_a_pull_request_is_read_once(service: RunningService, github: FakeGitHub) -> None:
    # Two changed configs (one new, one modified) sharing a DeepSpeed JSON, under the policy's globs and the
    # base commit's policy: each (file, commit) is fetched from GitHub at most once in the whole check.
    zero3 = (Path(__file__).parent / "fixtures" / "deepspeed" / "llamafactory__ds_z3_config.json").read_text()
    full = FULL_8B.replace("per_device_train_batch_size: 4\n", "per_device_train_batch_size: 1\n")
    with_ds = full + "deepspeed: ds/z3.json\n"
    repo, number, head, base = open_pull(
        github, {"configs/new.yaml": with_ds, "configs/changed.yaml": with_ds.replace("2048", "1024")},
        base={"configs/changed.yaml": with_ds, "ds/z3.json": zero3})
    deliver_opened(service, repo, number, head, base)
    service.wait_idle()
    [body] = summaries(github, repo, number)
    assert "configs/new.yaml" in body and "configs/changed.yaml" in body
    reads = [(r.path.split("/contents/", 1)[1], r.query.get("ref")) for r in
             github.state.requests_matching("GET", rf"^/repos/{repo}/contents/")]
    assert sorted(set(reads)) == sorted(reads), f"read more than once: {reads}"
    assert (".github/vram-check.yml", base) in reads
    assert {("configs/new.yaml", head), ("configs/changed.yaml", head),
            ("ds/z3.json", head), ("ds/z3.json", base)} <= set(reads)
    # the base version of the modified config is rebuilt from the patch in the files list: no request
    assert ("configs/changed.yaml", base) not in reads
