"""Name the training phase an OOM happened in, from its traceback frames and the lines just before it.

Rules are tried in order; the first that matches anywhere in the evidence wins. The order matters:
checkpoint saving, model loading and evaluation call forward too; an optimizer step under DeepSpeed
sits inside `backward`-named wrappers in interleaved multi-rank output; gradient checkpointing
recomputes forward inside backward.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rules.diagnose.diagnosis import Frame

PHASE_LABELS = {
    "checkpoint-save": "checkpoint save",
    "model-loading": "model loading",
    "evaluation": "evaluation",
    "optimizer-step": "optimizer step",
    "backward": "backward",
    "loss-logits": "loss / logits",
    "forward": "forward",
    "communication": "communication (NCCL)",
    "unknown": "unknown",
}

_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "checkpoint-save",
        re.compile(
            r"\b(_save_checkpoint|save_model|save_pretrained|_save_to_state_dict|save_checkpoint|"
            r"_save_optimizer_and_scheduler|consolidated_16bit_state_dict|_zero3_consolidated)\b"
        ),
    ),
    (
        "model-loading",
        re.compile(
            r"\b(from_pretrained|_load_pretrained_model|_load_state_dict_into_meta_model|load_model|"
            r"set_module_tensor_to_device|init_adapter|_setup_full_tuning|_setup_freeze_tuning|"
            r"_setup_lora_tuning|_move_model_to_device|load_checkpoint_in_model)\b|"
            r"Loading checkpoint shards|model\.float\(\)|\.to\(torch\.float32\)|Upcasting trainable params"
        ),
    ),
    (
        "evaluation",
        re.compile(
            r"\b(evaluation_loop|prediction_loop|prediction_step|_maybe_log_save_evaluate|evaluate|"
            r"predict)\b"
        ),
    ),
    (
        "optimizer-step",
        re.compile(
            r"\b(_optimizer_step|_take_model_step|_multi_tensor_adamw|_single_tensor_adamw|_fused_adamw|"
            r"_multi_tensor_adam|_single_tensor_adam|exp_avg_sq|exp_avg|optimizer\.step|"
            r"_configure_zero_optimizer|DeepSpeedZeroOptimizer\w*|initialize_optimizer_states)\b|"
            r"torch/optim/\w+\.py"
        ),
    ),
    (
        "backward",
        re.compile(
            r"\b(run_backward|_engine_run_backward|backward)\b|"
            r"Calls into the C\+\+ engine to run the backward"
        ),
    ),
    (
        "loss-logits",
        re.compile(
            r"\b(cross_entropy|cross_entropy_loss|log_softmax|ForCausalLMLoss|fixed_cross_entropy|"
            r"loss_function|lm_head|get_batch_logps|selective_log_softmax)\b|logits\.float\(\)"
        ),
    ),
    (
        "communication",
        re.compile(
            r"\b(all_reduce|all_gather\w*|reduce_scatter\w*|broadcast\w*|_verify_params_across_processes|"
            r"ProcessGroupNCCL|DistBackendError)\b|NCCL WARN"
        ),
    ),
    (
        "forward",
        re.compile(
            r"\b(forward|_call_impl|_wrapped_call_impl|compute_loss|training_step|"
            r"_prepare_decoder_attention_mask|new_forward)\b"
        ),
    ),
)


def detect_phase(frames: Sequence[Frame], nearby_lines: Sequence[str]) -> tuple[str, str]:
    """(phase id, the evidence that decided it). Evidence: frame function names and source lines."""
    evidence = [f"{frame.function} {frame.code}".strip() for frame in frames]
    evidence.extend(nearby_lines)
    for phase, pattern in _RULES:
        for item in evidence:
            match = pattern.search(item)
            if match is not None:
                return phase, match.group(0)
    return "unknown", ""
