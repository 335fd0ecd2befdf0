"""Webhook handling: verification, filtering, deduplication, per-PR scheduling and one handler module per concern.

Handlers register themselves on `ROUTER` for an (event, action) pair, as in python/bedevere; adding a
behaviour means adding a module here and listing it in `HANDLER_MODULES`.
"""

from __future__ import annotations

HANDLER_MODULES = ("bot.webhooks.ping", "bot.webhooks.installation", "bot.webhooks.pull_request",
                   "bot.webhooks.issue_comment")
