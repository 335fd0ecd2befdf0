"""GitHub's documented REST limits, enforced before each request, per installation (or token), and shared by
every thread and every replica (in Redis when `VRAM_CHECK_REDIS_URL` is set).

GitHub's rules (docs.github.com, "Rate limits for the REST API", secondary rate limits):
- at most 100 concurrent requests;
- at most 900 points per minute per REST endpoint: GET, HEAD, OPTIONS cost 1 point, POST, PATCH, PUT, DELETE 5;
- at most 80 content-creating requests per minute and 500 per hour;
- the primary limit: `x-ratelimit-remaining` / `x-ratelimit-reset` on every answer;
- after a 403 or 429 with `retry-after`, wait that many seconds; with `x-ratelimit-remaining: 0`, until
  `x-ratelimit-reset`; a secondary-limit answer with neither: at least a minute.

Waits GitHub asks for are obeyed up to a cap (`VRAM_CHECK_GITHUB_MAX_WAIT_S`, 30 s); past it the request
fails with `RateLimited`, and the job ends with a status that says so. Waits the limiter imposes itself to stay
under the limits are bounded by the job's deadline. This replaces PyGithub's blanket throttle (0.25 s between
any two requests and 1 s between writes, per client), which serialised every job.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest, Response
from urllib3.util.retry import Retry

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The job's deadline (time.time()), set by the runner for the thread doing the job's I/O.
JOB_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("job_deadline", default=None)


class RateLimited(Exception):
    """GitHub asked for (or the limits require) a wait longer than the cap or the job's time left."""

    def __init__(self, wait_s: float, why: str) -> None:
        super().__init__(why)
        self.wait_s = wait_s
        self.why = why


@dataclass(frozen=True)
class GitHubLimits:
    concurrency: int = 100
    points_per_minute: int = 900  # per endpoint
    writes_per_minute: int = 80
    writes_per_hour: int = 500
    max_wait_s: float = 30.0  # cap on waits GitHub asks for
    slot_lease_s: float = 90.0  # a concurrency slot of a crashed replica frees itself after this
    # GitHub stamps a request when it arrives, the limiter when it lets it go: the windows are kept this much
    # longer than GitHub's minute and hour, so a request sent right at a window's edge is never counted by GitHub
    # in the window that is already full (seen in the two-replica benchmark without it: 403, Retry-After 60)
    window_margin_s: float = 2.0


def request_points(method: str) -> int:
    """GitHub's cost of one request: 5 points for a write, 1 for a read."""
    return 5 if method.upper() in WRITE_METHODS else 1


def is_content_creating(method: str, path: str) -> bool:
    """Writes count against the content-creation limits (conservatively all of them), except the App's own
    installation-token exchange, which is not made on behalf of an installation."""
    return method.upper() in WRITE_METHODS and not path.rstrip("/").endswith("/access_tokens")


_SHA = re.compile(r"^[0-9a-f]{40}$")


def endpoint_of(method: str, path: str) -> str:
    """The REST endpoint a request hits, as a route: repository names, numbers and commits replaced, a
    contents path kept out (all of /contents/ is one endpoint)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "repos":
        parts[1:3] = [":owner", ":repo"]
    if "contents" in parts:
        parts = [*parts[:parts.index("contents") + 1], "*"]
    route = "/".join(":n" if p.isdigit() else ":sha" if _SHA.match(p) else p for p in parts)
    return f"{method.upper()} /{route}"


@dataclass
class Decision:
    wait_s: float  # 0: granted
    github_asked: bool = False  # the wait comes from GitHub (Retry-After, exhausted primary limit)
    why: str = ""


class Budget(Protocol):
    """Counters of one deployment (process-local or in Redis)."""

    def reserve(self, installation: str, endpoint: str, points: int, write: bool, token: str,
                now: float) -> Decision: ...
    def release(self, installation: str, token: str) -> None: ...
    def block(self, installation: str, until: float) -> None: ...


@dataclass
class _Installation:
    in_flight: set[str] = field(default_factory=set)
    points: dict[str, deque[tuple[float, int]]] = field(default_factory=dict)
    writes: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0


class LocalBudget:
    """The budget of one replica (all GitHub I/O of a replica runs in its service process)."""

    def __init__(self, limits: GitHubLimits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._installations: dict[str, _Installation] = {}

    def reserve(self, installation: str, endpoint: str, points: int, write: bool, token: str,
                now: float) -> Decision:
        limits = self.limits
        with self._lock:
            state = self._installations.setdefault(installation, _Installation())
            if state.blocked_until > now:
                return Decision(state.blocked_until - now, True, "GitHub asked to wait")
            if len(state.in_flight) >= limits.concurrency:
                return Decision(0.05, why="concurrent requests")
            minute, hour = 60 + limits.window_margin_s, 3600 + limits.window_margin_s
            window = state.points.setdefault(endpoint, deque())
            while window and window[0][0] <= now - minute:
                window.popleft()
            used = sum(p for _, p in window)
            if used + points > limits.points_per_minute:
                return Decision(_points_wait(list(window), used + points - limits.points_per_minute, now, minute),
                                why=f"{limits.points_per_minute} points per minute on {endpoint}")
            if write:
                while state.writes and state.writes[0] <= now - hour:
                    state.writes.popleft()
                last_minute = [t for t in state.writes if t > now - minute]
                if len(last_minute) >= limits.writes_per_minute:
                    return Decision(last_minute[-limits.writes_per_minute] + minute - now,
                                    why=f"{limits.writes_per_minute} content-creating requests per minute")
                if len(state.writes) >= limits.writes_per_hour:
                    return Decision(state.writes[-limits.writes_per_hour] + hour - now,
                                    why=f"{limits.writes_per_hour} content-creating requests per hour")
                state.writes.append(now)
            window.append((now, points))
            state.in_flight.add(token)
            return Decision(0.0)

    def release(self, installation: str, token: str) -> None:
        with self._lock:
            state = self._installations.get(installation)
            if state is not None:
                state.in_flight.discard(token)

    def block(self, installation: str, until: float) -> None:
        with self._lock:
            state = self._installations.setdefault(installation, _Installation())
            state.blocked_until = max(state.blocked_until, until)


def _points_wait(window: list[tuple[float, int]], excess: int, now: float, minute: float) -> float:
    """Seconds until enough of the minute's points have aged out to let `excess` more in."""
    freed = 0
    for at, points in window:
        freed += points
        if freed >= excess:
            return max(0.01, at + minute - now)
    return minute


_RESERVE = """
local now = tonumber(ARGV[1])
local token, points, write = ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'
local concurrency, per_minute = tonumber(ARGV[5]), tonumber(ARGV[6])
local writes_minute, writes_hour, lease = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local minute, hour = 60 + tonumber(ARGV[10]), 3600 + tonumber(ARGV[10])
local blocked = tonumber(redis.call('GET', KEYS[4]) or '0')
if blocked > now then return {tostring(blocked - now), '1', 'GitHub asked to wait'} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= concurrency then return {'0.05', '0', 'concurrent requests'} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - minute)
local entries = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
local used = 0
for i = 1, #entries, 2 do used = used + tonumber(string.match(entries[i], ':(%d+)$')) end
if used + points > per_minute then
  local excess, freed = used + points - per_minute, 0
  for i = 1, #entries, 2 do
    freed = freed + tonumber(string.match(entries[i], ':(%d+)$'))
    if freed >= excess then
      return {tostring(math.max(0.01, tonumber(entries[i + 1]) + minute - now)), '0', 'points'}
    end
  end
  return {tostring(minute), '0', 'points'}
end
if write then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - hour)
  local recent = redis.call('ZRANGEBYSCORE', KEYS[3], now - minute, '+inf', 'WITHSCORES')
  if #recent / 2 >= writes_minute then
    local idx = #recent - 2 * writes_minute + 2
    return {tostring(tonumber(recent[idx]) + minute - now), '0', 'writes per minute'}
  end
  local hour = redis.call('ZCARD', KEYS[3])
  if hour >= writes_hour then
    local oldest = redis.call('ZRANGE', KEYS[3], hour - writes_hour, hour - writes_hour, 'WITHSCORES')
    return {tostring(tonumber(oldest[2]) + hour - now), '0', 'writes per hour'}
  end
  redis.call('ZADD', KEYS[3], now, token)
  redis.call('EXPIRE', KEYS[3], 3700)
end
redis.call('ZADD', KEYS[2], now, token .. ':' .. points)
redis.call('EXPIRE', KEYS[2], 130)
redis.call('ZADD', KEYS[1], now + lease, token)
redis.call('EXPIRE', KEYS[1], math.ceil(lease) + 10)
return {'0', '0', ''}
"""
_BLOCK = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local blocked_until = tonumber(ARGV[1])
if blocked_until > current then redis.call('SET', KEYS[1], ARGV[1], 'EX', math.ceil(tonumber(ARGV[2]))) end
return 1
"""


class RedisBudget:
    """The same counters in Redis, so every replica draws on one budget per installation (sliding windows in
    sorted sets; one Lua script checks every limit and records the request atomically)."""

    def __init__(self, redis_client: Any, limits: GitHubLimits, prefix: str = "vc:rl:") -> None:
        self.redis = redis_client
        self.limits = limits
        self.p = prefix
        self._reserve = redis_client.register_script(_RESERVE)
        self._block = redis_client.register_script(_BLOCK)

    def reserve(self, installation: str, endpoint: str, points: int, write: bool, token: str,
                now: float) -> Decision:
        limits = self.limits
        base = f"{self.p}{installation}:"
        wait, asked, why = self._reserve(
            keys=[base + "inflight", base + "points:" + endpoint, base + "writes", base + "blocked"],
            args=[repr(now), token, points, "1" if write else "0", limits.concurrency, limits.points_per_minute,
                  limits.writes_per_minute, limits.writes_per_hour, limits.slot_lease_s, limits.window_margin_s])
        return Decision(float(wait), asked in (b"1", "1"), why.decode() if isinstance(why, bytes) else str(why))

    def release(self, installation: str, token: str) -> None:
        self.redis.zrem(f"{self.p}{installation}:inflight", token)

    def block(self, installation: str, until: float) -> None:
        self._block(keys=[f"{self.p}{installation}:blocked"], args=[repr(until), max(1.0, until - time.time() + 5)])


class Limiter:
    """Waits until a request is within every limit, then lets it go; learns from GitHub's answers."""

    def __init__(self, budget: Budget, limits: GitHubLimits, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.budget = budget
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self.waited_s = 0.0  # total pacing, for the metrics

    @contextlib.contextmanager
    def slot(self, installation: str, method: str, path: str) -> Iterator[None]:
        token = uuid.uuid4().hex
        endpoint = endpoint_of(method, path)
        points = request_points(method)
        write = is_content_creating(method, path)
        while True:
            now = self._clock()
            decision = self.budget.reserve(installation, endpoint, points, write, token, now)
            if decision.wait_s <= 0:
                break
            if decision.github_asked and decision.wait_s > self.limits.max_wait_s:
                raise RateLimited(decision.wait_s, f"GitHub asked to wait {decision.wait_s:.0f} s, more than the "
                                                   f"{self.limits.max_wait_s:.0f} s cap")
            deadline = JOB_DEADLINE.get()
            if deadline is not None and now + decision.wait_s > deadline:
                raise RateLimited(decision.wait_s, f"GitHub's limit ({decision.why}) needs a wait of "
                                                   f"{decision.wait_s:.0f} s, past the job's time limit")
            pause = min(decision.wait_s, 1.0)
            self.waited_s += pause
            self._sleep(pause)
        try:
            yield
        finally:
            self.budget.release(installation, token)

    def observe(self, installation: str, status: int, headers: Any, body: Callable[[], str]) -> float | None:
        """Seconds GitHub asked to wait when the answer is a rate-limit answer (also recorded as a block for
        the installation); None for any other answer. Remaining primary budget 0 blocks until the reset."""
        now = self._clock()
        remaining = headers.get("x-ratelimit-remaining")
        reset = headers.get("x-ratelimit-reset")
        if remaining == "0" and reset and reset.isdigit():
            self.budget.block(installation, float(reset))
        if status not in (403, 429):
            return None
        wait: float | None = None
        retry_after = headers.get("retry-after")
        if retry_after:
            wait = _retry_after_seconds(retry_after, now)
        elif remaining == "0" and reset and reset.isdigit():
            wait = max(0.0, float(reset) - now)
        elif status == 429 or "rate limit" in body().lower():
            wait = 60.0  # GitHub: with no header, wait at least one minute
        if wait is None:
            return None  # a plain 403 (permissions): an answer
        self.budget.block(installation, now + wait)
        return wait


def _retry_after_seconds(value: str, now: float) -> float:
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return 60.0


def installation_key(installation_id: int | None, token: str | None) -> str:
    """Whose budget a request draws on: the App installation, or the token (hashed: never stored in clear)."""
    if installation_id is not None:
        return f"installation-{installation_id}"
    return "token-" + hashlib.sha256((token or "").encode()).hexdigest()[:16]


class LimitedAdapter(HTTPAdapter):
    """The transport under PyGithub: every request through the limiter; a rate-limit answer waits (within the
    cap) and is sent again; 5xx answers of reads retried with backoff; a 404 is an answer, never retried."""

    def __init__(self, limiter: Limiter, installation: str, retries: int, pool_size: int) -> None:
        super().__init__(pool_connections=pool_size, pool_maxsize=pool_size,
                         max_retries=Retry(total=retries, connect=retries, read=0, redirect=0, status=0, other=0,
                                           respect_retry_after_header=False, raise_on_status=False))
        self.limiter = limiter
        self.installation = installation
        self.retries = retries
        self.sent = 0

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        method = (request.method or "GET").upper()
        path = urlsplit(request.url or "").path
        attempt = 0
        while True:
            with self.limiter.slot(self.installation, method, path):
                self.sent += 1
                response = super().send(request, *args, **kwargs)
            wait = self.limiter.observe(self.installation, response.status_code, response.headers,
                                        functools.partial(_text, response))
            if wait is not None:
                if wait > self.limiter.limits.max_wait_s:
                    raise RateLimited(wait, f"GitHub asked to wait {wait:.0f} s, more than the "
                                            f"{self.limiter.limits.max_wait_s:.0f} s cap")
                if attempt >= self.retries:
                    return response
                attempt += 1
                log.info("GitHub rate limit on %s %s: waiting %.1f s", method, endpoint_of(method, path), wait)
                continue  # the limiter now holds every request of the installation until the wait is over
            if response.status_code >= 500 and method in IDEMPOTENT_METHODS and attempt < self.retries:
                attempt += 1
                time.sleep(min(4.0, 0.25 * 2 ** (attempt - 1)))
                continue
            return response


def _text(response: Response) -> str:
    return response.text


def limit_client(gh: Any, limiter: Limiter, installation: str, retries: int, pool_size: int) -> None:
    """Route a PyGithub client's requests through `LimitedAdapter`. PyGithub builds its connection (a requests
    session) lazily from the class in `Requester.__connectionClass`; a subclass mounts the adapter on it."""
    requester = gh.requester
    base = requester._Requester__connectionClass

    class LimitedConnection(base):  # type: ignore[valid-type, misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            adapter = LimitedAdapter(limiter, installation, retries, pool_size)
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)

    requester._Requester__connectionClass = LimitedConnection
