"""The webhook front door, driven over HTTP against the real service (uvicorn on loopback):
signatures, size and JSON checks, event filtering, deduplication, /healthz and /metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fakes.github import FakeGitHub, FakeGitHubState
from fakes.service import RunningService, comment_payload, fixture, pull_request_payload

from bot.settings import Settings
from bot.webhooks.signature import sign, signature_ok

SECRET = "It's a Secret to Everybody"
REPO = "acme/configs"


def test_signature_matches_githubs_documented_example() -> None:
    # github/docs validating-webhook-deliveries: this secret and payload give this signature.
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign(SECRET.encode(), b"Hello, World!") == expected
    assert signature_ok(SECRET.encode(), b"Hello, World!", expected)
    assert not signature_ok(SECRET.encode(), b"Hello, World?", expected)
    assert not signature_ok(SECRET.encode(), b"Hello, World!", expected.replace("sha256=", "sha1="))
    assert not signature_ok(SECRET.encode(), b"Hello, World!", None)


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    state = FakeGitHubState(token="ghp_test_token")
    state.add_repo(REPO, base_files={"README.md": "hello\n"})
    with FakeGitHub(state) as fake:
        yield fake


@pytest.fixture(scope="module")
def service(github: FakeGitHub) -> Iterator[RunningService]:
    settings = Settings(webhook_secret=SECRET, token="ghp_test_token", api_url=github.url,
                        github_retries=0, max_payload_bytes=64 * 1024,
                        worker_mode="thread", workers=1)
    with RunningService(settings) as running:
        yield running


def test_bad_or_missing_signature_is_401_and_nothing_happens(service: RunningService,
                                                             github: FakeGitHub) -> None:
    payload = pull_request_payload("opened", REPO, 7, "a" * 40, "b" * 40)
    before = len(github.state.requests)
    assert service.deliver("pull_request", payload, secret="wrong secret").status_code == 401
    assert service.deliver("pull_request", payload, signature="").status_code == 401
    assert service.deliver("pull_request", payload, signature="sha256=" + "0" * 64).status_code == 401
    service.wait_idle()
    assert len(github.state.requests) == before  # no GitHub call at all
    assert service.metric("vram_check_deliveries_total", event="pull_request", outcome="bad-signature") >= 3


def test_oversized_delivery_is_413(service: RunningService) -> None:
    payload = comment_payload(REPO, 7, "x" * (65 * 1024))
    response = service.deliver("issue_comment", payload)
    assert response.status_code == 413


def test_malformed_json_is_400(service: RunningService) -> None:
    assert service.deliver("pull_request", b"{not json").status_code == 400
    assert service.deliver("pull_request", b"[1, 2]").status_code == 400
    broken = pull_request_payload("opened", REPO, 7, "a" * 40, "b" * 40)
    del broken["pull_request"]["head"]
    assert service.deliver("pull_request", broken).status_code == 400


def test_ping_answers_and_other_events_are_ignored(service: RunningService) -> None:
    ping = service.deliver("ping", fixture("ping.json"))
    assert ping.status_code == 200 and ping.json() == {"outcome": "pong"}
    closed = pull_request_payload("closed", REPO, 7, "a" * 40, "b" * 40)
    assert service.deliver("pull_request", closed).json() == {"outcome": "ignored"}
    assert service.deliver("push", {"ref": "refs/heads/main"}).json() == {"outcome": "ignored"}
    installed = service.deliver("installation", fixture("installation.created.json"))
    assert installed.status_code == 202 and installed.json() == {"outcome": "installation-created"}


def test_comments_that_are_not_commands_or_not_on_a_pull_request_are_ignored(service: RunningService) -> None:
    plain = service.deliver("issue_comment", fixture("issue_comment.created.on-issue.json"))
    assert plain.json() == {"outcome": "not-a-pull-request"}
    chatter = service.deliver("issue_comment", comment_payload(REPO, 7, "LGTM, but is /vram-check run?"))
    assert chatter.json() == {"outcome": "not-a-command"}
    from_bot = service.deliver("issue_comment", comment_payload(REPO, 7, "/vram-check", login="vram-check[bot]",
                                                                user_type="Bot"))
    assert from_bot.json() == {"outcome": "bot"}


def test_redelivery_with_the_same_id_is_dropped(service: RunningService, github: FakeGitHub) -> None:
    payload = comment_payload(REPO, 99, "/vram-check help", login="reader")  # PR 99 does not exist
    first = service.deliver("issue_comment", payload, delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    again = service.deliver("issue_comment", payload, delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert first.json() == {"outcome": "queued"}
    assert again.json() == {"outcome": "duplicate"}
    service.wait_idle()
    # the job ran once and failed closed on the unknown user (404 → no write access)
    assert len(github.state.requests_matching("GET", r"/collaborators/reader/permission")) == 1


def test_healthz_and_metrics(service: RunningService) -> None:
    health = service.client.get(f"{service.url}/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    metrics = service.client.get(f"{service.url}/metrics")
    assert metrics.status_code == 200
    assert "vram_check_deliveries_total" in metrics.text
    assert SECRET not in metrics.text and "ghp_test_token" not in metrics.text
    assert json.loads(service.client.get(f"{service.url}/healthz").text)["worker_mode"] == "thread"
