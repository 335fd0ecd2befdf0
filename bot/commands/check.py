"""`vram-check check [PATHS...] [--base REF]`: every training config of a repository, as the Action runs it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.local import (
    GitRevision,
    changed_since,
    discover,
    model_files,
    progress_line,
    read_local_policy,
    repo_root_for,
    resolver_from_env,
)
from bot.render.markdown import render_markdown
from bot.render.text import render_text
from rules.gate import judge
from rules.pipeline import CheckOptions, check_configs
from rules.sources import ParsedFiles, WorkingTree

NAME = "check"
HELP = "Check the repository's training configs against the team's GPU policy."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATHS", help="configs or folders (default: the policy's globs)")
    parser.add_argument("--base", help="only configs changed since this git ref; also show the memory change")
    parser.add_argument("--policy", help="policy file (default: .github/vram-check.yml of the repository)")
    parser.add_argument("--model", action="append", default=[], metavar="ID=PATH",
                        help="answer the Hub id ID from a local config.json or model folder (repeatable); "
                             "for air-gapped runs, as the policy's `models:` map does for the repository")
    parser.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    parser.add_argument("--output", help="also write the JSON report to this file")


def run(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths]
    root = repo_root_for(paths or [Path.cwd()])
    policy = read_local_policy(root, args.policy)
    head = ParsedFiles(WorkingTree(root))
    configs = discover(root, policy, paths, head)
    base = None
    if args.base:
        changed = changed_since(root, args.base)
        configs = [c for c in configs if c in changed]
        base = ParsedFiles(GitRevision(root, args.base))
    options = CheckOptions(model_files=model_files(args.model))
    report = check_configs(configs, head, policy, resolver_from_env(), base, options,
                           progress=progress_line(sys.stderr))
    if args.output:
        Path(args.output).write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    if args.format == "json":
        print(json.dumps(report.to_json(), indent=2))
    elif args.format == "markdown":
        print(render_markdown(report))
    else:
        print(render_text(report), end="")
    if not configs:
        print("vram-check: no training configs matched" + (f" changes since {args.base}" if args.base else ""),
              file=sys.stderr)
    return judge(report, policy).exit_code
