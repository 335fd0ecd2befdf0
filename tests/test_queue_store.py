"""The shared state (bot.queue.store) and GitHub's limits (bot.ratelimit), the same contract on both backends:
SQLite (one replica) and a real redis-server (several). Then two app instances sharing Redis."""

from __future__ import annotations

import itertools
import os
import pickle
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fakes.github import FakeGitHub, FakeGitHubState
from fakes.redis_server import redis_url
from fakes.service import RunningService, pull_request_payload
from test_app_pull_request import POLICY, lora

from bot.queue.store import JournalEntry, RedisStore, SqliteStore, Store, job_tag
from bot.ratelimit import JOB_DEADLINE, GitHubLimits, Limiter, LocalBudget, RateLimited, RedisBudget, endpoint_of
from bot.render.markdown import MARKER
from bot.settings import Settings


@pytest.fixture(scope="module")
def redis_server() -> Iterator[str]:
    yield from redis_url()


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        yield SqliteStore(tmp_path / "state.db")
        return
    url = request.getfixturevalue("redis_server")
    yield RedisStore(url, prefix=f"t{uuid.uuid4().hex[:8]}:")


def entry(job_id: str, pr: str, at: float) -> JournalEntry:
    return JournalEntry(job_id, pr, pickle.dumps({"job": job_id}), at)


def test_a_delivery_is_claimed_once_and_again_only_after_it_failed(store: Store) -> None:
    assert store.claim_delivery("d1")
    assert not store.claim_delivery("d1")  # pending: duplicate
    store.settle_delivery("d1", "done")
    assert not store.claim_delivery("d1")  # done: duplicate
    store.settle_delivery("d1", "failed")
    assert store.claim_delivery("d1")  # failed: GitHub's "Redeliver" runs it again
    assert not store.claim_delivery("d1")


def test_the_journal_keeps_jobs_until_finished_and_a_newer_check_supersedes(store: Store) -> None:
    now = time.time()
    assert store.journal_put(entry(job_tag("check", "a"), "o/r#1", now), supersede_kind="check") == []
    assert store.journal_put(entry(job_tag("command", "b"), "o/r#1", now), supersede_kind=None) == []
    assert store.journal_put(entry(job_tag("check", "c"), "o/r#1", now), supersede_kind="check") == ["check:a"]
    assert store.journal_pending("o/r#1") == ["command:b", "check:c"]
    assert store.journal_get("check:a") is None
    found = store.journal_get("check:c")
    assert found is not None and pickle.loads(found.data) == {"job": "check:c"} and found.pr_key == "o/r#1"
    assert store.journal_size() == 2
    store.journal_finish("command:b")
    assert store.journal_pending("o/r#1") == ["check:c"] and store.journal_size() == 1


def test_stale_entries_are_requeued_only_when_nobody_holds_their_pull_request(store: Store) -> None:
    now = time.time()
    store.journal_put(entry("check:x", "o/r#2", now - 100))
    store.journal_put(entry("check:y", "o/r#3", now - 100))
    store.journal_put(entry("check:z", "o/r#4", now))  # recent: still in the queue
    assert store.try_lease("o/r#3", "replica-a", 30)
    stale = store.journal_stale(older_than=now - 50, now=now)
    assert [e.job_id for e in stale] == ["check:x"]
    assert store.journal_stale(older_than=now - 50, now=now) == []  # marked re-queued


def test_a_lease_is_exclusive_renewable_and_expires(store: Store) -> None:
    assert store.try_lease("o/r#5", "a", 0.5)
    assert not store.try_lease("o/r#5", "b", 0.5)
    assert not store.try_lease("o/r#5", "a", 0.5)  # not re-entrant: another thread of the holder waits too
    assert store.renew_lease("o/r#5", "a", 0.5)
    assert not store.renew_lease("o/r#5", "b", 0.5)
    store.release_lease("o/r#5", "b")  # not b's: stays
    assert not store.try_lease("o/r#5", "b", 0.5)
    time.sleep(0.7)
    assert store.try_lease("o/r#5", "b", 0.5)  # a stopped renewing (died): b takes over


def test_the_cache_expires(store: Store) -> None:
    store.cache_put("k", "v", 1)
    assert store.cache_get("k") == "v"
    time.sleep(1.2 if isinstance(store, SqliteStore) else 2.1)
    assert store.cache_get("k") is None


# -- the limiter on both budgets ---------------------------------------------------------------------------
@pytest.fixture(params=["local", "redis"])
def budget_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_limiter(kind: str, limits: GitHubLimits, request: pytest.FixtureRequest,
                 clock: list[float]) -> Limiter:
    if kind == "local":
        budget: LocalBudget | RedisBudget = LocalBudget(limits)
    else:
        client = redis.Redis.from_url(request.getfixturevalue("redis_server"))
        budget = RedisBudget(client, limits, prefix=f"t{uuid.uuid4().hex[:8]}:")
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    limiter = Limiter(budget, limits, clock=lambda: clock[0], sleep=sleep)
    limiter.slept = slept  # type: ignore[attr-defined]
    return limiter


def test_content_creation_is_held_to_80_per_minute(budget_kind: str, request: pytest.FixtureRequest) -> None:
    clock = [1_000_000.0]
    limiter = make_limiter(budget_kind, GitHubLimits(), request, clock)
    for i in range(80):  # 80 comments, spread over endpoints so only the content-creation limit applies
        with limiter.slot("installation-1", "POST", f"/repos/o/r{i}/issues/{i}/comments"):
            pass
    assert limiter.slept == []  # type: ignore[attr-defined]
    with limiter.slot("installation-1", "POST", "/repos/o/r/issues/1/comments"):
        pass
    # GitHub's minute, plus the margin the limiter keeps for requests stamped later on GitHub's side
    margin = GitHubLimits().window_margin_s
    assert 59 + margin <= sum(limiter.slept) <= 61 + margin  # type: ignore[attr-defined]
    with limiter.slot("installation-2", "POST", "/repos/o/r/issues/1/comments"):  # another installation
        pass


def test_points_per_endpoint_per_minute(budget_kind: str, request: pytest.FixtureRequest) -> None:
    clock = [2_000_000.0]
    limiter = make_limiter(budget_kind, GitHubLimits(points_per_minute=10), request, clock)
    for _ in range(10):  # 10 reads of one endpoint: 10 points
        with limiter.slot("i", "GET", "/repos/o/r/pulls/1/files"):
            clock[0] += 1
    with limiter.slot("i", "GET", "/repos/o/r2/pulls/9/comments"):  # another endpoint: no wait
        pass
    assert limiter.slept == []  # type: ignore[attr-defined]
    with limiter.slot("i", "GET", "/repos/x/y/pulls/7/files"):  # the same endpoint, another repository
        pass
    margin = GitHubLimits().window_margin_s  # the first point ages out at +60 s (+ the limiter's margin)
    assert 49 + margin <= sum(limiter.slept) <= 51 + margin  # type: ignore[attr-defined]


def test_concurrency_and_retry_after_cap(budget_kind: str, request: pytest.FixtureRequest) -> None:
    clock = [3_000_000.0]
    limiter = make_limiter(budget_kind, GitHubLimits(concurrency=2, max_wait_s=30), request, clock)
    token = JOB_DEADLINE.set(clock[0] + 0.01)
    try:  # a third concurrent request waits; with no job time left it fails
        with limiter.slot("i", "GET", "/a"), limiter.slot("i", "GET", "/b"), pytest.raises(RateLimited), \
                limiter.slot("i", "GET", "/c"):
            pass
    finally:
        JOB_DEADLINE.reset(token)
    assert limiter.observe("i", 403, {"retry-after": "45"}, lambda: "") == 45
    with pytest.raises(RateLimited, match="GitHub asked to wait 45 s, more than the 30 s cap"), \
            limiter.slot("i", "GET", "/d"):
        pass
    assert limiter.observe("i", 403, {}, lambda: "Resource not accessible by integration") is None  # an answer


def test_endpoints_are_routes() -> None:
    assert endpoint_of("GET", "/repos/a/b/contents/configs/x.yaml") == endpoint_of("GET", "/repos/c/d/contents/y")
    assert endpoint_of("POST", "/repos/a/b/issues/1/comments") == "POST /repos/:owner/:repo/issues/:n/comments"
    assert endpoint_of("POST", "/repos/a/b/statuses/" + "a" * 40) == "POST /repos/:owner/:repo/statuses/:sha"


# -- two app instances on one Redis ------------------------------------------------------------------------
def test_two_replicas_share_dedup_leases_and_the_sticky_comment(redis_server: str, tmp_path: Path) -> None:
    token = "ghp_replicas"
    prefix_db = redis_server.rsplit("/", 1)[0] + "/3"  # a database of its own
    redis.Redis.from_url(prefix_db).flushdb()
    with FakeGitHub(FakeGitHubState(token=token)) as github:
        github.state.latency_s = 0.02
        replicas = [RunningService(Settings(webhook_secret="s", token=token, api_url=github.url,
                                            redis_url=prefix_db, worker_mode="thread", workers=1,
                                            state_dir=tmp_path / f"r{i}")) for i in range(2)]
        with replicas[0] as one, replicas[1] as two:
            pulls = []
            for number in range(1, 7):
                repo = f"acme/shared-{number}"
                github.state.add_repo(repo, base_files={".github/vram-check.yml": POLICY})
                head = github.state.open_pull(repo, number, head_files={"configs/sft.yaml": lora()})
                pulls.append((repo, number, head, github.state.repos[repo].pulls[number].base_sha))
            outcomes = []
            for (repo, number, head, base), flip in zip(pulls, itertools.cycle([0, 1]), strict=False):
                payload = pull_request_payload("opened", repo, number, head, base)
                first, second = (one, two) if flip else (two, one)
                outcomes.append(first.deliver("pull_request", payload, delivery_id=f"dup-{number}").json())
                outcomes.append(second.deliver("pull_request", payload, delivery_id=f"dup-{number}").json())
                # and a second, different delivery of the same head to the other replica at once
                second.deliver("pull_request", pull_request_payload("synchronize", repo, number, head, base))
            assert outcomes.count({"outcome": "duplicate"}) == 6  # dedup across replicas
            one.wait_for(lambda: one.client.get(f"{one.url}/healthz").json()["pending_jobs"] == 0, timeout=60)
            for repo, number, _head, _base in pulls:
                bodies = [c.body for c in github.state.comments(repo, number)]
                assert len(bodies) == 1 and bodies[0].startswith(MARKER)  # one sticky, never two
                assert github.state.repos[repo].statuses[-1]["state"] == "success"


def test_healthz_is_503_while_the_store_is_unreachable(tmp_path: Path) -> None:
    server = redis_url()
    url = next(server)
    if os.environ.get("VRAM_CHECK_TEST_REDIS_URL"):
        pytest.skip("needs a redis-server of its own to stop")
    with FakeGitHub(FakeGitHubState(token="t")) as github:
        settings = Settings(webhook_secret="s", token="t", api_url=github.url, redis_url=url, worker_mode="thread",
                            workers=1, state_dir=tmp_path / "state")
        with RunningService(settings) as service:
            assert service.client.get(f"{service.url}/healthz").status_code == 200
            server.close()  # stops the redis-server
            health = service.client.get(f"{service.url}/healthz")
            assert health.status_code == 503
            assert any("store unreachable" in p for p in health.json()["problems"])
