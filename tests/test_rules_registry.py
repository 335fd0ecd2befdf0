"""The rule registry: every module follows the rule shape, IDs are unique, docs/rules.md lists them."""

from __future__ import annotations

from pathlib import Path

from rules.checks import RuleContext, rule_docs, rule_modules, run_rules

DOCS = Path(__file__).resolve().parents[1] / "docs" / "rules.md"


def test_every_rule_module_has_id_severity_check_and_one_line_doc() -> None:
    assert all(hasattr(module, "check") for module in rule_modules())
    ids = [rule for rule, _, _ in rule_docs()]
    assert len(ids) == len(set(ids)) >= 17
    for rule, severity, doc in rule_docs():
        assert severity in ("error", "warning", "info"), rule
        assert doc and len(doc) <= 110, rule


def test_docs_list_every_rule_with_its_severity_and_doc() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for rule, severity, doc in rule_docs():
        assert f"| `{rule}` | {severity} | {doc} |" in text, rule


def test_findings_come_sorted_by_line() -> None:
    text = "model_name_or_path: x\nfinetuning_type: full\nuse_dora: true\nquantization_bit: 4\nlora_rnak: 8\n"
    lines = [f.line for f in run_rules(RuleContext.from_yaml(text, "c.yaml"))]
    assert lines == [3, 4, 5]


def test_empty_config_has_no_findings() -> None:
    assert run_rules(RuleContext.from_yaml("", "c.yaml")) == []
