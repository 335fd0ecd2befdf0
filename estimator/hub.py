"""Model architectures: a local config.json or folder, the bundled catalog, or the Hugging Face Hub.

The Hub is reached only through huggingface_hub (config.json via hf_hub_download, cached on disk under
HF_HOME; safetensors headers via HfApi.get_safetensors_metadata), honouring HF_ENDPOINT and HF_TOKEN.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

from estimator.errors import InputError, ModelGated, ModelNotFound, UnsupportedArchitecture
from estimator.model import ModelSpec, model_spec_from_config, model_spec_from_safetensors
from estimator.source import parse_json, read_bounded

CATALOG_DIR = Path(__file__).parent / "catalog"
MAX_CONFIG_JSON_BYTES = 2_000_000


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
        raise InputError(f"config.json for '{ref}': {error.message}", file=str(path)) from None
    if not isinstance(data, dict):
        raise InputError(f"config.json for '{ref}' is not a JSON object", file=str(path))
    return data


class Resolver(Protocol):
    """Anything that turns a model reference (Hub id, config.json, folder) into a ModelSpec."""

    def resolve(self, ref: str) -> ModelSpec:
        """The architecture behind `ref`; InputError (ModelNotFound, ModelGated, ...) when it cannot."""
        ...


class ModelResolver:
    """Turns a model reference into a ModelSpec; thread-safe, memoised per process."""

    def __init__(self, endpoint: str | None = None, token: str | None = None, cache_dir: Path | None = None,
                 offline: bool = False, use_catalog: bool = True) -> None:
        self.endpoint = endpoint
        self.token = token
        self.cache_dir = cache_dir
        self.offline = offline
        self.use_catalog = use_catalog
        self._memo: dict[str, ModelSpec] = {}
        self._lock = threading.Lock()
        self.hub_calls = 0
        self.hub_errors = 0

    def resolve(self, ref: str) -> ModelSpec:
        ref = ref.strip()
        if not ref:
            raise InputError("empty model reference")
        with self._lock:
            cached = self._memo.get(ref)
        if cached is not None:
            return cached
        spec = self._resolve(ref)
        with self._lock:
            self._memo[ref] = spec
        return spec

    def _resolve(self, ref: str) -> ModelSpec:
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
            raise ModelNotFound(f"model config '{path}' not found")
        return model_spec_from_config(_read_config(path, ref), ref)

    def _hub(self, model_id: str) -> ModelSpec:
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.errors import (
            EntryNotFoundError,
            GatedRepoError,
            HfHubHTTPError,
            RepositoryNotFoundError,
        )

        if model_id.count("/") > 1 or " " in model_id:
            raise ModelNotFound(f"'{model_id}' is neither a Hub model id (org/name) nor an existing path")
        self.hub_calls += 1
        try:
            path = hf_hub_download(model_id, "config.json", endpoint=self.endpoint, token=self.token or None,
                                   cache_dir=self.cache_dir, local_files_only=self.offline)
        except (GatedRepoError, RepositoryNotFoundError, EntryNotFoundError, HfHubHTTPError, OSError) as error:
            self.hub_errors += 1
            raise _hub_error(model_id, error) from None
        config = _read_config(Path(path), model_id)
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
        return ModelGated(f"model '{model_id}' is gated on the Hub: accept its licence and set HF_TOKEN to a token "
                          "that may read it, or pass --model with a local config.json")
    if isinstance(error, RepositoryNotFoundError):
        return ModelNotFound(f"model '{model_id}' not found on the Hub (misspelt, or private without HF_TOKEN)")
    if isinstance(error, LocalEntryNotFoundError):
        return ModelNotFound(f"model '{model_id}' is not in the local cache and the Hub cannot be reached; "
                             "pass --model with a local config.json")
    if isinstance(error, EntryNotFoundError):
        return ModelNotFound(f"model '{model_id}' has no config.json on the Hub")
    if isinstance(error, HfHubHTTPError):
        status = getattr(getattr(error, "response", None), "status_code", None)
        return ModelNotFound(f"the Hub answered {status or 'an error'} for '{model_id}'")
    return ModelNotFound(f"could not fetch '{model_id}' from the Hub ({type(error).__name__})")
