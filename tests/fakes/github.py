"""A small, stateful fake of the GitHub REST API on 127.0.0.1 (random port, served from a thread).

Serves what PyGithub 2.x requests for vram-check (research/botux.md §3.8): repositories, pull requests and
their files, file contents at refs, issue comments (create/list/edit), reactions, reviews and review
comments, check runs, commit statuses, collaborator permissions, the GraphQL `viewer { login }` query (who
the caller is), and the App installation-token endpoint, which verifies the RS256 JWT against the App's
public key. Comments record their author: the caller (`bot_login`) for those the client writes, the given
login for those `add_comment` types in; like GitHub for an App with pull-request write access, the caller
may edit anyone's comment (`fail()` makes GitHub refuse). Every URL it returns points at itself (PyGithub
refuses foreign hosts). Tests inspect `state` and `requests` and can inject failures.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt

JSON = dict[str, Any]


def sha_of(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


def unified_patch(old: str | None, new: str | None) -> str:
    """The `patch` field GitHub returns for a file: unified-diff hunks without the ---/+++ header."""
    lines = difflib.unified_diff((old or "").splitlines(), (new or "").splitlines(), lineterm="", n=3)
    return "\n".join(line for line in lines if not line.startswith(("---", "+++")))


@dataclass
class Comment:
    id: int
    body: str
    login: str
    user_type: str
    created_at: str
    updated_at: str
    created_epoch: float = field(default_factory=time.time)


@dataclass
class PullRequest:
    number: int
    head_ref: str
    head_sha: str
    base_ref: str
    base_sha: str
    author: str = "Codertocat"
    draft: bool = False


@dataclass
class Repo:
    full_name: str
    id: int
    default_branch: str = "main"
    commits: dict[str, dict[str, str]] = field(default_factory=dict)  # sha -> {path: text}
    branches: dict[str, str] = field(default_factory=dict)  # name -> sha
    pulls: dict[int, PullRequest] = field(default_factory=dict)
    comments: dict[int, list[Comment]] = field(default_factory=dict)  # issue number -> comments
    reviews: dict[int, list[JSON]] = field(default_factory=dict)
    review_comments: dict[int, list[JSON]] = field(default_factory=dict)
    check_runs: list[JSON] = field(default_factory=list)
    statuses: list[JSON] = field(default_factory=list)
    reactions: list[JSON] = field(default_factory=list)  # {"comment_id", "content", "login"}
    permissions: dict[str, str] = field(default_factory=dict)


@dataclass
class Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    remaining: int
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class RecordedRequest:
    method: str
    path: str
    authorization: str
    body: Any
    query: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SecondaryLimits:
    """GitHub's documented secondary rate limits (REST API docs, "Rate limits for the REST API")."""

    concurrency: int = 100
    points_per_minute: int = 900  # per endpoint; GET/HEAD/OPTIONS 1 point, POST/PATCH/PUT/DELETE 5
    writes_per_minute: int = 80  # content-creating requests
    writes_per_hour: int = 500
    retry_after_s: int = 60


def route_of(method: str, path: str) -> str:
    """The fake's notion of one REST endpoint: the route, whatever the repository, number or file."""
    path = re.sub(r"^/repos/[^/]+/[^/]+", "/repos/{repo}", path)
    path = re.sub(r"/contents/.*$", "/contents/{path}", path)
    path = re.sub(r"/[0-9a-f]{40}(?=/|$)", "/{sha}", path)
    return f"{method} " + re.sub(r"/\d+(?=/|$)", "/{n}", path)


class FakeGitHubState:
    """All the fake's data; the test manipulates it through the helpers below."""

    def __init__(self, *, token: str | None = None, app_id: int | None = None,
                 app_public_key_pem: str | None = None, bot_login: str = "vram-check[bot]") -> None:
        self.lock = threading.RLock()
        self.repos: dict[str, Repo] = {}
        self.static_token = token
        self.app_id = app_id
        self.app_public_key_pem = app_public_key_pem
        self.bot_login = bot_login
        self.issued_tokens: dict[str, tuple[int, float]] = {}  # token -> (installation id, expiry epoch)
        self.token_ttl_s = 3600.0
        self.requests: list[RecordedRequest] = []
        self.failures: list[Failure] = []
        self.latency_s = 0.0
        self._ids = itertools.count(1000)
        # GitHub's documented secondary limits, enforced when `limits` is set (the benchmark): a request over
        # one is answered 403 with Retry-After and counted in `violations`.
        self.limits: SecondaryLimits | None = None
        self.violations: list[str] = []
        self.in_flight: dict[str, int] = {}
        self.max_in_flight = 0
        self.points: dict[tuple[str, str], list[tuple[float, int]]] = {}
        self.writes: dict[str, list[float]] = {}

    def next_id(self) -> int:
        return next(self._ids)

    # -- setup helpers ---------------------------------------------------------------------------------
    def add_repo(self, full_name: str, *, base_files: Mapping[str, str], branch: str = "main") -> Repo:
        with self.lock:
            repo = Repo(full_name=full_name, id=self.next_id(), default_branch=branch)
            sha = sha_of(full_name, *sorted(f"{p}={t}" for p, t in base_files.items()))
            repo.commits[sha] = dict(base_files)
            repo.branches[branch] = sha
            self.repos[full_name] = repo
            return repo

    def open_pull(self, full_name: str, number: int, *, head_files: Mapping[str, str | None],
                  head_ref: str = "changes", base: str | None = None, author: str = "Codertocat") -> str:
        """A pull request whose head commit applies `head_files` (None deletes) on top of the base branch."""
        with self.lock:
            repo = self.repos[full_name]
            base_ref = base or repo.default_branch
            base_sha = repo.branches[base_ref]
            repo.pulls[number] = PullRequest(number=number, head_ref=head_ref, head_sha="", base_ref=base_ref,
                                             base_sha=base_sha, author=author)
            repo.comments.setdefault(number, [])
            return self.push(full_name, number, head_files)

    def push(self, full_name: str, number: int, changes: Mapping[str, str | None]) -> str:
        """A new head commit on the pull request's branch; returns its sha."""
        with self.lock:
            repo = self.repos[full_name]
            pull = repo.pulls[number]
            parent = repo.commits[pull.head_sha] if pull.head_sha else repo.commits[pull.base_sha]
            files = dict(parent)
            for path, text in changes.items():
                if text is None:
                    files.pop(path, None)
                else:
                    files[path] = text
            sha = sha_of(full_name, str(number), str(time.monotonic_ns()),
                         *sorted(f"{p}={t}" for p, t in files.items()))
            repo.commits[sha] = files
            repo.branches[pull.head_ref] = sha
            pull.head_sha = sha
            return sha

    def add_comment(self, full_name: str, number: int, body: str, login: str, user_type: str = "User") -> int:
        """A comment someone typed in the pull request (what an issue_comment delivery refers to)."""
        with self.lock:
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            comment = Comment(self.next_id(), body, login, user_type, now, now)
            self.repos[full_name].comments.setdefault(number, []).append(comment)
            return comment.id

    def fail(self, method: str, path_regex: str, status: int, times: int = 1,
             headers: Mapping[str, str] | None = None) -> None:
        with self.lock:
            self.failures.append(Failure(method.upper(), re.compile(path_regex), status, times, headers or {}))

    def comments(self, full_name: str, number: int) -> list[Comment]:
        with self.lock:
            return list(self.repos[full_name].comments.get(number, []))

    def requests_matching(self, method: str, path_regex: str) -> list[RecordedRequest]:
        pattern = re.compile(path_regex)
        with self.lock:
            return [r for r in self.requests if r.method == method and pattern.search(r.path)]


class FakeGitHub:
    """Runs the fake in a daemon thread; use as a context manager."""

    def __init__(self, state: FakeGitHubState) -> None:
        self.state = state
        handler = type("BoundHandler", (_Handler,), {"state": state, "server_url": ""})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        handler.server_url = self.url
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-github", daemon=True)

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


Route = tuple[str, re.Pattern[str], Callable[..., tuple[int, Any]]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate writes: avoid the 40 ms delayed-ACK stall
    state: FakeGitHubState
    server_url: str

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    # -- plumbing ----------------------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        auth = self.headers.get("Authorization", "")
        state = self.state
        with state.lock:
            state.requests.append(RecordedRequest(method, path, auth, body, query))
            over = self._over_limit(method, path, auth)
            state.in_flight[auth] = state.in_flight.get(auth, 0) + 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight[auth])
        try:
            if state.latency_s:
                time.sleep(state.latency_s)
            if over is not None:
                assert state.limits is not None
                self._send(403, {"message": f"You have exceeded a secondary rate limit ({over})",
                                 "documentation_url": "https://docs.github.com/rest"},
                           {"Retry-After": str(state.limits.retry_after_s)})
                return
            self._answer(method, path, query, body, auth)
        finally:
            with state.lock:
                state.in_flight[auth] -= 1

    def _over_limit(self, method: str, path: str, auth: str) -> str | None:
        """Which documented limit this request breaks (None: within all); called under the state lock."""
        state = self.state
        limits = state.limits
        if limits is None or path.startswith("/_fake/") or path.endswith("/access_tokens"):
            return None
        now = time.time()
        reasons = []
        if state.in_flight.get(auth, 0) + 1 > limits.concurrency:
            reasons.append("concurrent requests")
        window = [(t, p) for t, p in state.points.get((auth, route_of(method, path)), []) if t > now - 60]
        cost = 5 if method in ("POST", "PATCH", "PUT", "DELETE") else 1
        if sum(p for _, p in window) + cost > limits.points_per_minute:
            reasons.append(f"points per minute on {route_of(method, path)}")
        window.append((now, cost))
        state.points[(auth, route_of(method, path))] = window
        if cost == 5:
            writes = [t for t in state.writes.get(auth, []) if t > now - 3600]
            if len([t for t in writes if t > now - 60]) + 1 > limits.writes_per_minute:
                reasons.append("content-creating requests per minute")
            if len(writes) + 1 > limits.writes_per_hour:
                reasons.append("content-creating requests per hour")
            writes.append(now)
            state.writes[auth] = writes
        if reasons:
            state.violations.append(f"{method} {path}: {', '.join(reasons)}")
            return ", ".join(reasons)
        return None

    def _answer(self, method: str, path: str, query: dict[str, str], body: Any, auth: str) -> None:
        state = self.state
        try:
            with state.lock:
                for failure in state.failures:
                    if failure.remaining > 0 and failure.method == method and failure.pattern.search(path):
                        failure.remaining -= 1
                        raise HttpError(failure.status, "injected failure", failure.headers)
            status, payload = self._route(method, path, query, body, auth)
        except HttpError as error:
            self._send(error.status, {"message": error.message,
                                      "documentation_url": "https://docs.github.com/rest"}, error.headers)
            return
        self._send(status, payload)

    def _send(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-RateLimit-Limit", "5000")
        self.send_header("X-RateLimit-Remaining", "4999")
        self.send_header("X-RateLimit-Reset", str(int(time.time()) + 3600))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if data:
            self.wfile.write(data)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- auth --------------------------------------------------------------------------------------------
    def _verify_jwt(self, auth: str) -> None:
        state = self.state
        if not auth.startswith("Bearer ") or state.app_public_key_pem is None:
            raise HttpError(401, "A JSON web token could not be decoded")
        try:
            claims = jwt.decode(auth.removeprefix("Bearer "), state.app_public_key_pem, algorithms=["RS256"],
                                options={"require": ["iat", "exp", "iss"]})
        except jwt.PyJWTError as error:
            raise HttpError(401, f"A JSON web token could not be decoded ({type(error).__name__})") from None
        if str(claims["iss"]) != str(state.app_id):
            raise HttpError(401, "'Issuer' claim ('iss') must be the App id")
        if claims["exp"] - claims["iat"] > 600:
            raise HttpError(401, "'Expiration time' claim ('exp') is too far in the future")

    def _require_token(self, auth: str) -> None:
        state = self.state
        token = auth.split(" ", 1)[1] if " " in auth else ""
        with state.lock:
            if state.static_token is not None and token == state.static_token:
                return
            issued = state.issued_tokens.get(token)
        if issued is None or issued[1] < time.time():
            raise HttpError(401, "Bad credentials")

    # -- routes -----------------------------------------------------------------------------------------
    def _route(self, method: str, path: str, query: dict[str, str], body: Any, auth: str) -> tuple[int, Any]:
        match = re.fullmatch(r"/app/installations/(\d+)/access_tokens", path)
        if match and method == "POST":
            self._verify_jwt(auth)
            token = "ghs_" + hashlib.sha256(f"{match[1]}{time.time_ns()}".encode()).hexdigest()[:36]
            expires = time.time() + self.state.token_ttl_s
            with self.state.lock:
                self.state.issued_tokens[token] = (int(match[1]), expires)
            return 201, {"token": token, "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)),
                         "permissions": {"pull_requests": "write", "checks": "write", "contents": "read"}}
        if path == "/graphql" and method == "POST":
            self._require_token(auth)
            query = str((body or {}).get("query", ""))
            if "viewer" not in query:
                raise HttpError(400, "the fake answers only the viewer query")
            return 200, {"data": {"viewer": {"login": self._caller()[0]}}}
        if path == "/_fake/comment-times":  # not GitHub: lets the benchmark read when comments appeared
            with self.state.lock:
                return 200, [[r.full_name, n, c.created_epoch] for r in self.state.repos.values()
                             for n, cs in r.comments.items() for c in cs]
        if path == "/_fake/stats":  # not GitHub: what the benchmark reports
            with self.state.lock:
                per_repo: dict[str, int] = {}
                for request in self.state.requests:
                    match = re.match(r"/repos/([^/]+/[^/]+)", request.path)
                    if match:
                        per_repo[match[1]] = per_repo.get(match[1], 0) + 1
                return 200, {"violations": list(self.state.violations), "max_in_flight": self.state.max_in_flight,
                             "requests_per_repo": per_repo,
                             "requests": [[r.method, r.path] for r in self.state.requests],
                             "sticky": {r.full_name: [c.body.split("\n", 1)[0] for c in r.comments.get(1, [])]
                                        for r in self.state.repos.values()},
                             "statuses": {r.full_name: [[s["sha"], s["state"], s.get("description", "")]
                                                        for s in r.statuses] for r in self.state.repos.values()},
                             "heads": {r.full_name: r.pulls[1].head_sha for r in self.state.repos.values()
                                       if 1 in r.pulls}}
        self._require_token(auth)
        match = re.fullmatch(r"/repos/([^/]+/[^/]+)(/.*)?", path)
        if not match:
            raise HttpError(404, "Not Found")
        with self.state.lock:
            repo = self.state.repos.get(match[1])
            if repo is None:
                raise HttpError(404, "Not Found")
            return self._repo_route(repo, method, match[2] or "", query, body)

    def _repo_route(self, repo: Repo, method: str, rest: str, query: dict[str, str],
                    body: Any) -> tuple[int, Any]:
        base = f"{self.server_url}/repos/{repo.full_name}"
        if rest == "" and method == "GET":
            return 200, self._repo_json(repo)
        if m := re.fullmatch(r"/pulls/(\d+)", rest):
            return 200, self._pull_json(repo, self._pull(repo, int(m[1])))
        if m := re.fullmatch(r"/pulls/(\d+)/files", rest):
            pull = self._pull(repo, int(m[1]))
            return 200, self._files_json(repo, pull)
        if m := re.fullmatch(r"/contents/(.+)", rest):
            ref = query.get("ref") or repo.default_branch
            sha = repo.branches.get(ref, ref)
            files = repo.commits.get(sha)
            if files is None:
                raise HttpError(404, f"No commit found for the ref {ref}")
            text = files.get(m[1])
            if text is None:
                raise HttpError(404, "Not Found")
            data = text.encode()
            return 200, {"type": "file", "encoding": "base64", "size": len(data), "name": m[1].rsplit("/", 1)[-1],
                         "path": m[1], "content": base64.b64encode(data).decode(), "sha": sha_of(text),
                         "url": f"{base}/contents/{m[1]}?ref={ref}",
                         "html_url": f"{self.server_url}/{repo.full_name}/blob/{ref}/{m[1]}",
                         "git_url": f"{base}/git/blobs/{sha_of(text)}", "download_url": None}
        if m := re.fullmatch(r"/issues/(\d+)/comments", rest):
            number = int(m[1])
            if number not in repo.comments:
                raise HttpError(404, "Not Found")
            if method == "GET":
                return 200, [self._comment_json(repo, number, c) for c in repo.comments[number]]
            if method == "POST":
                body_text = str(body["body"])
                if len(body_text) > 65536:
                    raise HttpError(422, "Body is too long (maximum is 65536 characters)")
                now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                login, user_type = self._caller()
                comment = Comment(self.state.next_id(), body_text, login, user_type, now, now)
                repo.comments[number].append(comment)
                return 201, self._comment_json(repo, number, comment)
        if m := re.fullmatch(r"/issues/comments/(\d+)", rest):
            number, comment = self._find_comment(repo, int(m[1]))
            if method == "PATCH":
                body_text = str(body["body"])
                if len(body_text) > 65536:
                    raise HttpError(422, "Body is too long (maximum is 65536 characters)")
                comment.body = body_text
                comment.updated_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            return 200, self._comment_json(repo, number, comment)
        if m := re.fullmatch(r"/issues/comments/(\d+)/reactions", rest):
            self._find_comment(repo, int(m[1]))
            reaction = {"id": self.state.next_id(), "content": body["content"], "comment_id": int(m[1]),
                        "user": {"login": self._caller()[0]}}
            repo.reactions.append(reaction)
            return 201, reaction
        if m := re.fullmatch(r"/pulls/(\d+)/comments", rest):
            return 200, list(repo.review_comments.get(int(m[1]), []))
        if (m := re.fullmatch(r"/pulls/(\d+)/reviews", rest)) and method == "POST":
            pull = self._pull(repo, int(m[1]))
            return 200, self._create_review(repo, pull, body)
        if m := re.fullmatch(r"/commits/([0-9a-f]{40})", rest):
            if m[1] not in repo.commits:
                raise HttpError(422, "No commit found for SHA")
            return 200, {"sha": m[1], "url": f"{base}/commits/{m[1]}", "html_url": "", "commit": {}}
        if rest == "/check-runs" and method == "POST":
            if self.state.app_id is None:
                raise HttpError(403, "You must authenticate via a GitHub App.")
            run = {"id": self.state.next_id(), **body, "url": f"{base}/check-runs/{len(repo.check_runs)}"}
            repo.check_runs.append(run)
            return 201, run
        if (m := re.fullmatch(r"/statuses/([0-9a-f]{40})", rest)) and method == "POST":
            if len(body.get("description") or "") > 140:
                raise HttpError(422, "description is too long (maximum is 140 characters)")
            status = {"id": self.state.next_id(), "sha": m[1], **body, "url": f"{base}/statuses/{m[1]}"}
            repo.statuses.append(status)
            return 201, status
        if m := re.fullmatch(r"/collaborators/([^/]+)/permission", rest):
            permission = repo.permissions.get(m[1])
            if permission is None:
                raise HttpError(404, f"{m[1]} is not a user")
            return 200, {"permission": permission, "role_name": permission,
                         "user": {"login": m[1], "type": "User"}}
        raise HttpError(404, "Not Found")

    def _caller(self) -> tuple[str, str]:
        return self.state.bot_login, "Bot"

    def _pull(self, repo: Repo, number: int) -> PullRequest:
        pull = repo.pulls.get(number)
        if pull is None:
            raise HttpError(404, "Not Found")
        return pull

    def _find_comment(self, repo: Repo, comment_id: int) -> tuple[int, Comment]:
        for number, comments in repo.comments.items():
            for comment in comments:
                if comment.id == comment_id:
                    return number, comment
        raise HttpError(404, "Not Found")

    def _repo_json(self, repo: Repo) -> JSON:
        base = f"{self.server_url}/repos/{repo.full_name}"
        owner = repo.full_name.split("/")[0]
        return {"id": repo.id, "name": repo.full_name.split("/")[1], "full_name": repo.full_name,
                "owner": {"login": owner, "type": "User", "url": f"{self.server_url}/users/{owner}"},
                "default_branch": repo.default_branch, "url": base,
                "html_url": f"{self.server_url}/{repo.full_name}", "private": False}

    def _pull_json(self, repo: Repo, pull: PullRequest) -> JSON:
        base = f"{self.server_url}/repos/{repo.full_name}"
        return {"url": f"{base}/pulls/{pull.number}", "id": pull.number + 10_000, "number": pull.number,
                "state": "open", "draft": pull.draft, "title": "Update training configs",
                "issue_url": f"{base}/issues/{pull.number}",
                "html_url": f"{self.server_url}/{repo.full_name}/pull/{pull.number}",
                "user": {"login": pull.author, "type": "User"},
                "head": {"ref": pull.head_ref, "sha": pull.head_sha, "repo": self._repo_json(repo)},
                "base": {"ref": pull.base_ref, "sha": pull.base_sha, "repo": self._repo_json(repo)}}

    def _files_json(self, repo: Repo, pull: PullRequest) -> list[JSON]:
        old = repo.commits[pull.base_sha]
        new = repo.commits[pull.head_sha]
        out = []
        for path in sorted(set(old) | set(new)):
            if old.get(path) == new.get(path):
                continue
            status = "added" if path not in old else "removed" if path not in new else "modified"
            out.append({"sha": sha_of(new.get(path) or ""), "filename": path, "status": status,
                        "additions": 0, "deletions": 0, "changes": 0,
                        "patch": unified_patch(old.get(path), new.get(path)),
                        "contents_url": f"{self.server_url}/repos/{repo.full_name}/contents/{path}"})
        return out

    def _comment_json(self, repo: Repo, number: int, comment: Comment) -> JSON:
        base = f"{self.server_url}/repos/{repo.full_name}"
        return {"id": comment.id, "node_id": f"IC_{comment.id}", "body": comment.body,
                "url": f"{base}/issues/comments/{comment.id}",
                "html_url": f"{self.server_url}/{repo.full_name}/pull/{number}#issuecomment-{comment.id}",
                "issue_url": f"{base}/issues/{number}",
                "user": {"login": comment.login, "type": comment.user_type},
                "created_at": comment.created_at, "updated_at": comment.updated_at}

    def _create_review(self, repo: Repo, pull: PullRequest, body: JSON) -> JSON:
        if body.get("commit_id") not in repo.commits:
            raise HttpError(422, "commit_id is not part of the pull request")
        files = {f["filename"]: f for f in self._files_json(repo, pull)}
        for comment in body.get("comments") or []:
            patch = files.get(comment["path"], {}).get("patch", "")
            if comment.get("line") not in _right_lines(patch):
                raise HttpError(422, "Pull request review thread line must be part of the diff")
        review = {"id": self.state.next_id(), "state": "COMMENTED", "body": body.get("body"),
                  "commit_id": body.get("commit_id"), "user": {"login": self.state.bot_login, "type": "Bot"}}
        repo.reviews.setdefault(pull.number, []).append(review)
        for comment in body.get("comments") or []:
            repo.review_comments.setdefault(pull.number, []).append(
                {"id": self.state.next_id(), "path": comment["path"], "line": comment.get("line"),
                 "side": comment.get("side", "RIGHT"), "body": comment["body"],
                 "pull_request_review_id": review["id"], "commit_id": body.get("commit_id"),
                 "user": {"login": self.state.bot_login, "type": "Bot"}})
        return review


def _right_lines(patch: str) -> set[int]:
    lines: set[int] = set()
    current = 0
    for text in patch.splitlines():
        if text.startswith("@@"):
            current = int(text.split("+", 1)[1].split(" ", 1)[0].split(",", 1)[0])
        elif text.startswith(("+", " ")):
            lines.add(current)
            current += 1
    return lines
