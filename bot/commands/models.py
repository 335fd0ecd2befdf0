"""`vram-check models pull [PATHS...]`: fill the local Hub cache with the config.json of every model the
repository's training configs use, while the Hub can be reached, so that later runs work offline.

An air-gapped CI restores that cache (HF_HOME, default ~/.cache/huggingface) as an artifact and runs
`vram-check check` with HF_HUB_OFFLINE=1 (README, "Offline and air-gapped runs"). Ids the bundled catalog
answers, ids of the policy's `models:` map and local paths need nothing and are skipped. Exit codes: 0 every
model is available offline, 1 some could not be fetched (each says why), 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bot.local import discover, read_local_policy, repo_root_for, resolver_from_env
from estimator.errors import InputError, UnsupportedArchitecture
from estimator.hub import ModelResolver, is_bundled, is_local_reference
from estimator.model import model_spec_from_config
from estimator.source import parse_json, read_bounded
from rules.policy import Policy
from rules.sources import ParsedFiles, WorkingTree

NAME = "models"
HELP = "Model configs for offline use: `models pull` fills the Hub cache for every model the configs use."

EXIT_SOME_FAILED = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    pull = sub.add_parser("pull", help="fetch the config.json of every model id the training configs use into "
                                       "the local Hub cache (HF_HOME), for later offline runs")
    pull.add_argument("paths", nargs="*", metavar="PATHS", help="configs or folders (default: the policy's globs)")
    pull.add_argument("--policy", help="policy file (default: .github/vram-check.yml of the repository)")
    pull.add_argument("--id", action="append", default=[], dest="ids", metavar="MODEL_ID",
                      help="also fetch this Hub id (repeatable)")


@dataclass
class Wanted:
    """Model ids to fetch, with the configs that use each, and what needs no fetch."""

    ids: dict[str, list[str]] = field(default_factory=dict)  # id → configs using it
    bundled: set[str] = field(default_factory=set)
    mapped: set[str] = field(default_factory=set)  # in the policy's models: map
    local: set[str] = field(default_factory=set)  # local paths (nothing to fetch)
    unreadable: list[str] = field(default_factory=list)


def wanted_models(configs: list[str], files: ParsedFiles, policy: Policy, extra: list[str]) -> Wanted:
    wanted = Wanted()
    uses: list[tuple[str, str]] = [(model_id, "--id") for model_id in extra]
    for path in configs:
        try:
            data = files.document(path).data
        except (FileNotFoundError, InputError) as error:
            wanted.unreadable.append(f"{path}: {error}")
            continue
        model = data.get("model_name_or_path") if isinstance(data, dict) else None
        if isinstance(model, str) and model.strip():
            uses.append((model.strip(), path))
    for model_id, where in uses:
        if is_local_reference(model_id) or model_id.count("/") != 1 or " " in model_id:
            wanted.local.add(model_id)
        elif policy.local_model(model_id) is not None:
            wanted.mapped.add(model_id)
        elif is_bundled(model_id):
            wanted.bundled.add(model_id)
        else:
            wanted.ids.setdefault(model_id, []).append(where)
    return wanted


def _countable(path: Path, model_id: str) -> str | None:
    """Why vram-check cannot count this architecture from its config.json (None: it can)."""
    try:
        config = parse_json(read_bounded(path), str(path))
        model_spec_from_config(config, model_id)
    except UnsupportedArchitecture as error:
        return error.message
    except InputError as error:
        return error.message
    return None


def pull(resolver: ModelResolver, model_id: str) -> tuple[bool, str]:
    """(available offline, one line saying what happened)."""
    before = resolver.cached_config(model_id)
    try:
        path = resolver.fetch_config(model_id)
    except InputError as error:
        return False, f"{model_id}: FAILED, {error.message.split(': give ')[0]}"
    if before is None:
        verb = "fetched"
    elif resolver.hub_unreachable is not None:
        verb = "cached (the Hub could not be reached; the cached copy stays)"
    else:
        verb = "up to date"
    unsupported = _countable(path, model_id)
    note = f"; offline runs will report: {unsupported}" if unsupported else ""
    return True, f"{model_id}: {verb} ({path}){note}"


def run(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths]
    root = repo_root_for(paths or [Path.cwd()])
    policy = read_local_policy(root, args.policy)
    files = ParsedFiles(WorkingTree(root))
    configs = discover(root, policy, paths, files)
    wanted = wanted_models(configs, files, policy, list(args.ids))
    resolver = resolver_from_env()
    if resolver.offline:
        raise InputError("HF_HUB_OFFLINE is set: `models pull` needs the Hub; run it where the Hub can be reached")
    skipped = [f"{len(wanted.bundled)} bundled", f"{len(wanted.mapped)} in the policy's models: map",
               f"{len(wanted.local)} local paths"]
    print(f"vram-check models pull: {len(wanted.ids)} model ids to fetch from {len(configs)} configs "
          f"({', '.join(skipped)} need no fetch)")
    failed = 0
    for model_id in sorted(wanted.ids):
        ok, line = pull(resolver, model_id)
        failed += not ok
        print(f"  {line}")
    for problem in wanted.unreadable:
        print(f"vram-check: skipped {problem}", file=sys.stderr)
    if failed:
        print(f"vram-check: {failed} of {len(wanted.ids)} model ids could not be fetched", file=sys.stderr)
        return EXIT_SOME_FAILED
    return 0
