"""The four temporal-order tasks: their plans, inputs, heads and losses, on clips made in memory."""

import pytest
import torch
from task_helpers import assert_loss_falls

from fastssl.clips import RaggedClips
from fastssl.data.video.sampling import CLIP_ORDERS
from fastssl.tasks import VIDEO_TASKS, make_task

#: small settings of each task (frames of the tuple, backbone)
SMALL = {"shuffle_learn": ({"tau_min": 2, "tau_max": 6}, "resnet10"),
         "odd_one_out": ({"clips": 3, "clip_len": 3}, "resnet10"),
         "arrow_of_time": ({"clip_len": 4}, "r3d_10"),
         "clip_order": ({"clip_len": 2, "gap": 1}, "r3d_10")}
#: what each task's plan puts in the batch, and its number of classes
TARGETS = {"shuffle_learn": ("label", 2), "odd_one_out": ("odd", 3), "arrow_of_time": ("reversed", 2),
           "clip_order": ("order", len(CLIP_ORDERS))}


def small_task(name, **overrides):
    options, backbone = SMALL[name]
    torch.manual_seed(0)
    return make_task(name, backbone=backbone, image_size=32, **{**options, **overrides})


def moving_clips(task, ids, frames, epoch=0, seed=0):
    """The RaggedClips the loader would decode for ``task``'s plan: frame f of video i is a bright square at
    (f + i) mod 20 on a dark field (so order and motion are visible), 40 x 44 pixels; and the plan."""
    plan = task.plan(ids, frames, epoch)
    clips = []
    for i, row in zip(ids.tolist(), plan.indices.tolist()):
        clip = torch.full((len(row), 40, 44, 3), 20, dtype=torch.uint8)
        for t, f in enumerate(row):
            x = (f + i) % 20
            clip[t, 10:26, x:x + 16] = 230
        clips.append(clip)
    return RaggedClips.from_list(clips), plan


def batch_of(task, ids, frames, epoch=0):
    clips, plan = moving_clips(task, ids, frames, epoch)
    return {**task.transform(clips, ids, epoch), **plan.targets, "ids": ids, "epoch": epoch}


@pytest.mark.parametrize("name", VIDEO_TASKS)
def test_a_step_on_a_fixed_batch_lowers_the_loss(name):
    task = small_task(name)
    ids = torch.arange(8)
    batch = batch_of(task, ids, torch.full((8,), 40))
    target, classes = TARGETS[name]
    assert batch[target].shape == (8,) and int(batch[target].min()) >= 0 and int(batch[target].max()) < classes
    out = task(batch)
    assert set(out) == {"loss", "accuracy"} and 0 <= float(out["accuracy"]) <= 1
    assert_loss_falls(task, batch, steps=12)


@pytest.mark.parametrize("name", VIDEO_TASKS)
def test_inputs_depend_on_the_ids_not_the_batch(name):
    task = small_task(name)
    ids, frames = torch.tensor([11, 5, 42, 7]), torch.tensor([40, 33, 60, 45])
    whole = batch_of(task, ids, frames, epoch=3)
    halves = [batch_of(task, ids[i:i + 2], frames[i:i + 2], epoch=3) for i in (0, 2)]
    for key in ("inputs", TARGETS[name][0]):
        torch.testing.assert_close(whole[key], torch.cat([h[key] for h in halves]), rtol=0, atol=0, msg=key)
    later = batch_of(task, ids, frames, epoch=4)
    assert not torch.equal(later["inputs"], whole["inputs"])


@pytest.mark.parametrize("name", VIDEO_TASKS)
def test_evaluation_features_of_the_middle_clip(name):
    task = small_task(name).eval()
    ids, frames = torch.arange(3), torch.tensor([40, 50, 60])
    plan = task.eval_plan(ids, frames, 0)
    span = int(plan.indices[0, -1] - plan.indices[0, 0])
    assert torch.equal(plan.indices[:, 0], (frames - span - 1) // 2) and plan.targets == {}
    clips = RaggedClips.from_list([torch.randint(0, 256, (plan.indices.shape[1], 36, 30, 3), dtype=torch.uint8,
                                                 generator=torch.Generator().manual_seed(i)) for i in range(3)])
    inputs = task.eval_transform(clips, ids, 0)["inputs"]
    with torch.no_grad():
        features = task.features(inputs)
    assert features.shape == (3, task.feature_dim) and torch.isfinite(features).all()
    again = task.eval_transform(clips, ids + 100, 5)["inputs"]  # no augmentation: ids and epoch do not matter
    assert torch.equal(again, inputs)


@pytest.mark.parametrize("name,backbone", [("shuffle_learn", "r3d_10"), ("odd_one_out", "r3d_10"),
                                           ("arrow_of_time", "resnet10"), ("clip_order", "resnet18")])
def test_the_wrong_kind_of_backbone_is_refused(name, backbone):
    with pytest.raises(ValueError, match="backbone"):
        make_task(name, backbone=backbone, image_size=32)


def test_image_tasks_refuse_a_video_backbone():
    with pytest.raises(ValueError, match="video backbone"):
        make_task("rotation", backbone="r3d_10", image_size=32)


def test_arrow_of_time_inputs_are_frame_differences_unless_rgb():
    ids, frames = torch.arange(2), torch.tensor([30, 30])
    diff, rgb = small_task("arrow_of_time"), small_task("arrow_of_time", inputs="rgb")
    d, r = batch_of(diff, ids, frames)["inputs"], batch_of(rgb, ids, frames)["inputs"]
    assert d.shape == (2, 3, 3, 32, 32) and r.shape == (2, 3, 4, 32, 32)
    torch.testing.assert_close(d, r[:, :, 1:] - r[:, :, :-1])
    with pytest.raises(ValueError, match="inputs"):
        small_task("arrow_of_time", inputs="flow")
