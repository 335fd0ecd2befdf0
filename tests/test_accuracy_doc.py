"""docs/accuracy.md is what `python -m benchmarks.accuracy` makes from the current estimator and data: the oracle
grid comparison and the cross-validated runtime calibration are never stale (issue 12)."""

from __future__ import annotations

from benchmarks.accuracy import DOC, render


def test_accuracy_doc_is_regenerated_from_the_current_code_and_data() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), "run: python -m benchmarks.accuracy"
