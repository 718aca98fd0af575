"""fastssl._C's cache of reused host blocks (csrc/host_pool.h): large CPU outputs without fresh page faults."""

import os
import subprocess
import sys

import pytest
import torch

from fastssl import _native

pytestmark = pytest.mark.skipif(_native.missing_ops(["host_empty"]) != [], reason="fastssl._C is not built")

MIB = 1 << 20


def free_bytes() -> int:
    return torch.ops.fastssl_C.host_pool_free_bytes()


def test_host_empty_is_a_writable_cpu_tensor():
    t = _native.host_empty(3 * MIB + 5)
    assert t.shape == (3 * MIB + 5,) and t.dtype == torch.uint8 and t.device.type == "cpu" and t.is_contiguous()
    t.fill_(7)
    t[-1] = 9
    assert int(t[:-1].sum()) == 7 * (3 * MIB + 4) and int(t[-1]) == 9
    f = _native.host_empty(MIB, torch.float32)
    assert f.dtype == torch.float32 and f.untyped_storage().nbytes() == 4 * MIB


def in_fresh_process(code: str, **env: str) -> str:
    """Runs ``code`` in a new interpreter (an empty pool: other tests leave blocks behind); its stdout."""
    done = subprocess.run([sys.executable, "-c", "import torch\nfrom fastssl import _native\n_native.state()\n" + code],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_freed_block_is_handed_to_the_next_request_of_its_size():
    in_fresh_process("""
free = torch.ops.fastssl_C.host_pool_free_bytes
MIB = 1 << 20
a = _native.host_empty(5 * MIB)
pointer = a.data_ptr()
del a
assert free() == 5 * MIB, free()
b = _native.host_empty(5 * MIB - 100)  # within the slack: the same block, its size kept
assert b.data_ptr() == pointer and free() == 0
view = b[10:20]
del b
assert free() == 0  # a view keeps the block alive
del view
assert free() == 5 * MIB, free()
big = _native.host_empty(16 * MIB)
del big
small = _native.host_empty(2 * MIB)  # a much larger free block is not taken
assert free() == 21 * MIB, free()
""")


def test_small_tensors_are_not_pooled():
    before = free_bytes()
    t = _native.host_empty(1000)
    del t
    assert free_bytes() == before


def test_negative_size_is_an_error():
    with pytest.raises(RuntimeError, match="size must be >= 0"):
        torch.ops.fastssl_C.host_empty([-1], torch.uint8)


def test_pool_limit_from_the_environment():
    code = "t = _native.host_empty(4 << 20)\ndel t\nprint(torch.ops.fastssl_C.host_pool_free_bytes())"
    assert int(in_fresh_process(code, FASTSSL_HOST_POOL_MB="0")) == 0
    assert int(in_fresh_process(code, FASTSSL_HOST_POOL_MB="64")) == 4 << 20
