"""Calibration cases: every published measurement that a LLaMA-Factory YAML can express, as estimator input.

Reads ``measured.csv`` and ``public_measurements.csv`` (this folder), applies the per-source mapping below and
writes ``cases.jsonl`` (one case per expressible row) and ``cases_skipped.md`` (every other row, with the reason).
Each framework default a mapping relies on is cited as ``owner/repo@commit:path`` next to the code that uses it
and in CASES.md. No torch, no estimator run, no network: the facts read from the sources' repositories are
written into the tables below.

    python -m benchmarks.calibration.build_cases          # regenerate
    python -m benchmarks.calibration.build_cases --check  # fail if the committed files are stale
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CASES = HERE / "cases.jsonl"
SKIPPED = HERE / "cases_skipped.md"

GiB, MiB, GB, MB = 2**30, 2**20, 10**9, 10**6

Row = dict[str, str]
Case = dict[str, Any]

# ---------------------------------------------------------------------------------------------------------------
# Model configs. Main catalog (bundled) or notes/catalog copies in models/ (with SOURCES there).
# ---------------------------------------------------------------------------------------------------------------
MAIN = "estimator/catalog/"
COPY = "benchmarks/calibration/models/"

# Qwen-1 Chat checkpoints: no Chat config.json was found, but the GPTQ Int4 quantization of the Chat model is in the
# catalog; its shape fields equal the base file's (checked by _same_shapes below), so the Chat model (the Int4
# file's unquantized source) has the base model's architecture. Proof is re-run on every build.
QWEN1_SHAPE_FIELDS = ("architectures", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                      "kv_channels", "vocab_size", "no_bias", "tie_word_embeddings", "rotary_pct", "layer_norm_epsilon")
CHAT_VIA_INT4 = {
    "Qwen/Qwen-1_8B-Chat": (MAIN + "Qwen__Qwen-1_8B.json", MAIN + "Qwen__Qwen-1_8B-Chat-Int4.json"),
    "Qwen/Qwen-7B-Chat": (MAIN + "Qwen__Qwen-7B.json", MAIN + "Qwen__Qwen-7B-Chat-Int4.json"),
}


def _load(path: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / path).read_text(encoding="utf-8"))
    return data


def _same_shapes(a: str, b: str, fields: tuple[str, ...]) -> str:
    """Raise unless both config files agree on every listed field; return the proof sentence."""
    first, second = _load(a), _load(b)
    differ = [f for f in fields if first.get(f) != second.get(f)]
    if differ:
        raise SystemExit(f"architecture proof failed: {a} vs {b} differ in {differ}")
    return (f"architecture: {Path(a).name} used; its fields {', '.join(fields)} equal those of "
            f"{Path(b).name} (the GPTQ Int4 quantization of this Chat model), checked by build_cases.py")


def qwen1_chat(model_id: str) -> tuple[str, str]:
    base, int4 = CHAT_VIA_INT4[model_id]
    return base, _same_shapes(base, int4, QWEN1_SHAPE_FIELDS)


# torchtitan's Llama 3.1 8B flavor (pytorch/torchtitan@820504e20:torchtitan/models/llama3/__init__.py l.41-49:
# dim 4096, n_layers 32, n_heads 32, n_kv_heads 8, ffn_dim_multiplier 1.3, multiple_of 1024; vocab from the Llama 3
# tokenizer, 128256) against the HF config: FFN = multiple_of * ceil(1.3 * int(2 * 4 * 4096 / 3) / multiple_of).
def _torchtitan_8b_proof() -> str:
    cfg = _load(MAIN + "meta-llama__Llama-3.1-8B.json")
    ffn = 1024 * math.ceil(int(1.3 * int(2 * 4 * 4096 / 3)) / 1024)
    want = {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
            "intermediate_size": ffn, "vocab_size": 128256, "tie_word_embeddings": False}
    differ = {k: (cfg.get(k), v) for k, v in want.items() if cfg.get(k) != v}
    if differ:
        raise SystemExit(f"torchtitan 8B flavor does not match meta-llama__Llama-3.1-8B.json: {differ}")
    return ("architecture: torchtitan llama3 '8B' flavor (torchtitan@820504e20 torchtitan/models/llama3/__init__.py "
            "l.41-49) equals meta-llama__Llama-3.1-8B.json in hidden/layers/heads/kv heads/FFN "
            f"({ffn})/vocab/untied output, checked by build_cases.py; torchtitan's own module code, not transformers'")


# ---------------------------------------------------------------------------------------------------------------
# GPU capacities (rules/data/gpus.json usable_mib) for the upper-bound rule.
# ---------------------------------------------------------------------------------------------------------------
def _usable_mib() -> dict[str, int]:
    data = json.loads((ROOT / "rules" / "data" / "gpus.json").read_text(encoding="utf-8"))
    table: dict[str, int] = {}
    for gpu in data["gpus"]:
        table[gpu["name"]] = int(gpu["usable_mib"])
        for alias in gpu.get("aliases", []):
            table[alias.upper()] = int(gpu["usable_mib"])
    return table


USABLE_MIB = _usable_mib()
UPPER_BOUND_SHARE = 0.95  # measured.csv README "Allocator fill on big cards": within ~5 % of capacity = upper bound


def _usable_bytes(gpu: str) -> int | None:
    mib = USABLE_MIB.get(gpu) or USABLE_MIB.get(gpu.upper())
    return None if mib is None else mib * MiB


# ---------------------------------------------------------------------------------------------------------------
# YAML text
# ---------------------------------------------------------------------------------------------------------------
def _lf_keys() -> set[str]:
    data = json.loads((ROOT / "rules" / "data" / "lf_keys.json").read_text(encoding="utf-8"))
    keys: set[str] = set()
    for value in data.values():
        if isinstance(value, list | dict):
            keys |= set(value)
    return keys


LF_KEYS = _lf_keys()


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    plain = re.fullmatch(r"[A-Za-z0-9_./,:-]+", text) and text not in ("true", "false", "null")
    return text if plain else json.dumps(text)


def yaml_text(case_id: str, source_line: str, keys: Mapping[str, Any]) -> str:
    unknown = sorted(set(keys) - LF_KEYS)
    if unknown:
        raise SystemExit(f"{case_id}: keys LLaMA-Factory v0.9.5 does not accept: {unknown}")
    lines = [f"# {case_id}: {source_line}", "# memory-relevant keys only (no dataset/template/output_dir)"]
    lines += [f"{key}: {_scalar(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


def lf_yaml(model: str, method: str, **rest: Any) -> dict[str, Any]:
    """The common head of every YAML: model, stage, finetuning_type, then the given keys in order."""
    head: dict[str, Any] = {"model_name_or_path": model, "stage": rest.pop("stage", "sft"), "do_train": True,
                            "finetuning_type": method}
    head.update(rest)
    return head


# ---------------------------------------------------------------------------------------------------------------
# DeepSpeed JSONs as the runs used them
# ---------------------------------------------------------------------------------------------------------------
_FP16_BLOCK = {"enabled": "auto", "loss_scale": 0, "loss_scale_window": 1000, "initial_scale_power": 16,
               "hysteresis": 2, "min_loss_scale": 1}
_AUTO_BATCH = {"gradient_accumulation_steps": "auto", "gradient_clipping": "auto", "train_batch_size": "auto",
               "train_micro_batch_size_per_gpu": "auto"}
# QwenLM/Qwen@e8e1596:finetune/ds_config_zero2.json and ds_config_zero3.json (same at e6f2a7a)
QWEN_DS_Z2 = {"fp16": _FP16_BLOCK, "bf16": {"enabled": "auto"},
              "optimizer": {"type": "AdamW", "params": {"lr": "auto", "betas": "auto", "eps": "auto",
                                                        "weight_decay": "auto"}},
              "scheduler": {"type": "WarmupLR", "params": {"warmup_min_lr": "auto", "warmup_max_lr": "auto",
                                                           "warmup_num_steps": "auto"}},
              "zero_optimization": {"stage": 2, "offload_optimizer": {"device": "none", "pin_memory": True},
                                    "allgather_partitions": True, "allgather_bucket_size": 2e8, "overlap_comm": True,
                                    "reduce_scatter": True, "reduce_bucket_size": 2e8, "contiguous_gradients": True},
              **_AUTO_BATCH, "steps_per_print": 100, "wall_clock_breakdown": False}
QWEN_DS_Z3 = {"fp16": _FP16_BLOCK, "bf16": {"enabled": "auto"},
              "optimizer": QWEN_DS_Z2["optimizer"], "scheduler": QWEN_DS_Z2["scheduler"],
              "zero_optimization": {"stage": 3, "offload_optimizer": {"device": "none", "pin_memory": True},
                                    "offload_param": {"device": "none", "pin_memory": True}, "overlap_comm": True,
                                    "contiguous_gradients": True, "sub_group_size": 1e9, "reduce_bucket_size": "auto",
                                    "stage3_prefetch_bucket_size": "auto",
                                    "stage3_param_persistence_threshold": "auto", "stage3_max_live_parameters": 1e9,
                                    "stage3_max_reuse_distance": 1e9,
                                    "stage3_gather_16bit_weights_on_model_save": True},
              **_AUTO_BATCH, "steps_per_print": 100, "wall_clock_breakdown": False}
# modelscope/ms-swift@3602360a5:swift/config/zero2.json / zero3.json (the files `--deepspeed zero2|zero3` resolve to)
SWIFT_DS_Z2 = {"fp16": _FP16_BLOCK, "bf16": {"enabled": "auto"},
               "zero_optimization": {"stage": 2, "offload_optimizer": {"device": "none", "pin_memory": True},
                                     "allgather_partitions": True, "allgather_bucket_size": 2e8,
                                     "overlap_comm": False, "reduce_scatter": True, "reduce_bucket_size": 2e8,
                                     "contiguous_gradients": True},
               **_AUTO_BATCH, "steps_per_print": 2000, "wall_clock_breakdown": False}
SWIFT_DS_Z3 = {"fp16": _FP16_BLOCK, "bf16": {"enabled": "auto"},
               "zero_optimization": {"stage": 3, "offload_optimizer": {"device": "none", "pin_memory": True},
                                     "offload_param": {"device": "none", "pin_memory": True}, "overlap_comm": False,
                                     "contiguous_gradients": True, "sub_group_size": 1e9,
                                     "reduce_bucket_size": "auto", "zero_quantized_weights": False,
                                     "zero_quantized_gradients": False, "stage3_prefetch_bucket_size": "auto",
                                     "stage3_param_persistence_threshold": "auto", "stage3_max_live_parameters": 1e9,
                                     "stage3_max_reuse_distance": 1e9,
                                     "stage3_gather_16bit_weights_on_model_save": True},
               **_AUTO_BATCH, "steps_per_print": 2000, "wall_clock_breakdown": False}
# hiyouga/LLaMA-Factory@e01bdb414:examples/deepspeed/ds_z3_offload_config.json (the content from 2024-04 until the
# 2025-03-07 change to overlap_comm false in 2c75f9baf; the issue rows below are from that period)
LF_DS_Z3_OFFLOAD_2024 = {
    "train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto",
    "gradient_clipping": "auto", "zero_allow_untested_optimizer": True, "fp16": _FP16_BLOCK,
    "bf16": {"enabled": "auto"},
    "zero_optimization": {"stage": 3, "offload_optimizer": {"device": "cpu", "pin_memory": True},
                          "offload_param": {"device": "cpu", "pin_memory": True}, "overlap_comm": True,
                          "contiguous_gradients": True, "sub_group_size": 1e9, "reduce_bucket_size": "auto",
                          "stage3_prefetch_bucket_size": "auto", "stage3_param_persistence_threshold": "auto",
                          "stage3_max_live_parameters": 1e9, "stage3_max_reuse_distance": 1e9,
                          "stage3_gather_16bit_weights_on_model_save": True}}
LF_DS_Z3_2024 = json.loads(json.dumps(LF_DS_Z3_OFFLOAD_2024))
del LF_DS_Z3_2024["zero_optimization"]["offload_optimizer"], LF_DS_Z3_2024["zero_optimization"]["offload_param"]


def accelerate_ds(stage: int, grad_accum: int, offload: str = "none") -> dict[str, Any]:
    """The DeepSpeed config accelerate builds from an accelerate YAML's deepspeed_config block
    (huggingface/accelerate@910c1b6a:src/accelerate/utils/dataclasses.py l.785-809) with mixed_precision bf16."""
    return {"train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto",
            "gradient_accumulation_steps": grad_accum,
            "zero_optimization": {"stage": stage, "offload_optimizer": {"device": offload},
                                  "offload_param": {"device": offload},
                                  "stage3_gather_16bit_weights_on_model_save": True},
            "gradient_clipping": 1.0, "bf16": {"enabled": True}}  # steps_per_print inf omitted (not JSON)


# ---------------------------------------------------------------------------------------------------------------
# Shared deviation texts (each says how the run differs from what the LF YAML can say)
# ---------------------------------------------------------------------------------------------------------------
D_QWEN1_CODE = ("Qwen-1 remote code (modeling_qwen.py): attention through its own use_flash_attn switch and its own "
                "loss, not transformers' attn_implementation / loss")
D_UNIT_GIB_ASSUMED = "unit: label 'GB'/'G' without a stated divisor; 2^30 used (ms-swift logs memory in GiB)"
D_SWIFT_LORA = ("ms-swift 1.x tuner_backend 'swift' (its own LoRA layers; swift/llm/utils/argument.py@4312aeb28 "
                "l.38), not PEFT")
D_AMP_PURE = ("ms-swift full fine-tuning loads bf16 weights and runs HF bf16 AMP, so params, grads and AdamW states "
              "are bf16: pure_bf16 expresses that memory, the AMP autocast is not expressed")
D_TT_PURE_BF16 = "torchtune dtype bf16 = pure bf16: params, grads and optimizer states bf16, no fp32 master (pure_bf16)"
D_TT_FLEX = ("packed batches use torchtune's document mask (flex attention where available); LF packing attends "
             "across the whole pack")
D_COMPILE = "torch.compile"
D_CHUNKED_CE = ("CEWithChunkedOutputLoss: the output projection and fp32 upcast run in 8 chunks "
                "(torchtune/modules/loss), no full-vocab fp32 logits tensor")
D_ACT_OFFLOAD = "activation offloading to CPU (enable_activation_offloading=True): no LF equivalent"
D_OPT_IN_BWD = "optimizer_in_bwd: optimizer step fused into backward, gradients freed per parameter"
D_PAGED = ("bitsandbytes paged optimizer: states in CUDA unified memory (cudaMallocManaged), outside PyTorch's "
           "caching allocator and its statistics")
D_TORCHAO_NF4 = "QLoRA base quantized with torchao NF4 tensors (torchtune), not bitsandbytes"
D_EMULATED = ("the card was emulated on an A100 with torch.cuda.set_per_process_memory_fraction (README footnote *)")
D_SELF_COG = ("tokens: swift/self-cognition / alpaca-gpt4 samples are short (their lengths are not measured here); "
              "cutoff_len is a cap the data does not reach, so the peak batch is far below cutoff_len tokens")


# ---------------------------------------------------------------------------------------------------------------
# The case record
# ---------------------------------------------------------------------------------------------------------------
def figure_bytes(row: Row, divisor: int) -> int | None:
    value = row["peak_per_gpu"].strip()
    if not value or value.upper() == "OOM":
        return None
    return round(float(value) * divisor)


def make_case(row: Row, row_file: str, spec: dict[str, Any]) -> Case:
    case_id = row["id"]
    keys = spec.pop("yaml")
    ds = spec.pop("deepspeed_json", None)
    if ds is not None and "deepspeed" not in keys:
        keys["deepspeed"] = "ds_config.json"
    outcome = spec.pop("outcome", "measured")
    divisor = spec.pop("divisor", GiB)
    measured = spec.pop("measured_bytes", None)
    if measured is None and outcome != "oom":
        measured = figure_bytes(row, divisor)
        if measured is None:
            raise SystemExit(f"{case_id}: no figure but outcome {outcome}")
    gpu = spec.pop("gpu")
    deviations = list(spec.pop("deviations", []))
    notes = spec.pop("notes", "")
    capacity = _usable_bytes(gpu)
    if (outcome == "measured" and measured is not None and capacity is not None
            and spec["metric"] in ("reserved", "nvidia-smi", "unknown") and measured >= UPPER_BOUND_SHARE * capacity):
        outcome = "fits-upper-bound"
        deviations.append(f"figure is {measured / capacity:.0%} of the {gpu}'s usable memory: allocator fill "
                          "possible, so it bounds the need from above only")
    exact = bool(spec.pop("exact", False))
    if spec["metric"] == "unknown" or spec["sequence"] in ("variable-max", "unknown") or outcome != "measured":
        exact = False
    case: Case = {
        "id": case_id,
        "row_file": row_file,
        "source": spec.pop("source"),
        "era": spec.pop("era"),
        "model_config": spec.pop("model_config"),
        "model_id": spec.pop("model_id"),
        "yaml": yaml_text(case_id, spec.pop("source_line"), keys),
        "deepspeed_json": ds,
        "launcher": spec.pop("launcher", None),
        "gpus_per_node": spec.pop("gpus_per_node", 1),
        "nodes": spec.pop("nodes", 1),
        "gpu": gpu,
        "metric": spec.pop("metric"),
        "measured_bytes": measured,
        "outcome": outcome,
        "exact": exact,
        "sequence": spec.pop("sequence"),
        "deviations": deviations,
        "stack": spec.pop("stack"),
        "notes": notes,
    }
    if spec:
        raise SystemExit(f"{case_id}: unused spec fields {sorted(spec)}")
    if not (ROOT / case["model_config"]).is_file():
        raise SystemExit(f"{case_id}: model config {case['model_config']} missing")
    return case


# ---------------------------------------------------------------------------------------------------------------
# Source: ms-swift Benchmark.md (measured.csv SW-*)
# ---------------------------------------------------------------------------------------------------------------
SW_ERA = "2024-01-04 (modelscope/ms-swift@4312aeb28 docs/source/LLM/Benchmark.md)"
SW_STACK = ("A100, CUDA 11.8, python 3.10, torch 2.1.1, flash_attn 2.3.4, xformers 0.0.23, auto_gptq 0.5.1, "
            "bitsandbytes 0.41.3.post2 (Benchmark.md@4312aeb28); ms-swift 1.5 era, transformers not stated")
SW_TUNER_ERA = "2024-05-08 (modelscope/ms-swift@db07118d0 docs/source_en/LLM/Benchmark.md 'Tuners')"
SW_TUNER_STACK = "ms-swift 2.0 era (2024-04/05); library versions not stated for the tuner table"
SW_TOKENS = ("tokens: truncation_strategy 'delete' (swift/llm/utils/argument.py@4312aeb28 l.62, template.py l.220) "
             "drops samples longer than max_length, so every batch is one sample of cls-fudan-news-zh "
             "(3234±2548 tokens, min 91) no longer than cutoff_len; the peak batch is the longest kept sample")
SW_TUNER_TOKENS = ("tokens: ms-agent + 2x ms-bench mix (use_loss_scale), samples longer than 2048 dropped "
                   "(truncation_strategy 'delete', argument.py@db07118d0 l.431); peak batch <= cutoff_len")
SW_METRIC_NOTE = ("metric: torch.cuda.max_memory_reserved(i) after trainer.train(), per device, /1024^3 "
                  "(swift/trainers/trainers.py@4312aeb28 l.44-47)")
SW_SKIP = {
    "SW-66": "same run as SW-08 (quantization sweep baseline: Qwen-7B-Chat LoRA bf16, max_length 2048, 27.74 GiB)",
    "SW-88": "AdaLoRA: tuner not available in LLaMA-Factory",
    "SW-90": "GaLore with a quantized optimizer/projection (ms-swift 'full+galore128+quantize'): not in LLaMA-Factory",
    "SW-91": "LLaMA-Pro: LLaMA-Factory needs a block-expanded checkpoint whose config.json is not available",
    "SW-92": "LISA: tuner not available in LLaMA-Factory",
    "SW-96": "Qwen/Qwen1.5-7B-Chat-AWQ: config.json not available",
}


def _sw_model(model: str) -> tuple[str, str, list[str]]:
    """(model_config, model_id, deviations) for an ms-swift benchmark model; KeyError when not available."""
    if model == "Qwen/Qwen-7B-Chat-Int4":
        return MAIN + "Qwen__Qwen-7B-Chat-Int4.json", model, [D_QWEN1_CODE]
    if model.startswith("meta-llama/Meta-Llama-3-8B-Instruct"):
        return COPY + "meta-llama__Meta-Llama-3-8B-Instruct.json", "meta-llama/Meta-Llama-3-8B-Instruct", []
    config, proof = qwen1_chat(model)
    return config, model, [D_QWEN1_CODE, proof]


def sw_case(row: Row) -> dict[str, Any] | str:
    cid = row["id"]
    if cid in SW_SKIP:
        return SW_SKIP[cid]
    if row["parallelism"].startswith("device_map"):
        return "device_map layer split over 2 GPUs (naive pipeline, no data parallelism): not a LLaMA-Factory setup"
    if "chatglm" in row["model"].lower() or "yi-" in row["model"].lower() or "baichuan" in row["model"].lower() \
            or "openbuddy" in row["model"].lower():
        return f"{row['model']}: config.json not available"
    if "14B" in row["model"] or "72B" in row["model"]:
        return (f"{row['model']}: config.json not available (Qwen-14B configs not found; Qwen-72B-Chat not proven "
                "equal to the bundled Qwen-72B base file)")
    method, precision = row["method"], row["precision"]
    if "int8 (GPTQ" in precision or "int8 (GPTQ" in method:
        return "Qwen/Qwen-7B-Chat-Int8 (GPTQ int8): config.json not available"
    tuner = int(cid[3:]) >= 85
    model = row["model"]
    if "GPTQ" in method:
        model = "Qwen/Qwen-7B-Chat-Int4"
    config, model_id, deviations = _sw_model(model)
    mbs = int(row["mbs"])
    seq = int(re.search(r"max_length (\d+)", row["seq_len"]).group(1))  # type: ignore[union-attr]
    ga = {1: 16, 2: 8, 4: 4, 8: 2}[mbs]  # ceil(16 / batch_size / world_size): argument.py@4312aeb28 l.271-272
    keys: dict[str, Any]
    if method.startswith("full"):
        keys = lf_yaml(model_id, "full", pure_bf16=True)
        deviations.append(D_AMP_PURE)
    else:
        found = re.search(r"(?:LoRA|DoRA) r(\d+)", method)
        rank = int(found.group(1)) if found else 8  # lora_rank default 8 (argument.py@4312aeb28)
        target = "all" if re.search(r"ALL", method) else method.split(" on ")[-1].split(",")[0].split(" ")[0]
        if tuner and "unsloth" in method:
            target = "q_proj,k_proj,v_proj"  # LoRATM.llama2 default (swift/llm/utils/model.py@4312aeb28 l.174)
        keys = lf_yaml(model_id, "lora", lora_rank=rank, lora_alpha=32, lora_dropout=0.05, lora_target=target)
        if "DoRA" in method:
            keys["use_dora"] = True
        if model_id.endswith("Int4"):
            keys["fp16"] = True  # MODEL_MAPPING torch_dtype float16 for qwen-7b-chat-int4 -> fp16 AMP (model.py l.1265)
        else:
            keys["bf16"] = True
        if "bnb" in precision or "bnb" in method or "q4" in row["notes"] or "QLoRA 4-bit" in method:
            # bnb_4bit_quant_type nf4, double quant true, compute dtype = dtype (argument.py@4312aeb28 l.79-81)
            keys.update(quantization_bit=4, quantization_method="bnb", double_quantization=True)
        if "unsloth" in method:
            keys["use_unsloth"] = True
            deviations.append("ms-swift tuner_backend unsloth; unsloth version not stated; LoRA on q,k,v "
                              "(LoRATM.llama2), confirmed by the table's 4.7186M trainable parameters")
        else:
            deviations.append(D_SWIFT_LORA)
    keys["cutoff_len"] = seq
    keys["per_device_train_batch_size"] = mbs
    keys["gradient_accumulation_steps"] = ga
    if row["grad_ckpt"].strip().lower().startswith("off"):
        keys["disable_gradient_checkpointing"] = True
    keys["flash_attn"] = "disabled" if "eager" in row["attn"] else "fa2"
    keys["optim"] = "adamw_torch"  # SftArguments optim 'adamw_torch' (argument.py@4312aeb28 l.97)
    sequence = "variable-max"
    token_note = SW_TUNER_TOKENS if tuner else SW_TOKENS
    gpus = 1
    if "packing" in method:
        keys["packing"] = True
        sequence = "packed"
        token_note = ("tokens: ms-swift ConstantLengthDataset concatenates samples and cuts them into max_length "
                      "chunks without attention separation (swift/llm/utils/utils.py@db07118d0 l.214-243), as LF "
                      "packing does")
    if "DDP" in method or "DDP" in row["parallelism"]:
        gpus = 2
    deviations.insert(0, token_note)
    if tuner:
        deviations.append("eval on 5000 held-out samples every 2000 (200 with packing) steps at batch 1 "
                          "(scripts/benchmark/config/tuner.json@2386b9afa)")
        if "GaLore" in method:
            keys = lf_yaml(model_id, "full", pure_bf16=True, use_galore=True, galore_rank=128,
                           galore_update_interval=200, galore_layerwise=False, galore_target="all",
                           cutoff_len=seq, per_device_train_batch_size=1, gradient_accumulation_steps=16,
                           flash_attn="fa2", optim="adamw_torch")
            deviations.append("GaLore target modules: ms-swift galore_target_modules None resolved by ms-swift "
                              "(not verified here); LF galore_target all")
    return {
        "source": "ms-swift", "era": SW_TUNER_ERA if tuner else SW_ERA, "model_config": config, "model_id": model_id,
        "source_line": f"ms-swift Benchmark.md, {row['method']}, {row['seq_len']}", "yaml": keys,
        "gpus_per_node": gpus, "gpu": "A100-80GB", "metric": "reserved", "divisor": GiB,
        "sequence": sequence, "exact": sequence == "packed", "deviations": deviations,
        "stack": SW_TUNER_STACK if tuner else SW_STACK,
        "notes": SW_METRIC_NOTE + ("; the 78.76 GiB full-7B row shows the card is the 80 GB A100" if not tuner else
                                   "") + (f"; figure {row['measured']}" if row["measured"] else ""),
    }


# ---------------------------------------------------------------------------------------------------------------
# Source: ms-swift v3 example scripts (measured.csv SE-*, public SX-*)
# ---------------------------------------------------------------------------------------------------------------
SWIFT3_STACK = "ms-swift 3.x at the comment's commit; torch/transformers versions not stated"
SWIFT3_METRIC = ("metric: a comment in the script; ms-swift logs memory(GiB) = max over devices of "
                 "torch.cuda.max_memory_reserved (swift/utils/torch_utils.py@3602360a5 l.413) but the comment's "
                 "tool is not stated")
SWIFT3_COMMON = [
    "LoRA dropout 0.05, weight_decay 0.1 (ms-swift defaults: swift/llm/argument/tuner_args.py@a3731f998 l.118, "
    "train_args.py l.30)",
]


def _swift3(row: Row, *, era: str, model: str, config: str, keys: dict[str, Any], gpus: int, gpu: str,
            sequence: str, deviations: list[str], ds: dict[str, Any] | None = None,
            launcher: dict[str, Any] | None = None, notes: str = "", divisor: int = GiB,
            source_line: str = "") -> dict[str, Any]:
    label = row["unit"].strip()
    devs = list(deviations)
    if label in ("GB", "G"):
        devs.append(D_UNIT_GIB_ASSUMED)
    return {"source": "ms-swift", "era": era, "model_config": config, "model_id": model,
            "source_line": source_line or f"ms-swift example, comment '{row['measured']}' ({era})", "yaml": keys,
            "deepspeed_json": ds, "launcher": launcher,
            "gpus_per_node": gpus, "gpu": gpu, "metric": "unknown", "divisor": divisor, "sequence": sequence,
            "deviations": devs, "stack": SWIFT3_STACK, "notes": SWIFT3_METRIC + (f"; {notes}" if notes else "")}


def _lora7(model: str, *, cutoff: int, ga: int, **extra: Any) -> dict[str, Any]:
    keys = lf_yaml(model, "lora", lora_rank=8, lora_alpha=32, lora_dropout=0.05, lora_target="all", bf16=True,
                   cutoff_len=cutoff, per_device_train_batch_size=1, gradient_accumulation_steps=ga,
                   optim="adamw_torch", weight_decay=0.1)
    keys.update(extra)
    return keys


Q25_7I = (MAIN + "Qwen__Qwen2.5-7B-Instruct.json", "Qwen/Qwen2.5-7B-Instruct")
Q2_7I = (MAIN + "Qwen__Qwen2-7B-Instruct.json", "Qwen/Qwen2-7B-Instruct")
Q25_7 = (MAIN + "Qwen__Qwen2.5-7B.json", "Qwen/Qwen2.5-7B")


def swift_max_model_len(config_path: str) -> int:
    """ms-swift 3: max_length None -> model_info.max_model_len = the smallest of these config keys
    (swift/llm/model/utils.py@b40f31df7 l.125-147; template_args.py l.48)."""
    config = _load(config_path)
    keys = ("seq_length", "max_position_embeddings", "n_positions", "model_max_length", "seq_len", "max_seq_len",
            "max_sequence_length", "max_seq_length")
    return min(int(config[k]) for k in keys if config.get(k) is not None)


D_MAXLEN_UNSET = ("max_length unset: ms-swift uses model_info.max_model_len, the smallest length key of config.json "
                  "(swift/llm/model/utils.py@b40f31df7 l.125-147; template_args.py l.48) = cutoff_len here")
D_SPLIT_EVAL = ("split_dataset_ratio 0.01 (default then: swift/llm/argument/base_args/data_args.py@a3731f998 l.35): "
                "eval passes at batch 1")
D_SWIFT_PACK = ("ms-swift 3 packing keeps per-sample position_ids (flash-attn varlen): LF neat_packing is the "
                "equivalent")


def se_case(row: Row) -> dict[str, Any] | str:
    cid = row["id"]
    if cid == "SE-01":  # examples/train/lora_sft.sh, '# 22GB' since 8f0fe2d6f (2025-01-01)
        c, m = Q25_7I
        return _swift3(row, era="2025-01-01 (modelscope/ms-swift@8f0fe2d6f examples/train/lora_sft.sh)", model=m,
                       config=c, keys=_lora7(m, cutoff=2048, ga=16), gpus=1, gpu="unknown",
                       sequence="variable-max", deviations=[D_SELF_COG, *SWIFT3_COMMON])
    if cid == "SE-02":  # '# 76GiB' written at b40f31df7 when the script trained Qwen2-7B-Instruct
        c, m = Q2_7I
        keys = lf_yaml(m, "full", pure_bf16=True, cutoff_len=swift_max_model_len(c), per_device_train_batch_size=1,
                       gradient_accumulation_steps=16, optim="adamw_torch", weight_decay=0.1)
        return _swift3(row, era="2024-12-05 (modelscope/ms-swift@b40f31df7 examples/train/full/train.sh)", model=m,
                       config=c, keys=keys, gpus=1, gpu="A100-80GB", sequence="variable-max",
                       deviations=[D_SELF_COG, D_MAXLEN_UNSET, D_AMP_PURE, D_SPLIT_EVAL],
                       notes="at the comment's commit the script trained Qwen/Qwen2-7B-Instruct on "
                             "swift/self-cognition#1000 without --max_length (measured.csv lists the later "
                             "Qwen2.5-7B-Instruct / max_length 2048 edit); card '80GB' class, A100 assumed for "
                             "the capacity check")
    if cid in ("SE-03", "SE-04", "SE-05"):  # a3731f998 (2024-12-23) multi-gpu scripts
        c, m = Q25_7I
        path = {"SE-03": "multi-gpu/ddp/train.sh", "SE-04": "multi-gpu/deepspeed/train_zero2.sh",
                "SE-05": "multi-gpu/deepspeed/train_zero3.sh"}[cid]
        cutoff = 1024 if cid == "SE-05" else swift_max_model_len(c)
        devs = [D_SELF_COG, *SWIFT3_COMMON, D_SPLIT_EVAL]
        if cid != "SE-05":
            devs.insert(1, D_MAXLEN_UNSET)
        if cid == "SE-03":
            devs.append("gradient_checkpointing_kwargs use_reentrant false")
        ds = {"SE-03": None, "SE-04": SWIFT_DS_Z2, "SE-05": SWIFT_DS_Z3}[cid]
        return _swift3(row, era=f"2024-12-23 (modelscope/ms-swift@a3731f998 examples/train/{path})", model=m,
                       config=c, keys=_lora7(m, cutoff=cutoff, ga=8), gpus=2, gpu="unknown",
                       sequence="variable-max", deviations=devs, ds=ds,
                       notes="target_modules default ['all-linear'] (tuner_args.py@a3731f998 l.110); torch_dtype "
                             "from the checkpoint (bf16)")
    if cid == "SE-06":  # fsdp2_lora, '# 14.7GiB * 2' since 376640797 (2025-11-07)
        c, m = Q25_7I
        keys = _lora7(m, cutoff=2048, ga=8, disable_gradient_checkpointing=True)
        launcher = {"kind": "fsdp", "version": 2, "config": "examples/train/multi-gpu/fsdp2_lora/fsdp2.json",
                    "auto_wrap_policy": "TRANSFORMER_BASED_WRAP", "reshard_after_forward": True,
                    "activation_checkpointing": True, "cpu_ram_efficient_loading": True, "offload_params": False,
                    "mixed_precision": "bf16", "state_dict_type": "FULL_STATE_DICT", "num_processes": 2}
        return _swift3(row, era="2025-11-07 (modelscope/ms-swift@376640797 examples/train/multi-gpu/fsdp2_lora)",
                       model=m, config=c, keys=keys, gpus=2, gpu="unknown", sequence="variable-max",
                       deviations=[D_SELF_COG, *SWIFT3_COMMON,
                                   "FSDP2 (accelerate) with FSDP activation checkpointing instead of HF gradient "
                                   "checkpointing; the estimator does not model FSDP yet"],
                       launcher=launcher)
    if cid in ("SE-08", "SE-09", "SE-10"):  # examples/train/liger/sft.sh @7b709960f (2025-04-06)
        c, m = Q25_7
        liger, packing = cid == "SE-08", cid in ("SE-08", "SE-09")
        keys = lf_yaml(m, "full", bf16=True, cutoff_len=8192, per_device_train_batch_size=1,
                       gradient_accumulation_steps=2, flash_attn="fa2", optim="adamw_torch", weight_decay=0.1)
        if packing:
            keys.update(packing=True, neat_packing=True)
        if liger:
            keys["enable_liger_kernel"] = True
        devs = ["split_dataset_ratio 0.01: eval passes at batch 1"]
        devs.insert(0, D_SWIFT_PACK if packing else
                    "tokens: liucong/Chinese-DeepSeek-R1-Distill-data-110k-SFT#10000 samples, not packed; peak "
                    "batch = longest kept sample <= 8192 (truncation_strategy 'delete')")
        return _swift3(row, era="2025-04-06 (modelscope/ms-swift@7b709960f examples/train/liger/sft.sh)", model=m,
                       config=c, keys=keys, gpus=4, gpu="A100-80GB", sequence="packed" if packing else "variable-max",
                       deviations=devs, ds=SWIFT_DS_Z3,
                       notes="'4 * A100': the 54 GB figure needs the 80 GB card")
    if cid == "SE-11":  # examples/train/packing/liger_kernel.sh @11a345d41
        c, m = Q25_7
        keys = lf_yaml(m, "full", bf16=True, cutoff_len=16384, per_device_train_batch_size=1,
                       gradient_accumulation_steps=2, packing=True, neat_packing=True, flash_attn="fa2",
                       enable_liger_kernel=True, optim="adamw_torch", weight_decay=0.1)
        return _swift3(row, era="2025-07-31 (modelscope/ms-swift@11a345d41 examples/train/packing/liger_kernel.sh)",
                       model=m, config=c, keys=keys, gpus=4, gpu="A100-80GB", sequence="packed",
                       deviations=[D_SWIFT_PACK, "split_dataset_ratio 0.01: eval passes at batch 1"], ds=SWIFT_DS_Z3,
                       notes="'4 * A100': 42 GB per card exceeds a 40 GB A100, so the 80 GB card")
    if cid == "SE-12":  # examples/train/flash_attention_3/transformers.sh @710553d85
        c, m = Q25_7
        keys = lf_yaml(m, "full", bf16=True, cutoff_len=16384, per_device_train_batch_size=1,
                       gradient_accumulation_steps=4, packing=True, neat_packing=True, flash_attn="fa2",
                       enable_liger_kernel=True, optim="adamw_torch", weight_decay=0.1)
        return _swift3(row, era="2025-08-01 (modelscope/ms-swift@710553d85 examples/train/flash_attention_3)",
                       model=m, config=c, keys=keys, gpus=4, gpu="H20", sequence="packed",
                       deviations=[D_SWIFT_PACK, "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True",
                                   "split_dataset_ratio 0.01: eval passes at batch 1",
                                   "fa2 and fa3 runs reported the same 43 GiB"], ds=SWIFT_DS_Z3,
                       notes="script pins transformers==4.53.*")
    if cid == "SE-07":
        return "DDP over 2 processes each splitting the model over 2 GPUs with device_map: not a LLaMA-Factory setup"
    if cid == "SE-13":
        return "Ulysses sequence parallelism (sequence_parallel_size 8) with padding_free: not in LLaMA-Factory's YAML"
    if cid == "SE-14":
        return "Megatron-SWIFT (TP=2, Megatron distributed optimizer): not a LLaMA-Factory backend"
    return f"{cid}: no mapping"


def sx_case(row: Row) -> dict[str, Any] | str:
    cid = row["id"]
    if cid == "SX-01":  # examples/train/rlhf/dpo/lora.sh, '# 24GiB' at 40c8406fb (2025-05-09, no rpo_alpha then)
        c, m = Q25_7I
        keys = lf_yaml(m, "lora", stage="dpo", pref_loss="sigmoid", lora_rank=8, lora_alpha=32, lora_dropout=0.05,
                       lora_target="all", bf16=True, cutoff_len=2048, per_device_train_batch_size=1,
                       gradient_accumulation_steps=16, optim="adamw_torch", weight_decay=0.1)
        return _swift3(row, era="2025-05-09 (modelscope/ms-swift@40c8406fb examples/train/rlhf/dpo/lora.sh)", model=m,
                       config=c, keys=keys, gpus=1, gpu="unknown", sequence="variable-max",
                       deviations=["tokens: shareAI-Llama3-DPO-zh-en-emoji pairs, chosen+rejected, each <= 2048",
                                   *SWIFT3_COMMON, "split_dataset_ratio 0.01: eval passes"],
                       notes="reference model = the policy with the adapter disabled (LoRA without ref_model in LF)")
    if cid in ("SX-03", "SX-04"):
        c, m = Q25_7I
        method = "bnb" if cid == "SX-03" else "hqq"
        keys = _lora7(m, cutoff=2048, ga=16, quantization_bit=4, quantization_method=method)
        if method == "bnb":
            keys["double_quantization"] = True
        era = ("2025-07-31 (modelscope/ms-swift@74e4831d2 examples/train/qlora/bnb/train.sh)" if cid == "SX-03" else
               "2025-01-08 (modelscope/ms-swift@ac21d5170 examples/train/qlora/hqq.sh)")
        return _swift3(row, era=era, model=m, config=c, keys=keys, gpus=1, gpu="unknown", sequence="variable-max",
                       deviations=[D_SELF_COG, *SWIFT3_COMMON])
    if cid == "SX-07":  # examples/train/full/qwen2_5_32b.sh, '# 8 * 80GiB' at bbbce77c4 (no expandable_segments then)
        keys = lf_yaml("Qwen/Qwen2.5-32B", "full", bf16=True, cutoff_len=8192, per_device_train_batch_size=1,
                       gradient_accumulation_steps=2, packing=True, neat_packing=True, flash_attn="fa2",
                       enable_liger_kernel=True, optim="adamw_torch", weight_decay=0.1)
        return _swift3(row, era="2025-04-15 (modelscope/ms-swift@bbbce77c4 examples/train/full/qwen2_5_32b.sh)",
                       model="Qwen/Qwen2.5-32B", config=MAIN + "Qwen__Qwen2.5-32B.json", keys=keys, gpus=8,
                       gpu="A100-80GB", sequence="packed", deviations=[D_SWIFT_PACK, "streaming dataset"],
                       ds=SWIFT_DS_Z3, notes="'8 * 80GiB' = the card's capacity; card model not stated (80 GB class)")
    if cid in ("SX-11", "SX-12", "SX-13"):  # tuner examples, comments from b40f31df7 / 4a280f71e
        m = "Qwen/Qwen2.5-7B-Instruct" if cid == "SX-12" else "Qwen/Qwen2-7B-Instruct"
        c = Q25_7I[0] if cid == "SX-12" else Q2_7I[0]
        path = {"SX-11": "dora/train.sh", "SX-12": "unsloth/train.sh",
                "SX-13": "lora/train.sh"}[cid]
        commit = "4a280f71e (2024-12-20)" if cid == "SX-12" else "b40f31df7 (2024-12-05)"
        devs = [D_SELF_COG, D_MAXLEN_UNSET,
                "split_dataset_ratio 0.01 (default then: data_args.py@b40f31df7 l.39): eval passes at batch 1"]
        keys = _lora7(m, cutoff=swift_max_model_len(c), ga=16)
        devs += SWIFT3_COMMON
        if cid == "SX-11":
            keys["use_dora"] = True
        if cid == "SX-12":
            keys["use_unsloth"] = True
            devs.append("ms-swift tuner_backend unsloth: unsloth version not stated")
        if cid == "SX-13":
            keys["loraplus_lr_ratio"] = 16.0
        return _swift3(row, era=f"modelscope/ms-swift@{commit} examples/train/tuners/{path}", model=m, config=c,
                       keys=keys, gpus=1, gpu="unknown", sequence="variable-max", deviations=devs,
                       notes=f"comment written at {commit.split()[0]} when the script trained {m} "
                             "(public_measurements.csv lists the later Qwen2.5-7B-Instruct edit)")
    if cid == "SX-16":  # examples/train/packing/llm.sh @dbe09322a
        c, m = Q25_7I
        keys = _lora7(m, cutoff=2048, ga=4, packing=True, neat_packing=True, flash_attn="fa2")
        return _swift3(row, era="2025-03-31 (modelscope/ms-swift@dbe09322a examples/train/packing/llm.sh)", model=m,
                       config=c, keys=keys, gpus=1, gpu="unknown", sequence="packed",
                       deviations=[D_SWIFT_PACK, *SWIFT3_COMMON, "eval passes (split_dataset_ratio default then)"])
    if cid == "SX-17":  # examples/train/agent/qwen2_5.sh @b91109223
        keys = lf_yaml("Qwen/Qwen2.5-3B", "full", pure_bf16=True, cutoff_len=8192, per_device_train_batch_size=1,
                       gradient_accumulation_steps=8, packing=True, neat_packing=True, flash_attn="fa2",
                       enable_liger_kernel=True, optim="adamw_torch", weight_decay=0.1)
        return _swift3(row, era="2025-04-22 (modelscope/ms-swift@b91109223 examples/train/agent/qwen2_5.sh)",
                       model="Qwen/Qwen2.5-3B", config=MAIN + "Qwen__Qwen2.5-3B.json", keys=keys, gpus=1,
                       gpu="unknown", sequence="packed",
                       deviations=[D_SWIFT_PACK, D_AMP_PURE, "eval passes (split_dataset_ratio default then)"])
    if cid in ("SX-21", "SX-22"):  # Megatron-SWIFT benchmark table (9d297f99a) + examples/megatron/benchmark/
        keys = lf_yaml("Qwen/Qwen2.5-14B", "full", bf16=True, cutoff_len=8192, per_device_train_batch_size=1,
                       gradient_accumulation_steps=2, packing=True, neat_packing=True, flash_attn="fa2",
                       optim="adamw_torch", weight_decay=0.1)
        ds = SWIFT_DS_Z2 if cid == "SX-21" else SWIFT_DS_Z3
        return _swift3(row, era="2025-03-21 table (modelscope/ms-swift@9d297f99a); script "
                                "examples/megatron/benchmark/deepspeed.sh@3602360a5 (added 2025-08)",
                       model="Qwen/Qwen2.5-14B", config=MAIN + "Qwen__Qwen2.5-14B.json", keys=keys, gpus=8,
                       gpu="A800-80GB", sequence="packed",
                       deviations=[D_SWIFT_PACK, "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True (in the script)",
                                   "the DeepSpeed command was published five months after the table; the ZeRO-3 "
                                   "run is that script with --deepspeed zero3 (inferred)",
                                   "split_dataset_ratio 0.01: eval passes at batch 1"],
                       ds=ds)
    if cid == "SX-27":  # docs/source_en/BestPractices/Qwen3-Best-Practice.md (0f31a5a9e)
        keys = _lora7("Qwen/Qwen3-8B", cutoff=2048, ga=16)
        return _swift3(row, era="2025-06-19 (modelscope/ms-swift@0f31a5a9e Qwen3-Best-Practice.md)",
                       model="Qwen/Qwen3-8B", config=MAIN + "Qwen__Qwen3-8B.json", keys=keys, gpus=1,
                       gpu="unknown", sequence="variable-max",
                       deviations=["tokens: Qwen3-SFT-Mixin#2000 + self-cognition#600, each <= 2048",
                                   *SWIFT3_COMMON])
    reasons = {
        "SX-02": "DPO with packing (pairwise packing): LLaMA-Factory packs only sft/pt data",
        "SX-05": "Qwen/Qwen2.5-7B-Instruct-AWQ: config.json not available",
        "SX-06": "Qwen/Qwen2.5-72B-Instruct: config.json not available",
        "SX-08": "per-parameter GaLore (galore_optim_per_parameter, = LF galore_layerwise) with gradient accumulation "
                 "16: LLaMA-Factory rejects per-layer GaLore with gradient accumulation "
                 "(LLaMA-Factory v0.9.5 src/llamafactory/train/trainer_utils.py l.250, as estimator/"
                 "llamafactory_rules.py encodes it)",
        "SX-09": "LISA: tuner not available in LLaMA-Factory",
        "SX-10": "LLaMA-Pro: needs a block-expanded checkpoint whose config.json is not available",
        "SX-14": "deepseek-ai/DeepSeek-R1-0528-Qwen3-8B: config.json not available (Qwen3-8B equality not proven)",
        "SX-15": "Muon optimizer: no LLaMA-Factory v0.9.5 key selects it (rules/data/lf_keys.json)",
        "SX-18": "PPO with separate value and reward models whose configuration the script leaves to ms-swift "
                 "defaults; LLaMA-Factory's PPO (reward_model, value head on the policy) is a different setup",
        "SX-19": "Megatron-SWIFT DPO (TP=4): not a LLaMA-Factory backend",
        "SX-20": "Megatron-SWIFT DPO (TP=4): not a LLaMA-Factory backend",
        "SX-23": "Megatron-SWIFT (TP=4, sequence parallel): not a LLaMA-Factory backend",
        "SX-24": "Qwen/Qwen3-30B-A3B-Base: config.json not available (equality with Qwen3-30B-A3B not proven)",
        "SX-25": "Qwen/Qwen3-30B-A3B-Base: config.json not available (equality with Qwen3-30B-A3B not proven)",
        "SX-26": "Megatron-SWIFT (PP=2, EP=8): not a LLaMA-Factory backend",
    }
    return reasons.get(cid, f"{cid}: no mapping")


# ---------------------------------------------------------------------------------------------------------------
# Source: QwenLM/Qwen README "Profiling of Memory and Speed" (public QW-*)
# ---------------------------------------------------------------------------------------------------------------
QW_STACK = "A100-SXM4-80G, CUDA 11.8, PyTorch 2.0, flash-attn 2 (README); transformers/peft/deepspeed not stated"
QW_COMMON = [
    D_QWEN1_CODE,
    "unit: 'GB' read as 10^9 bytes: the 7B full-parameter cell (162.0 GB summed over 2 GPUs = 81.0 per GPU) exceeds "
    "an 80 GiB card under a 2^30 reading; tool not stated",
    "tokens: finetune.py pads every sample to model_max_length (QwenLM/Qwen@e8e1596:finetune.py l.165-166), so "
    "every batch has cutoff_len tokens",
]


def qw_case(row: Row) -> dict[str, Any] | str:
    cid, model, method = row["id"], row["model"], row["method"]
    if any(size in model for size in ("14B", "72B")):
        if cid in ("QW-85", "QW-86"):
            return "sequence length not stated for the OOM statement (README text, no table cell)"
        return (f"{model}: config.json not available (Qwen-14B configs not found; Qwen-72B-Chat and Int4 not "
                "proven equal to the bundled Qwen-72B base file)")
    seq = int(re.match(r"(\d+)", row["seq_len"]).group(1))  # type: ignore[union-attr]
    size = "1_8B" if "1_8B" in model else "7B"
    era = ("2023-11-30 (QwenLM/Qwen@e8e1596 README.md)" if size == "1_8B" else
           "2023-10-11 (QwenLM/Qwen@e6f2a7a README.md)")
    devs = list(QW_COMMON)
    lora = dict(lora_rank=64, lora_alpha=16, lora_dropout=0.05, lora_target="c_attn,c_proj,w1,w2")
    common = dict(cutoff_len=seq, per_device_train_batch_size=1, gradient_accumulation_steps=8, flash_attn="fa2",
                  optim="adamw_torch", weight_decay=0.1)
    ds = None
    gpus, nodes = 1, 1
    notes = ("settings: finetune.py@e8e1596 LoraArguments r64 a16 dropout 0.05 targets c_attn,c_proj,w1,w2 (l.55-60); "
             "README: batch 1, GA 8, flash-attn 2, one A100-SXM4-80G; metric not stated (finetune.py logs no memory)")
    if "Int4" in model:
        config = MAIN + f"Qwen__Qwen-{size}-Chat-Int4.json"
        model_id = f"Qwen/Qwen-{size}-Chat-Int4"
        keys = lf_yaml(model_id, "lora", **lora, fp16=True, **common)
        ds = QWEN_DS_Z2
        devs += ["peft prepare_model_for_kbit_training (finetune.py@e8e1596 l.336-339) upcasts the non-quantized "
                 "params (wte, lm_head, norms) to fp32; LF keeps them in the checkpoint dtype",
                 "GPTQ kernels from auto-gptq (GPTQConfig bits 4, disable_exllama; finetune.py l.306-308)",
                 "DeepSpeed ZeRO-2 on one GPU only for fp16 mixed precision (finetune_qlora_single_gpu.sh)"]
    elif method.startswith("full"):
        config = MAIN + f"Qwen__Qwen-{size}.json"
        model_id = f"Qwen/Qwen-{size}"
        keys = lf_yaml(model_id, "full", bf16=True, **common)
        ds = QWEN_DS_Z3
        if size == "7B":
            gpus = 2
            devs.append("per-GPU figure derived: the README cell is the sum over 2 GPUs, divided by 2")
        else:
            devs.append("launcher not stated for the 1.8B full-parameter row: finetune_ds.sh (ZeRO-3, the repo's "
                        "only full-parameter script) on one GPU assumed; the flat 43.5 G from 256 to 2048 tokens "
                        "suggests preallocation")
    elif "modules_to_save" in method:
        config = MAIN + f"Qwen__Qwen-{size}.json"
        model_id = f"Qwen/Qwen-{size}"
        keys = lf_yaml(model_id, "lora", **lora, additional_target="wte,lm_head", pure_bf16=True, **common)
        devs.append("trainable wte/lm_head copies (peft modules_to_save) stay bf16 in finetune.py while LoRA "
                    "adapters are created fp32 by peft; LF's bf16 mode would upcast all trainable params to fp32, "
                    "so pure_bf16 is used (adapters then bf16 too) and HF bf16 AMP is not expressed")
    else:
        # plain LoRA: finetune.py sets modules_to_save only when 'chat' is not in the model path (l.323-326), so the
        # rows without trainable embeddings used a Chat checkpoint
        model_id = f"Qwen/Qwen-{size}-Chat"
        config, proof = qwen1_chat(model_id)
        devs.append(proof)
        keys = lf_yaml(model_id, "lora", **lora, bf16=True, **common)
        if "(2 nodes" in row["gpus"]:
            gpus, nodes = 2, 2
            ds = QWEN_DS_Z2
            devs += ["per-GPU figure derived: the README cell is the sum over 4 GPUs, divided by 4",
                     "multinode row: checkpoint not stated; a Chat checkpoint (no trainable embeddings) assumed, "
                     "as for the single-GPU LoRA rows 'with the rest of the configuration the same'"]
            era = "2023-12-27 (QwenLM/Qwen@35023b6 README.md)"
            notes += "; finetune_lora_ds.sh default DeepSpeed ZeRO-2"
    outcome = "oom" if row["peak_per_gpu"] == "OOM" else "measured"
    if outcome == "oom":
        devs.append("OOM inferred: the README reports only 256-1024 tokens 'due to the limitation of GPU memory'")
    return {"source": "qwen", "era": era, "model_config": config, "model_id": model_id,
            "source_line": f"QwenLM/Qwen README profiling, {row['method'][:60]}, {seq} tokens", "yaml": keys,
            "deepspeed_json": ds, "gpus_per_node": gpus, "nodes": nodes, "gpu": "A100-80GB-SXM", "metric": "unknown",
            "divisor": GB, "outcome": outcome, "sequence": "padded-to-max", "deviations": devs, "stack": QW_STACK,
            "notes": notes}


# ---------------------------------------------------------------------------------------------------------------
# Source: torchtune (public TT-*)
# ---------------------------------------------------------------------------------------------------------------
TT_SKIP = {
    **{f"TT-{n:02d}": ("Feb/Mar 2024 alpha recipes: alpaca had no max_seq_len (pytorch/torchtune@a95c6b931 "
                       "torchtune/datasets/_alpaca.py), so the longest batch is unknown; the card was emulated on an "
                       "A100 with a memory-fraction cap") for n in range(1, 12)},
    **{f"TT-{n:02d}": ("May 2024 table: 'Seq Length = 2048' with batch 4 overrides the configs (batch 2, "
                       "max_seq_len 512) without saying packed or padded; alpaca samples are far shorter, so the "
                       "token count is unknown") for n in range(21, 27)},
    "TT-27": "no 70B full-finetune config in the repository at that commit; settings beyond the table not published",
    "TT-29": "A6000 column: settings differ from the published config (37.4 vs 18.9 GiB on the 4090) and are not given",
    "TT-31": "A6000 column: settings differ from the published config (30.3 vs 16.2 GiB on the 4090) and are not given",
    "TT-35": "meta-llama/Llama-3.1-405B-Instruct: config.json not available (only the base file, equality not proven)",
}
L2_7 = (MAIN + "meta-llama__Llama-2-7b-hf.json", "meta-llama/Llama-2-7b-hf")
L31_8I = (COPY + "meta-llama__Llama-3.1-8B-Instruct.json", "meta-llama/Llama-3.1-8B-Instruct")
L31_70I = (COPY + "meta-llama__Llama-3.1-70B-Instruct.json", "meta-llama/Llama-3.1-70B-Instruct")
L32_3I = (COPY + "meta-llama__Llama-3.2-3B-Instruct.json", "meta-llama/Llama-3.2-3B-Instruct")
L3_8I = (COPY + "meta-llama__Meta-Llama-3-8B-Instruct.json", "meta-llama/Meta-Llama-3-8B-Instruct")
QV = "q_proj,v_proj"
QKVO_MLP = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
QVO_MLP = "q_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
TT_FSDP1 = {"kind": "fsdp", "framework": "torchtune", "version": 1, "sharding_strategy": "FULL_SHARD",
            "offload_params": False, "wrap": "per transformer layer"}
TT_FSDP2 = {"kind": "fsdp", "framework": "torchtune", "version": 2, "reshard_after_forward": True,
            "offload_params": False, "wrap": "per transformer layer (+ custom_sharded_layers tok_embeddings, output)"}


def _tt(cfg: tuple[str, str], method: str, *, cutoff: int, mbs: int, ga: int, gc: bool, optim: str,
        packing: bool = False, **lora: Any) -> dict[str, Any]:
    keys = lf_yaml(cfg[1], method, **lora)
    keys.update(pure_bf16=True, cutoff_len=cutoff, per_device_train_batch_size=mbs, gradient_accumulation_steps=ga)
    if packing:
        keys["packing"] = True
    if not gc:
        keys["disable_gradient_checkpointing"] = True
    keys["flash_attn"] = "sdpa"  # torchtune modules call F.scaled_dot_product_attention
    keys["optim"] = optim
    return keys


def tt_case(row: Row) -> dict[str, Any] | str:
    cid = row["id"]
    if cid in TT_SKIP:
        return TT_SKIP[cid]
    n = int(cid[3:])
    devs: list[str] = [D_TT_PURE_BF16]
    launcher = None
    gpus = 1
    divisor = GB  # torchtune divided by 1e9 until pytorch/torchtune@d0b89e206 (2024-08-15), by 1024^3 after
    metric = "unknown"
    sequence = "variable-max"
    gpu = "unknown"
    tokens_512 = ("tokens: alpaca(_cleaned) max_seq_len 512 (torchtune/datasets/_alpaca.py@fef3ed10d l.18), padded "
                  "to the longest sample in the batch")
    if n in (12, 13, 14, 15):
        stack = "torchtune 0.1.x (April 2024); torch version not stated"
        era = ("2024-04-16 (pytorch/torchtune@fef3ed10d README.md)" if n < 15 else
               "2024-04-18 (pytorch/torchtune@20747cd87 README.md)")
        gpu = "RTX-4090"
        if n == 12:  # llama2/7B_lora.yaml @fef3ed10d: q,v r8 a16, batch 2, GA 32, AC off, AdamW
            keys = _tt(L2_7, "lora", cutoff=512, mbs=2, ga=32, gc=False, optim="adamw_torch", lora_rank=8,
                       lora_alpha=16, lora_target=QV)
            gpus, launcher = 2, TT_FSDP1
        elif n == 13:  # llama2/7B_full_low_memory.yaml: bnb PagedAdamW (32-bit), optimizer_in_bwd, AC on
            keys = _tt(L2_7, "full", cutoff=512, mbs=2, ga=1, gc=True, optim="paged_adamw_32bit")
            devs += [D_OPT_IN_BWD, D_PAGED]
        elif n == 14:  # llama2/7B_full.yaml: FSDP over 4, AdamW bf16, AC on
            keys = _tt(L2_7, "full", cutoff=512, mbs=2, ga=1, gc=True, optim="adamw_torch")
            gpus, launcher = 4, TT_FSDP1
        else:  # llama2/7B_qlora_single_device.yaml @20747cd87: q,v,k,o + MLP r8 a16, GA 16, AC on
            keys = _tt(L2_7, "lora", cutoff=512, mbs=2, ga=16, gc=True, optim="adamw_torch", lora_rank=8,
                       lora_alpha=16, lora_target=QKVO_MLP, quantization_bit=4)
            devs.append(D_TORCHAO_NF4)
        devs.insert(0, tokens_512)
        notes = ("config named in the README row; 'peak memory per GPU', tool not stated (torchtune logs "
                 "active/allocated/reserved)")
        cfg = L2_7
    elif n in (16, 17, 18, 19, 20):
        stack = "torchtune 0.1.x (April 2024); GPU and versions not stated"
        if n == 20:
            cfg, era = L3_8I, "2024-04-18 (pytorch/torchtune@20747cd87 docs/source/tutorials/llama3.rst)"
            keys = _tt(cfg, "lora", cutoff=512, mbs=2, ga=64, gc=True, optim="adamw_torch", lora_rank=8,
                       lora_alpha=16, lora_target=QV)
            notes = "llama3/8B_lora_single_device.yaml@20747cd87; 'peak memory usage', tool not stated"
        else:
            cfg, era = L2_7, "2024-04-15 (pytorch/torchtune@ff594c231 docs/source/tutorials/lora_finetune.rst)"
            rank = 8 if n in (16, 17) else 64
            target = QV if n in (16, 18) else QKVO_MLP
            keys = _tt(cfg, "lora", cutoff=512, mbs=2, ga=64, gc=True, optim="adamw_torch", lora_rank=rank,
                       lora_alpha=2 * rank, lora_target=target)
            if n in (17, 19):
                devs.append("'all layers' also puts LoRA on the output projection (apply_lora_to_output True), "
                            "which LF's lora_target cannot name")
            metric = "reserved"
            notes = ("llama2/7B_lora_single_device.yaml@ff594c231 (batch 2, GA 64, AC on, plain CE); the QLoRA "
                     "tutorial (pytorch/torchtune@0914d5cfb) labels the 15.57 GB baseline 'Peak memory reserved, "
                     "training'")
        devs.insert(0, tokens_512)
    elif n in (28, 30, 32, 33, 34):
        stack = "torchtune 0.3 (September 2024); torch version not stated"
        era = "2024-09-24 (pytorch/torchtune@30b8519e8 README.md Llama 3.1 table)"
        divisor = GiB
        sequence = "packed"
        devs += [D_COMPILE, D_CHUNKED_CE, D_TT_FLEX,
                 "config not named in the README: the recipe's default config at that commit is assumed, with the "
                 "table's batch 2 / packed 2048 / compile overrides"]
        if n == 28:  # llama3_1/8B_full_single_device.yaml: PagedAdamW8bit + optimizer_in_bwd, AC on
            cfg, gpu = L31_8I, "RTX-4090"
            keys = _tt(cfg, "full", cutoff=2048, mbs=2, ga=1, gc=True, optim="paged_adamw_8bit", packing=True)
            devs += [D_OPT_IN_BWD, D_PAGED]
        elif n == 30:  # 8B_lora_single_device: q,v r8 a16, AdamW fused
            cfg, gpu = L31_8I, "RTX-4090"
            keys = _tt(cfg, "lora", cutoff=2048, mbs=2, ga=1, gc=True, optim="adamw_torch_fused", packing=True,
                       lora_rank=8, lora_alpha=16, lora_target=QV)
        elif n == 32:  # 8B_qlora_single_device: q,v,k,o + MLP r8
            cfg, gpu = L31_8I, "RTX-4090"
            keys = _tt(cfg, "lora", cutoff=2048, mbs=2, ga=1, gc=True, optim="adamw_torch_fused", packing=True,
                       lora_rank=8, lora_alpha=16, lora_target="q_proj,v_proj,k_proj,o_proj,gate_proj,up_proj,"
                       "down_proj", quantization_bit=4)
            devs.append(D_TORCHAO_NF4)
        elif n == 33:  # 70B_full.yaml: FSDP2 + fsdp_cpu_offload, AdamW fused, AC on
            cfg, gpu, gpus = L31_70I, "A100-80GB", 8
            keys = _tt(cfg, "full", cutoff=2048, mbs=2, ga=1, gc=True, optim="adamw_torch_fused", packing=True)
            launcher = {**TT_FSDP2, "offload_params": True, "config": "llama3_1/70B_full.yaml"}
            devs.append("FSDP CPU offload of params, grads and optimizer step ('CPU offload with fused optimizer')")
        else:  # 70B_lora.yaml: q,k,v r16 a32
            cfg, gpu, gpus = L31_70I, "A100-80GB", 8
            keys = _tt(cfg, "lora", cutoff=2048, mbs=2, ga=1, gc=True, optim="adamw_torch_fused", packing=True,
                       lora_rank=16, lora_alpha=32, lora_target="q_proj,k_proj,v_proj")
            launcher = {**TT_FSDP2, "config": "llama3_1/70B_lora.yaml"}
        notes = ("'Peak Memory per GPU', tool not stated (torchtune logs active/allocated/reserved in GiB since "
                 "d0b89e206)")
    else:  # TT-36..45: Llama 3.2 3B optimisation-flags table (pytorch/torchtune@1814feb17 README.md)
        cfg, gpu = L32_3I, "A100-80GB"
        era = "2024-11-18 (pytorch/torchtune@1814feb17 README.md 'Optimization flags')"
        stack = "torchtune 0.4/0.5 (November 2024); torch version not stated"
        divisor, metric = GiB, "allocated"
        devs.append("metric: 'Peak Memory Active' = torch.cuda.memory_stats()['active_bytes.all.peak'] "
                    "(torchtune/training/memory.py@1814feb17 get_memory_stats), which tracks allocated bytes")
        packed = n >= 37
        sequence = "packed" if packed else "variable-max"
        gc = n >= 40
        if n <= 43:
            optim = "adamw_8bit" if n == 43 else "adamw_torch"
            keys = _tt(cfg, "full", cutoff=4096, mbs=2, ga=1, gc=gc, optim=optim, packing=packed)
            devs.append("optimizer class of the full-finetune rows not published: the config default is "
                        "bitsandbytes PagedAdamW8bit with optimizer_in_bwd, and the table adds 'fuse optimizer step' "
                        "and '8-bit AdamW' as later rows, so the earlier rows used some non-8-bit AdamW (torch "
                        "AdamW assumed here)")
            if n >= 38:
                devs.append(D_COMPILE)
            if n >= 39:
                devs.append(D_CHUNKED_CE)
            if n >= 41:
                devs.append(D_OPT_IN_BWD)
            if n >= 42:
                devs.append(D_ACT_OFFLOAD)
            if n == 43:
                devs.append(f"8-bit AdamW class not stated (config default bitsandbytes PagedAdamW8bit: {D_PAGED})")
        else:  # LoRA / QLoRA rows: packed, compile, chunked CE, AC, activation offloading, torch AdamW (fused)
            target = QVO_MLP  # llama3_2/3B_(q)lora_single_device.yaml@1814feb17: q,v,output_proj + MLP, r64 a128
            extra: dict[str, Any] = {"lora_rank": 64, "lora_alpha": 128, "lora_target": target}
            if n == 45:
                extra["quantization_bit"] = 4
            keys = _tt(cfg, "lora", cutoff=4096, mbs=2, ga=1, gc=True, optim="adamw_torch_fused", packing=True,
                       **extra)
            devs += [D_COMPILE, D_CHUNKED_CE, D_ACT_OFFLOAD]
            if n == 45:
                devs.append(D_TORCHAO_NF4)
        if packed:
            devs.append(D_TT_FLEX)
        else:
            devs.insert(0, "tokens: alpaca with max_seq_len 4096, not packed, padded to the longest sample in the "
                           "batch")
        notes = ("README: 'Each technique is added on top of the previous one, except for LoRA and QLoRA, which do "
                 "not use optimizer_in_bwd or AdamW8bit'; baseline batch 2, max seq len 4096, bf16, A100 "
                 "(60.0 GiB active needs the 80 GB card); the QLoRA command is published verbatim")
        exact_ok = n in (44, 45)  # the only rows whose every setting is published
        return {"source": "torchtune", "era": era, "model_config": cfg[0], "model_id": cfg[1],
                "source_line": f"torchtune README optimisation flags, {row['kernels_other'][:70]}", "yaml": keys,
                "gpu": gpu, "metric": metric, "divisor": divisor, "sequence": sequence, "exact": exact_ok,
                "deviations": devs, "stack": stack, "notes": notes}
    if launcher is not None:
        devs.append("torchtune FSDP: the estimator does not model FSDP yet")
    return {"source": "torchtune", "era": era, "model_config": cfg[0], "model_id": cfg[1],
            "source_line": f"torchtune, {row['method'][:70]}", "yaml": keys, "launcher": launcher,
            "gpus_per_node": gpus, "gpu": gpu, "metric": metric, "divisor": divisor, "sequence": sequence,
            "deviations": devs, "stack": stack, "notes": notes}


# ---------------------------------------------------------------------------------------------------------------
# Source: huggingface/peft (public PE-*)
# ---------------------------------------------------------------------------------------------------------------
# Exact bytes from method_comparison/MetaMathQA/results/<experiment>.json @5d602fdbf (train_info).
PE_RESULTS = {  # id: (experiment file, accelerator_memory_reserved_99th, accelerator_memory_max)
    "PE-01": ("full-finetuning--llama-3.2-3B-lr_0.00001", 37345097154, 38868615168),
    "PE-02": ("lora--llama-3.2-3B-rank32", 20120076288, 22292725760),
    "PE-03": ("lora--llama-3.2-3B-rank64", 20369637376, 22552772608),
    "PE-04": ("lora--llama-3.2-3B-rank64-rslora", 20367540224, 22561161216),
    "PE-05": ("lora--llama-3.2-3B-rank32-dora", 22179479552, 24532484096),
    "PE-06": ("lora--llama-3.2-3B-rank10-target-mlp", 22064136192, 24698159104),
}
PE_LORA = {"PE-02": (32, 64, QV, {}), "PE-03": (64, 128, QV, {}), "PE-04": (64, 64, QV, {"use_rslora": True}),
           "PE-05": (32, 64, QV, {"use_dora": True}), "PE-06": (10, 20, "gate_proj,up_proj,down_proj", {})}
PE_STACK = "torch 2.13.0+cu130, transformers 5.13.1, peft 0.19.2.dev0, bitsandbytes 0.49.2 (result JSON meta_info)"
PE_DOC_STACK = ("bitsandbytes>=0.43.0, accelerate>=0.28.0, transformers>4.38.2, trl>0.7.11, peft>0.9.0 (stated "
                "minimums); exact versions not stated")
PE_DOC_UNIT = ("unit: 'GB' read as 2^30 bytes: the same guide calls 64 GB '80%' of an 80 GB H100, which holds for "
               "GiB (64/79.6) and not for 10^9 bytes (64/85.5)")


def pe_case(row: Row) -> dict[str, Any] | str:
    cid = row["id"]
    cfg = (MAIN + "meta-llama__Llama-3.2-3B.json", "meta-llama/Llama-3.2-3B")
    if cid in PE_RESULTS:
        experiment, p99, run_max = PE_RESULTS[cid]
        common = dict(cutoff_len=768, per_device_train_batch_size=4, gradient_accumulation_steps=1,
                      disable_gradient_checkpointing=True, flash_attn="auto", optim="adamw_torch", max_grad_norm=1.0)
        devs = ["tokens: MetaMathQA truncated to 768 tokens, length-bucketed batches of 4 padded to the longest "
                "(run.py@5d602fdbf BucketIterator, tokenizer.pad)",
                "metric: 99th percentile of torch.cuda.memory_reserved() sampled after every train step, minus the "
                "reserve at start, with empty_cache every 10 steps (run.py l.294-298, 366; utils.py l.674) - not "
                "max_memory_reserved",
                "plain PyTorch loop (no HF Trainer): model loaded bf16, use_amp false"]
        if cid == "PE-01":
            keys = lf_yaml(cfg[1], "full", pure_bf16=True, **common)
        else:
            rank, alpha, target, extra = PE_LORA[cid]
            keys = lf_yaml(cfg[1], "lora", lora_rank=rank, lora_alpha=alpha, lora_target=target, **extra,
                           bf16=True, **common)
            devs.append("adapters fp32 (peft autocast_adapter_dtype) on a bf16 base without autocast: LF's bf16 mode "
                        "has the same weight dtypes but runs autocast")
        devs.append("periodic eval generation (every 250 steps, batch 4) runs between samples")
        return {"source": "peft", "era": "2026-07 (huggingface/peft@5d602fdbf method_comparison/MetaMathQA)",
                "model_config": cfg[0], "model_id": cfg[1],
                "source_line": f"peft MetaMathQA {experiment}", "yaml": keys, "gpu": "L40S", "metric": "reserved",
                "measured_bytes": p99, "sequence": "variable-max", "deviations": devs, "stack": PE_STACK,
                "notes": f"results/{experiment}.json: accelerator_memory_reserved_99th {p99}, whole-run "
                         f"max_memory_reserved {run_max} (includes eval generation)"}
    l2_70 = (MAIN + "meta-llama__Llama-2-70b-hf.json", "meta-llama/Llama-2-70b-hf")
    if cid in ("PE-32", "PE-33", "PE-34", "PE-35", "PE-36"):
        qlora = cid in ("PE-34", "PE-35", "PE-36")
        mbs, ga = (2, 2) if qlora else (8, 4)
        keys = lf_yaml(l2_70[1], "lora", lora_rank=8, lora_alpha=16, lora_dropout=0.1, lora_target="all", bf16=True,
                       cutoff_len=2048, per_device_train_batch_size=mbs, gradient_accumulation_steps=ga,
                       packing=True, flash_attn="fa2", optim="adamw_torch", max_grad_norm=1.0)
        devs = ["tokens: TRL SFTTrainer packing=True to max_seq_len 2048 (ultrachat-10k chatml)", PE_DOC_UNIT,
                "examples/sft/train.py (TRL SFTTrainer), not LLaMA-Factory; eval at each epoch end"]
        if qlora:
            keys.update(quantization_bit=4, quantization_method="bnb", double_quantization=True)
            devs.append("bnb_4bit_quant_storage bfloat16 (needed to shard 4-bit weights); LF sets the same storage "
                        "dtype for ZeRO-3/FSDP QLoRA")
        ds = launcher = None
        gpu = "H100-SXM"
        era = "2024-02-26 (huggingface/peft@aa2ca83ca docs/source/accelerate/)"
        if cid == "PE-32":
            ds, gpus = accelerate_ds(3, 4), 8
            devs.append("gradient_checkpointing use_reentrant False")
            notes = ("deepspeed.md: '64 GB (80%)' per GPU from a screenshot (tool not named); accelerate ZeRO-3, "
                     "zero3_init")
        elif cid == "PE-33":
            gpus = 8
            launcher = {"kind": "fsdp", "version": 1, "sharding_strategy": "FULL_SHARD",
                        "auto_wrap_policy": "TRANSFORMER_BASED_WRAP", "offload_params": False,
                        "use_orig_params": False, "backward_prefetch": "BACKWARD_PRE",
                        "mixed_precision": "bf16", "state_dict_type": "SHARDED_STATE_DICT (FULL at save)"}
            devs += ["figure is a range '72-80 GB (90-98%)' including the FULL_STATE_DICT save at the end; the top "
                     "is used as an upper bound", "FSDP: the estimator does not model FSDP yet"]
            notes = "fsdp.md@aa2ca83ca 'Memory usage'"
        else:
            era = "2024-03-13 (huggingface/peft@6008f272a docs/source/accelerate/)"
            gpus = 2
            devs.append("gradient_checkpointing use_reentrant True")
            if cid == "PE-34":
                ds, gpu = accelerate_ds(3, 2), "A100-40GB"
                notes = "deepspeed.md@6008f272a: '36.6 GB' per GPU on '2X40GB GPUs' (card model not named)"
            else:
                launcher = {"kind": "fsdp", "version": 1, "config": "examples/sft/configs/fsdp_config_qlora.yaml",
                            "sharding_strategy": "FULL_SHARD", "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                            "offload_params": cid == "PE-35", "use_orig_params": False,
                            "cpu_ram_efficient_loading": True, "backward_prefetch": "BACKWARD_PRE",
                            "mixed_precision": "no (HF --bf16 True turns on bf16 AMP)", "sync_module_states": True}
                gpu = "RTX-4090" if cid == "PE-35" else "unknown"
                devs.append("FSDP: the estimator does not model FSDP yet")
                notes = ("fsdp.md@6008f272a: 19.6 GB/GPU with CPU offload on '2X24GB GPUs' (card not named; "
                         "RTX-4090 class assumed for the capacity check), 35.6 GB/GPU without")
        outcome = "fits-upper-bound" if cid == "PE-33" else "measured"
        spec: dict[str, Any] = {
            "source": "peft", "era": era, "model_config": l2_70[0], "model_id": l2_70[1],
            "source_line": f"peft accelerate guide, {row['method'][:60]}", "yaml": keys, "deepspeed_json": ds,
            "launcher": launcher, "gpus_per_node": gpus, "gpu": gpu, "metric": "unknown", "divisor": GiB,
            "outcome": outcome, "sequence": "packed", "deviations": devs, "stack": PE_DOC_STACK, "notes": notes}
        if cid == "PE-33":
            spec["measured_bytes"] = 80 * GiB
        return spec
    reasons = {
        "PE-07": "LoRA-FA optimizer (frozen A, projected update): not in LLaMA-Factory",
        "PE-08": "OFT with PEFT r=32 blocks: the estimator counts OFT as LoRA of the same rank, which is not PEFT's "
                 "OFT parameterisation",
        "PE-09": "BOFT: tuner not available in LLaMA-Factory",
        "PE-10": "IA3: tuner not available in LLaMA-Factory",
        "PE-11": "IA3: tuner not available in LLaMA-Factory",
        "PE-12": "LoHa: tuner not available in LLaMA-Factory",
        "PE-13": "LoKr: tuner not available in LLaMA-Factory",
        "PE-14": "VeRA: tuner not available in LLaMA-Factory",
        "PE-15": "AdaLoRA: tuner not available in LLaMA-Factory",
        "PE-16": "prompt tuning: not available in LLaMA-Factory",
        "PE-17": "prefix tuning: not available in LLaMA-Factory",
        "PE-18": "P-tuning: not available in LLaMA-Factory",
        "PE-19": "LayerNorm tuning: not available in LLaMA-Factory",
        "PE-20": "trainable tokens: not available in LLaMA-Factory",
        "PE-21": "OSF: tuner not available in LLaMA-Factory",
        "PE-22": "RandLoRA: tuner not available in LLaMA-Factory",
    }
    if cid in reasons:
        return reasons[cid]
    if cid in ("PE-23", "PE-24", "PE-25", "PE-26", "PE-27", "PE-28", "PE-29", "PE-30", "PE-31"):
        return (f"{row['model']}: config.json not available (T0/mt0 are encoder-decoder models LLaMA-Factory does "
                "not train); batch, length and precision of the 2022 table are not stated")
    return f"{cid}: no mapping"


# ---------------------------------------------------------------------------------------------------------------
# Source: Unsloth README / blog (public UN-*)
# ---------------------------------------------------------------------------------------------------------------
UN_CAP = {"UN-01": 8, "UN-03": 12, "UN-04": 12, "UN-05": 16, "UN-06": 16, "UN-07": 24, "UN-08": 24, "UN-09": 40,
          "UN-10": 40, "UN-11": 48, "UN-12": 48, "UN-13": 80, "UN-14": 80}


def un_case(row: Row) -> dict[str, Any] | str:
    cid = row["id"]
    if cid in UN_CAP:
        cfg = L31_8I
        length = int(row["seq_len"].split(" ")[0].replace(",", ""))
        unsloth = "Unsloth column" in row["notes"]
        keys = lf_yaml(cfg[1], "lora", lora_rank=32, lora_target="all", quantization_bit=4,
                       quantization_method="bnb", bf16=True, cutoff_len=length, per_device_train_batch_size=1,
                       gradient_accumulation_steps=1, flash_attn="fa2", optim="adamw_8bit")
        devs = ["outcome is a fit boundary: the longest padded length that trained within the stated VRAM; how the "
                "smaller VRAM sizes were emulated is not stated",
                "optimizer, LoRA alpha/dropout, double quantization and gradient-accumulation settings not stated "
                "(Unsloth notebooks use adamw_8bit)"]
        if unsloth:
            keys.update(use_unsloth=True, use_unsloth_gc=True)
            devs.append("Unsloth kernels with Apple Cut Cross Entropy and offloaded gradient checkpointing "
                        "(2025 Unsloth); the LF use_unsloth path's kernels depend on the installed Unsloth version")
        else:
            devs.append("'Hugging Face + FA2' column: gradient checkpointing assumed on (not stated)")
        return {"source": "unsloth", "era": "2025-01-14 (unslothai/unsloth@e3162dc5bf README.md)",
                "model_config": cfg[0], "model_id": cfg[1],
                "source_line": f"Unsloth context-length table, {'Unsloth' if unsloth else 'HF+FA2'}, "
                               f"{row['gpus']}", "yaml": keys, "gpu": f"{UN_CAP[cid]}GB VRAM (card not stated)",
                "metric": "unknown", "outcome": "fits-upper-bound", "measured_bytes": UN_CAP[cid] * GiB,
                "sequence": "padded-to-max", "deviations": devs, "stack": "Unsloth 2025.1 era; versions not stated",
                "notes": "README: 'We padded all sequences to a certain maximum sequence length'; measured_bytes = "
                         "the nominal VRAM size (n x 2^30)"}
    if cid in ("UN-02", "UN-17"):
        return "OOM at every length tried; the lengths tried are not stated"
    if cid in ("UN-15", "UN-16", "UN-18", "UN-19", "UN-20"):
        return "meta-llama/Llama-3.3-70B-Instruct: config.json not available (Llama-3.1-70B shapes not proven equal)"
    return ("Dec-2023 benchmark tables: max_seq_length, batch size on the A100 and the metric are not stated "
            "(settings come from a different blog post)")


# ---------------------------------------------------------------------------------------------------------------
# Source: LLaMA-Factory itself (public LF-*, BA-*)
# ---------------------------------------------------------------------------------------------------------------
def lf_case(row: Row) -> dict[str, Any] | str:
    cid = row["id"]
    if cid in ("LF-01", "LF-02", "LF-03", "LF-04", "LF-05"):
        cfg = L2_7
        keys = lf_yaml(cfg[1], "lora", lora_rank=8, lora_target=QV, bf16=True, cutoff_len=1024,
                       per_device_train_batch_size=4, gradient_accumulation_steps=2, optim="adamw_torch")
        if cid in ("LF-04", "LF-05"):
            keys.update(quantization_bit=4, quantization_method="bnb")
        keys["flash_attn"] = {"LF-01": "auto", "LF-02": "fa2", "LF-03": "fa2", "LF-04": "auto", "LF-05": "fa2"}[cid]
        if cid in ("LF-03", "LF-05"):
            keys["use_unsloth"] = True
        return {"source": "llamafactory", "era": "2023-12 (LLaMA-Factory wiki Performance-Comparison, copied in "
                                                 "unslothai/unsloth@28c7550571 README.md)",
                "model_config": cfg[0], "model_id": cfg[1], "source_line": f"LF wiki, {row['kernels_other']}",
                "yaml": keys, "gpu": "A100-80GB", "metric": "unknown", "divisor": GiB, "sequence": "variable-max",
                "deviations": ["lora_target not stated; LF had no default then (finetuning_args.py@ebb32e85f l.48, "
                               "default None): q_proj,v_proj assumed",
                               "fp16 or bf16 not stated ('16-bit'); bf16 assumed",
                               "tokens: dataset not stated, cutoff_len 1024, padded per batch",
                               "figures rounded to whole GB; unit divisor not stated (2^30 assumed)",
                               "A100 memory size not stated (80 GB assumed)"],
                "stack": "LLaMA-Factory 0.4 era (December 2023); versions not stated",
                "notes": "'GRAM' column; tool not stated"}
    if cid == "LF-07":  # examples/fsdp_qlora/fsdp.sh @935ee0a02 + examples/accelerate/fsdp_config.yaml
        cfg = (MAIN + "meta-llama__Llama-2-70b-hf.json", "meta-llama/Llama-2-70b-hf")
        keys = lf_yaml(cfg[1], "lora", lora_target=QV, quantization_bit=4, fp16=True, cutoff_len=1024,
                       per_device_train_batch_size=1, gradient_accumulation_steps=8, val_size=0.1,
                       per_device_eval_batch_size=1)
        launcher = {"kind": "fsdp", "version": 1, "config": "examples/accelerate/fsdp_config.yaml@935ee0a02",
                    "sharding_strategy": "FULL_SHARD", "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                    "offload_params": True, "cpu_ram_efficient_loading": True, "use_orig_params": False,
                    "backward_prefetch": "BACKWARD_PRE", "mixed_precision": "fp16", "num_processes": 2}
        return {"source": "llamafactory", "era": "2024-03-21 (hiyouga/LLaMA-Factory@935ee0a02 examples/fsdp_qlora)",
                "model_config": cfg[0], "model_id": cfg[1], "source_line": "LF README: 70B QLoRA on 2x24GB with FSDP",
                "yaml": keys, "launcher": launcher, "gpus_per_node": 2, "gpu": "RTX-4090",
                "metric": "unknown", "outcome": "fits-upper-bound", "measured_bytes": 24 * GiB,
                "sequence": "variable-max",
                "deviations": ["claim, not a measurement: README says the example fine-tunes a 70B model on 2x24GB",
                               "card not named (24 GB class; RTX-4090 assumed for naming)",
                               "tokens: alpaca_gpt4_en + glaive_toolcall, max_samples 3000, cutoff_len 1024",
                               "FSDP: the estimator does not model FSDP yet"],
                "stack": "LLaMA-Factory 0.6 (March 2024); bitsandbytes>=0.43 for FSDP+QLoRA",
                "notes": "measured_bytes = nominal 24 GiB card"}
    if cid in ("LF-08", "LF-09"):  # issue #5977
        cfg = L3_8I
        offload = cid == "LF-09"
        path = "examples/deepspeed/ds_z3_offload_config.json" if offload else "examples/deepspeed/ds_z3_config.json"
        # the YAML names ds_config.json (served from deepspeed_json): naming examples/deepspeed/... would make the
        # estimator fall back to its bundled v0.9.5 copy (overlap_comm false), not the 2024 file the user ran
        keys = lf_yaml(cfg[1], "full", fp16=True, cutoff_len=1024, per_device_train_batch_size=1,
                       gradient_accumulation_steps=2, val_size=0.1, per_device_eval_batch_size=1)
        return {"source": "llamafactory", "era": "2024-11 (hiyouga/LlamaFactory issue #5977)",
                "model_config": cfg[0], "model_id": cfg[1], "source_line": "LlamaFactory issue #5977",
                "yaml": keys, "deepspeed_json": LF_DS_Z3_OFFLOAD_2024 if offload else LF_DS_Z3_2024,
                "gpus_per_node": 8, "gpu": "RTX-3090", "metric": "unknown",
                "outcome": "measured" if offload else "oom", "divisor": GiB, "sequence": "variable-max",
                "deviations": ["tokens: identity + alpaca_en_demo (short samples), cutoff_len 1024",
                               "user report; figure '13G' per card, tool not stated (nvidia-smi likely), unit "
                               "divisor not stated (2^30 assumed)" if offload else "user report of a CUDA OOM",
                               "DeepSpeed JSON as LF shipped it before 2025-03-07 (overlap_comm true; "
                               "hiyouga/LLaMA-Factory@e01bdb414 examples/deepspeed/)"],
                "stack": "LLaMA-Factory 0.9.x (November 2024); versions not stated",
                "notes": f"the issue's YAML names {path}; deepspeed_json is that file as of 2024"}
    if cid == "LF-20":  # issue #5709
        cfg = L31_8I
        keys = lf_yaml(cfg[1], "lora", lora_rank=8, lora_alpha=16, lora_dropout=0.0, lora_target="all", fp16=True,
                       cutoff_len=4096, per_device_train_batch_size=1, gradient_accumulation_steps=4,
                       use_unsloth=True, optim="adamw_torch")
        return {"source": "llamafactory", "era": "2024-10 (hiyouga/LlamaFactory issue #5709)",
                "model_config": cfg[0], "model_id": cfg[1], "source_line": "LlamaFactory issue #5709",
                "yaml": keys, "gpu": "L40", "metric": "unknown", "outcome": "oom", "sequence": "variable-max",
                "deviations": ["user report of a CUDA OOM in an open issue; it may be a bug, not a capacity limit",
                               "lora_target not set in the issue's YAML (per public_measurements.csv): LF 0.9 "
                               "default all"],
                "stack": "LLaMA-Factory 0.9.x; unsloth version not stated", "notes": ""}
    if cid == "LF-23":  # issue #3716
        cfg = L3_8I
        keys = lf_yaml(cfg[1], "lora", stage="dpo", lora_rank=8, lora_target=QV, fp16=True, pref_ftx=1.0,
                       cutoff_len=1024, per_device_train_batch_size=4, gradient_accumulation_steps=8)
        return {"source": "llamafactory", "era": "2024-05 (hiyouga/LlamaFactory issue #3716)",
                "model_config": cfg[0], "model_id": cfg[1], "source_line": "LlamaFactory issue #3716", "yaml": keys,
                "gpu": "A10", "metric": "unknown", "outcome": "fits-upper-bound", "measured_bytes": 24 * GiB,
                "sequence": "variable-max",
                "deviations": ["claim, not a measurement: a commenter trained this config on a 24 GB A10",
                               "model is the user's SFT checkpoint of Meta-Llama-3-8B-Instruct; its architecture is "
                               "assumed unchanged",
                               "tokens: preference pairs, chosen and rejected each <= cutoff_len 1024"],
                "stack": "LLaMA-Factory 0.7 (May 2024)", "notes": "measured_bytes = nominal 24 GiB card"}
    reasons = {
        "LF-06": "method (LoRA or QLoRA) and settings of the '56k tokens on 24GB' claim are not stated in the README",
        "LF-10": "Qwen/Qwen1.5-7B: config.json not available",
        "LF-11": "precision (bf16/fp16/fp32) and gradient accumulation not stated: the weight bytes are unknown",
        "LF-12": "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B: config.json not available",
        "LF-13": "Qwen/Qwen1.5-72B: config.json not available; DeepSpeed stage not shown",
        "LF-14": "Qwen/Qwen2-72B(-Instruct): config.json not available",
        "LF-15": "Qwen/Qwen2-72B(-Instruct): config.json not available",
        "LF-16": "baichuan-inc/Baichuan2-13B-Chat: config.json not available",
        "LF-17": "Qwen/Qwen1.5-14B-Chat: config.json not available",
        "LF-18": "Qwen/Qwen1.5-14B-Chat: config.json not available",
        "LF-19": "Qwen/Qwen-14B-Chat: config.json not available",
        "LF-21": "unsloth/Meta-Llama-3.1-8B-Instruct-bnb-4bit (pre-quantized checkpoint): config.json not available",
        "LF-22": "TechxGenus/Meta-Llama-3-70B-Instruct-GPTQ: config.json not available",
        "LF-24": "batch size, cutoff length and LoRA target not stated",
        "LF-25": "precision not stated (the issue's LoRA run could be bf16 or fp32 weights)",
        "LF-26": "precision not stated (the issue's LoRA run could be bf16 or fp32 weights)",
        "LF-27": "precision not stated (the issue's LoRA run could be bf16 or fp32 weights)",
        "LF-28": "Ascend 910B NPU (npu-smi, HCCL): not a GPU measurement; DeepSeek-R1-Distill-Qwen-32B config missing",
    }
    return reasons.get(cid, f"{cid}: no mapping")


def ba_case(row: Row) -> dict[str, Any] | str:
    cfg = (MAIN + "meta-llama__Meta-Llama-3-8B.json", "meta-llama/Meta-Llama-3-8B") if row["id"] == "BA-01" else L2_7
    keys = lf_yaml(cfg[1], "full", use_badam=True, badam_mode="layer", badam_switch_mode="random",
                   badam_switch_interval=100, bf16=True, cutoff_len=1024, per_device_train_batch_size=2,
                   gradient_accumulation_steps=8, val_size=500, per_device_eval_batch_size=2)
    return {"source": "llamafactory", "era": "2024-04-22 (Ledzy/BAdam@4c1828c readme.md Table 1)",
            "model_config": cfg[0], "model_id": cfg[1], "source_line": "BAdam README Table 1 (LLaMA-Factory fork)",
            "yaml": keys, "gpu": "RTX-3090", "metric": "unknown", "divisor": GiB, "sequence": "variable-max",
            "deviations": ["BAdam's LLaMA-Factory fork (finetuning_type block, switch_block_every 100, switch_mode "
                           "random), expressed with mainline LF's use_badam keys",
                           "the table does not say which command produced it; the README's llama-alpaca example "
                           "(alpaca_gpt4_en, batch 2, GA 8, bf16, eval every 20 steps on 500 samples) is assumed",
                           "tokens: alpaca_gpt4_en, cutoff_len 1024 (the fork's default then), padded per batch",
                           "unit 'GB' divisor not stated (2^30 assumed)"],
            "stack": "BAdam fork of LLaMA-Factory 0.6 (April 2024)", "notes": "'Actual Memory Cost'; tool not stated"}


# ---------------------------------------------------------------------------------------------------------------
# Source: Liger-Kernel (measured.csv LG-*)
# ---------------------------------------------------------------------------------------------------------------
LG_LAUNCHER = {"kind": "fsdp", "version": 1, "sharding_strategy": "FULL_SHARD",
               "auto_wrap": "HF 'full_shard auto_wrap'",
               "activation_checkpointing": True, "backward_prefetch": "BACKWARD_PRE", "forward_prefetch": True,
               "offload_params": False, "mixed_precision": "bf16 (HF --bf16)",
               "config": "linkedin/Liger-Kernel@37356e9a examples/huggingface/config/fsdp_config.json"}


def lg_case(row: Row) -> dict[str, Any] | str:
    cid = row["id"]
    if cid.startswith("LG-Q"):
        return ("Qwen/Qwen2-7B: config.json not available (the bundled Qwen2-7B-Instruct file is not proven equal "
                "to the base model's)")
    cfg = (MAIN + "meta-llama__Meta-Llama-3-8B.json", "meta-llama/Meta-Llama-3-8B")
    liger = cid.endswith("b")
    mbs = int(row["mbs"])
    if cid.startswith("LG-L"):
        keys = lf_yaml(cfg[1], "full", bf16=True, cutoff_len=512, per_device_train_batch_size=mbs,
                       gradient_accumulation_steps=1, optim="adamw_torch", weight_decay=0.05)
        if liger:
            keys["enable_liger_kernel"] = True
        return {"source": "liger", "era": "2024-08-15 (linkedin/Liger-Kernel@8d882141 examples/huggingface)",
                "model_config": cfg[0], "model_id": cfg[1], "source_line": f"Liger HF example, batch {mbs}",
                "yaml": keys, "launcher": LG_LAUNCHER, "gpus_per_node": 4, "gpu": "A100-80GB",
                "metric": "allocated", "divisor": MiB, "outcome": "oom" if row["peak_per_gpu"] == "OOM" else "measured",
                "sequence": "variable-max",
                "deviations": ["tokens: alpaca, max_seq_length 512, DataCollatorForCompletionOnlyLM padding to the "
                               "batch's longest (pad_to_multiple_of 16) (examples/huggingface/training.py@37356e9a)",
                               "values read off the bars of img/hf_mem_alloc.png (±1000 MiB)",
                               "FSDP1 with FSDP activation checkpointing (HF Trainer --fsdp); the estimator does not "
                               "model FSDP yet",
                               "model loaded bf16 under FSDP with HF --bf16: sharded param/optimizer dtype depends "
                               "on the accelerate version"],
                "stack": "transformers==4.43.3, trl/liger-kernel/torch unpinned (examples/huggingface/"
                         "requirements.txt@37356e9a)",
                "notes": "torchrun --nproc-per-node=4 (run.sh); metric: total_peak_memory_allocated per GPU in MB of "
                         "2^20 bytes (examples/huggingface/callback.py@37356e9a: 'For memory, we use binary system')"}
    seq = int(row["seq_len"])
    keys = lf_yaml(cfg[1], "full", bf16=True, cutoff_len=seq, per_device_train_batch_size=8,
                   gradient_accumulation_steps=1, optim="adamw_torch")
    if liger:
        keys["enable_liger_kernel"] = True
    return {"source": "liger", "era": "2024-08-13 (linkedin/Liger-Kernel@d528e4a9 README.md e2e chart)",
            "model_config": cfg[0], "model_id": cfg[1], "source_line": f"Liger e2e chart, {seq} tokens",
            "yaml": keys, "launcher": {**LG_LAUNCHER, "config": "not published with the chart"},
            "gpus_per_node": 8, "gpu": "A100-80GB", "metric": "reserved", "divisor": MiB,
            "outcome": "oom" if row["peak_per_gpu"] == "OOM" else "measured", "sequence": "unknown",
            "deviations": ["dataset, padding and the exact command of the e2e chart are not published",
                           "values read off a bar chart labelled MB (±1500 MB); 2^20 divisor assumed",
                           "FSDP1: the estimator does not model FSDP yet"],
            "stack": "not stated (July/August 2024)",
            "notes": "README note: LLaMA 3-8B, batch 8, bf16, AdamW, gradient checkpointing, FSDP1 on 8 A100s"}


# ---------------------------------------------------------------------------------------------------------------
# Source: torchtitan (measured.csv TI-*)
# ---------------------------------------------------------------------------------------------------------------
def ti_case(row: Row) -> dict[str, Any] | str:
    cid = row["id"]
    if cid in ("TI-07", "TI-08", "TI-09", "TI-10"):
        return "context parallelism (CP) with full activation checkpointing and Float8: not in LLaMA-Factory"
    if cid == "TI-11":
        return "Llama 3.1 70B with tensor parallelism (FSDP 32 x TP 8): not in LLaMA-Factory"
    if cid == "TI-12":
        return "Llama 3.1 405B with TP 8 x PP 8: not in LLaMA-Factory"
    n = int(cid[3:])
    world = 8 if n in (1, 2, 3) else 128 if n in (4, 5, 6) else 32
    nodes = world // 8
    keys = lf_yaml("meta-llama/Llama-3.1-8B", "full", stage="pt", bf16=True, cutoff_len=8192, packing=True,
                   per_device_train_batch_size=2, gradient_accumulation_steps=1, flash_attn="sdpa",
                   optim="adamw_torch", max_grad_norm=1.0)
    devs = [_torchtitan_8b_proof(),
            "pre-training from scratch on C4 with torchtitan's own trainer and model code",
            "selective (per-op) activation checkpointing (llama3_8b.toml mode 'selective', option 'op'); LF can "
            "only say full per-layer checkpointing",
            "FSDP2 mixed precision: fp32 sharded params, bf16 compute, fp32 gradient reduce",
            "FSDP: the estimator does not model FSDP yet"]
    kernels = row["kernels_other"].lower()
    if "compile" in kernels:
        devs.append(D_COMPILE)
    if "float8" in kernels:
        devs.append("Float8 linears (torchao)" + (" with float8 FSDP all-gather" if n == 13 else ""))
    launcher = {"kind": "fsdp", "framework": "torchtitan", "version": 2, "data_parallel_shard_degree": world,
                "reshard_after_forward": True, "param_dtype": "bf16", "reduce_dtype": "fp32",
                "offload_params": False}
    era = ("2024-12 (pytorch/torchtitan@820504e20 benchmarks/llama3_h100_202412_torchtitan.md)" if n <= 6 else
           "2025-07-11 (pytorch/torchtitan@cbccb3878 benchmarks/llama3-8b_h200_202506_trainy-whitefiber.md)")
    gpu = "H100 96GB HBM2e (Grand Teton)" if n <= 6 else "H200"
    return {"source": "torchtitan", "era": era, "model_config": MAIN + "meta-llama__Llama-3.1-8B.json",
            "model_id": "meta-llama/Llama-3.1-8B", "source_line": f"torchtitan benchmark, {row['kernels_other']}",
            "yaml": keys, "launcher": launcher, "gpus_per_node": 8, "nodes": nodes, "gpu": gpu,
            "metric": "reserved", "divisor": GiB, "sequence": "packed", "exact": False, "deviations": devs,
            "stack": "latest torch/torchao/torchtitan at the end of 2024 (not versioned)" if n <= 6 else
                     "not stated",
            "notes": "'Memory(GiB)': max reserved over ranks, stable across training (benchmark README)"
                     + ("; the 8-node run reported 46.97 GiB" if n == 13 else "")}


# ---------------------------------------------------------------------------------------------------------------
# Rows with no mapping at all
# ---------------------------------------------------------------------------------------------------------------
def other_case(row: Row) -> str:
    prefix = row["id"][:2]
    if prefix == "HF":
        return ("bert-large-uncased sequence classification (encoder): LLaMA-Factory trains causal LMs; no "
                "config.json in the catalogs")
    if prefix == "AX":
        model = row["model"]
        if "gpt-oss" in model:
            return f"{model}: gpt_oss is not counted by the estimator (MXFP4 experts, attention sinks)"
        if "Llama-2-7b-hf" in model:
            return ("NousResearch/Llama-2-7b-hf re-upload: config not proven equal to meta-llama's; the 2023 "
                    "statement's config is not the one in the repository now")
        return f"{model}: config.json not available"
    if prefix in ("GA", "AP"):
        return ("LLaMA-7B pre-trained from scratch with the optimizer paper's own llama_7b.json and training "
                "loop: config not in the catalogs, optimizer (per-layer 8-bit GaLore / Q-APOLLO) not expressible")
    return f"{row['id']}: no mapping"


HANDLERS: dict[str, Callable[[Row], dict[str, Any] | str]] = {
    "SW": sw_case, "SE": se_case, "SX": sx_case, "QW": qw_case, "TT": tt_case, "PE": pe_case, "UN": un_case,
    "LF": lf_case, "BA": ba_case, "LG": lg_case, "TI": ti_case,
}


def build() -> tuple[list[Case], list[tuple[str, str, str]]]:
    cases: list[Case] = []
    skipped: list[tuple[str, str, str]] = []
    for name in ("measured.csv", "public_measurements.csv"):
        with (HERE / name).open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        for row in rows:
            handler = HANDLERS.get(row["id"][:2])
            result: dict[str, Any] | str = handler(row) if handler else other_case(row)
            if isinstance(result, str):
                skipped.append((row["id"], name, result))
            else:
                cases.append(make_case(row, name, result))
    ids = [c["id"] for c in cases] + [s[0] for s in skipped]
    duplicated = [i for i, n in Counter(ids).items() if n > 1]
    if duplicated:
        raise SystemExit(f"ids used twice: {duplicated}")
    return cases, skipped


SKIP_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("duplicate of another row", ("same run as",)),
    ("model config not available (or not proven equal to an available one)",
     ("config.json not available", "not proven", "config not in the catalogs")),
    ("model kind the estimator does not count, or not a GPU", ("gpt_oss", "encoder", "NPU")),
    ("parallelism or backend LLaMA-Factory lacks",
     ("device_map", "parallelism", "Megatron", "TP 8", "context parallelism")),
    ("method or optimizer LLaMA-Factory (or the estimator) lacks",
     ("not available in LLaMA-Factory", "LoRA-FA", "OFT", "Muon", "LLaMA-Pro", "quantized optimizer", "packs only",
      "PPO with separate", "rejects")),
    ("a setting that dominates memory is not published",
     ("not stated", "unknown", "not published", "no max_seq_len", "not given")),
)


def skip_category(reason: str) -> str:
    for label, words in SKIP_CATEGORIES:
        if any(word in reason for word in words):
            return label
    raise SystemExit(f"uncategorised skip reason: {reason}")


def render(cases: list[Case], skipped: list[tuple[str, str, str]]) -> tuple[str, str]:
    jsonl = "".join(json.dumps(c, ensure_ascii=False, sort_keys=False) + "\n" for c in cases)
    by_reason = Counter(skip_category(reason) for _, _, reason in skipped)
    lines = ["# Measured rows not expressed as cases", "",
             f"{len(skipped)} of {len(cases) + len(skipped)} rows (measured.csv + public_measurements.csv). "
             "Generated by `python -m benchmarks.calibration.build_cases`; the reasons are the mapping's own.", "",
             "| id | file | why not |", "|---|---|---|"]
    lines += [f"| {cid} | {name} | {reason.replace('|', '/')} |" for cid, name, reason in skipped]
    lines += ["", "## Reasons by category", "", "| rows | category |", "|---|---|"]
    lines += [f"| {n} | {reason.replace('|', '/')} |" for reason, n in by_reason.most_common()]
    return jsonl, "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if cases.jsonl / cases_skipped.md are stale")
    args = parser.parse_args(argv)
    cases, skipped = build()
    jsonl, skipped_md = render(cases, skipped)
    if args.check:
        stale = [p.name for p, text in ((CASES, jsonl), (SKIPPED, skipped_md))
                 if not p.is_file() or p.read_text(encoding="utf-8") != text]
        if stale:
            print(f"stale: {', '.join(stale)} (run python -m benchmarks.calibration.build_cases)", file=sys.stderr)
            return 1
        return 0
    CASES.write_text(jsonl, encoding="utf-8")
    SKIPPED.write_text(skipped_md, encoding="utf-8")
    exact = sum(1 for c in cases if c["exact"])
    print(f"{len(cases)} cases ({exact} exact), {len(skipped)} skipped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
