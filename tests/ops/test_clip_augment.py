"""fastssl.ops.clip_augment: every frame of a clip (or of a group of it) augmented with one parameter row, exactly
as fastssl.ops.augment augments that frame alone with that row, on every augment backend; the rows and the
frame → row map; both layouts; the refusals."""

from dataclasses import fields

import pytest
import torch

from fastssl import recipes
from fastssl.clips import RaggedClips
from fastssl.ops.augment import augment
from fastssl.ops.clip_augment import LAYOUTS, augment_clips, clip_params, frame_rows
from helpers import backend_cases, require

BACKENDS = backend_cases(("reference", "cpp", "triton"))  # augment's backends
RECIPE = recipes.ViewRecipe(size=12, solarize_p=0.3)  # every op of augment can come up
ODD_SIZES = [(37, 45), (20, 33), (9, 13), (1, 1), (15, 8)]  # (H, W) of each clip's frames
IDS = torch.tensor([5, 900, 77, 2**32 - 1, 0])


def random_clips(T: int, sizes=ODD_SIZES, seed: int = 0) -> RaggedClips:
    """Clips of T frames of ``sizes``, every frame its own random pixels."""
    g = torch.Generator().manual_seed(seed)
    return RaggedClips.from_list([torch.randint(0, 256, (T, h, w, 3), dtype=torch.uint8, generator=g)
                                  for h, w in sizes])


def frame(clips: RaggedClips, b: int, t: int) -> torch.Tensor:
    """Frame t of clip b as a (3, H, W) image."""
    return clips.clip(b)[t].permute(2, 0, 1).contiguous()


def equal_params(a, b) -> bool:
    return all(torch.equal(getattr(a, f.name), getattr(b, f.name)) if isinstance(getattr(a, f.name), torch.Tensor)
               else getattr(a, f.name) == getattr(b, f.name) for f in fields(a))


@pytest.mark.parametrize("T, groups", [(6, 1), (6, 2), (6, 3), (1, 1), (4, 4)])
@pytest.mark.parametrize("backend, device", BACKENDS)
def test_every_frame_is_augmented_with_its_clips_row(backend, device, T, groups):
    require(backend, device)
    clips = random_clips(T, seed=T * 10 + groups)
    params = clip_params(RECIPE, IDS, clips, groups=groups, seed=1, epoch=3)
    on_device = clips.to(device)
    out = augment_clips(on_device, params, groups=groups, backend=backend)
    assert out.shape == (len(IDS), T, 3, 12, 12) and out.dtype == params.dtype and out.device == on_device.device
    per_group = T // groups
    for b in range(len(IDS)):
        for t in range(T):
            row = b * groups + t // per_group  # group g of clip b: row b * groups + g
            alone = augment([frame(clips, b, t).to(device)], params.select([row]), backend=backend)
            assert torch.equal(out[b, t], alone[0]), (b, t)
    bcthw = augment_clips(on_device, params, groups=groups, layout="bcthw", backend=backend)
    assert bcthw.shape == (len(IDS), 3, T, 12, 12) and torch.equal(bcthw, out.transpose(1, 2))


@pytest.mark.parametrize("backend, device", BACKENDS)
def test_frames_of_a_group_share_crop_flip_and_colours(backend, device):
    """A clip of one frame repeated comes out as one augmented frame repeated per group; groups differ."""
    require(backend, device)
    T, groups = 6, 3
    first = random_clips(1)
    still = RaggedClips.from_list([first.clip(b).expand(T, -1, -1, -1).contiguous() for b in range(len(IDS))])
    params = clip_params(RECIPE, IDS, still, groups=groups, seed=8, epoch=0)
    out = augment_clips(still.to(device), params, groups=groups, backend=backend)
    per_group = out.unflatten(1, (groups, T // groups))  # (B, groups, frames per group, 3, h, w)
    assert torch.equal(per_group, per_group[:, :, :1].expand_as(per_group))
    for b in range(len(IDS)):
        if not torch.equal(params.crop[b * groups], params.crop[b * groups + 1]):
            assert not torch.equal(per_group[b, 0, 0], per_group[b, 1, 0]), b


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_frame_rows_map_every_frame_of_a_group_to_one_row(groups):
    T = 8
    clips = random_clips(T)
    rows = frame_rows(clips, groups)
    assert rows.dtype == torch.int64 and rows.device.type == "cpu" and rows.shape == (len(IDS) * T,)
    expected = [b * groups + t // (T // groups) for b in range(len(IDS)) for t in range(T)]
    assert rows.tolist() == expected
    # the frames of a group, which differ, get the same crop and flip (and every other parameter)
    params = clip_params(RECIPE, IDS, clips, groups=groups, seed=2, epoch=1)
    per_frame = params.select(rows)
    frames = clips.frames_as_images()
    for i in range(len(rows)):
        j = i - i % (T // groups)  # the group's first frame
        assert equal_params(per_frame.select([i]), per_frame.select([j]))
        if i != j:
            assert not torch.equal(frames.image(i), frames.image(j))


@pytest.mark.parametrize("groups, view", [(1, 0), (3, 0), (2, 5)])
def test_clip_params_draw_each_group_from_its_own_view(groups, view):
    clips = random_clips(6)
    params = clip_params(RECIPE, IDS, clips, groups=groups, seed=4, epoch=2, view=view)
    assert len(params) == len(IDS) * groups
    for b, (h, w) in enumerate(ODD_SIZES):
        for g in range(groups):
            row = params.select([b * groups + g])
            drawn = recipes.draw_view(RECIPE, IDS[b:b + 1], torch.tensor([[h, w]]), seed=4, epoch=2,
                                      view_index=view + g)
            assert equal_params(row, drawn), (b, g)
            top, left, ch, cw = row.crop[0].tolist()  # inside the clip's own frame size
            assert 0 <= top and 0 <= left and 1 <= ch and 1 <= cw and top + ch <= h and left + cw <= w
    # a clip's rows do not depend on the other clips of the batch
    alone = clip_params(RECIPE, IDS[2:3], RaggedClips.from_list([random_clips(6).clip(2)]), groups=groups, seed=4,
                        epoch=2, view=view)
    assert equal_params(alone, params.select(list(range(2 * groups, 3 * groups))))
    # other seeds, epochs: other rows
    for other in ({"seed": 5, "epoch": 2}, {"seed": 4, "epoch": 3}):
        assert not torch.equal(clip_params(RECIPE, IDS, clips, groups=groups, view=view, **other).crop, params.crop)


def test_refusals_are_named():
    clips = random_clips(6)
    params = clip_params(RECIPE, IDS, clips, groups=2, seed=0, epoch=0)
    uneven = RaggedClips.from_list([clips.clip(0), clips.clip(1)[:5]])
    with pytest.raises(ValueError, match=r"every clip of the batch must have the same number of frames, got \[6, 5\]"):
        augment_clips(uneven, params.select([0, 1, 2, 3]), groups=2)
    with pytest.raises(ValueError, match="same number of frames"):
        clip_params(RECIPE, IDS[:2], uneven, seed=0, epoch=0)
    with pytest.raises(ValueError, match="same number of frames"):
        frame_rows(uneven)
    with pytest.raises(ValueError, match=r"groups \(4\) must divide the clips' 6 frames"):
        augment_clips(clips, params, groups=4)
    with pytest.raises(ValueError, match=r"groups \(4\) must divide"):
        clip_params(RECIPE, IDS, clips, groups=4, seed=0, epoch=0)
    with pytest.raises(ValueError, match="groups must be an integer >= 1"):
        frame_rows(clips, 0)
    with pytest.raises(ValueError, match=r"params must have 5 clips x 3 groups = 15 rows, got 10"):
        augment_clips(clips, params, groups=3)
    with pytest.raises(ValueError, match=r"params must have 5 clips x 1 groups = 5 rows, got 10"):
        augment_clips(clips, params)
    with pytest.raises(ValueError, match=r"layout must be one of \('btchw', 'bcthw'\), got 'bthwc'"):
        augment_clips(clips, params, groups=2, layout="bthwc")
    assert LAYOUTS == ("btchw", "bcthw")
    with pytest.raises(ValueError, match=r"ids must have one id per clip \(5,\), got \(4,\)"):
        clip_params(RECIPE, IDS[:4], clips, seed=0, epoch=0)
