"""`installation`: the App was installed, removed or changed; logged (clients are built lazily per id)."""

from __future__ import annotations

import logging

from bot.webhooks.payloads import InstallationEvent
from bot.webhooks.router import ROUTER, Delivery, Handled

log = logging.getLogger(__name__)


@ROUTER.register("installation", "created", "deleted", "suspend", "unsuspend", "new_permissions_accepted")
def on_installation(delivery: Delivery) -> Handled:
    event = InstallationEvent.model_validate(delivery.payload)
    log.info("installation %d %s (%d repositories)", event.installation.id, event.action,
             len(event.repositories))
    return Handled(outcome=f"installation-{event.action}")
