"""Pure-PyTorch specifications of every fastssl op: obviously right, float64-capable, slow.

Tests and benchmarks import these, and only these, as the truth the other backends are checked
against. Each module has the same stem as the op in fastssl/ops, fastssl/triton, kernels/ and csrc/.
"""
