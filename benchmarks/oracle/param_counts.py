"""Exact parameter counts of every bundled catalog config, from the real transformers model.

For each ``estimator/catalog/*.json`` the model class named in ``architectures`` (falling back to
``AutoModelForCausalLM``) is built from the config on the ``meta`` device, so nothing is allocated,
and ``sum(p.numel() for p in model.parameters())`` is recorded (``parameters()`` de-duplicates tied
weights, which is the convention DESIGN.md fixes for "exact" counts).  Families that transformers
cannot build without remote code (Qwen-1 ``qwen``) get ``null`` and the reason.

Output: ``tests/fixtures/param_counts.json``::

    {"<file name>": {"total": int, "embeddings": int, "lm_head": int (0 if tied),
                     "by_module": {"model.embed_tokens": int, "model.layers": int, ...},
                     "per_layer": [int, ...], "layer_parts": {"self_attn": int, "mlp": int, ...},
                     "transformers": "5.x", "class": "LlamaForCausalLM", "config_class": ...}}

Run: ``.venv-oracle/bin/python -m benchmarks.oracle.param_counts`` (about 10 s for the catalog).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
import transformers
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[2]
CATALOG = REPO_ROOT / "estimator" / "catalog"
OUTPUT = REPO_ROOT / "tests" / "fixtures" / "param_counts.json"

_LAYER_INDEX = re.compile(r"\.(\d+)\.")


def load_config(path: Path) -> transformers.PretrainedConfig:
    """Load a config.json exactly as ``from_pretrained`` would (a temp dir holding ``config.json``)."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(path, Path(tmp) / "config.json")
        config: transformers.PretrainedConfig = transformers.AutoConfig.from_pretrained(tmp, trust_remote_code=False)
    return config


def model_class_for(config: transformers.PretrainedConfig) -> type[nn.Module]:
    """The class named in ``architectures`` when transformers ships it, else AutoModelForCausalLM."""
    for name in getattr(config, "architectures", None) or []:
        cls = getattr(transformers, name, None)
        if isinstance(cls, type):
            return cls
    return transformers.AutoModelForCausalLM  # type: ignore[no-any-return]


def build_on_meta(config: transformers.PretrainedConfig) -> nn.Module:
    cls = model_class_for(config)
    with torch.device("meta"):
        if cls is transformers.AutoModelForCausalLM:
            model: nn.Module = cls.from_config(config)  # type: ignore[attr-defined]
        else:
            model = cls._from_config(config)  # type: ignore[attr-defined]
    return model


def _group_key(param_name: str) -> str:
    """Top-level group: the module path up to the first layer index, at most 3 components deep."""
    parts = param_name.split(".")[:-1]  # drop the parameter's own name
    group: list[str] = []
    for part in parts[:3]:
        if part.isdigit():
            break
        group.append(part)
    return ".".join(group) or param_name


def _unique_named_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    # named_parameters() de-duplicates shared tensors, keeping the first name (the embedding).
    return list(model.named_parameters())


def _decoder_layers(model: nn.Module) -> nn.ModuleList | None:
    """The text decoder's layer list (``*.layers`` / ``*.h``) holding the most parameters."""
    best: nn.ModuleList | None = None
    best_count = -1
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and name.split(".")[-1] in ("layers", "h"):
            if "visual" in name or "vision" in name:
                continue
            count = sum(p.numel() for p in module.parameters())
            if count > best_count:
                best, best_count = module, count
    return best


def count(model: nn.Module) -> dict[str, Any]:
    named = _unique_named_parameters(model)
    by_module: dict[str, int] = defaultdict(int)
    for name, param in named:
        by_module[_group_key(name)] += param.numel()

    input_embeddings = model.get_input_embeddings()  # type: ignore[operator]
    embedding_weight = input_embeddings.weight
    output_embeddings = model.get_output_embeddings()  # type: ignore[operator]
    lm_head = 0
    if output_embeddings is not None and output_embeddings.weight is not embedding_weight:
        lm_head = sum(p.numel() for p in output_embeddings.parameters())

    layers = _decoder_layers(model)
    per_layer: list[int] = []
    layer_parts: dict[str, int] = {}
    if layers is not None:
        per_layer = [sum(p.numel() for p in layer.parameters()) for layer in layers]
        for child_name, child in layers[0].named_children():
            layer_parts[child_name] = sum(p.numel() for p in child.parameters())
        direct = sum(p.numel() for p in layers[0].parameters(recurse=False))
        if direct:
            layer_parts["(direct)"] = direct

    return {
        "total": sum(p.numel() for _, p in named),
        "embeddings": embedding_weight.numel(),
        "lm_head": lm_head,
        "tied": lm_head == 0 and output_embeddings is not None,
        "by_module": dict(sorted(by_module.items())),
        "layers": len(per_layer),
        "per_layer": per_layer,
        "layer0_parts": layer_parts,
    }


def count_file(path: Path) -> dict[str, Any]:
    base: dict[str, Any] = {"transformers": transformers.__version__, "torch": torch.__version__}
    raw = json.loads(path.read_text())
    try:
        config = load_config(path)
    except (ValueError, KeyError, OSError) as exc:
        if "custom code" in str(exc):
            reason = (
                f"model_type {raw.get('model_type')!r} is remote code ({raw.get('architectures')}); "
                f"transformers {transformers.__version__} has no native class; "
                "the oracle never runs remote code"
            )
        else:
            reason = f"config: {type(exc).__name__}: {exc}"
        return {**base, "total": None, "class": None, "reason": reason}
    cls = model_class_for(config)
    try:
        model = build_on_meta(config)
    except Exception as exc:  # any build failure is recorded, not fatal
        return {**base, "total": None, "class": cls.__name__, "reason": f"build: {type(exc).__name__}: {exc}"}
    return {**base, **count(model), "class": type(model).__name__, "config_class": type(config).__name__}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=CATALOG)
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    for path in sorted(args.catalog.glob("*.json")):
        results[path.name] = count_file(path)
        entry = results[path.name]
        reason = str(entry.get("reason", ""))[:80]
        print(f"{path.name:45s} {entry.get('class')!s:40s} {entry['total']!s:>16s} {reason}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
