"""ModelResolver against a fake Hub on loopback, through the real huggingface_hub client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.hub import FakeHub, FakeHubState

from estimator.errors import ModelGated, ModelNotFound
from estimator.hub import ModelResolver, catalog_ids

CATALOG = Path(__file__).parent.parent / "estimator" / "catalog"
LLAMA = json.loads((CATALOG / "meta-llama__Llama-3.2-1B.json").read_text())


@pytest.fixture()
def hub() -> Iterator[FakeHub]:
    state = FakeHubState()
    state.add_model("team/llama-1b-copy", LLAMA)
    state.add_model("meta-private/gated-1b", LLAMA, gated=True, allowed_tokens=frozenset({"hf_granted"}))
    with FakeHub(state) as server:
        yield server


def resolver(hub: FakeHub, tmp_path: Path, token: str | None = None, offline: bool = False) -> ModelResolver:
    return ModelResolver(endpoint=hub.url, token=token, cache_dir=tmp_path / "cache", offline=offline,
                         use_catalog=False)


def test_config_from_the_hub(hub: FakeHub, tmp_path: Path) -> None:
    spec = resolver(hub, tmp_path).resolve("team/llama-1b-copy")
    assert spec.total_params == 1_235_814_400  # Llama-3.2-1B, tests/fixtures/param_counts.json


def test_404_is_a_clear_not_found(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="not found on the Hub"):
        resolver(hub, tmp_path).resolve("team/no-such-model")


def test_gated_without_and_with_a_granted_token(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(ModelGated, match="HF_TOKEN"):
        resolver(hub, tmp_path).resolve("meta-private/gated-1b")
    with pytest.raises(ModelGated):
        resolver(hub, tmp_path, token="hf_other").resolve("meta-private/gated-1b")
    spec = resolver(hub, tmp_path, token="hf_granted").resolve("meta-private/gated-1b")
    assert spec.layers == 16
    assert all("hf_granted" not in str(request) for request in hub.state.requests)


def test_offline_with_cache_and_without(hub: FakeHub, tmp_path: Path) -> None:
    resolver(hub, tmp_path).resolve("team/llama-1b-copy")  # fills the on-disk cache
    spec = resolver(hub, tmp_path, offline=True).resolve("team/llama-1b-copy")
    assert spec.total_params == 1_235_814_400
    with pytest.raises(ModelNotFound, match="not bundled or in the local Hub cache, and HF_HUB_OFFLINE is set"):
        resolver(hub, tmp_path / "empty", offline=True).resolve("team/other")


def test_an_outage_costs_one_request_per_model_and_is_remembered(hub: FakeHub, tmp_path: Path) -> None:
    # huggingface_hub would retry an uncached download five times with backoff (~23 s); the resolver asks once.
    hub.state.outage_status = 503
    fresh = resolver(hub, tmp_path / "fresh")
    with pytest.raises(ModelNotFound, match="the Hub answered 503 for 'team/llama-1b-copy'"):
        fresh.resolve("team/llama-1b-copy")
    assert len(hub.state.requests) == 1
    with pytest.raises(ModelNotFound, match="answered 503"):  # the same id again: remembered, not asked
        fresh.resolve("team/llama-1b-copy")
    assert len(hub.state.requests) == 1
    assert fresh.hub_unreachable is None  # a 5xx is an answer: other ids are still asked for
    with pytest.raises(ModelNotFound, match="answered 503"):
        fresh.resolve("meta-private/gated-1b")
    assert len(hub.state.requests) == 2


def test_an_unreachable_hub_is_asked_once_per_run(hub: FakeHub, tmp_path: Path) -> None:
    resolver(hub, tmp_path).resolve("team/llama-1b-copy")  # now in the on-disk cache
    closed = ModelResolver(endpoint="http://127.0.0.1:9", cache_dir=tmp_path / "cache", use_catalog=False)
    with pytest.raises(ModelNotFound, match="the Hub cannot be reached"):
        closed.resolve("team/not-cached")
    assert closed.hub_unreachable is not None and closed.hub_calls == 1
    with pytest.raises(ModelNotFound, match=r"the Hub cannot be reached \(ConnectError"):
        closed.resolve("team/also-not-cached")
    assert closed.hub_calls == 1  # not asked again in this run
    assert closed.resolve("team/llama-1b-copy").total_params == 1_235_814_400  # the cache still answers


def test_failed_lookups_are_forgotten_after_the_ttl(hub: FakeHub, tmp_path: Path) -> None:
    now = [0.0]
    service = ModelResolver(endpoint=hub.url, cache_dir=tmp_path / "cache", use_catalog=False, failure_ttl_s=60,
                            clock=lambda: now[0])
    hub.state.outage_status = 503
    with pytest.raises(ModelNotFound):
        service.resolve("team/llama-1b-copy")
    hub.state.outage_status = None
    now[0] = 30.0
    with pytest.raises(ModelNotFound, match="answered 503"):
        service.resolve("team/llama-1b-copy")  # still remembered
    now[0] = 61.0
    assert service.resolve("team/llama-1b-copy").layers == 16  # asked again once the TTL is over


def test_bundled_catalog_answers_offline_and_local_paths_work(tmp_path: Path) -> None:
    offline = ModelResolver(endpoint="http://127.0.0.1:9", offline=True)
    assert "Qwen/Qwen2.5-7B" in catalog_ids()
    assert offline.resolve("qwen/qwen2.5-7b").total_params == 7_615_616_512  # case-insensitive id
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA))
    assert offline.resolve(str(folder)).layers == 16
    assert offline.resolve(str(folder / "config.json")).layers == 16
    with pytest.raises(ModelNotFound):
        offline.resolve(str(tmp_path / "missing" / "config.json"))
