"""A fake Hugging Face Hub on 127.0.0.1 (random port, served from a thread) for huggingface_hub 2.x.

What the real client asks for (observed by running huggingface_hub 2.4.0 against this fake, see
tests/test_app_hub_fake.py): `HEAD`/`GET /{repo}/resolve/{revision}/{file}` for hf_hub_download, needing
`X-Repo-Commit` and `ETag` headers; `GET /api/models/{repo}` and `/api/models/{repo}/revision/{rev}` for
model_info. Errors carry `X-Error-Code` (RepoNotFound, GatedRepo, RevisionNotFound, EntryNotFound), which
is what `hf_raise_for_status` keys on. Gated repositories answer 401 without a token and 403 with a token
that was not granted access, as the Hub does.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HubModel:
    files: dict[str, bytes]
    gated: bool = False
    allowed_tokens: frozenset[str] = frozenset()


@dataclass
class FakeHubState:
    models: dict[str, HubModel] = field(default_factory=dict)
    outage_status: int | None = None  # answer every request with this status (Hub outage)
    requests: list[tuple[str, str, bool]] = field(default_factory=list)  # (method, path, had auth)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_model(self, repo_id: str, config: dict[str, Any], *, gated: bool = False,
                  allowed_tokens: frozenset[str] = frozenset()) -> None:
        with self.lock:
            self.models[repo_id] = HubModel({"config.json": json.dumps(config, indent=2).encode()}, gated,
                                            allowed_tokens)


class FakeHub:
    def __init__(self, state: FakeHubState) -> None:
        self.state = state
        handler = type("BoundHubHandler", (_HubHandler,), {"state": state})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-hub", daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate writes: avoid the 40 ms delayed-ACK stall
    state: FakeHubState

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _reply(self, status: int, body: bytes, headers: dict[str, str], head: bool) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _error(self, status: int, code: str | None, message: str, head: bool) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._reply(status, json.dumps({"error": message}).encode(), headers, head)

    def _serve(self, *, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        auth = self.headers.get("Authorization", "")
        state = self.state
        with state.lock:
            state.requests.append(("HEAD" if head else "GET", path, bool(auth)))
            outage = state.outage_status
            models = dict(state.models)
        if outage is not None:
            self._error(outage, None, "Service temporarily unavailable", head)
            return
        api = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
        resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        repo_id = api[1] if api else resolve[1] if resolve else None
        if repo_id is None:
            self._error(404, None, "Not Found", head)
            return
        model = models.get(repo_id)
        if model is None:
            self._error(401 if not auth else 404, "RepoNotFound", "Repository not found", head)
            return
        if model.gated:
            token = auth.removeprefix("Bearer ")
            if not auth:
                self._error(401, "GatedRepo", f"Access to model {repo_id} is restricted. You must have access "
                            "to it and be authenticated to access it. Please log in.", head)
                return
            if token not in model.allowed_tokens:
                self._error(403, "GatedRepo", f"Access to model {repo_id} is restricted and you are not in "
                            "the authorized list.", head)
                return
        revision = (api[2] if api else resolve[2] if resolve else None) or "main"
        if revision not in ("main", COMMIT):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
            return
        if api:
            info = {"id": repo_id, "modelId": repo_id, "sha": COMMIT, "private": False,
                    "gated": "manual" if model.gated else False, "disabled": False, "tags": [],
                    "siblings": [{"rfilename": name} for name in sorted(model.files)]}
            self._reply(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, head)
            return
        assert resolve is not None
        data = model.files.get(resolve[3])
        if data is None:
            self._error(404, "EntryNotFound", f"{resolve[3]} does not exist on {revision}", head)
            return
        etag = hashlib.sha1(data).hexdigest()
        self._reply(200, data, {"Content-Type": "application/octet-stream", "X-Repo-Commit": COMMIT,
                                "ETag": f'"{etag}"'}, head)
