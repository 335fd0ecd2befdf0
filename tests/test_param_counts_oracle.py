"""tests/fixtures/param_counts.json is what transformers builds from each catalog config today.

The fixture (written by benchmarks/oracle/param_counts.py) is the ground truth the estimator's exact
parameter counts are tested against; this test rebuilds every catalog model on the meta device with
the installed transformers and checks the fixture still matches, so a stale fixture or a changed
architecture in transformers fails CI instead of silently moving the target.  Needs the ``oracle``
extra; skipped without torch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.oracle.param_counts import count_file  # noqa: E402

CATALOG = REPO_ROOT / "estimator" / "catalog"
FIXTURE = json.loads((REPO_ROOT / "tests" / "fixtures" / "param_counts.json").read_text())


def test_fixture_covers_every_catalog_config() -> None:
    assert sorted(FIXTURE) == sorted(p.name for p in CATALOG.glob("*.json"))


@pytest.mark.parametrize("name", sorted(FIXTURE))
def test_fixture_matches_transformers(name: str) -> None:
    fresh = count_file(CATALOG / name)
    recorded = FIXTURE[name]
    assert fresh["total"] == recorded["total"]
    if recorded["total"] is None:
        assert "remote code" in recorded["reason"]
        return
    assert fresh["by_module"] == recorded["by_module"]
    assert fresh["embeddings"] == recorded["embeddings"]
    assert fresh["lm_head"] == recorded["lm_head"]
    assert sum(recorded["by_module"].values()) == recorded["total"]
