"""Everything vram-check asks of GitHub, through PyGithub (base_url = GITHUB_API_URL).

Objects are always built from the repository's full name and the pull request / comment numbers taken
from a payload, never from the payload's URLs (PyGithub refuses foreign hosts, and a payload is data).
Authentication: a GitHub App (JWT -> installation token, refreshed by PyGithub 20 s before it expires)
or a plain token. Every request goes through `bot.ratelimit` (GitHub's documented limits per installation,
shared by all threads and replicas; rate-limit waits capped; reads retried on 5xx; a 404 is an answer).
PyGithub's own throttle and retry are off: they slept between all requests of a client.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from github import Auth, Github, GithubException, GithubIntegration, UnknownObjectException
from github.Issue import Issue
from github.IssueComment import IssueComment
from github.PullRequest import PullRequest
from github.Repository import Repository

from bot.ratelimit import Limiter, RateLimited, installation_key, limit_client
from bot.settings import Settings
from bot.webhooks.evaluate import ChangedFile
from estimator.errors import InputError

log = logging.getLogger(__name__)

CHECK_NAME = "vram-check"
STATUS_DESCRIPTION_LIMIT = 140  # GitHub answers 422 above 140 characters (zalando/zappr#378)
CHECK_SUMMARY_LIMIT = 65_535  # check-run output.summary limit
WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})
T = TypeVar("T")


class GitHubUnavailable(Exception):
    """GitHub answered with an error (after retries) or could not be reached."""


class GitHubRateLimited(GitHubUnavailable):
    """GitHub asked for a wait longer than the cap (or the job's time left)."""

    def __init__(self, message: str, wait_s: float) -> None:
        super().__init__(message)
        self.wait_s = wait_s


class FileTooLarge(InputError):
    """A file in the pull request is above the configured size bound."""


@dataclass
class CallCounter:
    """GitHub calls by outcome, reported back to the service's metrics."""

    counts: Counter[str] = field(default_factory=Counter)

    def record(self, outcome: str) -> None:
        self.counts[outcome] += 1


@dataclass(frozen=True)
class PullRequestInfo:
    number: int
    head_sha: str
    base_sha: str
    draft: bool


@dataclass(frozen=True)
class StickyComment:
    id: int
    body: str
    html_url: str


def diff_right_lines(patch: str | None) -> frozenset[int]:
    """Head-side line numbers present in a unified diff hunk (added or context lines): review comments may
    only target these (GitHub answers 422 "line must be part of the diff" otherwise)."""
    if not patch:
        return frozenset()
    lines: set[int] = set()
    current = 0
    for text in patch.splitlines():
        if text.startswith("@@"):
            # @@ -a,b +c,d @@ : the head side starts at line c
            plus = text.split("+", 1)[1].split(" ", 1)[0]
            current = int(plus.split(",", 1)[0])
        elif text.startswith("+") or text.startswith(" "):
            lines.add(current)
            current += 1
        elif text.startswith("\\"):
            continue
        # "-" lines exist only on the base side
    return frozenset(lines)


class GitHubClients:
    """One long-lived PyGithub client per installation (App auth) or one for the token; thread-safe."""

    def __init__(self, settings: Settings, limiter: Limiter | None = None) -> None:
        self._settings = settings
        self._limiter = limiter
        self._lock = threading.Lock()
        self._clients: dict[int | None, Github] = {}
        self._app_auth: Auth.AppAuth | None = None
        if settings.app_id is not None:
            self._app_auth = Auth.AppAuth(settings.app_id, settings.private_key_pem())

    @property
    def uses_app_auth(self) -> bool:
        return self._app_auth is not None

    def _common(self) -> dict[str, Any]:
        # No PyGithub throttle (seconds_between_*) and no urllib3 GithubRetry: bot.ratelimit paces and retries.
        return {"base_url": self._settings.api_url.rstrip("/"), "timeout": int(self._settings.github_timeout_s),
                "retry": None, "lazy": True, "user_agent": "vram-check", "per_page": 100, "pool_size": 64,
                "seconds_between_requests": None, "seconds_between_writes": None}

    def client(self, installation_id: int | None) -> Github:
        key = installation_id if self._app_auth is not None else None
        with self._lock:
            existing = self._clients.get(key)
            if existing is not None:
                return existing
            if self._app_auth is not None:
                if installation_id is None:
                    raise GitHubUnavailable("delivery has no installation id; App auth needs one")
                integration = GithubIntegration(auth=self._app_auth, **self._common())
                gh = integration.get_github_for_installation(int(installation_id))
            else:
                assert self._settings.token is not None  # guaranteed by Settings validation
                gh = Github(auth=Auth.Token(self._settings.token.get_secret_value()), **self._common())
            if self._limiter is not None:
                token = self._settings.token.get_secret_value() if self._settings.token else None
                limit_client(gh, self._limiter, installation_key(key, token), self._settings.github_retries, 64)
            self._clients[key] = gh
            return gh


class FileUnavailable(InputError):
    """GitHub did not serve a file of the pull request (outage, permission): reported for that file only."""


class CommitFiles:
    """A FileSource (rules.sources): the repository's files at one commit, through the contents API.
    A GitHub failure is an InputError for that file, so the other configs are still checked."""

    def __init__(self, gateway: PullRequestGateway, ref: str) -> None:
        self._gateway = gateway
        self.ref = ref

    def read_text(self, path: str) -> str:
        try:
            return self._gateway.read_file(path.lstrip("/"), self.ref)
        except GitHubUnavailable as error:
            raise FileUnavailable(f"GitHub did not serve the file ({error})", file=path) from None


VIEWER_QUERY = "query { viewer { login } }"
_own_logins: weakref.WeakKeyDictionary[Github, str] = weakref.WeakKeyDictionary()  # per long-lived client
_own_logins_lock = threading.Lock()


class PullRequestGateway:
    """The calls vram-check makes for one pull request, counted and bounded."""

    def __init__(self, gh: Github, full_name: str, number: int, settings: Settings,
                 counter: CallCounter | None = None) -> None:
        self._gh = gh
        self._settings = settings
        self.full_name = full_name
        self.number = number
        self.counter = counter or CallCounter()
        self._repo: Repository = gh.get_repo(full_name)  # lazy: no request
        self._issue: Issue = self._repo.get_issue(number)
        self._pull: PullRequest | None = None

    @property
    def max_files(self) -> int:
        return self._settings.max_files_per_pr

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            result = fn()
        except (FileNotFoundError, FileTooLarge):
            self.counter.record("ok")
            raise
        except RateLimited as error:
            self.counter.record("rate-limited")
            log.warning("GitHub rate limit: %s on %s#%d: %s", what, self.full_name, self.number, error.why)
            raise GitHubRateLimited(f"{error.why} ({what})", error.wait_s) from None
        except GithubException as error:
            self.counter.record("error")
            log.warning("GitHub call failed: %s on %s#%d: HTTP %s", what, self.full_name, self.number,
                        error.status)
            raise GitHubUnavailable(f"GitHub API error during {what} (HTTP {error.status})") from None
        except OSError as error:  # connection refused/reset, timeouts (requests/urllib3 errors are OSErrors)
            self.counter.record("error")
            log.warning("GitHub unreachable: %s on %s#%d: %s", what, self.full_name, self.number,
                        type(error).__name__)
            raise GitHubUnavailable(f"GitHub unreachable during {what}") from None
        self.counter.record("ok")
        return result

    def _pull_request(self) -> PullRequest:
        if self._pull is None:
            self._pull = self._repo.get_pull(self.number)
        return self._pull

    def info(self) -> PullRequestInfo:
        def fetch() -> PullRequestInfo:
            pr = self._repo.get_pull(self.number)
            pr.head.sha  # noqa: B018 - completes the lazy object (one GET)
            self._pull = pr
            return PullRequestInfo(number=pr.number, head_sha=pr.head.sha,
                                   base_sha=pr.base.sha, draft=bool(pr.draft))
        return self._call("reading the pull request", fetch)

    def changed_files(self) -> tuple[list[ChangedFile], bool]:
        """The pull request's files (at most max_files_per_pr) and whether the list was cut."""
        limit = self._settings.max_files_per_pr

        def fetch() -> tuple[list[ChangedFile], bool]:
            files: list[ChangedFile] = []
            for item in self._pull_request().get_files():
                if len(files) >= limit:
                    return files, True
                files.append(ChangedFile(path=item.filename, status=item.status,
                                         added_lines=diff_right_lines(item.patch), blob_sha=item.sha,
                                         patch=item.patch, previous_path=item.previous_filename))
            return files, False
        return self._call("listing changed files", fetch)

    def read_file(self, path: str, ref: str) -> str:
        def fetch() -> str:
            try:
                content = self._repo.get_contents(path, ref=ref)
            except UnknownObjectException:
                raise FileNotFoundError(path) from None
            if isinstance(content, list):
                raise FileNotFoundError(f"{path} is a directory")
            if content.size > self._settings.max_file_bytes:
                raise FileTooLarge(f"{content.size} bytes, above the {self._settings.max_file_bytes}-byte "
                                   "limit for files vram-check reads", file=path)
            try:
                return content.decoded_content.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError("not UTF-8 text", file=path) from None
        return self._call(f"reading {path}", fetch)

    def files_at(self, ref: str) -> CommitFiles:
        return CommitFiles(self, ref)

    # -- the sticky comment -------------------------------------------------------------------------
    def own_login(self) -> str:
        """The login GitHub shows on the comments this client writes: an App's `<slug>[bot]`, a token's user
        (`github-actions[bot]` for an Actions token). From GraphQL `viewer`, which answers for installation
        tokens as for personal tokens (REST `GET /user` refuses installation tokens, `GET /app` needs the
        JWT); asked once per client."""
        with _own_logins_lock:
            known = _own_logins.get(self._gh)
        if known is not None:
            return known

        def fetch() -> str:
            _, data = self._gh.requester.graphql_query(VIEWER_QUERY, {})
            login = ((data.get("data") or {}).get("viewer") or {}).get("login")
            if not isinstance(login, str) or not login:
                raise GitHubUnavailable("GitHub's GraphQL viewer query gave no login")
            return login
        login = self._call("finding the bot's own login", fetch)
        with _own_logins_lock:
            _own_logins[self._gh] = login
        return login

    def find_comment(self, first_line: str) -> StickyComment | None:
        """The oldest of our own issue comments (written by `own_login`) whose first line is exactly
        `first_line` (the bot's marker). Anyone can type the marker; only our comments are ever edited."""
        own = self.own_login().lower()

        def fetch() -> StickyComment | None:
            for comment in self._issue.get_comments():
                body = comment.body or ""
                if body.split("\n", 1)[0].strip() != first_line:
                    continue
                author = comment.user.login if comment.user is not None else ""
                if author.lower() == own:
                    return StickyComment(id=comment.id, body=body, html_url=comment.html_url)
            return None
        return self._call("listing comments", fetch)

    def create_comment(self, body: str) -> StickyComment:
        def post() -> StickyComment:
            comment = self._issue.create_comment(body)
            return StickyComment(id=comment.id, body=comment.body, html_url=comment.html_url)
        return self._call("creating a comment", post)

    def edit_comment(self, comment_id: int, body: str) -> None:
        """PATCH the comment (one request; FileNotFoundError when it no longer exists)."""
        def patch() -> None:
            comment: IssueComment = self._issue.get_comment(comment_id)  # lazy: no request
            try:
                comment.edit(body)
            except UnknownObjectException:
                raise FileNotFoundError(f"comment {comment_id}") from None
        self._call("editing the comment", patch)

    def react(self, comment_id: int, content: str) -> None:
        self._call("adding a reaction",
                   lambda: self._issue.get_comment(comment_id).create_reaction(content))

    def permission(self, login: str) -> str:
        """The user's permission on the repository; anything unexpected counts as 'none' (fail closed)."""
        try:
            return self._call("checking permissions", lambda: self._repo.get_collaborator_permission(login))
        except GitHubUnavailable:
            return "none"

    def may_write(self, login: str) -> bool:
        return self.permission(login) in WRITE_PERMISSIONS

    # -- reviews, checks, statuses --------------------------------------------------------------------
    def review_comment_bodies(self) -> Iterator[str]:
        bodies = self._call("listing review comments",
                            lambda: [c.body or "" for c in self._pull_request().get_review_comments()])
        yield from bodies

    def create_review(self, head_sha: str, body: str, comments: list[dict[str, Any]]) -> None:
        def post() -> None:
            commit = self._repo.get_commit(head_sha)
            self._pull_request().create_review(commit=commit, body=body, event="COMMENT",
                                               comments=comments)  # type: ignore[arg-type]
        self._call("creating a review", post)

    def create_check_run(self, head_sha: str, conclusion: str, title: str, summary: str,
                         details_url: str | None) -> None:
        def post() -> None:
            extra: dict[str, Any] = {"details_url": details_url} if details_url else {}
            self._repo.create_check_run(
                name=CHECK_NAME, head_sha=head_sha, status="completed", conclusion=conclusion,
                output={"title": title[:255], "summary": summary[:CHECK_SUMMARY_LIMIT]}, **extra)
        self._call("creating the check run", post)

    def create_status(self, head_sha: str, state: str, description: str, target_url: str | None) -> None:
        def post() -> None:
            extra: dict[str, Any] = {"target_url": target_url} if target_url else {}
            self._repo.get_commit(head_sha).create_status(
                state=state, description=description[:STATUS_DESCRIPTION_LIMIT], context=CHECK_NAME, **extra)
        self._call("setting the commit status", post)
