"""`import fastssl` stays lean: no GPU, no extension, no Triton, no DALI needed, no CUDA state touched."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from fastssl import _native

BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def __init__(self, names): self.names = names
        def find_spec(self, name, path=None, target=None):
            if any(name == n or name.startswith(n + ".") for n in self.names):
                raise ModuleNotFoundError("No module named " + repr(name) + " (blocked by the test)")
            return None
    sys.meta_path.insert(0, Block(BLOCKED))
    """
)


def run_python(code: str, blocked=(), env_extra=None) -> dict:
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", **(env_extra or {}))
    env.pop("TRITON_INTERPRET", None)
    script = f"BLOCKED = {list(blocked)!r}\n" + BLOCKER + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_touches_no_cuda_triton_dali_or_extension():
    out = run_python(
        """
        import json, sys, torch, fastssl
        print(json.dumps({"cuda_initialized": torch.cuda.is_initialized(),
                          "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("triton", "nvidia")
                                           or m == "fastssl._C")}))
        """
    )
    assert out == {"cuda_initialized": False, "loaded": []}


def test_import_and_ops_work_without_extension_triton_and_dali():
    out = run_python(
        """
        import json, warnings, torch
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import fastssl
            lab = fastssl.ops.rgb_to_lab(torch.rand(1, 3, 4, 4))
        try:
            fastssl.ops.rgb_to_lab(torch.rand(1, 3, 4, 4), backend="cpp")
            error = ""
        except fastssl.BackendUnavailable as e:
            error = str(e)
        print(json.dumps({"shape": list(lab.shape), "error": error,
                          "warnings": [str(w.message) for w in caught],
                          "cuda_initialized": torch.cuda.is_initialized()}))
        """,
        blocked=("fastssl._C", "triton", "nvidia"),
    )
    assert out["shape"] == [1, 3, 4, 4]
    assert "fastssl._C is not built" in out["error"] and "pip install" in out["error"]
    assert any("fastssl._C is not built" in w for w in out["warnings"]), out["warnings"]
    assert out["cuda_initialized"] is False


def test_version_mismatch_message_is_actionable():
    message = _native._mismatch({"torch": "1.0.0", "cuda": "", "python": "2.7"})
    assert "built for PyTorch 1.0.0" in message and "Python 2.7" in message and "Rebuild" in message
    import torch

    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert _native._mismatch({"torch": torch.__version__, "cuda": torch.version.cuda or "", "python": py}) is None


def test_loaded_extension_matches_this_torch():
    state = _native.state()
    if not state.available:
        pytest.skip(state.reason)
    assert _native._mismatch(state.info) is None
