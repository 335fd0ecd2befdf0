"""The software a config runs on, as far as it decides memory: the LLaMA-Factory version and transformers' major.

The policy names them (`llamafactory: "0.9.5"` or `main`, `transformers: 5`); without it the latest
LLaMA-Factory release and the transformers major a fresh `pip install llamafactory` brings are assumed.

* LLaMA-Factory: the rejection table (estimator/llamafactory_rules.py), the accepted keys
  (rules/data/lf_keys.json) and the coverage table (estimator/coverage.py) are keyed by it. v0.9.5 is the
  tag 7af9095 (2026-05-30); main is ff6d4d1 (2026-08-18, 0.9.6.dev0).
* transformers: 4.x builds MoE experts as nn.ModuleList of nn.Linear (LoRA `all` and bitsandbytes reach
  them); 5.x fuses them into 3-D parameters that neither reaches (transformers 5.24
  models/qwen3_moe/modeling_qwen3_moe.py:210-221, integrations/bitsandbytes.py:189). LLaMA-Factory 0.9.5
  pins transformers >=4.55,<=5.6.0, so a fresh install gets 5.x.
"""

from __future__ import annotations

from dataclasses import dataclass

LLAMAFACTORY_VERSIONS = ("0.9.5", "main")
LATEST_RELEASE = "0.9.5"  # the default: the latest LLaMA-Factory release on PyPI
TRANSFORMERS_MAJORS = (4, 5)
DEFAULT_TRANSFORMERS = 5  # what `pip install llamafactory==0.9.5` resolves to (transformers<=5.6.0)


@dataclass(frozen=True)
class Versions:
    llamafactory: str = LATEST_RELEASE
    transformers: int = DEFAULT_TRANSFORMERS

    def describe(self) -> str:
        return f"LLaMA-Factory {self.llamafactory}, transformers {self.transformers}.x"


def parse_llamafactory_version(value: object) -> str:
    """`0.9.5`, `v0.9.5` or `main` (also 0.9.6.dev0, main's own version string); ValueError otherwise."""
    text = str(value).strip().lower().removeprefix("v")
    if text in ("main", "0.9.6.dev0", "0.9.6"):
        return "main"
    if text in LLAMAFACTORY_VERSIONS:
        return text
    raise ValueError(f"llamafactory must be one of {', '.join(LLAMAFACTORY_VERSIONS)} (the versions whose rules "
                     f"vram-check knows), got '{str(value)[:40]}'")


def parse_transformers_major(value: object) -> int:
    """4 or 5 (a version such as 4.57.1 counts by its major); ValueError otherwise."""
    text = str(value).strip().lower().removeprefix("v")
    major = text.split(".", 1)[0]
    if major.isdigit() and int(major) in TRANSFORMERS_MAJORS:
        return int(major)
    raise ValueError(f"transformers must be 4 or 5 (the major version), got '{str(value)[:40]}'")
