"""Service settings read from the environment (names from DESIGN.md, GitHub Actions names where one exists).

A pydantic model at the edge: every value is validated once at start-up, secrets are `SecretStr` so they
never print in logs or reprs, and no error message quotes a secret's value, not even a malformed one (a
private key wrapped in quotes once came back whole in "cannot read key file <the key>"). The App's private
key is loaded at start-up, so a bad one stops the service with one line instead of failing every job.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from estimator.errors import InputError

DEFAULT_API_URL = "https://api.github.com"


def default_state_dir() -> Path:
    """Where the embedded store lives when VRAM_CHECK_STATE_DIR is not set: $XDG_STATE_HOME/vram-check."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "vram-check"


class SettingsError(InputError):
    """The service environment is incomplete or contradictory."""


class Settings(BaseModel):
    """Everything the webhook service needs; build it with `Settings.from_env()`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    webhook_secret: SecretStr
    app_id: int | None = None
    app_private_key: SecretStr | None = None
    token: SecretStr | None = None
    api_url: str = DEFAULT_API_URL
    hf_endpoint: str | None = None
    hf_token: SecretStr | None = None
    hf_cache_dir: Path | None = None
    # A failed model lookup (not found, gated, Hub unreachable or down) is remembered this long, so a burst of
    # pull requests asks the Hub once per model; after it the Hub is asked again.
    hub_failure_ttl_s: float = Field(default=60.0, ge=0)
    # Bounds (the issue: payload size, files per pull request, file sizes are bounded).
    max_payload_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    max_files_per_pr: int = Field(default=300, gt=0)
    max_file_bytes: int = Field(default=512 * 1024, gt=0)
    # Where background work runs: a pool of worker processes (default) or threads of this process.
    worker_mode: Literal["process", "thread"] = "process"
    workers: int = Field(default=2, gt=0, le=32)
    github_retries: int = Field(default=3, ge=0, le=10)
    github_timeout_s: float = Field(default=15.0, gt=0)
    # Queue and state (docs/queue.md): an embedded SQLite store in state_dir (one replica), or Redis (several).
    state_dir: Path = Field(default_factory=lambda: default_state_dir())
    redis_url: str | None = Field(default=None, pattern=r"^(redis|rediss|unix)://")
    io_threads: int = Field(default=16, gt=0, le=256)  # jobs whose GitHub / Hub I/O is in flight at once
    job_timeout_s: float = Field(default=120.0, gt=0)  # a job's whole time limit (its CPU part is killed past it)
    drain_s: float = Field(default=20.0, ge=0)  # on SIGTERM: finish running jobs for this long, keep the rest
    github_max_wait_s: float = Field(default=30.0, ge=0)  # cap on a Retry-After / rate-limit reset wait

    @model_validator(mode="after")
    def _one_auth_method(self) -> Settings:
        if self.app_id is not None and self.app_private_key is None:
            raise ValueError("GITHUB_APP_ID is set but GITHUB_APP_PRIVATE_KEY is not")
        if self.app_private_key is not None and self.app_id is None:
            raise ValueError("GITHUB_APP_PRIVATE_KEY is set but GITHUB_APP_ID is not")
        if self.app_id is None and self.token is None:
            raise ValueError("set GITHUB_APP_ID + GITHUB_APP_PRIVATE_KEY (GitHub App) or GITHUB_TOKEN")
        return self

    @property
    def uses_app_auth(self) -> bool:
        return self.app_id is not None

    def private_key_pem(self) -> str:
        """The App's private key as PEM text, checked to load; GITHUB_APP_PRIVATE_KEY holds the PEM itself
        (real newlines or `\\n`, optionally wrapped in one pair of quotes, as env files often write it) or
        the path of a file holding it. Errors describe the value's shape, never the value."""
        if self.app_private_key is None:
            raise SettingsError("no GitHub App private key configured")
        value = _unquote(self.app_private_key.get_secret_value().strip())
        if "-----BEGIN" in value or "PRIVATE KEY" in value or "\n" in value or len(value) > MAX_KEY_PATH_CHARS:
            pem = value.replace("\\n", "\n").strip() + "\n"
            _check_private_key(pem, "GITHUB_APP_PRIVATE_KEY")
            return pem
        path = Path(value).expanduser()
        try:
            pem = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            why = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
            raise SettingsError(f"GITHUB_APP_PRIVATE_KEY is neither PEM text (-----BEGIN ... PRIVATE KEY-----) nor "
                                f"the path of a readable key file ({why}; the value has {len(value)} characters, "
                                "not shown)") from None
        _check_private_key(pem, "the file GITHUB_APP_PRIVATE_KEY names")
        return pem

    def check_secrets(self) -> None:
        """Load what can be loaded before the first job (the App's private key); SettingsError if it fails."""
        if self.app_private_key is not None:
            self.private_key_pem()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        names = {
            "webhook_secret": "GITHUB_WEBHOOK_SECRET",
            "app_id": "GITHUB_APP_ID",
            "app_private_key": "GITHUB_APP_PRIVATE_KEY",
            "token": "GITHUB_TOKEN",
            "api_url": "GITHUB_API_URL",
            "hf_endpoint": "HF_ENDPOINT",
            "hf_token": "HF_TOKEN",
            "hf_cache_dir": "VRAM_CHECK_HF_CACHE",
            "hub_failure_ttl_s": "VRAM_CHECK_HUB_FAILURE_TTL_S",
            "max_payload_bytes": "VRAM_CHECK_MAX_PAYLOAD_BYTES",
            "max_files_per_pr": "VRAM_CHECK_MAX_FILES",
            "max_file_bytes": "VRAM_CHECK_MAX_FILE_BYTES",
            "worker_mode": "VRAM_CHECK_WORKER_MODE",
            "workers": "VRAM_CHECK_WORKERS",
            "github_retries": "VRAM_CHECK_GITHUB_RETRIES",
            "state_dir": "VRAM_CHECK_STATE_DIR",
            "redis_url": "VRAM_CHECK_REDIS_URL",
            "io_threads": "VRAM_CHECK_IO_THREADS",
            "job_timeout_s": "VRAM_CHECK_JOB_TIMEOUT_S",
            "drain_s": "VRAM_CHECK_DRAIN_S",
            "github_max_wait_s": "VRAM_CHECK_GITHUB_MAX_WAIT_S",
        }
        values = {field: env[name] for field, name in names.items() if env.get(name)}
        if "webhook_secret" not in values:
            raise SettingsError("GITHUB_WEBHOOK_SECRET is not set; the service refuses to run unsigned")
        try:
            settings = cls.model_validate(values)
        except ValidationError as error:
            problems = "; ".join(
                (f"{names.get(str(e['loc'][0]), e['loc'][0])}: " if e["loc"] else "")
                + str(e["msg"]).removeprefix("Value error, ")
                for e in error.errors(include_input=False)
            )
            raise SettingsError(f"invalid service settings: {problems}") from None
        settings.check_secrets()
        return settings


MAX_KEY_PATH_CHARS = 1024  # a longer value is not a path: it is (part of) a key, and is never shown


def _unquote(value: str) -> str:
    """One pair of matching quotes around the whole value removed (`KEY="-----BEGIN..."` in an env file)."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1].strip()
    return value


def _check_private_key(pem: str, where: str) -> None:
    """The key loads as a PEM private key; the error names the problem's kind, never the key."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    if "-----BEGIN" not in pem or "PRIVATE KEY-----" not in pem:
        raise SettingsError(f"{where} is not a PEM private key (no '-----BEGIN ... PRIVATE KEY-----' line; "
                            f"{pem.count(chr(10))} line(s), {len(pem)} characters, not shown)")
    try:
        load_pem_private_key(pem.encode("utf-8", errors="replace"), password=None)
    except (ValueError, TypeError) as error:  # cryptography's messages name no key material; ours neither
        raise SettingsError(f"{where} does not load as a PEM private key ({type(error).__name__}; encrypted "
                            "keys are not supported; the key is not shown)") from None
