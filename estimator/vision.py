"""Images and videos: the patches one sequence sends through the vision tower, and what the tower keeps.

LLaMA-Factory resizes every image above image_max_pixels down to that area (data/mm_plugin.py:218-235) and
samples at most video_maxlen frames of at most video_max_pixels each (l.237-247). Dynamic-resolution
towers (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, Qwen3.5) then round each side to a multiple of patch·merge
(image_processing_qwen2_vl.py smart_resize) and cut patch×patch patches — temporal_patch_size frames per
video patch — and merge merge×merge patches into one LLM token. Fixed-resolution towers (CLIP, SigLIP) see
every image at image_size². The merged tokens are part of the LLM sequence, which cutoff_len bounds, so a
sequence never carries more than merge²·cutoff_len patches (research /work/notes/methods.md §8).

How many images a sample has is the dataset's business: the estimate takes the largest single image or
video per sequence (an assumption line says so). A frozen tower (freeze_vision_tower, the default) records
no autograd graph — pixel_values need no gradient — so it costs one block's forward temporaries; a trainable
tower keeps its blocks' activations like a decoder layer (or one input per block with checkpointing:
its blocks are GradientCheckpointingLayers, modeling_qwen2_vl.py:427).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from estimator import activations as act
from estimator.model import ModelSpec, VisionSpec

if TYPE_CHECKING:
    from estimator.plan import TrainingPlan

ASPECT_ROUNDING = 1.07  # smart_resize rounds sides to the nearest multiple: up to 7 % more tokens (methods.md §8.2)


@dataclass(frozen=True)
class VisionBytes:
    saved: int  # kept from the forward to the backward (a trainable tower)
    working: int  # one block's temporaries (forward of a frozen tower, recompute of a trainable one)


def _image_patches(vision: VisionSpec, max_pixels: int) -> int:
    if not vision.dynamic:
        side = (vision.image_size or 0) // vision.patch
        return side * side + 1  # + the class token
    unit = vision.merge * vision.merge
    patches = math.ceil(ASPECT_ROUNDING * max_pixels / (vision.patch * vision.patch))
    return unit * math.ceil(patches / unit)


def vision_patches(model: ModelSpec, plan: TrainingPlan) -> int:
    """Patches of the largest single visual input of a sequence, within the merged sequence's cutoff_len."""
    vision = model.vision
    if vision is None:
        return 0
    image = _image_patches(vision, plan.image_max_pixels)
    video = 0
    if vision.dynamic:
        frames = plan.video_maxlen + plan.video_maxlen % 2  # Qwen-VL plugins pad to an even count (l.2310)
        video = math.ceil(frames / max(1, vision.temporal)) * _image_patches(vision, plan.video_max_pixels)
    cap = vision.merge * vision.merge * plan.cutoff_len if vision.dynamic else image
    return min(max(image, video), cap)


def _block_spec(model: ModelSpec, vision: VisionSpec) -> ModelSpec:
    """A vision block seen as a decoder layer of width `hidden` (full multi-head attention, plain MLP), so its
    activations come from the same per-op accounting (estimator/activations.py)."""
    head_dim = vision.hidden // max(1, vision.heads)
    return ModelSpec(model_id=f"{model.model_id} vision tower", model_type="vision", hidden=vision.hidden,
                     layers=vision.depth, heads=vision.heads, kv_heads=vision.heads, head_dim=head_dim,
                     intermediate=vision.intermediate, vocab=0, tie_embeddings=False, q_dim=vision.hidden,
                     kv_dim=vision.hidden, gated_mlp=False)


def vision_activation_bytes(model: ModelSpec, plan: TrainingPlan, p: act.Precision) -> VisionBytes:
    vision = model.vision
    if vision is None or not model.vision_params:
        return VisionBytes(0, 0)
    patches = plan.sequences_per_micro_batch * vision_patches(model, plan)
    block = _block_spec(model, vision)
    per_image = max(1, vision_patches(model, plan))
    vp = act.Precision(residual_bytes=p.matmul_bytes, matmul_bytes=p.matmul_bytes)
    pixels = 6 * 3 * max(1, vision.temporal) * vision.patch * vision.patch  # fp32 pixel_values + the half cast
    if plan.freeze_vision_tower:
        # no-grad forward of one block: fc1 output and its activation, q/k/v, residual and norm, rotary q/k in fp32
        transient = vp.matmul_bytes * (2 * vision.intermediate + 5 * vision.hidden) + 8 * vision.hidden
        return VisionBytes(0, patches * (transient + pixels))
    kind = "full" if plan.finetuning_type in ("full", "freeze") else "adapters"
    layer = act.layer_bytes_per_token(block, vp, attention=plan.attention, seq_len=per_image, trainable=kind)
    if plan.gradient_checkpointing:
        return VisionBytes(patches * vision.depth * vp.residual_bytes * vision.hidden, patches * (layer + pixels))
    return VisionBytes(patches * (vision.depth * layer + pixels), 0)
