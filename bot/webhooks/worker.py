"""The model resolver the service uses: the bundled catalog, the Hub cache, the Hub (in the service process's
I/O threads; the worker processes get the resolved architectures)."""

from __future__ import annotations

import re
from collections.abc import Callable

from bot.settings import Settings
from estimator.errors import ModelNotFound
from estimator.hub import ModelResolver, Resolver
from estimator.model import ModelSpec
from estimator.source import describe

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class CountingResolver:
    """Wraps estimator.hub.ModelResolver for the service: counts resolutions for the metrics, and accepts
    Hub model ids only — a pull request must not make the service read files on its own disk, nor learn
    what is there: a reference that is not a Hub id gets one message, whatever exists on the service's
    disk, and a Hub-shaped one goes to the catalog and the Hub only (ModelResolver(hub_ids_only=True))."""

    def __init__(self, inner: Resolver, record: Callable[[str], None] = lambda outcome: None) -> None:
        self._inner = inner
        self._record = record

    def resolve(self, ref: str) -> ModelSpec:
        ref = ref.strip()
        if not HUB_ID.match(ref) or ".." in ref or ref.endswith(".json"):
            self._record("rejected")
            raise ModelNotFound(f"{describe(ref)} is not a Hugging Face Hub model id; the GitHub App resolves "
                                "Hub ids (org/name) only, not paths")
        try:
            spec = self._inner.resolve(ref)
        except Exception:
            self._record("error")
            raise
        self._record("ok")
        return spec


def model_resolver(settings: Settings) -> ModelResolver:
    return ModelResolver(endpoint=settings.hf_endpoint,
                         token=settings.hf_token.get_secret_value() if settings.hf_token else None,
                         cache_dir=settings.hf_cache_dir, failure_ttl_s=settings.hub_failure_ttl_s,
                         hub_ids_only=True)
