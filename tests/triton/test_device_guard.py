"""Every Triton launch of every public op happens inside fastssl.triton._common.device_guard.

A launch outside the guard runs on whichever CUDA device is current, not on its tensors' device (and
on that device's current stream): with embeddings on cuda:1 while cuda:0 is current, wrong results or
an illegal memory access. Under the interpreter the guard is a no-op for CPU tensors, but it still
counts how deep the launcher is in guards; watch_launches records, for each launch, whether it was
inside one. Tiny inputs: the interpreter is slow.
"""

from __future__ import annotations

import pytest
import torch

from fastssl import ops, recipes
from fastssl.ragged import RaggedImages
from fastssl.triton._common import watch_launches
from helpers import require, triton_device

pytestmark = pytest.mark.triton
DEVICE = triton_device()


@pytest.fixture(autouse=True)
def _triton_available():
    require("triton", DEVICE)


def _images(*shape, dtype=torch.uint8):
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, dtype=dtype, device=DEVICE)
    return torch.rand(shape, device=DEVICE).to(dtype)


def _rows(*shape):
    return torch.randn(shape, device=DEVICE, requires_grad=True)


def _nt_xent():
    ops.nt_xent_loss(_rows(4, 8), _rows(4, 8), backend="triton").sum().backward()


def _info_nce():
    positive = torch.tensor([0, 2, 4], device=DEVICE)
    ops.info_nce_loss(_rows(3, 8), _rows(6, 8), positive, exclude_index=positive + 1, backend="triton").backward()


def _colorization():
    grid = torch.arange(-20, 30, 10, dtype=torch.float32, device=DEVICE)
    ops.colorization_targets(_images(1, 3, 8, 8), bins=torch.cartesian_prod(grid, grid), backend="triton")


def _augment():
    batch = RaggedImages.from_list([_images(3, 12, 10), _images(3, 9, 14)])
    ops.Augment(recipes.simclr(size=8), backend="triton")(batch, torch.arange(2))


CALLS = {
    "nt_xent_loss": _nt_xent,
    "info_nce_loss": _info_nce,
    "queue_info_nce_loss": lambda: ops.queue_info_nce_loss(_rows(3, 8), _rows(3, 8), _rows(5, 8),
                                                           backend="triton").backward(),
    "rgb_to_lab": lambda: ops.rgb_to_lab(_images(1, 3, 4, 4), backend="triton"),
    "lab_to_rgb": lambda: ops.lab_to_rgb(_images(1, 3, 4, 4, dtype=torch.float32) * 100, backend="triton"),
    "colorization_targets": _colorization,
    "counting_tiles": lambda: ops.counting_tiles(_images(1, 3, 8, 8), size=2, backend="triton"),
    "inpainting_masks": lambda: ops.inpainting_masks(_images(2, 3, 8, 8), "random_block", ids=torch.arange(2),
                                                     backend="triton"),
    "jigsaw_tiles": lambda: ops.jigsaw_tiles(_images(1, 3, 9, 9), grid=3, cell=3, tile=2, ids=torch.arange(1),
                                             backend="triton"),
    "mae_masking": lambda: ops.mae_masking(_images(1, 3, 8, 8), patch_size=4, ids=torch.arange(1), backend="triton"),
    "relative_position_pairs": lambda: ops.relative_position_pairs(_images(1, 3, 16, 16), patch=4, gap=1, jitter=1,
                                                                   ids=torch.arange(1), backend="triton"),
    "rotations": lambda: ops.rotations(_images(1, 3, 4, 4), backend="triton"),
    "kmeans_assign": lambda: ops.kmeans_assign(_rows(5, 4).detach(), _rows(20, 4).detach(), backend="triton"),
    "augment": _augment,
    "motion_energy": lambda: ops.motion_energy(_images(1, 3, 2, 4, 4), pool=2, backend="triton"),
    "frame_difference_sum": lambda: ops.frame_difference_sum(_images(1, 3, 2, 4, 4), backend="triton"),
    "log_spectrogram": lambda: ops.log_spectrogram(_rows(2, 40), n_fft=16, win_length=12, hop_length=8,
                                                   backend="triton"),
    "log_mel_spectrogram": lambda: ops.log_mel_spectrogram(_rows(2, 40), sample_rate=16000, n_fft=16, win_length=12,
                                                           hop_length=8, n_mels=4, backend="triton"),
}


@pytest.mark.parametrize("op", list(CALLS))
def test_every_launch_is_inside_the_device_guard(op):
    with watch_launches() as launches:
        CALLS[op]()
    assert launches, f"{op} made no Triton launch"
    unguarded = [launch.name for launch in launches if not launch.guarded]
    assert not unguarded, (f"{op}: {len(unguarded)} of {len(launches)} launches outside device_guard "
                           f"(kernels {sorted(set(unguarded))})")
