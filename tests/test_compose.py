"""docker-compose.yml, checked without a Docker engine: two replicas of the service image sharing one Redis
through VRAM_CHECK_REDIS_URL, secrets from the environment, a drain window longer than the service's."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_two_replicas_share_one_redis() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    app = services["vram-check"]
    assert app["build"] == "." and app["deploy"]["replicas"] == 2
    redis_url = app["environment"]["VRAM_CHECK_REDIS_URL"]
    host = redis_url.removeprefix("redis://").split(":", 1)[0]
    assert host in services and services[host]["image"].startswith("redis:")
    assert app["depends_on"][host]["condition"] == "service_healthy"
    for secret in ("GITHUB_WEBHOOK_SECRET", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY"):
        assert app["environment"][secret].startswith("${" + secret)  # from the environment, never inline
    grace = int(app["stop_grace_period"].removesuffix("s"))
    assert grace > Settings.model_fields["drain_s"].default  # SIGKILL only after the service's own drain


def test_the_image_keeps_the_embedded_store_on_a_volume() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "VRAM_CHECK_STATE_DIR=/state" in text and '"/state"' in text
