"""GitHub App authentication end to end, with the default worker processes: the service signs a JWT with
the App's private key (given as a path), the fake GitHub verifies it against the public key before it
issues an installation token, and the check is published as a check run. Also: a wrong key, gated models
with HF_TOKEN, and a Hub outage."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fakes.github import FakeGitHub, FakeGitHubState
from fakes.hub import FakeHub, FakeHubState
from fakes.service import RunningService, pull_request_payload
from test_app_pull_request import CATALOG, FULL_8B, HF_GOOD_TOKEN, POLICY, lora

from bot.render.markdown import MARKER
from bot.settings import Settings

APP_ID = 29310  # the App id of the real installation.created delivery
SECRET = "app-tests-secret"


def keypair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@pytest.fixture(scope="module")
def app_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    private, public = keypair()
    path = tmp_path_factory.mktemp("app") / "vram-check.private-key.pem"
    path.write_text(private)
    return path, public


@pytest.fixture(scope="module")
def hub() -> Iterator[FakeHub]:
    state = FakeHubState()
    tiny = json.loads((CATALOG / "TinyLlama__TinyLlama-1.1B-Chat-v1.0.json").read_text())
    state.add_model("acme/gated-llama", tiny, gated=True, allowed_tokens=frozenset({HF_GOOD_TOKEN}))
    state.add_model("acme/tiny-llama", tiny)
    with FakeHub(state) as fake:
        yield fake


@pytest.fixture(scope="module")
def github(app_key: tuple[Path, str]) -> Iterator[FakeGitHub]:
    state = FakeGitHubState(app_id=APP_ID, app_public_key_pem=app_key[1])
    with FakeGitHub(state) as fake:
        yield fake


@pytest.fixture(scope="module")
def service(github: FakeGitHub, hub: FakeHub, app_key: tuple[Path, str],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    settings = Settings(webhook_secret=SECRET, app_id=APP_ID, app_private_key=str(app_key[0]), api_url=github.url,
                        hf_endpoint=hub.url, hf_token=HF_GOOD_TOKEN, hf_cache_dir=tmp_path_factory.mktemp("hf"),
                        github_retries=0, worker_mode="process", workers=2)
    with RunningService(settings) as running:
        yield running


def open_pull(github: FakeGitHub, name: str, files: dict[str, str | None]) -> tuple[str, int, str, str]:
    repo = f"acme/{name}"
    github.state.add_repo(repo, base_files={".github/vram-check.yml": POLICY})
    head = github.state.open_pull(repo, 2, head_files=files)
    return repo, 2, head, github.state.repos[repo].pulls[2].base_sha


def test_jwt_then_installation_token_then_check_run(service: RunningService, github: FakeGitHub) -> None:
    repo, number, head, base = open_pull(github, "app-flow", {"configs/full.yaml": FULL_8B,
                                                              "configs/gated.yaml": lora("acme/gated-llama")})
    payload = pull_request_payload("opened", repo, number, head, base, installation_id=957387)
    assert service.deliver("pull_request", payload).status_code == 202
    service.wait_idle(timeout=60)
    token_requests = github.state.requests_matching("POST", r"^/app/installations/957387/access_tokens$")
    assert token_requests and all(r.authorization.startswith("Bearer ") for r in token_requests)
    api_calls = [r for r in github.state.requests if r.path.startswith(f"/repos/{repo}")]
    issued = set(github.state.issued_tokens)
    assert api_calls and all(r.authorization.split(" ", 1)[1] in issued for r in api_calls)
    [run] = github.state.repos[repo].check_runs
    # full fine-tune of an 8 B model needs ≥ 16 B/parameter (see test_app_pull_request) > 80 GB: failure
    assert (run["name"], run["head_sha"], run["status"], run["conclusion"]) == ("vram-check", head, "completed",
                                                                                 "failure")
    assert github.state.repos[repo].statuses == []
    [body] = [c.body for c in github.state.comments(repo, number)]
    assert body.startswith(MARKER)
    table = {line.split("|")[1].strip(): line for line in body.splitlines() if line.startswith("| `configs/")}
    assert "✅ fits" in table["`configs/gated.yaml`"]  # HF_TOKEN is allowed to read the gated model


def test_wrong_private_key_is_refused_and_the_service_stays_up(github: FakeGitHub, hub: FakeHub,
                                                               tmp_path: Path) -> None:
    wrong = tmp_path / "other.pem"
    wrong.write_text(keypair()[0])
    settings = Settings(webhook_secret=SECRET, app_id=APP_ID, app_private_key=str(wrong), api_url=github.url,
                        hf_endpoint=hub.url, github_retries=0, worker_mode="thread",
                        workers=1)
    repo, number, head, base = open_pull(github, "wrong-key", {"configs/sft.yaml": lora()})
    with RunningService(settings) as running:
        payload = pull_request_payload("opened", repo, number, head, base, installation_id=957387)
        assert running.deliver("pull_request", payload).status_code == 202
        running.wait_idle()
        assert running.client.get(f"{running.url}/healthz").status_code == 200
        assert running.metric("vram_check_failures_total", stage="github") == 1
    assert github.state.comments(repo, number) == []
    assert not any(r.path.startswith(f"/repos/{repo}") and r.authorization.startswith("token ")
                   for r in github.state.requests)


def test_hub_outage_is_reported_per_config(service: RunningService, github: FakeGitHub, hub: FakeHub) -> None:
    repo, number, head, base = open_pull(github, "hub-outage", {"configs/remote.yaml": lora("acme/uncached-model"),
                                                                "configs/local.yaml": lora()})
    hub.state.outage_status = 503
    try:
        payload = pull_request_payload("opened", repo, number, head, base, installation_id=957387)
        service.deliver("pull_request", payload)
        service.wait_idle()
    finally:
        hub.state.outage_status = None
    [body] = [c.body for c in github.state.comments(repo, number)]
    table = {line.split("|")[1].strip(): line for line in body.splitlines() if line.startswith("| `configs/")}
    assert "⛔ error" in table["`configs/remote.yaml`"]
    assert "✅ fits" in table["`configs/local.yaml`"]  # bundled catalog: no Hub needed
    assert service.metric("vram_check_hub_calls_total", outcome="error") >= 1
    assert "the Hub answered 503 for 'acme/uncached-model'" in body


def test_installation_tokens_are_refreshed_before_they_expire(github: FakeGitHub, hub: FakeHub,
                                                               app_key: tuple[Path, str]) -> None:
    # PyGithub renews an installation token 20 s before its expires_at: tokens that live 10 s are renewed
    # on the next use, and the renewed token is what the following calls carry.
    settings = Settings(webhook_secret=SECRET, app_id=APP_ID, app_private_key=str(app_key[0]), api_url=github.url,
                        hf_endpoint=hub.url, github_retries=0, worker_mode="thread",
                        workers=1)
    github.state.token_ttl_s = 10
    try:
        with RunningService(settings) as running:
            before = len(github.state.requests_matching("POST", r"/access_tokens$"))
            for name in ("refresh-1", "refresh-2"):
                repo, number, head, base = open_pull(github, name, {"configs/sft.yaml": lora()})
                payload = pull_request_payload("opened", repo, number, head, base, installation_id=957387)
                running.deliver("pull_request", payload)
                running.wait_idle(timeout=60)
                assert len([c for c in github.state.comments(repo, number) if c.body.startswith(MARKER)]) == 1
            assert len(github.state.requests_matching("POST", r"/access_tokens$")) >= before + 2
    finally:
        github.state.token_ttl_s = 3600


def test_as_an_app_the_sticky_comment_is_its_own_and_the_check_run_is_inert(service: RunningService,
                                                                            github: FakeGitHub) -> None:
    """The App finds its own login through GraphQL `viewer` with an installation token; a marker comment
    typed by the author is left alone; a hostile file name reaches the check run's summary as code."""
    hostile = "configs/</details><h1>x</h1>@everyone.yaml"
    repo, number, head, base = open_pull(github, "app-hostile", {hostile: FULL_8B})
    fake = f"{MARKER}\n**✅ All 1 config fit**\n"
    github.state.add_comment(repo, number, fake, "Codertocat")
    payload = pull_request_payload("opened", repo, number, head, base, installation_id=957387)
    assert service.deliver("pull_request", payload).status_code == 202
    service.wait_idle(timeout=60)
    assert github.state.requests_matching("POST", r"^/graphql$")
    comments = github.state.comments(repo, number)
    assert [(c.login, c.body) for c in comments if c.login == "Codertocat"] == [("Codertocat", fake)]
    [ours] = [c.body for c in comments if c.login == "vram-check[bot]"]
    [run] = github.state.repos[repo].check_runs
    assert run["conclusion"] == "failure" and run["output"]["summary"] == ours
    assert f"`{hostile}`" in ours  # in the table, as code
    assert "<b>configs/&lt;/details&gt;&lt;h1&gt;x&lt;/h1&gt;@&#8203;everyone.yaml</b>" in ours  # in <summary>
