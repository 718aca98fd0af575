"""`fastssl info` and `python -m fastssl info`."""

import json
import shutil
import subprocess
import sys

import pytest


def test_module_info_lists_backends_per_device():
    done = subprocess.run([sys.executable, "-m", "fastssl", "info"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for expected in ("torch", "native extension", "cpu  reference available", "cuda"):
        assert expected in done.stdout


def test_info_json():
    done = subprocess.run([sys.executable, "-m", "fastssl", "info", "--json"], capture_output=True, text=True,
                          timeout=120)
    report = json.loads(done.stdout)
    assert report["backends"]["cpu"]["reference"] is None
    assert set(report["backends"]["cpu"]) == {"reference", "cpp", "cuda", "triton"}
    decoders = report["decoders"]
    assert set(decoders["installed"]) <= {"dali", "torchvision", "pil"}
    assert decoders["auto"] == (decoders["installed"][0] if decoders["installed"] else None)
    video = report["video_decoders"]
    assert set(video["installed"]) <= {"dali", "pyav"}
    assert (video["auto"] or "none").split()[0] == (video["installed"][0] if video["installed"] else "none")
    audio = report["audio_decoders"]
    assert set(audio["installed"]) <= {"dali", "pyav"}
    assert (audio["auto"] is None) == ("pyav" not in audio["installed"])
    assert ("dali" in (audio["auto"] or "")) == ("dali" in audio["installed"] and "pyav" in audio["installed"])


def test_console_script():
    exe = shutil.which("fastssl", path=str(__import__("pathlib").Path(sys.executable).parent))
    if exe is None:
        pytest.skip("the fastssl console script is not installed in this environment")
    done = subprocess.run([exe, "info"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "backends:" in done.stdout


def test_bad_command_is_a_usage_error():
    done = subprocess.run([sys.executable, "-m", "fastssl", "frobnicate"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_native_loops_use_torch_threads():
    """at::parallel_for compiles to a serial loop unless the extension is built with OpenMP like torch."""
    from fastssl import _native

    native = _native.state()
    if native.module is None:
        pytest.skip(f"fastssl._C is not loaded: {native.reason}")
    import torch

    if "OpenMP" not in torch.__config__.parallel_info():
        pytest.skip("this torch does not parallelise with OpenMP")
    assert native.info.get("openmp") is True, native.info
