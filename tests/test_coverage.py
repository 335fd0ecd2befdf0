"""The coverage table (estimator/coverage.py → docs/coverage.md): the document is what the table generates,
and every row does what it says — its example, set in an otherwise identical config and run through the
pipeline, moves the estimate the way the row's `expect` says (more, less, the same), or makes the estimate
"not modelled" with the key named and the verdict unknown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from estimator.coverage import ROWS, Row, markdown
from estimator.hub import ModelResolver
from estimator.suggest import set_key
from rules.pipeline import CheckOptions, check_config
from rules.policy import load_policy
from rules.report import ConfigReport
from rules.sources import ParsedFiles, WorkingTree

DOC = Path(__file__).resolve().parents[1] / "docs" / "coverage.md"
RESOLVER = ModelResolver(offline=True)  # the bundled catalog: every row's model is in it


def test_docs_coverage_is_what_the_table_generates() -> None:
    assert DOC.read_text(encoding="utf-8") == markdown(), "run: python -m estimator.coverage > docs/coverage.md"


def test_every_key_appears_once() -> None:
    keys = [row.key for row in ROWS]
    assert len(keys) == len(set(keys))


def check(root: Path, text: str, row: Row) -> ConfigReport:
    policy = load_policy("pools:\n  - {name: a100, gpu: A100-80GB, per_node: 8}\n"
                         f"llamafactory: '{row.versions[0]}'\n")
    (root / "c.yaml").write_text((f"# vram-check: gpus={row.gpus}\n" if row.gpus else "") + text)
    return check_config("c.yaml", ParsedFiles(WorkingTree(root)), policy, RESOLVER,
                        options=CheckOptions(sizing=False, comparison_pools=False))


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.key)
def test_row(row: Row, tmp_path: Path) -> None:
    base = f"model_name_or_path: {row.model}\n{row.context}"
    without = check(tmp_path, base, row)
    # the key set to its example (replacing the context's own value: a duplicate key is an error in LF)
    with_key = check(tmp_path, set_key(base, row.key, json.dumps(row.example))[0], row)
    assert without.status != "error", without.problem
    assert with_key.status != "error", with_key.problem
    assert without.estimate is not None and with_key.estimate is not None
    if row.status == "unknown":
        assert with_key.status == "unknown" and not with_key.modelled
        assert with_key.target is not None and with_key.target.verdict == "unknown"
        assert any(row.key in part or "Megatron" in part for part in with_key.not_modelled)
        assert with_key.suggestions == ()
        return
    assert with_key.modelled, with_key.not_modelled
    before, after = without.estimate.peak_bytes, with_key.estimate.peak_bytes
    if row.expect == "more":
        assert after > before
    elif row.expect == "less":
        assert after < before
    elif row.expect == "same":
        assert after == before
    else:
        assert after != before
