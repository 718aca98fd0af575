"""The audio-visual tasks through the trainer and the command line: videos with sound beside bad ones (no audio
track, truncated, empty), resume, evaluation of both streams and retrieval, and two gloo ranks."""

import json
import os
import shutil

import pytest
import torch

from fastssl.cli import main
from fastssl.data import synthetic
from fastssl.tasks import AV_TASKS
from fastssl.train import TrainConfig, train
from fastssl.train.trainer import BAD_FILES

pytest.importorskip("av")

#: small settings: 8 kHz audio, half-second windows, shifts of 0.25..0.5 s (the videos last 1.5 s)
OPTIONS = {"audio_backbone": "l3_audio_small", "sample_rate": 8000, "window": 0.5, "min_shift": 0.25,
           "max_shift": 0.5}
BAD = ("no_audio.webm", "truncated.webm", "empty.webm")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """3 classes x 4 VP9 + Opus videos of 24 frames at 16 fps (1.5 s), 32 px; and in class_1 a video without an
    audio track, a truncated one and an empty one."""
    root = synthetic.write_av_folder(str(tmp_path_factory.mktemp("av")), classes=3, per_class=4, frames=24, size=32,
                                     fps=16, seed=1)
    silent_root = synthetic.write_video_folder(str(tmp_path_factory.mktemp("mute")), classes=1, per_class=1,
                                               frames=24, size=32, seed=2)
    mute = next(os.path.join(d, f) for d, _, files in os.walk(silent_root) for f in files if f.endswith(".webm"))
    shutil.copy(mute, os.path.join(root, "class_1", BAD[0]))
    first = sorted(os.listdir(os.path.join(root, "class_0")))[0]
    data = open(os.path.join(root, "class_0", first), "rb").read()
    open(os.path.join(root, "class_1", BAD[1]), "wb").write(data[: len(data) // 2])
    open(os.path.join(root, "class_1", BAD[2]), "wb").close()
    return root


def config(data, out, task, **overrides):
    settings = dict(task=task, data=data, out=str(out), backbone="resnet10", image_size=32, batch_size=4, epochs=2,
                    progress=False, task_options=dict(OPTIONS), checkpoint_every=2)
    return TrainConfig(**{**settings, **overrides})


@pytest.mark.parametrize("task", AV_TASKS)
def test_every_av_task_trains_and_names_the_bad_videos(videos, tmp_path, task):
    result = train(config(videos, tmp_path, task, epochs=1))
    assert result.steps == 3 and all(map(torch.isfinite, torch.tensor(result.losses)))  # 12 usable videos / 4
    named = (tmp_path / BAD_FILES).read_text()
    assert all(os.path.join("class_1", name) in named for name in BAD), named
    assert "audio" in named.split(BAD[0])[1].splitlines()[0], "the mute video is named for its audio"


def test_a_clip_encoder_trains_on_clips_centred_on_the_audio_and_is_evaluated_on_them(videos, tmp_path):
    from fastssl.train.checkpoint import task_from_checkpoint
    from fastssl.train.evaluate import evaluate

    options = {**OPTIONS, "clip_len": 4, "stride": 2}
    result = train(config(videos, tmp_path, "avc", backbone="r3d_10", epochs=1, task_options=options))
    assert result.steps == 3 and all(map(torch.isfinite, torch.tensor(result.losses)))
    scores = evaluate(task_from_checkpoint(result.checkpoint), videos, batch_size=4)
    assert 0.0 <= scores["knn"] <= 1.0 and "recall@1" in scores


def test_kill_and_resume_gives_the_same_losses(videos, tmp_path):
    whole = train(config(videos, tmp_path / "a", "avc"))
    assert whole.steps == 6
    first = train(config(videos, tmp_path / "b", "avc", max_steps=4))
    assert first.steps == 4
    resumed = train(config(videos, tmp_path / "b", "avc", resume=True))
    assert resumed.steps == 6 and resumed.losses == whole.losses


def test_train_then_eval_both_streams_and_retrieval_from_the_command_line(videos, tmp_path, capsys):
    out = str(tmp_path / "run")
    options = [arg for key, value in OPTIONS.items() for arg in ("--option", f"{key}={json.dumps(value)}")]
    assert main(["train", "ave", "--data", videos, "--out", out, "--backbone", "resnet10", "--image-size", "32",
                 "--batch-size", "4", "--epochs", "1", *options, "--quiet"]) == 0
    assert "trained 3 steps" in capsys.readouterr().out
    checkpoint = os.path.join(out, "checkpoints", "step_3.pt")
    assert main(["eval", "--checkpoint", checkpoint, "--data", videos, "--baseline", "--json", "--quiet"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert set(scores) == {"trained", "random_init"}
    for s in scores.values():
        assert s["train"] + s["val"] == 12 and s["classes"] == 3
        assert {"audio_knn", "audio_linear", "recall@1", "recall@5"} <= set(s)
        assert 0 <= s["recall@1"] <= s["recall@5"] <= 1


def test_task_options_of_the_av_tasks_are_listed(capsys):
    from fastssl.cli import task_options

    assert {"audio_backbone", "sample_rate", "window", "mel_bins", "min_shift"} <= set(task_options("av_sync"))
    assert {"loss", "dim", "sample_rate"} <= set(task_options("ave"))


def _train_rank(rank, world, data, out, inject):
    from fastssl.data.audio import decode

    if inject and rank == 1:  # rank 1 cannot decode the audio of class_2: those samples are skipped there only
        real = decode.AudioDecoder.decode_batch

        def failing(self, infos, starts, seconds):
            done = real(self, infos, starts, seconds)
            return [("decoding failed: injected" if "class_2" in info.path else r) for info, r in zip(infos, done)]

        decode.AudioDecoder.decode_batch = failing
    result = train(config(data, out, "av_sync", epochs=1, batch_size=2, decoder="pyav", num_threads=1,
                          device="cpu", collective_timeout_s=20))
    from gloo_ranks import step_summary

    return step_summary(result)


@pytest.mark.parametrize("inject", [False, True])
def test_two_gloo_ranks_train_an_av_task_in_step(videos, tmp_path, inject):
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("needs torch.distributed gloo")
    from gloo_ranks import assert_ranks_in_step, run_ranks

    r0, r1 = run_ranks(_train_rank, 2, tmp_path, videos, str(tmp_path / "run"), inject)
    # 12 usable videos, 2 shards of 6, batches of 2: 3 positions
    assert_ranks_in_step(r0, r1, positions=3, inject=inject, out=tmp_path / "run")
