"""`vram-check diagnose LOG [--config YAML] [--gpu NAME] [--model ID] [--format text|markdown|json]`.

Reads a training log (plain text or LLaMA-Factory's trainer_log.jsonl, any size, streamed), finds the
out-of-memory errors, says in which phase each happened and why, shows any measured peaks and, with
--config, compares them with the estimate. Exit codes: 0 no OOM found, 1 OOM diagnosed, 2 bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.local import repo_root_for, resolver_from_env

NAME = "diagnose"
HELP = "Explain an out-of-memory failure from a training log (and compare measured peaks with the estimate)."

EXIT_NO_OOM = 0
EXIT_OOM = 1

FORMATS = ("json", "markdown", "text")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("log", type=Path, help="training log, or LLaMA-Factory's trainer_log.jsonl")
    parser.add_argument(
        "--config", type=Path, help="the LLaMA-Factory YAML of the run, to compare with the estimate"
    )
    parser.add_argument(
        "--model", help="model id, config.json or folder (default: the YAML's model_name_or_path)"
    )
    parser.add_argument("--gpu", help="GPU the run used (default: the capacity the OOM message reports)")
    parser.add_argument("--gpus", type=int, default=1, help="GPUs per node of the run (default 1)")
    parser.add_argument("--nodes", type=int, default=1, help="nodes of the run (default 1)")
    parser.add_argument("--format", choices=FORMATS, default="text")


def run(args: argparse.Namespace) -> int:
    # imported here: the other commands should not pay for the log scanner at start-up
    from bot.render.diagnose import render_json, render_markdown, render_text
    from rules.diagnose import diagnose_file
    from rules.diagnose.compare import compare_with_estimate

    renderers = {"text": render_text, "markdown": render_markdown, "json": render_json}
    diagnosis = diagnose_file(args.log)
    if args.config is not None:
        diagnosis.comparison = compare_with_estimate(
            diagnosis, args.config, args.model, args.gpu, args.gpus, args.nodes,
            repo_root=repo_root_for([args.config]), resolver=resolver_from_env(),
        )
    print(renderers[args.format](diagnosis), end="")
    return EXIT_OOM if diagnosis.oom_found else EXIT_NO_OOM
