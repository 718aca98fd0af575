"""RaggedImages: host copies of offsets and sizes, max_size, and the checks made at construction."""

from __future__ import annotations

import pytest
import torch

from fastssl import _validation
from fastssl.ragged import RaggedImages
from host_reads import count_host_reads


def batch(shapes=((4, 5), (2, 2), (3, 7)), seed=0) -> RaggedImages:
    g = torch.Generator().manual_seed(seed)
    return RaggedImages.from_list([torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g) for h, w in shapes])


def test_host_copies_and_max_size():
    images = batch()
    assert torch.equal(images.host_sizes, torch.tensor([[4, 5], [2, 2], [3, 7]]))
    assert torch.equal(images.host_offsets, torch.tensor([0, 60, 72]))
    assert images.max_size == (4, 7)
    twice = images.repeat(2)
    assert twice.max_size == (4, 7) and torch.equal(twice.host_sizes, images.host_sizes.repeat(2, 1))
    assert torch.equal(twice.image(4), images.image(1))


def test_repeat_reads_nothing():
    """What Augment does with a decoded batch: repeat it once per view (max_size passed on, checks async)."""
    images = batch()
    with _validation.asynchronous_checks(), count_host_reads() as reads:
        images.repeat(3)
    assert reads == [], reads


BAD = [
    (dict(sizes=torch.tensor([[4, 5], [0, 2], [3, 7]])), "sizes must be positive"),
    (dict(offsets=torch.tensor([0, 60, 100])), r"offsets/sizes point outside data \(135 bytes\)"),
    (dict(offsets=torch.tensor([-1, 60, 72])), r"offsets/sizes point outside data"),
    (dict(max_size=(4, 6)), r"sizes exceed max_size \(4, 6\)"),
]


@pytest.mark.parametrize("asynchronous", [False, True], ids=("cpu", "gpu-path"))
@pytest.mark.parametrize("changes,message", BAD, ids=[m.split(" ")[0] for _, m in BAD])
def test_bad_batches_are_refused(changes, message, asynchronous):
    """At once on the CPU (ValueError with the values); on the GPU path by torch._assert_async (RuntimeError
    on the CPU) with the same first words."""
    images = batch()
    fields = dict(data=images.data, offsets=images.offsets, sizes=images.sizes, max_size=None)
    fields.update(changes)
    fields["host_offsets"], fields["host_sizes"] = fields["offsets"], fields["sizes"]
    if asynchronous:
        with _validation.asynchronous_checks(), pytest.raises(RuntimeError, match=message):
            RaggedImages(**fields)
    else:
        with pytest.raises(ValueError, match=message + ".*, got sizes"):
            RaggedImages(**fields)


def test_host_copies_must_match():
    images = batch()
    with pytest.raises(ValueError, match=r"host_sizes must be a CPU copy of sizes \(\(3, 2\) torch.int64\), got \(2, 2\)"):
        RaggedImages(images.data, images.offsets, images.sizes, images.host_offsets, images.host_sizes[:2])
    with pytest.raises(ValueError, match=r"max_size must be two ints"):
        RaggedImages(images.data, images.offsets, images.sizes, max_size=(4.0, 7.0))
