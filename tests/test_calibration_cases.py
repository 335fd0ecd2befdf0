"""benchmarks/calibration/cases.jsonl: every case is input the estimator reads, and every measured row is accounted for.

The cases are parsed the way a check reads a repository (estimator.plan.parse_plan with the DeepSpeed JSON served
at the path the YAML names) and their model configs are counted (estimator.model.model_spec_from_config). No
estimate is computed here: the cases are data for the runtime calibration, not expected values.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.calibration import build_cases
from estimator.model import model_spec_from_config
from estimator.plan import parse_plan

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION = ROOT / "benchmarks" / "calibration"


def _cases() -> list[dict[str, Any]]:
    lines = (CALIBRATION / "cases.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


CASES = _cases()


def test_committed_files_are_what_the_builder_writes() -> None:
    assert build_cases.main(["--check"]) == 0


def test_every_measured_row_is_a_case_or_a_skip_with_a_reason() -> None:
    ids: list[str] = []
    for name in ("measured.csv", "public_measurements.csv"):
        with (CALIBRATION / name).open(encoding="utf-8") as handle:
            ids += [row["id"] for row in csv.DictReader(handle)]
    skipped_text = (CALIBRATION / "cases_skipped.md").read_text(encoding="utf-8")
    skipped = {line.split("|")[1].strip() for line in skipped_text.splitlines() if line.startswith("| ")
               and line.split("|")[1].strip() in ids}
    cased = {case["id"] for case in CASES}
    assert not cased & skipped
    assert cased | skipped == set(ids)
    assert len(ids) == len(set(ids)) == 158 + 284


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_case_is_estimator_input(case: dict[str, Any]) -> None:
    assert case["metric"] in ("allocated", "reserved", "nvidia-smi", "unknown")
    assert case["outcome"] in ("measured", "oom", "fits-upper-bound")
    assert case["sequence"] in ("fixed", "padded-to-max", "variable-max", "packed", "unknown")
    assert (case["measured_bytes"] is None) == (case["outcome"] == "oom")
    if case["exact"]:
        assert case["metric"] != "unknown" and case["outcome"] == "measured"
        assert case["sequence"] in ("fixed", "padded-to-max", "packed")
    deepspeed = case["deepspeed_json"]

    def read(path: str) -> str:
        if deepspeed is not None and path == "ds_config.json":
            return json.dumps(deepspeed)
        raise FileNotFoundError(path)

    world = case["gpus_per_node"] * case["nodes"]
    plan = parse_plan(case["yaml"], "case.yaml", read, world_size=world)
    assert (plan.deepspeed is not None) == (deepspeed is not None)
    assert plan.model_name_or_path == case["model_id"]
    config = json.loads((ROOT / case["model_config"]).read_text(encoding="utf-8"))
    spec = model_spec_from_config(config, case["model_id"])
    assert spec.total_params > 0
