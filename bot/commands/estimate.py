"""`vram-check estimate CONFIG.yaml`: the per-GPU breakdown and verdict of one training config."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bot.local import cli_target, read_local_policy, relative, repo_root_for, resolver_from_env
from bot.render.markdown import render_markdown
from bot.render.text import render_text
from estimator.errors import InputError
from rules.gate import judge
from rules.pipeline import CheckOptions, check_config
from rules.policy import Policy
from rules.report import RunReport
from rules.sources import ParsedFiles, WorkingTree

NAME = "estimate"
HELP = "Estimate the per-GPU peak memory of one LLaMA-Factory training config."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG.yaml", help="a LLaMA-Factory training YAML")
    parser.add_argument("--model", help="Hub id, config.json or model folder (default: model_name_or_path)")
    parser.add_argument("--gpu", help="GPU name, e.g. A100-80GB, H100, RTX-4090 (default: the policy's pool)")
    parser.add_argument("--gpus", type=int, help="GPUs per node")
    parser.add_argument("--nodes", type=int, help="number of nodes")
    parser.add_argument("--policy", help="policy file (default: .github/vram-check.yml of the repository)")
    parser.add_argument("--compare", action="store_true",
                        help="with --gpu/--gpus/--nodes: also judge the policy's pools, for comparison")
    parser.add_argument("--format", choices=("text", "markdown", "json"), default="text")


def _notes(policy: Policy, explicit_target: bool) -> tuple[str, ...]:
    """The policy's notes, minus the default-policy one (it describes `check`'s discovery); without a policy
    file and without --gpu, one line saying which pool the estimate is for."""
    if policy.from_file:
        return tuple(policy.notes)
    if explicit_target:
        return ()
    pool = policy.pool(policy.default_pool)
    return (f"no {policy.path} and no --gpu: estimated for {pool.per_node}×{pool.gpu.name}, the default pool; "
            "pass --gpu and --gpus for your hardware",)


def run(args: argparse.Namespace) -> int:
    config = Path(args.config)
    if not config.is_file():
        raise InputError("file not found" if not config.exists() else "not a file", file=args.config)
    root = repo_root_for([config])
    policy = read_local_policy(root, args.policy)
    target = cli_target(policy, args.gpu, args.gpus, args.nodes)
    # --gpu/--gpus/--nodes ask about exactly that target: the policy's pools only with --compare
    options = CheckOptions(target=target, model_override=args.model,
                           comparison_pools=target is None or args.compare)
    report = check_config(relative(config, root), ParsedFiles(WorkingTree(root)), policy, resolver_from_env(),
                          options=options)
    if report.error is not None and report.estimate is None:
        raise InputError(report.error)
    run_report = RunReport((report,), _notes(policy, target is not None))
    if args.format == "json":
        print(json.dumps(report.to_json(), indent=2))
    elif args.format == "markdown":
        print(render_markdown(run_report))
    else:
        print(render_text(run_report), end="")
    return judge(run_report, policy).exit_code
