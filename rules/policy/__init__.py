"""The team's policy (`.github/vram-check.yml`) and the per-config target comment.

schema: the policy file, validated, with its defaults; globs: which paths are training configs;
target: `# vram-check: pool=dev gpus=2` in a training YAML; models: the `models:` map (Hub id → config.json in
the repository).
"""

from rules.policy.models import LocalModel, read_models
from rules.policy.schema import (
    FAIL_ON_WORDS,
    POLICY_PATH,
    Policy,
    Pool,
    default_policy,
    failing_verdicts,
    load_policy,
    looks_like_training_config,
    policy_from_document,
    read_policy,
)
from rules.policy.target import Target, parse_target_comment

__all__ = [
    "FAIL_ON_WORDS",
    "POLICY_PATH",
    "LocalModel",
    "Policy",
    "Pool",
    "Target",
    "default_policy",
    "failing_verdicts",
    "load_policy",
    "looks_like_training_config",
    "parse_target_comment",
    "policy_from_document",
    "read_models",
    "read_policy",
]
