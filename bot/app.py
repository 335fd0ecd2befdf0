"""The webhook service (Starlette): POST /webhook, GET /healthz, GET /metrics.

The event loop only verifies, filters, deduplicates and queues (all cheap); GitHub, YAML and estimation
work runs in a pool of worker processes (or threads, `VRAM_CHECK_WORKER_MODE=thread`), so an
acknowledgement never waits behind that work for the GIL. See docs/github-app.md for the measurements.

Every input is bounded before it is read: the body by size (413), the JSON by nesting depth before it is
parsed (400; estimator.source.json_depth_ok, C-speed, and off the event loop for large bodies), header
values by length; metrics labels come from fixed sets (an event no handler knows is "other"), so no
request can grow /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.metrics import CONTENT_TYPE_LATEST, ServiceMetrics
from bot.settings import Settings
from bot.webhooks import HANDLER_MODULES
from bot.webhooks.dedup import DeliveryLog
from bot.webhooks.jobs import Job, JobOutcome
from bot.webhooks.router import ROUTER, Delivery
from bot.webhooks.scheduler import PullRequestScheduler
from bot.webhooks.signature import signature_ok
from bot.webhooks.worker import execute, make_context, make_executor, run_job, warm_up
from estimator.source import MAX_JSON_DEPTH, json_depth_ok

log = logging.getLogger(__name__)

OTHER_EVENT = "other"  # the metrics label of any event no handler is registered for
INLINE_JSON_BYTES = 64 * 1024  # larger bodies are checked and parsed in a thread: the loop keeps answering


class PayloadTooLarge(Exception):
    pass


class MalformedPayload(Exception):
    pass


def _parse_payload(body: bytes) -> dict[str, Any]:
    """The delivery's JSON object: UTF-8, nested at most MAX_JSON_DEPTH deep (checked before json.loads,
    which would recurse until RecursionError), an object at the top."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPayload("not UTF-8") from None
    if not json_depth_ok(text, MAX_JSON_DEPTH):
        raise MalformedPayload(f"nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        payload = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise MalformedPayload("not JSON") from None
    if not isinstance(payload, dict):
        raise MalformedPayload("not a JSON object")
    return payload


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class WebhookService:
    """State shared by the routes: settings, dedup log, scheduler, executor, metrics."""

    def __init__(self, settings: Settings) -> None:
        for module in HANDLER_MODULES:
            importlib.import_module(module)
        settings.check_secrets()  # a key that does not load stops the start, in one line that does not show it
        self.settings = settings
        self.secret = settings.webhook_secret.get_secret_value().encode()
        self.known_events = ROUTER.events()
        self.metrics = ServiceMetrics()
        self.deliveries = DeliveryLog(settings.dedup_capacity)
        self.executor: Executor | None = None
        self.thread_context = make_context(settings) if settings.worker_mode == "thread" else None
        self.scheduler = PullRequestScheduler(self._run, self.metrics)

    async def _run(self, job: Job) -> JobOutcome:
        assert self.executor is not None
        loop = asyncio.get_running_loop()
        if self.thread_context is not None:
            return await loop.run_in_executor(self.executor, execute, self.thread_context, job)
        return await loop.run_in_executor(self.executor, run_job, job)

    def _answer(self, event: str, outcome: str, status: int, started: float) -> JSONResponse:
        self.metrics.deliveries.labels(event, outcome).inc()
        self.metrics.ack_seconds.observe(time.perf_counter() - started)
        return JSONResponse({"outcome": outcome}, status_code=status)

    async def webhook(self, request: Request) -> Response:
        started = time.perf_counter()
        received_at = time.time()
        event = request.headers.get("x-github-event", "")[:64]
        label = event if event in self.known_events else OTHER_EVENT
        try:
            body = await _read_body(request, self.settings.max_payload_bytes)
        except PayloadTooLarge:
            return self._answer(label, "too-large", 413, started)
        if not signature_ok(self.secret, body, request.headers.get("x-hub-signature-256")):
            log.warning("rejected delivery with a missing or bad signature (event %s)", label)
            return self._answer(label, "bad-signature", 401, started)
        delivery_id = request.headers.get("x-github-delivery", "")[:128]
        try:
            if len(body) <= INLINE_JSON_BYTES:
                payload = _parse_payload(body)
            else:
                payload = await asyncio.to_thread(_parse_payload, body)
        except MalformedPayload as error:
            log.warning("malformed %s delivery %s: %s", label, delivery_id, error)
            return self._answer(label, "malformed", 400, started)
        action = payload.get("action")
        handler = ROUTER.lookup(event, action if isinstance(action, str) else None)
        if handler is None:
            return self._answer(label, "ignored", 202, started)
        if delivery_id and not self.deliveries.first_time(delivery_id):
            return self._answer(label, "duplicate", 202, started)
        try:
            handled = handler(Delivery(event, delivery_id, received_at, payload))
        except ValidationError as error:
            if delivery_id:
                self.deliveries.forget(delivery_id)
            log.warning("malformed %s delivery %s: %d validation errors", label, delivery_id,
                        error.error_count())
            return self._answer(label, "malformed", 400, started)
        for job in handled.jobs:
            self.scheduler.submit(job)
        status = 200 if event == "ping" else 202
        return self._answer(label, handled.outcome, status, started)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "pending_jobs": self.scheduler.pending,
                             "worker_mode": self.settings.worker_mode, "workers": self.settings.workers})

    async def metrics_route(self, request: Request) -> Response:
        return Response(self.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.executor = make_executor(self.settings)
        if self.thread_context is None:  # start every worker process now, not during the first burst
            loop = asyncio.get_running_loop()
            await asyncio.gather(*(loop.run_in_executor(self.executor, warm_up, index)
                                   for index in range(self.settings.workers)))
        try:
            yield
        finally:
            await self.scheduler.idle()
            self.executor.shutdown(wait=True, cancel_futures=True)


def create_app(settings: Settings) -> Starlette:
    service = WebhookService(settings)
    app = Starlette(
        routes=[
            Route("/webhook", service.webhook, methods=["POST"]),
            Route("/healthz", service.healthz, methods=["GET"]),
            Route("/metrics", service.metrics_route, methods=["GET"]),
        ],
        lifespan=service.lifespan,
    )
    app.state.service = service
    return app
