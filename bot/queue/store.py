"""The service's shared state, one interface over two backends (SQLite for one replica, Redis for several).

What lives here, and why it is not just the queue:
- deliveries: X-GitHub-Delivery id → accepted / done / failed. A redelivery of a pending or finished delivery
  is a duplicate; a redelivery of a failed one is accepted again (GitHub's "Redeliver" button).
- the journal: every accepted job until it has finished. huey pops a task when a worker takes it, so a
  process killed mid-job would lose it; the journal entry stays until the job is done, and the sweeper
  re-queues entries nobody holds (at-least-once; jobs are idempotent).
- leases: one job at a time per pull request, across replicas; a lease expires unless its holder renews it,
  so a dead replica's pull requests are picked up by the others.
- a cache with expiry: files by commit and path, sticky comment ids (so they are not listed again).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

Settled = Literal["done", "failed"]
DELIVERY_RETENTION_S = 7 * 24 * 3600  # GitHub lets a delivery be redelivered for 3 days; keep a week


@dataclass(frozen=True)
class JournalEntry:
    job_id: str
    pr_key: str
    data: bytes
    enqueued_at: float


class Store(Protocol):
    """Shared state; every method is atomic on its backend and safe to call from any thread."""

    def ping(self) -> None: ...
    def claim_delivery(self, delivery_id: str) -> bool:
        """True if the delivery is new or its earlier job failed (now accepted); False for a duplicate."""
        ...
    def settle_delivery(self, delivery_id: str, outcome: Settled) -> None: ...
    def journal_put(self, entry: JournalEntry, *, supersede_kind: str | None = None) -> list[str]:
        """Record an accepted job; with `supersede_kind`, earlier pending jobs of that kind on the same pull
        request (ids tagged with it) are dropped and their ids returned."""
        ...
    def journal_get(self, job_id: str) -> JournalEntry | None: ...
    def journal_pending(self, pr_key: str) -> list[str]:
        """Job ids pending for a pull request, oldest first."""
        ...
    def journal_finish(self, job_id: str) -> None: ...
    def journal_stale(self, older_than: float, now: float) -> list[JournalEntry]:
        """Entries queued before `older_than` whose pull request nobody holds; marked re-queued at `now`."""
        ...
    def journal_size(self) -> int: ...
    def try_lease(self, pr_key: str, owner: str, ttl_s: float) -> bool:
        """Take the pull request's lease if nobody (not even another thread of `owner`) holds it."""
        ...
    def renew_lease(self, pr_key: str, owner: str, ttl_s: float) -> bool: ...
    def release_lease(self, pr_key: str, owner: str) -> None: ...
    def clear_leases(self) -> None:
        """Forget every lease (one replica starting: whoever held them is gone)."""
        ...
    def cache_get(self, key: str) -> str | None: ...
    def cache_put(self, key: str, value: str, ttl_s: float) -> None: ...
    def close(self) -> None: ...


def job_tag(kind: str, job_id: str) -> str:
    """A journal id carries its kind, so supersede can pick the checks among a PR's pending jobs."""
    return f"{kind}:{job_id}"


# -- SQLite (one replica) ----------------------------------------------------------------------------------
SCHEMA = """
create table if not exists vc_delivery (id text primary key, state text not null, at real not null);
create table if not exists vc_journal (id text primary key, pr text not null, data blob not null,
                                       enqueued_at real not null, seq integer not null);
create index if not exists vc_journal_pr on vc_journal (pr, seq);
create table if not exists vc_lease (pr text primary key, owner text not null, expires real not null);
create table if not exists vc_cache (key text primary key, value text not null, expires real not null);
"""


class SqliteStore:
    """The embedded store: one SQLite file (WAL) in the state folder, next to huey's queue tables.

    A committed row survives the process being killed (WAL, synchronous=NORMAL: not an fsync per commit, so
    a power cut may lose the last commits); one connection per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        # One writer at a time inside this process, queued on a Python lock: a waiting thread wakes the moment
        # the lock is free, where SQLite's busy handler would sleep 1, 2, 5, 10, 15, 20, 25… ms between tries
        # (the event loop writes here too: acknowledgements must not sleep).
        self._write_lock = threading.Lock()
        self._conn().executescript(SCHEMA)
        self._pruned = 0.0

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            conn.execute("pragma journal_mode=wal")
            conn.execute("pragma synchronous=normal")
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        with self._write_lock:
            conn.execute("begin immediate")
            try:
                yield conn
            except BaseException:
                conn.execute("rollback")
                raise
            conn.execute("commit")

    def ping(self) -> None:
        self._conn().execute("select 1").fetchone()

    def claim_delivery(self, delivery_id: str) -> bool:
        now = time.time()
        with self._tx() as db:
            row = db.execute("select state from vc_delivery where id = ?", (delivery_id,)).fetchone()
            if row is not None and row[0] != "failed":
                return False
            db.execute("insert or replace into vc_delivery (id, state, at) values (?, 'accepted', ?)",
                       (delivery_id, now))
            if now - self._pruned > 600:
                self._pruned = now
                db.execute("delete from vc_delivery where at < ?", (now - DELIVERY_RETENTION_S,))
                db.execute("delete from vc_cache where expires < ?", (now,))
        return True

    def settle_delivery(self, delivery_id: str, outcome: Settled) -> None:
        with self._tx() as db:
            db.execute("update vc_delivery set state = ?, at = ? where id = ?", (outcome, time.time(), delivery_id))

    def journal_put(self, entry: JournalEntry, *, supersede_kind: str | None = None) -> list[str]:
        dropped: list[str] = []
        with self._tx() as db:
            if supersede_kind is not None:
                rows = db.execute("select id from vc_journal where pr = ? and id like ?",
                                  (entry.pr_key, f"{supersede_kind}:%")).fetchall()
                dropped = [r[0] for r in rows if r[0] != entry.job_id]
                db.executemany("delete from vc_journal where id = ?", [(d,) for d in dropped])
            seq = time.time_ns()  # arrival order (per pull request)
            db.execute("insert or replace into vc_journal (id, pr, data, enqueued_at, seq) values (?, ?, ?, ?, ?)",
                       (entry.job_id, entry.pr_key, entry.data, entry.enqueued_at, seq))
        return dropped

    def journal_get(self, job_id: str) -> JournalEntry | None:
        row = self._conn().execute("select id, pr, data, enqueued_at from vc_journal where id = ?",
                                   (job_id,)).fetchone()
        return JournalEntry(row[0], row[1], bytes(row[2]), row[3]) if row else None

    def journal_pending(self, pr_key: str) -> list[str]:
        rows = self._conn().execute("select id from vc_journal where pr = ? order by seq", (pr_key,)).fetchall()
        return [r[0] for r in rows]

    def journal_finish(self, job_id: str) -> None:
        with self._tx() as db:
            db.execute("delete from vc_journal where id = ?", (job_id,))

    def journal_stale(self, older_than: float, now: float) -> list[JournalEntry]:
        with self._tx() as db:
            rows = db.execute(
                "select j.id, j.pr, j.data, j.enqueued_at from vc_journal j left join vc_lease l "
                "on l.pr = j.pr and l.expires > ? where j.enqueued_at < ? and l.pr is null order by j.seq",
                (now, older_than)).fetchall()
            db.executemany("update vc_journal set enqueued_at = ? where id = ?", [(now, r[0]) for r in rows])
        return [JournalEntry(r[0], r[1], bytes(r[2]), r[3]) for r in rows]

    def journal_size(self) -> int:
        return int(self._conn().execute("select count(*) from vc_journal").fetchone()[0])

    def try_lease(self, pr_key: str, owner: str, ttl_s: float) -> bool:
        now = time.time()
        with self._tx() as db:
            row = db.execute("select owner, expires from vc_lease where pr = ?", (pr_key,)).fetchone()
            if row is not None and row[1] > now:
                return False  # held, by another replica or by another thread of this one
            db.execute("insert or replace into vc_lease (pr, owner, expires) values (?, ?, ?)",
                       (pr_key, owner, now + ttl_s))
        return True

    def renew_lease(self, pr_key: str, owner: str, ttl_s: float) -> bool:
        with self._tx() as db:
            cursor = db.execute("update vc_lease set expires = ? where pr = ? and owner = ?",
                                (time.time() + ttl_s, pr_key, owner))
            return cursor.rowcount == 1

    def release_lease(self, pr_key: str, owner: str) -> None:
        with self._tx() as db:
            db.execute("delete from vc_lease where pr = ? and owner = ?", (pr_key, owner))

    def clear_leases(self) -> None:
        with self._tx() as db:
            db.execute("delete from vc_lease")

    def cache_get(self, key: str) -> str | None:
        row = self._conn().execute("select value from vc_cache where key = ? and expires > ?",
                                   (key, time.time())).fetchone()
        return str(row[0]) if row else None

    def cache_put(self, key: str, value: str, ttl_s: float) -> None:
        with self._tx() as db:
            db.execute("insert or replace into vc_cache (key, value, expires) values (?, ?, ?)",
                       (key, value, time.time() + ttl_s))

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


# -- Redis (several replicas) ------------------------------------------------------------------------------
_CLAIM = """
local state = redis.call('GET', KEYS[1])
if state and state ~= 'failed' then return 0 end
redis.call('SET', KEYS[1], 'accepted', 'EX', ARGV[1])
return 1
"""
_PUT = """
local dropped = {}
if ARGV[5] ~= '' then
  local ids = redis.call('ZRANGE', KEYS[2], 0, -1)
  for _, id in ipairs(ids) do
    if id ~= ARGV[1] and string.sub(id, 1, string.len(ARGV[5]) + 1) == ARGV[5] .. ':' then
      redis.call('ZREM', KEYS[2], id)
      redis.call('ZREM', KEYS[3], id)
      redis.call('DEL', ARGV[6] .. id)
      table.insert(dropped, id)
    end
  end
end
local seq = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[1], 'pr', ARGV[2], 'data', ARGV[3], 'enqueued_at', ARGV[4])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return dropped
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisStore:
    """The shared store on Redis (keys under `vc:`); scripts make each multi-key step atomic."""

    def __init__(self, url: str, prefix: str = "vc:") -> None:
        import redis

        self.redis: Any = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.p = prefix
        self._claim = self.redis.register_script(_CLAIM)
        self._put = self.redis.register_script(_PUT)
        self._renew = self.redis.register_script(_RENEW)
        self._release = self.redis.register_script(_RELEASE)

    def _job(self, job_id: str) -> str:
        return f"{self.p}job:{job_id}"

    def ping(self) -> None:
        self.redis.ping()

    def claim_delivery(self, delivery_id: str) -> bool:
        return bool(self._claim(keys=[f"{self.p}delivery:{delivery_id}"], args=[DELIVERY_RETENTION_S]))

    def settle_delivery(self, delivery_id: str, outcome: Settled) -> None:
        self.redis.set(f"{self.p}delivery:{delivery_id}", outcome, ex=DELIVERY_RETENTION_S)

    def journal_put(self, entry: JournalEntry, *, supersede_kind: str | None = None) -> list[str]:
        dropped = self._put(keys=[self._job(entry.job_id), f"{self.p}pr-jobs:{entry.pr_key}", f"{self.p}jobs",
                                  f"{self.p}seq"],
                            args=[entry.job_id, entry.pr_key, entry.data, repr(entry.enqueued_at),
                                  supersede_kind or "", f"{self.p}job:"])
        return [d.decode() if isinstance(d, bytes) else str(d) for d in dropped]

    def journal_get(self, job_id: str) -> JournalEntry | None:
        found = self.redis.hgetall(self._job(job_id))
        if not found:
            return None
        return JournalEntry(job_id, found[b"pr"].decode(), bytes(found[b"data"]), float(found[b"enqueued_at"]))

    def journal_pending(self, pr_key: str) -> list[str]:
        return [i.decode() for i in self.redis.zrange(f"{self.p}pr-jobs:{pr_key}", 0, -1)]

    def journal_finish(self, job_id: str) -> None:
        pr = self.redis.hget(self._job(job_id), "pr")
        pipe = self.redis.pipeline()
        pipe.delete(self._job(job_id))
        pipe.zrem(f"{self.p}jobs", job_id)
        if pr is not None:
            pipe.zrem(f"{self.p}pr-jobs:{pr.decode()}", job_id)
        pipe.execute()

    def journal_stale(self, older_than: float, now: float) -> list[JournalEntry]:
        stale: list[JournalEntry] = []
        for raw in self.redis.zrangebyscore(f"{self.p}jobs", "-inf", older_than, start=0, num=500):
            job_id = raw.decode()
            entry = self.journal_get(job_id)
            if entry is None:
                self.redis.zrem(f"{self.p}jobs", job_id)
                continue
            if self.redis.exists(f"{self.p}lease:{entry.pr_key}"):
                continue
            # Only one replica re-queues an entry: the one whose ZADD moves its score (XX + GT + CH).
            if self.redis.zadd(f"{self.p}jobs", {job_id: now}, xx=True, gt=True, ch=True):
                stale.append(entry)
        return stale

    def journal_size(self) -> int:
        return int(self.redis.zcard(f"{self.p}jobs"))

    def try_lease(self, pr_key: str, owner: str, ttl_s: float) -> bool:
        return bool(self.redis.set(f"{self.p}lease:{pr_key}", owner, nx=True, px=int(ttl_s * 1000)))

    def renew_lease(self, pr_key: str, owner: str, ttl_s: float) -> bool:
        return bool(self._renew(keys=[f"{self.p}lease:{pr_key}"], args=[owner, int(ttl_s * 1000)]))

    def release_lease(self, pr_key: str, owner: str) -> None:
        self._release(keys=[f"{self.p}lease:{pr_key}"], args=[owner])

    def clear_leases(self) -> None:
        return None  # other replicas may hold leases; expired ones vanish by themselves

    def cache_get(self, key: str) -> str | None:
        value = self.redis.get(f"{self.p}cache:{key}")
        return value.decode() if value is not None else None

    def cache_put(self, key: str, value: str, ttl_s: float) -> None:
        self.redis.set(f"{self.p}cache:{key}", value, ex=max(1, int(ttl_s)))

    def close(self) -> None:
        self.redis.close()
