"""X-Hub-Signature-256 verification (GitHub docs: validating-webhook-deliveries)."""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def sign(secret: bytes, body: bytes) -> str:
    """The header value GitHub sends: `sha256=` + hex HMAC-SHA256 of the raw body keyed by the secret."""
    return PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    """Constant-time comparison over the raw bytes; a missing or non-sha256 header never matches."""
    if not header or not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(sign(secret, body), header)
