"""No host reads on the GPU path of the augmentation: ``Augment`` and ``fastssl.ops.augment`` on the Triton backend.

The batch is a :class:`~fastssl.ragged.RaggedImages` as a decoder hands it over (with its host copies of
offsets and sizes); the op runs with the value checks in their CUDA mode (``asynchronous_checks``) and the
Triton kernels under the interpreter; tests/host_reads.py counts every read back to the host. Each op runs
once before counting: importing the backend builds constants on the host once per process. On a GPU, the
same runs under ``torch.cuda.set_sync_debug_mode("error")``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from fastssl import _validation, recipes
from fastssl.ops.augment import Augment, augment
from fastssl.ragged import RaggedImages
from helpers import require, triton_device
from host_reads import count_host_reads

pytestmark = pytest.mark.triton
DEVICE = triton_device()
SHAPES = [(40, 52), (33, 47), (1, 1), (20, 30), (45, 12)]


@pytest.fixture(autouse=True)
def _triton_available():
    require("triton", DEVICE)


def decoded_batch(seed: int) -> RaggedImages:
    """A ragged batch on DEVICE with its host copies, as the decoders build it."""
    g = torch.Generator().manual_seed(seed)
    images = RaggedImages.from_list([torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)
                                     for h, w in SHAPES])
    return RaggedImages(images.data.to(DEVICE), images.offsets.to(DEVICE), images.sizes.to(DEVICE),
                        host_offsets=images.host_offsets, host_sizes=images.host_sizes)


def test_augment_forward_reads_nothing():
    """SimCLR's two views (blur and contrast jitter in the batch) of a ragged batch."""
    images, ids = decoded_batch(seed=1), torch.arange(len(SHAPES)) + 3
    transform = Augment(recipes.simclr(size=16), seed=2, backend="triton")
    expected, _ = transform(images, ids)  # first call: imports, constants built once on the host
    with _validation.asynchronous_checks(), count_host_reads() as reads:
        out, params = transform(images, ids)
    assert reads == [], reads
    assert (params[0].blur_sigma > 0).any() and (params[0].contrast != 1).any()  # both extra passes ran
    assert all(torch.equal(a, b) for a, b in zip(out, expected, strict=True))


@pytest.mark.parametrize("recipe", [recipes.simclr(size=16), recipes.mae(size=12)], ids=("simclr", "mae"))
def test_augment_op_with_params_reads_nothing(recipe):
    images = decoded_batch(seed=3)
    params = recipes.draw(recipe, torch.arange(len(SHAPES)), images.host_sizes, seed=4)[0]
    expected = augment(images, params, backend="triton")
    with _validation.asynchronous_checks(), count_host_reads() as reads:
        out = augment(images, params, backend="triton")
    assert reads == [], reads
    assert torch.equal(out, expected)


def test_asynchronous_checks_still_refuse_bad_params():
    """On the CUDA path the checks are torch._assert_async: on the CPU they raise at once, with the message."""
    images = decoded_batch(seed=5)
    (params,) = recipes.draw(recipes.mae(size=8), torch.arange(len(SHAPES)), images.host_sizes, seed=6)
    crop = params.crop.clone()
    crop[1, 2] = SHAPES[1][0] + 1
    order = params.order.clone()
    order[2] = 0
    with _validation.asynchronous_checks():
        with pytest.raises(RuntimeError, match=r"params.crop lies outside its image"):
            augment(images, replace(params, crop=crop), backend="triton")
        with pytest.raises(RuntimeError, match=r"params.order rows must be permutations"):
            augment(images, replace(params, order=order), backend="triton")
        with pytest.raises(RuntimeError, match=r"params.hue must be in \[-0.5, 0.5\]"):
            augment(images, replace(params, hue=torch.full_like(params.hue, 0.7)), backend="triton")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_augment_does_not_synchronise():
    images, ids = decoded_batch(seed=7), torch.arange(len(SHAPES))
    transform = Augment(recipes.simclr(size=64), seed=8, backend="triton")
    transform(images, ids)  # compile the kernels first: Triton's first launch may sync
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        transform(images, ids)
    finally:
        torch.cuda.set_sync_debug_mode("default")
