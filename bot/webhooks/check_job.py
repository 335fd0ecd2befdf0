"""The pull-request check: the I/O half, run by a queue thread of the service process; the CPU half
(bot.webhooks.evaluate) runs in a worker process.

The requests of one check (docs/github-app.md lists them with why each is needed):
1. the changed files (their `patch` and blob shas come with them), in parallel with
2. the policy at the base commit (cached by commit: once per base commit);
3. each changed config at the head commit (cached by blob sha: once per content), in parallel; the base version
   of a modified config is rebuilt from its patch (a request only when the patch is missing or does not apply);
4. the comments, to find the sticky one (only when its id is not remembered), in parallel with the estimate;
5. the comment created or edited (skipped when the body is unchanged);
6. the check run (App) or commit status (token).
The head and base commits come from the delivery (the pull_request payload carries them). DeepSpeed JSONs and
launcher files a config names are read the same way when it names them; models come from the bundled catalog,
the Hub cache or the Hub.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any, TypeVar

from bot.diffpatch import base_from_patch
from bot.github_adapter import GitHubUnavailable, PullRequestGateway, StickyComment
from bot.queue.store import Store
from bot.render.markdown import MARKER
from bot.sticky_comment import body_hash, upsert_summary
from bot.webhooks.cpu_pool import CpuPool
from bot.webhooks.evaluate import (
    NO_CONFIG_BODY,
    SUGGESTION_MARK,
    ChangedFile,
    Conclusion,
    Evaluation,
    FileAnswer,
    Inputs,
    ModelAnswer,
    Needs,
    candidates,
    evaluate,
)
from bot.webhooks.jobs import CheckJob, JobOutcome
from estimator.errors import InputError
from estimator.hub import Resolver
from rules.policy import POLICY_PATH, Target

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_ROUNDS = 8  # fetch rounds of one evaluation (files named by files named by a config, ...)
CACHE_TTL_S = 24 * 3600
STICKY_TTL_S = 90 * 24 * 3600


@dataclass(frozen=True)
class JobEnvironment:
    """How the worker talks to GitHub for this job: as a GitHub App (check runs) or with a token (statuses)."""

    app_auth: bool


@dataclass
class JobContext:
    """What one job uses: its pull request's gateway, the model resolver, the worker processes, the store,
    the thread pool for parallel requests, and its deadline (time.time())."""

    gateway: PullRequestGateway
    resolver: Resolver
    cpu: CpuPool
    store: Store
    io: Executor
    env: JobEnvironment
    deadline: float
    clock: Callable[[], float]

    def remaining(self) -> float:
        return max(0.1, self.deadline - self.clock())


@dataclass
class CheckResult:
    """What one run produced (used by the slash-command replies too)."""

    evaluation: Evaluation
    comment: str  # created | edited | unchanged | none | failed (GitHub refused it; the status still went out)

    @property
    def body(self) -> str | None:
        return self.evaluation.body

    @property
    def conclusion(self) -> Conclusion:
        return self.evaluation.conclusion


def submit(io: Executor, call: Callable[[], T]) -> Future[T]:
    """Run a call on the I/O pool, in a copy of this thread's context (the job deadline)."""
    return io.submit(contextvars.copy_context().run, call)


def in_parallel(io: Executor, calls: Iterable[Callable[[], T]]) -> list[T]:
    """Run calls on the I/O pool, in parallel; their results in order."""
    futures = [submit(io, call) for call in calls]
    return [f.result() for f in futures]


def _encode(answer: FileAnswer) -> str:
    return json.dumps({"t": answer.text} if answer.text is not None else {"m": True})


def _decode(raw: str) -> FileAnswer:
    data = json.loads(raw)
    return FileAnswer(text=data["t"]) if "t" in data else FileAnswer(missing=True)


class CommitReader:
    """Files at the head and base commits, each fetched at most once (and cached in the store: by blob sha for
    changed files, by commit and path otherwise — commits are immutable)."""

    def __init__(self, ctx: JobContext, head_sha: str, base_sha: str) -> None:
        self._ctx = ctx
        self._changed: dict[str, ChangedFile] = {}
        self.head_sha = head_sha
        self.base_sha = base_sha
        self.head: dict[str, FileAnswer] = {}
        self.base: dict[str, FileAnswer] = {}

    def set_changed(self, changed: tuple[ChangedFile, ...]) -> None:
        self._changed = {f.path: f for f in changed}

    def _read(self, path: str, sha: str, cache_key: str) -> FileAnswer:
        store = self._ctx.store
        cached = store.cache_get(cache_key)
        if cached is not None:
            return _decode(cached)
        try:
            answer = FileAnswer(text=self._ctx.gateway.read_file(path, sha))
        except FileNotFoundError:
            answer = FileAnswer(missing=True)
        except GitHubUnavailable as error:
            return FileAnswer(error=f"GitHub did not serve the file ({error})")
        except InputError as error:
            return FileAnswer(error=error.message)
        store.cache_put(cache_key, _encode(answer), CACHE_TTL_S)
        return answer

    def _head_key(self, path: str) -> str:
        changed = self._changed.get(path)
        if changed is not None and changed.blob_sha:
            return f"blob:{changed.blob_sha}"
        return f"file:{self._ctx.gateway.full_name}:{self.head_sha}:{path}"

    def read_head(self, path: str) -> None:
        self.head[path] = self._read(path, self.head_sha, self._head_key(path))

    def read_base(self, path: str) -> None:
        changed = self._changed.get(path)
        if changed is not None and changed.status == "added":
            self.base[path] = FileAnswer(missing=True)  # new in this pull request: nothing to ask
            return
        if changed is not None and changed.status == "modified":
            if path not in self.head:
                self.read_head(path)
            head = self.head[path]
            if head.text is not None:
                rebuilt = base_from_patch(head.text, changed.patch)
                if rebuilt is not None:
                    self.base[path] = FileAnswer(text=rebuilt)
                    return
        key = f"file:{self._ctx.gateway.full_name}:{self.base_sha}:{path}"
        self.base[path] = self._read(path, self.base_sha, key)

    def fetch(self, needs: Needs) -> None:
        heads = [p for p in needs.head if p not in self.head]
        # a modified file's base comes from its head text and patch: fetch those heads first, with the others
        heads += [p for p in needs.base if p not in self.head and p not in heads
                  and getattr(self._changed.get(p), "status", None) == "modified"]
        in_parallel(self._ctx.io, [lambda p=p: self.read_head(p) for p in heads])  # type: ignore[misc]
        bases = [p for p in needs.base if p not in self.base]
        in_parallel(self._ctx.io, [lambda p=p: self.read_base(p) for p in bases])  # type: ignore[misc]


def model_answer(resolver: Resolver, ref: str) -> ModelAnswer:
    try:
        return ModelAnswer(spec=resolver.resolve(ref))
    except InputError as error:
        return ModelAnswer(error_type=type(error).__name__, error_message=error.message)


class RememberedSticky:
    """The sticky comment's id and last body hash, kept in the store; when none is remembered, the comment
    list is read once (started early, in parallel with the estimate)."""

    def __init__(self, store: Store, gateway: PullRequestGateway, lookup: Future[StickyComment | None] | None) -> None:
        self._store = store
        self._key = f"sticky:{gateway.full_name.lower()}#{gateway.number}"
        self._lookup = lookup

    def recall(self) -> tuple[int, str, str] | str | None:
        raw = self._store.cache_get(self._key)
        if raw is not None:
            data = json.loads(raw)
            return int(data["id"]), str(data["url"]), str(data["hash"])
        if self._lookup is None:
            return "unknown"
        found = self._lookup.result()
        if found is None:
            return None
        return found.id, found.html_url, body_hash(found.body)

    def remember(self, comment_id: int, url: str, body: str) -> None:
        self._store.cache_put(self._key, json.dumps({"id": comment_id, "url": url, "hash": body_hash(body)}),
                              STICKY_TTL_S)


def post_review(gateway: PullRequestGateway, head_sha: str, comments: tuple[dict[str, Any], ...]) -> None:
    """One review with the suggestions not posted before (fingerprints in the existing review comments)."""
    if not comments:
        return
    posted = "\n".join(gateway.review_comment_bodies())
    fresh = [c for c in comments if SUGGESTION_MARK.format(c["fingerprint"]) not in posted]
    if not fresh:
        return
    payload = [{k: v for k, v in c.items() if k not in ("fingerprint", "new")} for c in fresh]
    gateway.create_review(head_sha, f"vram-check: {len(payload)} suggested change(s) that make the "
                          "configs fit (details in the summary comment).", payload)


def publish_conclusion(gateway: PullRequestGateway, env: JobEnvironment, head_sha: str, conclusion: str,
                       description: str, summary: str, url: str | None) -> None:
    if env.app_auth:
        gateway.create_check_run(head_sha, conclusion, description, summary, url)
    else:
        state = {"success": "success", "failure": "failure", "neutral": "success", "skipped": "success",
                 "timed_out": "error", "cancelled": "error"}
        gateway.create_status(head_sha, state.get(conclusion, "error"), description, url)


def evaluate_pull_request(ctx: JobContext, head_sha: str, base_sha: str, *, target: Target | None = None,
                          title: str | None = None, publish: bool = True,
                          only: str | None = None) -> tuple[Evaluation, tuple[ChangedFile, ...]]:
    """Fetch what the evaluation asks for, round by round, and return it with the changed files (the CPU part
    runs in a worker process, under the job's time left)."""
    gateway = ctx.gateway
    reader = CommitReader(ctx, head_sha, base_sha)
    policy = submit(ctx.io, lambda: reader.read_base(POLICY_PATH))
    listed, cut = gateway.changed_files()
    policy.result()
    changed = tuple(listed)
    reader.set_changed(changed)
    wanted_first = candidates(reader.base, changed)
    reader.fetch(Needs(head=frozenset(wanted_first), base=frozenset(wanted_first)))
    models: dict[str, ModelAnswer] = {}
    for _round in range(MAX_ROUNDS):
        inputs = Inputs(head_sha=head_sha, base_sha=base_sha, changed=changed, cut=cut,
                        max_files=gateway.max_files, head=dict(reader.head), base=dict(reader.base),
                        models=dict(models), target=target, title=title, publish=publish, only=only)
        result = ctx.cpu.run(evaluate, inputs, ctx.remaining())
        if isinstance(result, Evaluation):
            return result, changed
        wanted = [m for m in result.models if m not in models]
        lookups = {m: submit(ctx.io, functools.partial(model_answer, ctx.resolver, m)) for m in wanted}
        reader.fetch(result)
        models.update({m: lookup.result() for m, lookup in lookups.items()})
    raise InputError(f"the configs name files that name files more than {MAX_ROUNDS} levels deep")


def check_pull_request(ctx: JobContext, head_sha: str, base_sha: str, *, target: Target | None = None,
                       title: str | None = None, publish: bool = True, only: str | None = None) -> CheckResult:
    """The whole flow for one head commit: evaluate, then the sticky comment, the review and the conclusion."""
    gateway = ctx.gateway
    sticky_key = f"sticky:{gateway.full_name.lower()}#{gateway.number}"
    lookup: Future[StickyComment | None] | None = None
    if publish and ctx.store.cache_get(sticky_key) is None:  # find the sticky comment while the estimate runs
        lookup = submit(ctx.io, functools.partial(gateway.find_comment, MARKER))
    memory = RememberedSticky(ctx.store, gateway, lookup)
    evaluation, _changed = evaluate_pull_request(ctx, head_sha, base_sha, target=target, title=title,
                                                 publish=publish, only=only)
    if not publish:
        return CheckResult(evaluation, "none")
    if evaluation.body is None:
        try:
            known = memory.recall()
            if isinstance(known, tuple) and known[2] != body_hash(NO_CONFIG_BODY):
                upsert_summary(gateway, NO_CONFIG_BODY, memory)
            elif known == "unknown":
                existing = gateway.find_comment(MARKER)
                if existing is not None and existing.body.strip() != NO_CONFIG_BODY.strip():
                    gateway.edit_comment(existing.id, NO_CONFIG_BODY)
        except GitHubUnavailable as error:  # e.g. a locked conversation: the conclusion still goes out
            log.warning("summary comment not updated on %s#%d: %s", gateway.full_name, gateway.number, error)
        publish_conclusion(gateway, ctx.env, head_sha, "skipped" if ctx.env.app_auth else "success",
                           "no training config changed", "No training config changed.", None)
        return CheckResult(evaluation, "none")
    comment: str
    url: str | None
    try:
        comment, url = upsert_summary(gateway, evaluation.body, memory)
    except GitHubUnavailable as error:  # e.g. a locked conversation: the check run / status still says it
        log.warning("summary comment not written on %s#%d: %s", gateway.full_name, gateway.number, error)
        comment, url = "failed", None
    try:
        post_review(gateway, head_sha, evaluation.suggestions)
    except GitHubUnavailable as error:  # e.g. a line GitHub would not accept: the summary still has the diff
        log.warning("review not posted on %s#%d: %s", gateway.full_name, gateway.number, error)
    publish_conclusion(gateway, ctx.env, head_sha, evaluation.conclusion, evaluation.description,
                       evaluation.body, url)
    return CheckResult(evaluation, comment)


def could_not_check_body(head_sha: str, reason: str) -> str:
    return (f"{MARKER}\n### 🧮 vram-check\n\n⚠️ Commit `{head_sha[:7]}` could not be checked: {reason}.\n\n"
            "Push again, or comment `/vram-check`, to retry.\n")


def publish_could_not_check(ctx: JobContext, head_sha: str, conclusion: str, reason: str) -> None:
    """The end of a job that failed: the sticky comment says why, and so does the check run or status."""
    gateway = ctx.gateway
    body = could_not_check_body(head_sha, reason)
    url: str | None = None
    try:
        _, url = upsert_summary(gateway, body, RememberedSticky(ctx.store, gateway, None))
    finally:
        publish_conclusion(gateway, ctx.env, head_sha, conclusion, f"could not be checked: {reason}"[:140],
                           body, url)


def run_check(ctx: JobContext, job: CheckJob) -> JobOutcome:
    head_sha, base_sha = job.head_sha, job.base_sha
    if not head_sha or not base_sha:
        info = ctx.gateway.info()
        head_sha, base_sha = info.head_sha, info.base_sha
    result = check_pull_request(ctx, head_sha, base_sha)
    outcome = {"created": "commented", "edited": "edited", "unchanged": "unchanged", "none": "no-config",
               "failed": "comment-refused"}
    failures = [*result.evaluation.failures, *(["comment"] if result.comment == "failed" else [])]
    return JobOutcome(kind=job.kind, outcome=outcome[result.comment], failures=failures)
