"""fastssl._validation: the value checks read once, raise one line naming the argument on the CPU, and
take the device path (torch._assert_async, no host read) for CUDA tensors."""

from __future__ import annotations

import pytest
import torch

from fastssl import _validation as v
from host_reads import count_host_reads


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64], ids=str)
def test_unit_range_with_tolerance(dtype):
    x = torch.rand(3, 4, 5, dtype=torch.float64).to(dtype)
    v.check_values(x, "images", unit_range=True)
    x[0, 0, 0], x[1, 1, 1] = 0, 1
    v.check_values(x, "images", unit_range=True)
    for bad in (1.01, -0.01, 255.0):
        y = x.clone()
        y[2, 3, 4] = bad
        with pytest.raises(ValueError, match=r"^images is a float image outside \[0, 1\] .*divide 0..255 images"):
            v.check_values(y, "images", unit_range=True)
        v.check_values(y, "embeddings")  # finite, and no range asked


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_named_before_range(bad):
    x = torch.rand(2, 3)
    x[1, 2] = bad
    with pytest.raises(ValueError, match="^images contains 1 NaN or infinite value"):
        v.check_values(x, "images", unit_range=True)


def test_integer_tensors_and_disabled_checks_pass(monkeypatch):
    v.check_values(torch.full((2, 2), 255, dtype=torch.uint8), "images", unit_range=True)
    monkeypatch.setenv("FASTSSL_CHECK_FINITE", "0")
    v.check_values(torch.full((2, 2), float("nan")), "images", unit_range=True)


def test_asynchronous_path_reads_nothing_and_still_fails():
    """The CUDA path on CPU tensors: torch._assert_async raises at once on the CPU, with the message."""
    good = torch.rand(4, 4)
    with v.asynchronous_checks(), count_host_reads() as reads:
        v.check_values(good, "images", unit_range=True)
        v.check_index_range(torch.tensor([0, 3]), "positive_index", 0, 4)
        v.check_range(torch.tensor([-1, 2]), "keep", -1, 2)
        v.check_none_equal(torch.tensor([0, 1]), torch.tensor([1, 0]), "equal")
    assert reads == [], reads
    with v.asynchronous_checks():
        with pytest.raises(RuntimeError, match="images is a float image outside"):
            v.check_values(good * 255, "images", unit_range=True)
        with pytest.raises(RuntimeError, match="images contains NaN or infinite values"):
            v.check_values(good / 0 - good / 0, "images", unit_range=True)
        with pytest.raises(RuntimeError, match=r"positive_index must lie in \[0, 4\)"):
            v.check_index_range(torch.tensor([0, 4]), "positive_index", 0, 4)
        with pytest.raises(RuntimeError, match=r"keep out of range: every value must lie in \[-1, 2\]"):
            v.check_range(torch.tensor([3, 0]), "keep", -1, 2)
        with pytest.raises(RuntimeError, match="equal"):
            v.check_none_equal(torch.tensor([0, 1]), torch.tensor([1, 1]), "equal")


def test_range_checks_name_the_bad_values_on_the_cpu():
    with pytest.raises(ValueError, match=r"^offsets out of range: every value must lie in \[0, 4\], got \[5, -1\]$"):
        v.check_range(torch.tensor([[0, 5], [-1, 4]]), "offsets", 0, 4)
    with pytest.raises(ValueError, match=r"^ids must lie in \[0, 3\), got \[3, 4, 5, 6, 7, 8, 9, 10\] and 2 more$"):
        v.check_index_range(torch.arange(13), "ids", 0, 3)


def test_argument_checks_name_the_argument_and_the_value():
    assert v.check_int(2, "grid", 2) == 2
    for bad in (1, 2.0, True, "3"):
        with pytest.raises(ValueError, match=f"^grid must be an integer >= 2, got {bad!r}$"):
            v.check_int(bad, "grid", 2)
    assert v.check_number(1, "fraction", 0, 1) == 1.0
    with pytest.raises(ValueError, match=r"^eps must be a number in \(0, 1\], got 0$"):
        v.check_number(0, "eps", 0, 1, open_low=True)
    with pytest.raises(ValueError, match=r"^p must be a probability in \[0, 1\], got True$"):
        v.check_number(True, "p", 0, 1, what="a probability")


def test_sync_mode_reads_back(monkeypatch):
    """FASTSSL_CHECK_FINITE=sync: the CPU's read-back path even where the asynchronous one would run."""
    monkeypatch.setenv("FASTSSL_CHECK_FINITE", "sync")
    with v.asynchronous_checks():
        with pytest.raises(ValueError, match=r"values in \[0, 255\]"):
            v.check_values(torch.tensor([0.0, 255.0]), "images", unit_range=True)


def test_messages_fit_the_device_assert():
    long_name = "a_rather_long_argument_name_for_an_embedding"
    for message in (v._non_finite_message(long_name, None), v._unit_range_message(long_name)):
        assert len(message) < v.ASYNC_MESSAGE_LIMIT, message


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_checks_do_not_synchronise():
    x = torch.rand(64, 64, device="cuda")
    v.check_values(x, "images", unit_range=True)  # warm-up
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        v.check_values(x, "images", unit_range=True)
        v.check_index_range(torch.arange(4, device="cuda"), "positive_index", 0, 4)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_range_checks_stay_in_a_compiled_graph_as_asserts(backend):
    """Kernels index memory with these values: a graph compiled on good ones refuses bad ones at run time."""
    def f(index, a, b):
        v.check_index_range(index, "index", 0, 5)
        v.check_none_equal(a, b, "a equals b somewhere")
        return index + 1

    compiled = torch.compile(f, backend=backend)
    a, b = torch.tensor([0, 1]), torch.tensor([1, 0])
    assert compiled(torch.tensor([0, 4]), a, b).tolist() == [1, 5]
    with pytest.raises(RuntimeError, match=r"index must lie in \[0, 5\)"):
        compiled(torch.tensor([0, 5]), a, b)
    with pytest.raises(RuntimeError, match="a equals b somewhere"):
        compiled(torch.tensor([0, 4]), a, a)


def test_an_op_compiled_with_an_index_out_of_range_raises_instead_of_writing_out_of_bounds():
    from fastssl.ops.kmeans import kmeans_update

    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    compiled = torch.compile(lambda assignment: kmeans_update(x, assignment, 3), backend="aot_eager")
    sums, counts = compiled(torch.tensor([0, 1, 2, 0, 1, 2]))
    assert counts.tolist() == [2, 2, 2]
    with pytest.raises(RuntimeError, match=r"assignment must lie in \[0, 3\)"):
        compiled(torch.tensor([0, 1, 2, 0, 1, 300000]))
