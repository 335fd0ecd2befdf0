"""A key the checked LLaMA-Factory version does not accept (its parser stops on it), with a did-you-mean."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from functools import cache
from importlib import resources

from estimator.llamafactory_rules import MEGATRON_KEYS
from estimator.plan import V1_KEYS
from estimator.source import describe
from rules.checks import RuleContext
from rules.report import Finding, Severity

ID = "unknown-key"
SEVERITY: Severity = "error"

_V4_ONLY = "Seq2SeqTrainingArguments (transformers 4.x only, removed in 5.x)"
_V5_ONLY = "Seq2SeqTrainingArguments (transformers 5.x only)"
# Keys of mcore_adapter's arguments (USE_MCA=1, LLaMA-Factory's examples/megatron) and of the v1 schema
# (USE_V1=1): such configs are parsed by other classes, so the key list below does not apply to them; the
# estimate reports them as not modelled.
_OTHER_SCHEMAS = MEGATRON_KEYS | V1_KEYS


@cache
def accepted_keys() -> dict[str, str]:
    """Every accepted key → the argument class it belongs to (rules/data/lf_keys.json)."""
    data = json.loads(resources.files("rules").joinpath("data/lf_keys.json").read_text(encoding="utf-8"))
    return {key: group for group, keys in data.items() if isinstance(keys, list) for key in keys}


def check(ctx: RuleContext) -> Iterator[Finding]:
    if _OTHER_SCHEMAS & set(ctx.raw):
        return
    keys = accepted_keys()
    version = ctx.llamafactory
    for key in ctx.raw:
        group = keys.get(str(key))
        if group is not None and group.endswith("main only)"):
            if version != "main":
                yield ctx.finding(ID, SEVERITY, f"{describe(key)} is a LLaMA-Factory main key: {version} stops with "
                                  "\"Some keys are not used by the HfArgumentParser\" (set llamafactory: main in the "
                                  "policy if you run main)", str(key))
        elif group == _V4_ONLY:
            yield ctx.finding(ID, "warning", f"{describe(key)} was removed in transformers 5; LLaMA-Factory {version} "
                              "rejects it when installed with transformers 5.x", str(key))
        elif group == _V5_ONLY:
            yield ctx.finding(ID, "warning", f"{describe(key)} needs transformers 5; with transformers 4.x "
                              "LLaMA-Factory rejects it", str(key))
        elif group is None:
            close = difflib.get_close_matches(str(key), list(keys), n=1, cutoff=0.75)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            yield ctx.finding(ID, SEVERITY, f"unknown key {describe(key)}{hint}: LLaMA-Factory stops with "
                              "\"Some keys are not used by the HfArgumentParser\"", str(key))
