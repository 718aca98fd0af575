"""Backend resolution: auto, FASTSSL_BACKEND, explicit choices and their errors."""

import pytest
import torch

from fastssl import BackendUnavailable
from fastssl.backends import OpBackends, available_backends, unavailable_reason
from fastssl.ops import rgb_to_lab
from fastssl.ops.lab import RGB_TO_LAB


def spy_op():
    calls = []
    impls = {name: (lambda name: lambda: calls.append(name))(name) for name in ("reference", "cpp", "triton")}
    return OpBackends("spy", impls, native_ops=("rgb_to_lab",)), calls


def test_auto_prefers_cpp_on_cpu_when_built():
    op, _ = spy_op()
    expected = "cpp" if unavailable_reason("cpp", torch.device("cpu")) is None else "reference"
    assert op.resolve("auto", torch.device("cpu")) == expected


def test_env_variable_sets_the_default(monkeypatch):
    op, _ = spy_op()
    monkeypatch.setenv("FASTSSL_BACKEND", "reference")
    assert op.resolve("auto", torch.device("cpu")) == "reference"
    # An explicit argument wins over the environment.
    if unavailable_reason("cpp", torch.device("cpu")) is None:
        assert op.resolve("cpp", torch.device("cpu")) == "cpp"


def test_env_variable_is_honoured_by_the_public_op(monkeypatch):
    calls = []
    real = RGB_TO_LAB.impls["reference"]
    monkeypatch.setitem(RGB_TO_LAB.impls, "reference", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setenv("FASTSSL_BACKEND", "reference")
    rgb_to_lab(torch.rand(1, 3, 2, 2))
    assert calls == [1]


def test_env_variable_with_unavailable_backend_names_the_variable(monkeypatch):
    monkeypatch.setenv("FASTSSL_BACKEND", "cuda")
    with pytest.raises(BackendUnavailable, match="FASTSSL_BACKEND=cuda cannot run on cpu"):
        rgb_to_lab(torch.rand(1, 3, 2, 2))


@pytest.mark.parametrize(
    "backend,match",
    [
        ("cuda", "the cuda backend runs on CUDA tensors"),
        ("bogus", "unknown backend 'bogus'"),
    ],
)
def test_unavailable_backend_errors_say_why(backend, match):
    with pytest.raises(BackendUnavailable, match=match):
        rgb_to_lab(torch.rand(1, 3, 2, 2), backend=backend)


def test_triton_on_cpu_needs_the_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    reason = unavailable_reason("triton", torch.device("cpu"))
    assert reason is not None and ("TRITON_INTERPRET=1" in reason or "not installed" in reason)


def test_op_without_implementation():
    op = OpBackends("half_done", {"reference": lambda: None})
    if unavailable_reason("cpp", torch.device("cpu")) is None:
        with pytest.raises(BackendUnavailable, match="half_done has no cpp implementation"):
            op.resolve("cpp", torch.device("cpu"))
    assert op.resolve("auto", torch.device("cpu")) == "reference"


def test_backend_must_be_a_string():
    op, _ = spy_op()
    with pytest.raises(TypeError, match="backend must be a string"):
        op.resolve(None, torch.device("cpu"))


def test_available_backends_lists_reference():
    assert "reference" in available_backends("cpu")


def test_extension_built_before_an_op_existed():
    if unavailable_reason("cpp", torch.device("cpu")) is not None:
        pytest.skip("the extension is not loaded")
    op = OpBackends("ghost_op_for_test", {"reference": lambda: "ref", "cpp": lambda: "cpp"})
    with pytest.raises(BackendUnavailable, match=r"built before ghost_op_for_test existed.*rebuild"):
        op.resolve("cpp", torch.device("cpu"))
    with pytest.warns(RuntimeWarning, match="ghost_op_for_test: fastssl._C was built before"):
        assert op.resolve("auto", torch.device("cpu")) == "reference"
    declared = OpBackends("lab_alias_for_test", {"cpp": lambda: None}, native_ops=("rgb_to_lab",))
    assert declared.resolve("auto", torch.device("cpu")) == "cpp"


def test_lazy_imports_its_module_on_the_first_call_only(monkeypatch):
    import sys

    from fastssl.backends import lazy

    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    to_hsv = lazy("colorsys", "rgb_to_hsv")
    assert "colorsys" not in sys.modules
    assert to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
    assert "colorsys" in sys.modules


def test_native_looks_the_op_up_when_called(monkeypatch):
    from fastssl import _native
    from fastssl.backends import native

    class Ops:
        def rotations(self, *args):
            return ("called", args)

    call = native("rotations")  # named first: the op is looked up when called
    monkeypatch.setattr(_native, "ops", Ops)
    assert call(1, 2) == ("called", (1, 2))


def test_kernel_dtypes_converts_what_the_kernel_cannot_read_or_write():
    from fastssl._dtypes import kernel_dtypes

    seen = []

    def kernel(x, table, dtype):
        seen.append((x.dtype, table.dtype, dtype))
        return (x + table).to(dtype)

    x, table = torch.ones(2, dtype=torch.float16), torch.ones(2, dtype=torch.float16)
    wrapped = kernel_dtypes(kernel, reads=(torch.float32,), converted=(0, 1), writes=(torch.float32,))
    assert wrapped(x, table, torch.float64).dtype == torch.float64
    assert seen[-1] == (torch.float32, torch.float32, torch.float32)
    assert kernel_dtypes(kernel, reads=(torch.float32,), converted=(0, 1))(x, table, torch.float32).dtype == torch.float16
    assert kernel_dtypes(kernel, reads=(torch.float32,), converted=(0, 1), cast_back=False)(
        x, table, torch.float32).dtype == torch.float32


def test_as_bits_moves_any_dtype_exactly():
    from fastssl._dtypes import as_bits

    x = torch.tensor([[True, False], [False, True]])
    assert torch.equal(as_bits(torch.rot90)(x), torch.rot90(x))
    z = torch.randn(3, dtype=torch.complex64)
    assert torch.equal(as_bits(torch.flip)(z, [0]), z.flip(0))
