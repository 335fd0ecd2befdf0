"""`vram-check estimate CONFIG.yaml`: the per-GPU breakdown and verdict of one training config."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bot.local import cli_target, read_policy, relative, repo_root_for, resolver_from_env
from bot.render.markdown import render_markdown
from bot.render.text import render_text
from estimator.errors import InputError
from rules.check import WorkingTree, check_config
from rules.report import RunReport

NAME = "estimate"
HELP = "Estimate the per-GPU peak memory of one LLaMA-Factory training config."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG.yaml", help="a LLaMA-Factory training YAML")
    parser.add_argument("--model", help="Hub id, config.json or model folder (default: model_name_or_path)")
    parser.add_argument("--gpu", help="GPU name, e.g. A100-80GB, H100, RTX-4090 (default: the policy's pool)")
    parser.add_argument("--gpus", type=int, help="GPUs per node")
    parser.add_argument("--nodes", type=int, help="number of nodes")
    parser.add_argument("--policy", help="policy file (default: .github/vram-check.yml of the repository)")
    parser.add_argument("--format", choices=("text", "markdown", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    config = Path(args.config)
    if not config.is_file():
        raise InputError("file not found" if not config.exists() else "not a file", file=args.config)
    root = repo_root_for([config])
    policy = read_policy(root, args.policy)
    target = cli_target(policy, args.gpu, args.gpus, args.nodes)
    report = check_config(relative(config, root), WorkingTree(root), policy, resolver_from_env(), target=target,
                          model_override=args.model)
    if report.error is not None and report.estimate is None:
        raise InputError(report.error)
    if args.format == "json":
        print(json.dumps(report.to_json(), indent=2))
    elif args.format == "markdown":
        print(render_markdown(RunReport((report,), tuple(policy.notes))))
    else:
        print(render_text(RunReport((report,), tuple(policy.notes))), end="")
    return 1 if report.worst == "no-fit" else 0
