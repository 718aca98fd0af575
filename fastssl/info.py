"""What ``fastssl info`` reports: versions, the native build, and which backends run on which device."""

from __future__ import annotations

import importlib.metadata
import platform
import sys

import torch

from . import __version__, _native, backends


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def data_decoders() -> dict:
    """Which image decoders the loader can use, and which ``decoder="auto"`` takes on each device."""
    from .data.decoders import DECODERS, available

    found = available()
    first = next((name for name in DECODERS if found[name]), None)
    return {"installed": [name for name in DECODERS if found[name]], "auto": first}


def video_decoders() -> dict:
    """Which clip decoders the video loader can use, and what ``decoder="auto"`` takes on the CPU."""
    from .data.video.decode import DALI_CPU_LONGEST

    installed = [name for name, module in (("dali", "nvidia.dali"), ("pyav", "av")) if _present(module)]
    if "dali" in installed:
        auto = "dali" + (f" (videos over {DALI_CPU_LONGEST} frames: pyav)" if "pyav" in installed else "")
    else:
        auto = "pyav" if "pyav" in installed else None
    return {"installed": installed, "auto": auto}


def audio_decoders() -> dict:
    """Who decodes the audio of videos: PyAV (a video's own track, and audio files beside videos), and DALI for the
    short audio files beside videos where it is installed (what ``decoder="auto"`` does)."""
    from .data.audio.decode import DALI_AUTO_LONGEST

    installed = [name for name, module in (("dali", "nvidia.dali"), ("pyav", "av")) if _present(module)]
    if "pyav" not in installed:
        auto = None
    elif "dali" in installed:
        auto = f"pyav (audio files beside the videos up to {DALI_AUTO_LONGEST:g} s: dali)"
    else:
        auto = "pyav"
    return {"installed": installed, "auto": auto}


def _present(module: str) -> bool:
    import importlib.util

    top = module.split(".")[0]
    return importlib.util.find_spec(top) is not None and importlib.util.find_spec(module) is not None


def collect() -> dict:
    """A dict of everything ``fastssl info`` prints (also used by the benchmarks to record their environment)."""
    native = _native.state()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    report = {
        "fastssl": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda or "cpu build",
        "triton": _version("triton"),
        "nvidia-dali": _version("nvidia-dali-cuda130") if _version("nvidia-dali-cuda130") != "not installed"
        else _version("nvidia-dali-cuda120"),
        "native": {"loaded": native.available, "build": native.info, "problem": native.reason},
        "gpu": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available() else [],
        "cpu_threads": torch.get_num_threads(),
        "backends": {},
        "decoders": data_decoders(),
        "video_decoders": video_decoders(),
        "audio_decoders": audio_decoders(),
    }
    for device in ("cpu", "cuda"):
        report["backends"][device] = {
            b: (backends.unavailable_reason(b, torch.device(device)) if device in devices else "no CUDA GPU")
            for b in backends.BACKENDS
        }
    return report


def render(report: dict) -> str:
    lines = [f"fastssl {report['fastssl']}  (Python {report['python']}, {report['platform']})",
             f"torch {report['torch']} (CUDA {report['torch_cuda']}), triton {report['triton']}, "
             f"nvidia-dali {report['nvidia-dali']}"]
    native = report["native"]
    if native["loaded"]:
        b = native["build"]
        loops = "on torch threads (OpenMP)" if b.get("openmp") else "on ONE thread (built without OpenMP)"
        lines.append(f"native extension: built for torch {b.get('torch')}, CUDA {b.get('cuda') or 'none (CPU only)'}"
                     f"{' archs ' + b['cuda_archs'] if b.get('cuda_archs') else ''}, Python {b.get('python')}, "
                     f"CPU loops {loops}")
    else:
        lines.append(f"native extension: unavailable: {native['problem']}")
    lines.append(f"GPU: {', '.join(report['gpu']) or 'none'};  CPU threads: {report['cpu_threads']}")
    decoders = report["decoders"]
    lines.append(f"image decoders installed: {', '.join(decoders['installed']) or 'none'}; "
                 f"the loader's decoder='auto' takes {decoders['auto']}")
    video = report["video_decoders"]
    lines.append(f"video decoders installed: {', '.join(video['installed']) or 'none (pip install av)'}; "
                 f"the clip loader's decoder='auto' takes {video['auto']} on the CPU")
    audio = report["audio_decoders"]
    lines.append(f"audio decoders installed: {', '.join(audio['installed']) or 'none (pip install av)'}; "
                 f"the audio-visual loader's audio_decoder='auto' takes {audio['auto'] or 'none: PyAV is needed'}")
    lines.append("backends:")
    for device, table in report["backends"].items():
        for name, reason in table.items():
            lines.append(f"  {device:4s} {name:9s} {'available' if reason is None else 'no: ' + reason}")
    return "\n".join(lines)
