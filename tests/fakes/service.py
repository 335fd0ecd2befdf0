"""Helpers for driving the real webhook service: uvicorn on loopback in a thread, signed deliveries built
from the real GitHub payloads in tests/fixtures/github-webhooks (rewritten for the test repository)."""

from __future__ import annotations

import copy
import json
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from bot.app import create_app
from bot.settings import Settings
from bot.webhooks.signature import sign

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "github-webhooks"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def pull_request_payload(action: str, repo: str, number: int, head_sha: str, base_sha: str, *,
                         installation_id: int = 1, draft: bool = False) -> dict[str, Any]:
    """A real `pull_request.<action>` delivery with repository, number and commits replaced."""
    name = f"pull_request.{action}.json"
    payload = copy.deepcopy(fixture(name if (FIXTURES / name).exists() else "pull_request.opened.json"))
    payload["action"] = action
    payload["number"] = number
    payload["repository"]["full_name"] = repo
    payload["repository"]["name"] = repo.split("/")[1]
    payload["pull_request"]["number"] = number
    payload["pull_request"]["draft"] = draft
    payload["pull_request"]["head"]["sha"] = head_sha
    payload["pull_request"]["base"]["sha"] = base_sha
    payload["pull_request"]["base"]["ref"] = "main"
    payload["installation"] = {"id": installation_id, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="}
    if action == "synchronize":
        payload["after"] = head_sha
    return payload


def comment_payload(repo: str, number: int, body: str, *, login: str = "octocat", user_type: str = "User",
                    comment_id: int = 453012966, installation_id: int = 1, on_pull_request: bool = True
                    ) -> dict[str, Any]:
    """The real `issue_comment.created` delivery (a comment on a PR) with the comment replaced."""
    payload = copy.deepcopy(fixture("issue_comment.created.json"))
    payload["repository"]["full_name"] = repo
    payload["issue"]["number"] = number
    if not on_pull_request:
        payload["issue"].pop("pull_request", None)
    payload["comment"]["id"] = comment_id
    payload["comment"]["body"] = body
    payload["comment"]["user"]["login"] = login
    payload["comment"]["user"]["type"] = user_type
    payload["installation"] = {"id": installation_id}
    return payload


class RunningService:
    """The real app under uvicorn on 127.0.0.1 (random port) in a background thread."""

    def __init__(self, settings: Settings) -> None:
        if "state_dir" not in settings.model_fields_set:  # each service its own embedded store
            settings = settings.model_copy(update={"state_dir": Path(tempfile.mkdtemp(prefix="vram-check-state-"))})
        self.settings = settings
        self.app = create_app(settings)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.url = ""
        self.client = httpx.Client(timeout=10)

    def __enter__(self) -> RunningService:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the service did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.server.should_exit = True
        self._thread.join(timeout=30)

    def deliver(self, event: str, payload: dict[str, Any] | bytes, *, delivery_id: str | None = None,
                secret: str | None = None, signature: str | None = None) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        key = (secret if secret is not None else self.settings.webhook_secret.get_secret_value()).encode()
        headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
                   "X-Hub-Signature-256": signature if signature is not None else sign(key, body),
                   "Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/tests"}
        return self.client.post(f"{self.url}/webhook", content=body, headers=headers)

    def wait_idle(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.client.get(f"{self.url}/healthz").json()["pending_jobs"] == 0:
                return
            time.sleep(0.02)
        raise TimeoutError("background jobs did not finish")

    def wait_for(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.02)
        raise TimeoutError("condition not reached")

    def metric(self, name: str, **labels: str) -> float:
        text = self.client.get(f"{self.url}/metrics").text
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            metric, _, value = line.rpartition(" ")
            metric_name, _, label_text = metric.partition("{")
            if metric_name != name:
                continue
            found = ",".join(sorted(label_text.rstrip("}").split(","))) if label_text else ""
            if found == wanted:
                return float(value)
        return 0.0
