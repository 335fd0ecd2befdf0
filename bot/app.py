"""The webhook service (Starlette): POST /webhook, GET /healthz, GET /metrics.

The event loop only verifies, filters, deduplicates and queues (all cheap; the store writes run in a thread);
a job's GitHub and Hub I/O runs in the queue's threads and its estimate in worker processes
(bot.webhooks.runner), so an acknowledgement never waits behind that work. An accepted delivery is in the
journal before the 202 goes out. See docs/github-app.md and docs/queue.md.

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
import signal
import threading
import time
from collections.abc import AsyncIterator
from types import FrameType
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.metrics import CONTENT_TYPE_LATEST, ServiceMetrics
from bot.settings import Settings
from bot.webhooks import HANDLER_MODULES
from bot.webhooks.router import ROUTER, Delivery
from bot.webhooks.runner import JobRunner
from bot.webhooks.signature import signature_ok
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
    """State shared by the routes: settings, metrics, and the job runner (queue, store, workers)."""

    def __init__(self, settings: Settings) -> None:
        for module in HANDLER_MODULES:
            importlib.import_module(module)
        settings.check_secrets()  # a key that does not load stops the start, in one line that does not show it
        self.settings = settings
        self.secret = settings.webhook_secret.get_secret_value().encode()
        self.known_events = ROUTER.events()
        self.metrics = ServiceMetrics()
        self.runner = JobRunner(settings, self.metrics)

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
        try:
            handled = handler(Delivery(event, delivery_id, received_at, payload))
        except ValidationError as error:
            log.warning("malformed %s delivery %s: %d validation errors", label, delivery_id,
                        error.error_count())
            return self._answer(label, "malformed", 400, started)
        # Only a delivery that makes work is deduplicated (a store write, ~1 ms: cheaper here than a thread hop).
        try:
            if handled.jobs and delivery_id and not self.runner.claim(delivery_id):
                return self._answer(label, "duplicate", 202, started)
            for job in handled.jobs:
                self.runner.accept(job)  # journal + queue, durable before the 202
        except Exception as error:  # the store is unreachable: GitHub marks the delivery failed, to redeliver
            log.error("could not accept %s delivery %s: %s", label, delivery_id, type(error).__name__)
            return self._answer(label, "unavailable", 503, started)
        status = 200 if event == "ping" else 202
        return self._answer(label, handled.outcome, status, started)

    async def healthz(self, request: Request) -> Response:
        """200 only while the service can do work: store reachable, worker processes up, queue consumed."""
        problems = await run_in_threadpool(self.runner.health)
        pending = None if problems else await run_in_threadpool(lambda: self.runner.pending)
        body = {"status": "unavailable" if problems else "ok", "problems": problems, "pending_jobs": pending,
                "running_jobs": self.runner.running, "worker_mode": self.settings.worker_mode,
                "worker_pids": self.runner.cpu.worker_pids(),
                "workers": self.settings.workers, "store": "redis" if self.settings.redis_url else "sqlite"}
        return JSONResponse(body, status_code=503 if problems else 200)

    async def metrics_route(self, request: Request) -> Response:
        with contextlib.suppress(Exception):  # the store may be unreachable; /healthz says so
            self.metrics.in_flight.set(await run_in_threadpool(lambda: self.runner.pending))
        return Response(self.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    def _hook_shutdown_signals(self) -> None:
        """Tell the runner the moment SIGTERM / SIGINT arrives (then let the web server's handler run): the
        worker processes get the signal too when it goes to the process group."""
        if threading.current_thread() is not threading.main_thread():
            return  # an app served from a thread (tests): no signals
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(signum)

            def handler(number: int, frame: FrameType | None, previous: Any = previous) -> None:
                self.runner.stopping_now()
                if callable(previous):
                    previous(number, frame)

            signal.signal(signum, handler)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._hook_shutdown_signals()
        await asyncio.to_thread(self.runner.start)
        try:
            yield
        finally:
            await asyncio.to_thread(self.runner.stop)


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
