"""Dispatch of verified deliveries to handler modules by (event, action), python/bedevere style."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.webhooks.jobs import Job


@dataclass(frozen=True)
class Delivery:
    event: str
    delivery_id: str
    received_at: float
    payload: dict[str, Any]


@dataclass
class Handled:
    """What a handler decided: background jobs to queue, and the outcome label for metrics."""

    outcome: str
    jobs: list[Job] = field(default_factory=list)


Handler = Callable[[Delivery], Handled]


class Router:
    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str | None], Handler] = {}

    def register(self, event: str, *actions: str) -> Callable[[Handler], Handler]:
        """Register a handler for `event` and the listed actions (none: the event has no action)."""
        def decorate(handler: Handler) -> Handler:
            for action in actions or (None,):
                self._handlers[(event, action)] = handler
            return handler
        return decorate

    def lookup(self, event: str, action: str | None) -> Handler | None:
        return self._handlers.get((event, action))

    def events(self) -> frozenset[str]:
        """The events some handler is registered for (the metrics' fixed set of event labels)."""
        return frozenset(event for event, _ in self._handlers)


ROUTER = Router()
