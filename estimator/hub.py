"""Model architectures: a local config.json or folder, the bundled catalog, or the Hugging Face Hub.

The Hub is reached only through huggingface_hub (config.json via hf_hub_download, cached on disk under
HF_HOME; safetensors headers via HfApi.get_safetensors_metadata), honouring HF_ENDPOINT, HF_TOKEN and
HF_HUB_OFFLINE. It fails fast: huggingface_hub retries an uncached download five times with backoff (~23 s)
when the Hub cannot be reached or answers 5xx, so an uncached id is first probed with one request of our
own; a connection failure marks the Hub unreachable for the rest of the run (the cache and the catalog still
answer), and every failed lookup is remembered (for `failure_ttl_s`, or the whole run).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from estimator.errors import InputError, ModelGated, ModelNotFound, UnsupportedArchitecture
from estimator.model import ModelSpec, model_spec_from_config, model_spec_from_safetensors
from estimator.source import clip, parse_json, read_bounded

CATALOG_DIR = Path(__file__).parent / "catalog"
MAX_CONFIG_JSON_BYTES = 2_000_000
PROBE_TIMEOUT_S = 10.0  # one HEAD of config.json; huggingface_hub's own default for metadata is 10 s


def _q(ref: str) -> str:
    """A model reference quoted for a message, cut to a bounded length (it comes from a config)."""
    return f"'{clip(ref, 200)}'"


def catalog_ids() -> list[str]:
    """Hub ids the bundled catalog answers offline ("Qwen/Qwen2.5-7B")."""
    return sorted(p.stem.replace("__", "/", 1) for p in CATALOG_DIR.glob("*.json"))


def _catalog_file(model_id: str) -> Path | None:
    wanted = model_id.strip().strip("/").replace("/", "__", 1).lower() + ".json"
    for path in CATALOG_DIR.glob("*.json"):
        if path.name.lower() == wanted:
            return path
    return None


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
                 clock: Callable[[], float] = time.monotonic, hub_ids_only: bool = False) -> None:
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
        if not self.hub_ids_only:
            local = Path(ref).expanduser()
            if ref.endswith(".json") or ref.startswith((".", "/", "~")) or local.is_dir():
                return self._local(local, ref)
        if self.use_catalog:
            bundled = _catalog_file(ref)
            if bundled is not None:
                return model_spec_from_config(_read_config(bundled, ref), ref)
        return self._hub(ref)

    def _local(self, path: Path, ref: str) -> ModelSpec:
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise ModelNotFound(f"model config {_q(str(path))} not found")
        return model_spec_from_config(_read_config(path, ref), ref)

    def _download(self, model_id: str) -> Path:
        """config.json in the local Hub cache: fetched when needed, or an error that says why it cannot be."""
        from huggingface_hub import hf_hub_download, try_to_load_from_cache
        from huggingface_hub.errors import HfHubHTTPError

        cached = try_to_load_from_cache(model_id, "config.json", cache_dir=self.cache_dir)
        unreachable = self.hub_unreachable
        if self.offline or unreachable is not None:
            if isinstance(cached, str):
                return Path(cached)
            why = "HF_HUB_OFFLINE is set" if self.offline else f"the Hub cannot be reached ({unreachable})"
            raise ModelNotFound(f"model {_q(model_id)} is not bundled and not in the local Hub cache, and {why}; "
                                "give a local config.json (--model, or a `models:` entry in the policy)")
        if not isinstance(cached, str):
            self._probe(model_id)  # uncached: fail in one request rather than after huggingface_hub's retries
        self.hub_calls += 1
        try:
            return Path(hf_hub_download(model_id, "config.json", endpoint=self.endpoint, token=self.token or None,
                                        cache_dir=self.cache_dir))
        except (HfHubHTTPError, OSError) as error:
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
                                          timeout=PROBE_TIMEOUT_S, follow_redirects=True)
        except Exception as error:  # the client's transport errors (connection refused, DNS, timeout, TLS)
            with self._lock:
                self._unreachable = (f"{type(error).__name__} from {url.split('/', 3)[2]}", self._clock())
            raise ModelNotFound(f"model {_q(model_id)} is not bundled and not in the local Hub cache, and the Hub "
                                f"cannot be reached ({type(error).__name__}); give a local config.json "
                                "(--model, or a `models:` entry in the policy)") from None
        if response.status_code >= 500:
            raise ModelNotFound(f"the Hub answered {response.status_code} for {_q(model_id)} (a Hub outage); "
                                "try again later, or give a local config.json")
        try:
            hf_raise_for_status(response)
        except HfHubHTTPError as error:
            raise _hub_error(model_id, error) from None

    def _hub(self, model_id: str) -> ModelSpec:
        from huggingface_hub import HfApi

        if model_id.count("/") > 1 or " " in model_id:
            raise ModelNotFound(f"{_q(model_id)} is neither a Hub model id (org/name) nor an existing path")
        config = _read_config(self._download(model_id), model_id)
        try:
            return model_spec_from_config(config, model_id)
        except UnsupportedArchitecture as unsupported:
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
