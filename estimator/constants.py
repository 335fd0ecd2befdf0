"""Fixed costs and allocator behaviour: the few numbers that come from measurement, not from formulas.

Each names the measurement or source that sets it; docs/accuracy.md shows the calibration behind them.
"""

from __future__ import annotations

from estimator.units import MiB

DTYPE_BYTES = {"float32": 4, "float": 4, "bfloat16": 2, "float16": 2, "half": 2, "fp32": 4, "bf16": 2, "fp16": 2}

# cuBLAS/cuBLASLt workspace handed out by the caching allocator, one per stream that runs matmuls
# (forward thread and autograd thread): ~32 MiB each on Hopper (research/trace.md §7).
CUBLAS_WORKSPACE_BYTES = 2 * 32 * MiB

# CUDA context + kernels loaded by torch, outside the caching allocator: 0.5-1.4 GiB depending on card and
# driver (calibration/README.md; the HF rows measure 1343 MiB on a V100). A typical Ampere/Hopper value.
CUDA_CONTEXT_BYTES = 600 * MiB

# NCCL communicator buffers per process in multi-GPU runs (cudaMalloc'd by NCCL, not torch): about
# NCCL_BUFFSIZE 4 MiB × channels × protocols per peer ring; ~0.3-0.5 GiB seen in practice.
NCCL_BUFFER_BYTES = 384 * MiB

# Caching allocator: reserved ≥ allocated by the blocks it keeps cached and fragments that cannot be
# reused. research/trace.md's allocator replay gives +0-87 MiB on allocated; reserved runs 0-20 % above
# allocated in the ms-swift measurements (calibration/README.md).
RESERVED_FRACTION = 0.06
RESERVED_FLOOR_BYTES = 256 * MiB

# bitsandbytes NF4 with double quantization (LF default): 4 bits + 8-bit absmax per 64 + fp32 per 256 blocks.
NF4_BYTES_PER_PARAM = 0.5 + (8 / 64 + 32 / (64 * 256)) / 8
INT8_BYTES_PER_PARAM = 1.0 + 4 / 4096  # LLM.int8: int8 weights + fp32 row statistics
