"""Per-tensor constants: dtype sizes, the cuBLAS workspace, quantized storage, each with its source.

The runtime layer's numbers (allocator slack, CUDA context, NCCL, the error band) are fitted on measurements:
estimator/data/runtime.json, read by estimator/runtime.py.
"""

from __future__ import annotations

from estimator.units import MiB

DTYPE_BYTES = {"float32": 4, "float": 4, "bfloat16": 2, "float16": 2, "half": 2, "fp32": 4, "bf16": 2, "fp16": 2}

# cuBLAS/cuBLASLt workspace handed out by the caching allocator, one per stream that runs matmuls
# (forward thread and autograd thread): ~32 MiB each on Hopper (research/trace.md §7).
CUBLAS_WORKSPACE_BYTES = 2 * 32 * MiB

# bitsandbytes NF4 with double quantization (LF default): 4 bits + 8-bit absmax per 64 + fp32 per 256 blocks.
NF4_BYTES_PER_PARAM = 0.5 + (8 / 64 + 32 / (64 * 256)) / 8
INT8_BYTES_PER_PARAM = 1.0 + 4 / 4096  # LLM.int8: int8 weights + fp32 row statistics
