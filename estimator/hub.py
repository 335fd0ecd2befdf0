"""Model architectures: a local config.json or folder, the bundled catalog, or the Hugging Face Hub.

The Hub is reached only through huggingface_hub (config.json via hf_hub_download, cached on disk under
HF_HOME; safetensors headers via HfApi.get_safetensors_metadata), honouring HF_ENDPOINT, HF_TOKEN and
HF_HUB_OFFLINE. It fails fast: huggingface_hub retries an uncached download five times with backoff (~23 s)
when the Hub cannot be reached or answers 5xx, so an uncached id is first probed with one request of our
own; a connection failure marks the Hub unreachable for the rest of the run (the cache and the catalog still
answer), and every failed lookup is remembered (for `failure_ttl_s`, or the whole run). A cached config.json
is refreshed only when the probe gets through, so a Hub that accepts connections and never answers costs one
probe timeout (HF_HUB_ETAG_TIMEOUT, 10 s by default) per run, not one per model.

The bundled catalog (estimator/catalog/*.json, sources in catalog/SOURCES.md) answers without the Hub; a few
ids are answered with another id's file where SOURCES.md proves the two files identical in every field that
counts (CATALOG_ALIASES).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from estimator.errors import InputError, ModelGated, ModelNotFound, UnsupportedArchitecture
from estimator.model import ModelSpec, model_spec_from_config, model_spec_from_safetensors
from estimator.source import clip, parse_json, read_bounded

CATALOG_DIR = Path(__file__).parent / "catalog"
MAX_CONFIG_JSON_BYTES = 2_000_000

# id → bundled id whose config.json is proven identical in every field that counts (catalog/SOURCES.md,
# "Aliases": the same bytes on the Hub, or the same bytes in the only copy found).
CATALOG_ALIASES = {
    "meta-llama/Meta-Llama-3-8B-Instruct": "meta-llama/Meta-Llama-3-8B",
    "mistralai/Mixtral-8x7B-Instruct-v0.1": "mistralai/Mixtral-8x7B-v0.1",
    "deepseek-ai/DeepSeek-V2-Lite-Chat": "deepseek-ai/DeepSeek-V2-Lite",
    "Qwen/Qwen3-30B-A3B-Thinking-2507": "Qwen/Qwen3-30B-A3B-Instruct-2507",
    "Qwen/Qwen3-VL-4B-Thinking": "Qwen/Qwen3-VL-4B-Instruct",
}


def _prepare_client(quiet: bool) -> None:
    """Before the first Hub request (huggingface_hub is imported only then: a run the catalog answers never
    loads it). No request vram-check did not ask for: huggingface_hub's telemetry builds its user agent by
    fetching an "agent harnesses" registry from the Hub once a day (huggingface_hub/utils/_detect_agent.py,
    3 s timeout), which costs an offline run 3 s before its first lookup; HF_HUB_DISABLE_TELEMETRY turns it
    off (`build_hf_headers` reads the constant at each call). `quiet` (the CLI and the Action): no progress
    bars and no warnings from the client, since the report says per config what could not be fetched."""
    from huggingface_hub import constants
    from huggingface_hub.utils import disable_progress_bars

    constants.HF_HUB_DISABLE_TELEMETRY = True
    if quiet:
        logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
        disable_progress_bars()


def probe_timeout_s() -> float:
    """One HEAD of config.json: huggingface_hub's own metadata timeout (HF_HUB_ETAG_TIMEOUT, default 10 s)."""
    from huggingface_hub import constants

    return float(constants.HF_HUB_ETAG_TIMEOUT)


def _q(ref: str) -> str:
    """A model reference quoted for a message, cut to a bounded length (it comes from a config)."""
    return f"'{clip(ref, 200)}'"


def catalog_ids() -> list[str]:
    """Hub ids the bundled catalog answers offline ("Qwen/Qwen2.5-7B"), aliases included."""
    return sorted([p.stem.replace("__", "/", 1) for p in CATALOG_DIR.glob("*.json")] + list(CATALOG_ALIASES))


def _catalog_file(model_id: str) -> Path | None:
    wanted = model_id.strip().strip("/").lower()
    for alias, target in CATALOG_ALIASES.items():
        if alias.lower() == wanted:
            wanted = target.lower()
            break
    name = wanted.replace("/", "__", 1) + ".json"
    for path in CATALOG_DIR.glob("*.json"):
        if path.name.lower() == name:
            return path
    return None


def is_bundled(model_id: str) -> bool:
    """Whether the bundled catalog answers `model_id` (case-insensitive, aliases included)."""
    return _catalog_file(model_id) is not None


def is_local_reference(ref: str) -> bool:
    """A config.json or folder path rather than a Hub id (how ModelResolver tells them apart)."""
    ref = ref.strip()
    return ref.endswith(".json") or ref.startswith((".", "/", "~")) or Path(ref).expanduser().is_dir()


def _read_config(path: Path, ref: str) -> dict[str, Any]:
    """A config.json, bounded in size and depth (estimator.source)."""
    text = read_bounded(path, MAX_CONFIG_JSON_BYTES)
    try:
        data = parse_json(text, str(path))
    except InputError as error:
        raise InputError(f"config.json for {_q(ref)}: {error.message}", file=str(path)) from None
    if not isinstance(data, dict):
        raise InputError(f"config.json for {_q(ref)} is not a JSON object", file=str(path))
    return data


class Resolver(Protocol):
    """Anything that turns a model reference (Hub id, config.json, folder) into a ModelSpec."""

    def resolve(self, ref: str) -> ModelSpec:
        """The architecture behind `ref`; InputError (ModelNotFound, ModelGated, ...) when it cannot."""
        ...


class ModelResolver:
    """Turns a model reference into a ModelSpec; thread-safe, memoised per process."""

    def __init__(self, endpoint: str | None = None, token: str | None = None, cache_dir: Path | None = None,
                 offline: bool = False, use_catalog: bool = True, failure_ttl_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic, quiet: bool = False,
                 hub_ids_only: bool = False) -> None:
        self.endpoint = endpoint
        self.hub_ids_only = hub_ids_only  # the service: never look at its own disk for a reference
        self.token = token
        self.cache_dir = cache_dir
        self.offline = offline
        self.use_catalog = use_catalog
        self.failure_ttl_s = failure_ttl_s  # None: a failed lookup is remembered as long as the resolver lives
        self._clock = clock
        self._memo: dict[str, ModelSpec] = {}
        self._failures: dict[str, tuple[InputError, float]] = {}
        self._unreachable: tuple[str, float] | None = None  # why the Hub could not be reached, and when
        self._lock = threading.Lock()
        self.hub_calls = 0
        self.quiet = quiet  # no huggingface_hub warnings or progress bars (the CLI and the Action)
        self._client_ready = False

    def resolve(self, ref: str) -> ModelSpec:
        ref = ref.strip()
        if not ref:
            raise InputError("empty model reference")
        with self._lock:
            cached = self._memo.get(ref)
            failed = self._failures.get(ref)
        if cached is not None:
            return cached
        if failed is not None and not self._expired(failed[1]):
            raise failed[0]
        try:
            spec = self._resolve(ref)
        except InputError as error:
            with self._lock:
                self._failures[ref] = (error, self._clock())
            raise
        with self._lock:
            self._memo[ref] = spec
        return spec

    def _expired(self, since: float) -> bool:
        return self.failure_ttl_s is not None and self._clock() - since > self.failure_ttl_s

    @property
    def hub_unreachable(self) -> str | None:
        """Why the Hub was found unreachable in this run (None: it was not, or that has expired)."""
        with self._lock:
            if self._unreachable is None or self._expired(self._unreachable[1]):
                return None
            return self._unreachable[0]

    def _resolve(self, ref: str) -> ModelSpec:
        if not self.hub_ids_only and is_local_reference(ref):
            return self._local(Path(ref).expanduser(), ref)
        if self.use_catalog:
            bundled = _catalog_file(ref)
            if bundled is not None:
                spec = model_spec_from_config(_read_config(bundled, ref), ref)
                alias = bundled.stem.lower() != ref.strip().strip("/").replace("/", "__", 1).lower()
                same = ", proven identical to this id's config.json in catalog/SOURCES.md" if alias else ""
                return replace(spec, source=f"bundled catalog: {bundled.name}{same}")
        return self._hub(ref)

    def _local(self, path: Path, ref: str) -> ModelSpec:
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise ModelNotFound(f"model config {_q(str(path))} not found")
        return replace(model_spec_from_config(_read_config(path, ref), ref), source=str(path))

    def _client(self) -> None:
        if not self._client_ready:
            _prepare_client(self.quiet)
            self._client_ready = True

    def cached_config(self, model_id: str) -> Path | None:
        """config.json of `model_id` in the local Hub cache, without any request (None: not cached)."""
        self._client()
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model_id, "config.json", cache_dir=self.cache_dir)
        return Path(cached) if isinstance(cached, str) else None

    def fetch_config(self, model_id: str) -> Path:
        """config.json of a Hub id in the local Hub cache, fetched (or refreshed) when the Hub can be reached:
        what `vram-check models pull` calls to fill the cache for later offline runs."""
        if model_id.count("/") > 1 or " " in model_id:
            raise ModelNotFound(f"{_q(model_id)} is neither a Hub model id (org/name) nor an existing path")
        return self._download(model_id)

    def _download(self, model_id: str) -> Path:
        """config.json in the local Hub cache: fetched when needed, or an error that says why it cannot be."""
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError

        cached = self.cached_config(model_id)
        unreachable = self.hub_unreachable
        if self.offline or unreachable is not None:
            if cached is not None:
                return cached
            why = "HF_HUB_OFFLINE is set" if self.offline else f"the Hub cannot be reached ({unreachable})"
            raise ModelNotFound(f"model {_q(model_id)} is not bundled or in the local Hub cache, and {why}: "
                                f"{_LOCAL_HINT}")
        try:
            # one request of our own first: an uncached id fails in one request rather than after
            # huggingface_hub's retries; a cached one is used as it is when the Hub does not answer
            self._probe(model_id)
        except InputError:
            if cached is not None:
                return cached
            raise
        self.hub_calls += 1
        try:
            return Path(hf_hub_download(model_id, "config.json", endpoint=self.endpoint, token=self.token or None,
                                        cache_dir=self.cache_dir, etag_timeout=probe_timeout_s()))
        except (HfHubHTTPError, OSError) as error:
            if cached is not None:
                return cached
            raise _hub_error(model_id, error) from None

    def _probe(self, model_id: str) -> None:
        """One HEAD of config.json, no retries: a connection failure marks the Hub unreachable for the run;
        an HTTP error becomes the same message hf_hub_download's would."""
        from huggingface_hub import get_session, hf_hub_url, hf_raise_for_status
        from huggingface_hub.errors import HfHubHTTPError
        from huggingface_hub.utils import build_hf_headers

        url = hf_hub_url(model_id, "config.json", endpoint=self.endpoint)
        self.hub_calls += 1
        try:
            response = get_session().head(url, headers=build_hf_headers(token=self.token or None),
                                          timeout=probe_timeout_s(), follow_redirects=True)
        except Exception as error:  # the client's transport errors (connection refused, DNS, timeout, TLS)
            with self._lock:
                self._unreachable = (f"{type(error).__name__} from {url.split('/', 3)[2]}", self._clock())
            raise ModelNotFound(f"model {_q(model_id)} is not bundled or in the local Hub cache, and the Hub cannot "
                                f"be reached ({self._unreachable[0]}): {_LOCAL_HINT}") from None
        if response.status_code >= 500:
            raise ModelNotFound(f"the Hub answered {response.status_code} for {_q(model_id)} (a Hub outage); "
                                "try again later, or give a local config.json")
        try:
            hf_raise_for_status(response)
        except HfHubHTTPError as error:
            raise _hub_error(model_id, error) from None

    def _hub(self, model_id: str) -> ModelSpec:
        if model_id.count("/") > 1 or " " in model_id:
            raise ModelNotFound(f"{_q(model_id)} is neither a Hub model id (org/name) nor an existing path")
        config = _read_config(self._download(model_id), model_id)
        try:
            return replace(model_spec_from_config(config, model_id), source="Hugging Face Hub (or its local cache)")
        except UnsupportedArchitecture as unsupported:
            if self.offline or self.hub_unreachable is not None:  # the header needs the Hub
                raise
            from huggingface_hub import HfApi  # only here: importing it costs a few hundred ms

            try:
                metadata = HfApi(endpoint=self.endpoint, token=self.token or None).get_safetensors_metadata(model_id)
            except Exception:
                raise unsupported from None
            counts = dict(metadata.parameter_count)
            if not counts:
                raise unsupported from None
            dtype = max(counts, key=lambda k: counts[k]).lower()
            dtype = {"bf16": "bfloat16", "f16": "float16", "f32": "float32"}.get(dtype, dtype)
            return model_spec_from_safetensors(config, model_id, sum(counts.values()), dtype)


_LOCAL_HINT = "give its config.json (--model, or the policy's `models:` map) or run `vram-check models pull` online"


def _hub_error(model_id: str, error: Exception) -> InputError:
    """One clear line per way the Hub can fail (checked most specific first: the client's errors subclass
    each other, e.g. a cache miss while offline is an EntryNotFoundError)."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    if isinstance(error, GatedRepoError):
        return ModelGated(f"model {_q(model_id)} is gated on the Hub: accept its licence and set HF_TOKEN to a token "
                          "that may read it, or pass --model with a local config.json")
    if isinstance(error, RepositoryNotFoundError):
        return ModelNotFound(f"model {_q(model_id)} not found on the Hub (misspelt, or private without HF_TOKEN)")
    if isinstance(error, LocalEntryNotFoundError):
        return ModelNotFound(f"model {_q(model_id)} is not in the local cache and the Hub cannot be reached; "
                             "pass --model with a local config.json")
    if isinstance(error, EntryNotFoundError):
        return ModelNotFound(f"model {_q(model_id)} has no config.json on the Hub")
    if isinstance(error, HfHubHTTPError):
        status = getattr(getattr(error, "response", None), "status_code", None)
        return ModelNotFound(f"the Hub answered {status or 'an error'} for {_q(model_id)}")
    return ModelNotFound(f"could not fetch {_q(model_id)} from the Hub ({type(error).__name__})")
