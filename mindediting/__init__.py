"""mindediting: a MindSpore model zoo for video restoration and computational imaging."""
import os

# MindSpore 2.10 runs CPU convolutions through oneDNN in plain NCHW layout. On AVX-512 CPUs oneDNN then
# picks a reference kernel ("jit_uni_ncsp:conv+ref:any", about 0.1 GFLOP/s); capped at AVX2 it uses its
# GEMM kernel ("gemm:jit"), about 100x faster (measured: 3x3 conv 64->64 on 64x64, 2.9 s -> 25 ms).
# oneDNN reads this variable when it creates its first primitive, so setting it here works even after
# `import mindspore`. Export ONEDNN_MAX_CPU_ISA yourself to choose otherwise.
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")

__version__ = "0.1.0"
