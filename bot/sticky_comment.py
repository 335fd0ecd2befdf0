"""The one summary comment per pull request, kept by the App and by the Action alike.

It starts with the hidden marker `<!-- vram-check -->` (bot.render.markdown.MARKER) and is edited in place on
every push; it is never posted twice. The App remembers the comment's id and a hash of the body it last wrote
(`StickyMemory`, in the shared store), so a later run edits it without listing the comments first, and skips
the edit when the body is the same; a remembered comment that was deleted is looked up again.
"""

from __future__ import annotations

import hashlib
from typing import Literal, Protocol

from bot.github_adapter import PullRequestGateway
from bot.render.markdown import MARKER

Upsert = Literal["created", "edited", "unchanged"]


UNKNOWN = "unknown"


class StickyMemory(Protocol):
    def recall(self) -> tuple[int, str, str] | str | None:
        """(comment id, URL, sha256 of its body) of the sticky comment; None when there is none for sure;
        "unknown" when the comments must be listed to know."""
        ...

    def remember(self, comment_id: int, url: str, body: str) -> None: ...


def body_hash(body: str) -> str:
    return hashlib.sha256(body.replace("\r\n", "\n").strip().encode()).hexdigest()


def _lookup(gateway: PullRequestGateway) -> tuple[int, str, str] | None:
    existing = gateway.find_comment(MARKER)
    return None if existing is None else (existing.id, existing.html_url, body_hash(existing.body))


def upsert_summary(gateway: PullRequestGateway, body: str,
                   memory: StickyMemory | None = None) -> tuple[Upsert, str | None]:
    """Create the sticky comment, edit it in place, or leave it untouched when the body is the same;
    returns what happened and the comment's URL."""
    known = memory.recall() if memory is not None else UNKNOWN
    found = _lookup(gateway) if not isinstance(known, tuple) and known == UNKNOWN else known
    for attempt in range(2):
        if not isinstance(found, tuple):
            created = gateway.create_comment(body)
            if memory is not None:
                memory.remember(created.id, created.html_url, body)
            return "created", created.html_url
        comment_id, url, written = found
        if written == body_hash(body):
            if memory is not None:
                memory.remember(comment_id, url, body)
            return "unchanged", url
        try:
            gateway.edit_comment(comment_id, body)
        except FileNotFoundError:
            if attempt:
                raise
            found = _lookup(gateway)  # deleted since: find another or create it
            continue
        if memory is not None:
            memory.remember(comment_id, url, body)
        return "edited", url
    raise AssertionError("unreachable")
