"""`ping`: GitHub's hello when a webhook or App is set up."""

from __future__ import annotations

from bot.webhooks.router import ROUTER, Delivery, Handled


@ROUTER.register("ping")
def on_ping(delivery: Delivery) -> Handled:
    return Handled(outcome="pong")
