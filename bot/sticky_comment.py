"""The one summary comment per pull request, kept by the App and by the Action alike.

It starts with the hidden marker `<!-- vram-check -->` (bot.render.markdown.MARKER) and is edited in place on
every push; it is never posted twice.
"""

from __future__ import annotations

from typing import Literal

from bot.github_adapter import PullRequestGateway
from bot.render.markdown import MARKER

Upsert = Literal["created", "edited", "unchanged"]


def upsert_summary(gateway: PullRequestGateway, body: str) -> tuple[Upsert, str | None]:
    """Create the sticky comment, edit it in place, or leave it untouched when the body is the same;
    returns what happened and the comment's URL."""
    existing = gateway.find_comment(MARKER)
    if existing is None:
        created = gateway.create_comment(body)
        return "created", created.html_url
    if existing.body.replace("\r\n", "\n").strip() == body.strip():
        return "unchanged", existing.html_url
    gateway.edit_comment(existing.id, body)
    return "edited", existing.html_url
