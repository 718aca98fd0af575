"""The video tasks through the trainer and the command line: a video folder with a bad file, resume, evaluation."""

import json
import os
import shutil

import pytest
import torch

from fastssl.cli import main
from fastssl.data import synthetic
from fastssl.tasks import VIDEO_TASKS
from fastssl.train import TrainConfig, train
from fastssl.train.trainer import BAD_FILES

pytest.importorskip("av")

#: small settings of each task for 24-frame videos: (task options, backbone)
SMALL = {"shuffle_learn": ({"tau_min": 3, "tau_max": 8}, "resnet10"),
         "odd_one_out": ({"clips": 3, "clip_len": 3}, "resnet10"),
         "arrow_of_time": ({"clip_len": 4}, "r3d_10"),
         "clip_order": ({"clip_len": 3, "gap": 2}, "r3d_10")}


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """3 classes x 4 VP9 videos of 24 frames, 32 px, plus a truncated and an empty video in class_1."""
    root = synthetic.write_video_folder(str(tmp_path_factory.mktemp("videos")), classes=3, per_class=4, frames=24,
                                        size=32, seed=1)
    bad = str(tmp_path_factory.mktemp("bad"))
    synthetic.write_bad_videos(bad)
    for name in BAD_VIDEOS:
        shutil.copy(os.path.join(bad, name), os.path.join(root, "class_1", name))
    return root


BAD_VIDEOS = ("bad_truncated.webm", "bad_empty.webm")


def config(data, out, task, **overrides):
    options, backbone = SMALL[task]
    settings = dict(task=task, data=data, out=str(out), backbone=backbone, image_size=32, batch_size=4, epochs=2,
                    progress=False, task_options=options, checkpoint_every=2)
    return TrainConfig(**{**settings, **overrides})


@pytest.mark.parametrize("task", VIDEO_TASKS)
def test_every_video_task_trains_and_names_the_bad_videos(videos, tmp_path, task):
    result = train(config(videos, tmp_path, task, epochs=1))
    assert result.steps == 3 and all(map(torch.isfinite, torch.tensor(result.losses)))  # 12 usable videos / 4
    named = (tmp_path / BAD_FILES).read_text()
    assert all(os.path.join("class_1", name) in named for name in BAD_VIDEOS), named


def test_kill_and_resume_gives_the_same_losses(videos, tmp_path):
    whole = train(config(videos, tmp_path / "a", "arrow_of_time"))
    assert whole.steps == 6
    first = train(config(videos, tmp_path / "b", "arrow_of_time", max_steps=4))
    assert first.steps == 4
    resumed = train(config(videos, tmp_path / "b", "arrow_of_time", resume=True))
    assert resumed.steps == 6 and resumed.losses == whole.losses


def test_train_then_eval_from_the_command_line(videos, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "clip_order", "--data", videos, "--out", out, "--backbone", "r3d_10", "--image-size", "32",
                 "--batch-size", "4", "--epochs", "1", "--option", "clip_len=3", "--option", "gap=2", "--decoder",
                 "pyav", "--quiet"]) == 0
    assert "trained 3 steps" in capsys.readouterr().out
    checkpoint = os.path.join(out, "checkpoints", "step_3.pt")
    assert main(["eval", "--checkpoint", checkpoint, "--data", videos, "--baseline", "--json", "--quiet"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert set(scores) == {"trained", "random_init"}
    assert all(s["train"] + s["val"] == 12 and s["classes"] == 3 for s in scores.values())


def test_an_image_decoder_is_refused_for_videos(videos, tmp_path):
    with pytest.raises(SystemExit):
        main(["train", "arrow_of_time", "--data", videos, "--out", str(tmp_path), "--decoder", "pil"])


def _train_rank(rank, world, data, out, inject):
    from fastssl.data.video import decode

    if inject and rank == 1:  # rank 1 cannot decode its videos of class_2: they are skipped and counted there only
        real = decode.PyAVClipDecoder.decode_batch

        def failing(self, infos, indices):
            done = real(self, infos, indices)
            return [("decoding failed: injected" if "class_2" in info.path else r) for info, r in zip(infos, done)]

        decode.PyAVClipDecoder.decode_batch = failing
    result = train(config(data, out, "arrow_of_time", epochs=1, batch_size=2, decoder="pyav", num_threads=1,
                          device="cpu", collective_timeout_s=20))
    from gloo_ranks import step_summary

    return step_summary(result)


@pytest.mark.parametrize("inject", [False, True])
def test_two_gloo_ranks_train_a_video_task_in_step(videos, tmp_path, inject):
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("needs torch.distributed gloo")
    from gloo_ranks import assert_ranks_in_step, run_ranks

    r0, r1 = run_ranks(_train_rank, 2, tmp_path, videos, str(tmp_path / "run"), inject)
    # 12 usable videos, 2 shards of 6, batches of 2: 3 positions
    assert_ranks_in_step(r0, r1, positions=3, inject=inject, out=tmp_path / "run")
