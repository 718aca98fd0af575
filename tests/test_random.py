"""fastssl.random: the counter-based generator against a plain-Python murmur3 sponge, and its key properties."""

import pytest
import torch

from fastssl import random


def fmix32(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    return h ^ (h >> 16)


def expected_bits(seed, epoch, sample, view, slot) -> int:
    h = 0x9E3779B9
    for word in (seed, epoch, sample, view, slot):
        h = fmix32(h ^ word)
    return h


@pytest.mark.parametrize("seed,epoch,view", [(0, 0, 0), (7, 3, 1), (2**32 - 1, 2**31, 5)])
def test_bits_are_the_murmur3_sponge_of_the_key(seed, epoch, view):
    ids = torch.tensor([0, 1, 12345, 2**32 - 1, 99])
    bits = random.bits(ids, 6, seed=seed, epoch=epoch, view=view)
    assert bits.dtype == torch.int64 and bits.shape == (5, 6)
    for i, sample in enumerate(ids.tolist()):
        assert bits[i].tolist() == [expected_bits(seed, epoch, sample, view, s) for s in range(6)]


def test_a_sample_draws_the_same_numbers_in_any_batch():
    ids = torch.randperm(50)
    u = random.uniform(ids, 4, seed=1, epoch=2, view=0)
    for k in (1, 7, 50):
        assert torch.equal(random.uniform(ids[:k], 4, seed=1, epoch=2, view=0), u[:k])
    assert (u >= 0).all() and (u < 1).all()


def test_a_view_per_row_equals_one_view_per_call():
    ids = torch.tensor([4, 9, 4, 0])
    views = torch.tensor([0, 0, 3, 2**32 - 1])
    rows = random.bits(ids, 5, seed=2, epoch=1, view=views)
    for k in range(4):
        assert torch.equal(rows[k], random.bits(ids[k:k + 1], 5, seed=2, epoch=1, view=int(views[k]))[0])
    with pytest.raises(ValueError, match="one view per id"):
        random.bits(ids, 5, seed=2, view=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"view must lie in \[0, 4294967296\)"):
        random.bits(ids, 5, seed=2, view=torch.tensor([0, 1, 2, -1]))


def test_bad_keys_are_named():
    with pytest.raises(ValueError, match="seed must be in"):
        random.bits(torch.tensor([1]), 2, seed=-1)
    with pytest.raises(TypeError, match="epoch must be an int"):
        random.bits(torch.tensor([1]), 2, seed=0, epoch=1.5)
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 4294967296\)"):
        random.bits(torch.tensor([2**32]), 2, seed=0)


def test_fmix32_is_murmur3s_finaliser_on_ints_and_tensors():
    words = [0, 1, 0x85EBCA6B, 2**32 - 1, 123456789]
    assert [random.fmix32(w) for w in words] == [fmix32(w) for w in words]
    assert random.fmix32(torch.tensor(words)).tolist() == [fmix32(w) for w in words]


def test_batch_ids_default_to_the_row_index_and_must_match_the_batch():
    assert random.batch_ids(None, 3, "cpu").tolist() == [0, 1, 2]
    assert random.batch_ids([7, 2], 2, "cpu").dtype == torch.int64
    with pytest.raises(ValueError, match=r"ids must have one id per image \(2\), got 3"):
        random.batch_ids(torch.arange(3), 2, "cpu")


@pytest.mark.parametrize("layout", [random.AUGMENT_SLOTS, random.RELATIVE_POSITION_SLOTS, random.jigsaw_slots(4),
                                    random.jigsaw_slots(9)], ids=["augment", "relative_position", "jigsaw4", "jigsaw9"])
def test_slot_layouts_give_each_parameter_its_own_slots(layout):
    starts = list(layout)
    assert starts == sorted(set(starts)) and starts[0] == 0, layout  # increasing: ranges end where the next begins
    assert layout.count > starts[-2]


def test_the_table_names_every_fixed_key():
    listed = " ".join(" ".join(row) for row in random.TAKEN)
    for name in ("AugmentSlots", "RelativePositionSlots", "jigsaw_slots", "PIRL_JIGSAW_CROP_VIEW", "MEMORY_BANK_VIEW",
                 "SHUFFLE_SLOT", "VALIDATION_SLOT", "TASK_OP_VIEW"):
        assert name in listed, name


def test_native_hash_uses_the_same_multipliers():
    """kernels/common/hash.h (C++ and CUDA) and fastssl.random (Python, Triton) hash with one fmix32."""
    import os
    import re

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "kernels", "common", "hash.h")) as f:
        native = tuple(int(m, 16) for m in re.findall(r"h \*= (0x[0-9A-Fa-f]+)u;", f.read()))
    assert native == random.FMIX32_MULTIPLIERS
