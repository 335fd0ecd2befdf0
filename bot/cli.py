"""The `vram-check` command line: one module per subcommand under `bot/commands/`.

Each command module exposes `NAME`, `HELP`, `add_arguments(parser)` and `run(args) -> int`.
Exit codes (DESIGN.md): 0 all fit or tight, 1 some config does not fit, 2 usage or input error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from bot.render.escape import terminal
from estimator.errors import InputError

COMMAND_MODULES = ("estimate", "check", "diagnose", "models", "serve")
EXIT_USAGE = 2


def _load_commands() -> list[ModuleType]:
    return [importlib.import_module(f"bot.commands.{name}") for name in COMMAND_MODULES]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vram-check",
        description="Estimate the per-GPU peak memory of LLaMA-Factory training configs before the run.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _load_commands():
        command_parser = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(command_parser)
        command_parser.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except InputError as error:
        print(f"vram-check: error: {terminal(error)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
