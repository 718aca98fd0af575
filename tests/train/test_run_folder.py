"""Run folders keep their history: a used --out is refused without --resume or --overwrite, log.csv holds each
step once after a resume (also after a SIGKILL), stale temporaries go, --resume falls back past unusable
checkpoints, and a resume with other settings is refused unless resume_anyway."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from fastssl.train import TrainConfig, TrainError, train
from fastssl.train import checkpoint
from fastssl.train.log import read_csv


def config(data, out, **overrides):
    base = dict(task="rotation", data=data, out=str(out), backbone="resnet10", image_size=32, batch_size=8, epochs=3,
                decoder="pil", progress=False, checkpoint_every=2, num_threads=1)
    base.update(overrides)
    return TrainConfig(**base)


def steps_logged(out) -> list[int]:
    return [r["step"] for r in read_csv(os.path.join(out, "log.csv"))]


def test_a_used_out_needs_resume_or_overwrite(tiny_data, tmp_path):
    train(config(tiny_data, tmp_path, epochs=2))  # steps 1..6, checkpoints step_4, step_6
    with pytest.raises(TrainError, match="already holds a run .*--resume .*--overwrite"):
        train(config(tiny_data, tmp_path, max_steps=2))
    assert steps_logged(tmp_path) == list(range(1, 7))  # the refused run touched nothing
    (tmp_path / "notes.txt").write_text("mine")
    result = train(config(tiny_data, tmp_path, max_steps=2, overwrite=True))
    assert steps_logged(tmp_path) == [1, 2]
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["step_2.pt"] and os.path.exists(result.checkpoint)
    assert (tmp_path / "notes.txt").read_text() == "mine"  # only the run's own files are deleted


def test_resume_cuts_the_log_back_to_the_checkpoint(tiny_data, tmp_path):
    whole = train(config(tiny_data, tmp_path / "a"))
    train(config(tiny_data, tmp_path / "b", max_steps=5))  # log 1..5, checkpoints step_4 and step_5
    os.unlink(tmp_path / "b" / "checkpoints" / "step_5.pt")  # as if killed after logging step 5, before saving it
    resumed = train(config(tiny_data, tmp_path / "b", resume=True))
    assert steps_logged(tmp_path / "b") == list(range(1, 10)) and resumed.losses == whole.losses


def test_stale_temporaries_are_removed(tiny_data, tmp_path, capsys):
    train(config(tiny_data, tmp_path, max_steps=2))
    (tmp_path / "checkpoints" / ".tmp-abc123.pt").write_bytes(b"")
    train(config(tiny_data, tmp_path, max_steps=4, resume=True))
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["step_2.pt", "step_4.pt"]
    assert ".tmp-abc123.pt" in capsys.readouterr().err


@pytest.mark.parametrize("newest", [b"garbage", "foreign"])
def test_resume_falls_back_to_the_newest_usable_checkpoint(tiny_data, tmp_path, capsys, newest):
    whole = train(config(tiny_data, tmp_path / "a"))
    out = tmp_path / "b"
    train(config(tiny_data, out, max_steps=4))  # step_2, step_4
    bad = out / "checkpoints" / "step_6.pt"
    if newest == "foreign":
        torch.save({"weights": torch.zeros(3)}, bad)
    else:
        bad.write_bytes(newest)
    resumed = train(config(tiny_data, out, resume=True))
    err = capsys.readouterr().err
    assert "step_6.pt cannot be used" in err and "resuming from" in err and "step_4.pt" in err
    assert resumed.losses == whole.losses and steps_logged(out) == list(range(1, 10))
    assert os.path.exists(str(bad) + ".unusable") and os.path.exists(resumed.checkpoint)


def test_resume_without_a_usable_checkpoint_is_refused(tiny_data, tmp_path):
    train(config(tiny_data, tmp_path, max_steps=2))
    (tmp_path / "checkpoints" / "step_2.pt").write_bytes(b"garbage")
    with pytest.raises(TrainError, match="no usable checkpoint"):
        train(config(tiny_data, tmp_path, resume=True))


@pytest.mark.parametrize("change,listed", [
    (dict(lr=5.0), "lr: 0.001 there, 5.0 now"), (dict(weight_decay=0.5), "weight_decay"),
    (dict(clip_grad=None), "clip_grad: 3.0 there, None now"), (dict(epochs=4), "epochs"),
    (dict(warmup_epochs=0.0), "warmup_epochs"), (dict(seed=1), "seed"), (dict(optimizer="sgd"), "optimizer"),
    (dict(task_options={"gray": True}), "task_options"), (dict(data="other"), "data"),
])
def test_resume_with_other_settings_is_refused_unless_anyway(tiny_data, tmp_path, change, listed):
    data = tiny_data
    if change.get("data") == "other":  # the same images in another folder: still another --data
        data, change = shutil.copytree(tiny_data, str(tmp_path / "copy")), {}
    train(config(tiny_data, tmp_path / "run", max_steps=2))
    with pytest.raises(TrainError, match=listed.replace("(", r"\(")):
        train(config(data, tmp_path / "run", resume=True, **change))
    if "task_options" in change:
        return  # rotation takes no such option: the resumed run could not be built
    result = train(config(data, tmp_path / "run", resume=True, resume_anyway=True, max_steps=3, **change))
    assert result.steps == 3
    if "lr" in change:  # the new lr is the one used, not the checkpoint's
        row = read_csv(str(tmp_path / "run" / "log.csv"))[-1]
        assert row["lr"] > 1.0


KILLED = """
import sys, time
from fastssl.tasks.rotation import RotationTask
from fastssl.train import TrainConfig, train
forward = RotationTask.forward
def slow(self, batch):  # slow enough for the parent to kill it mid-run
    time.sleep(0.3)
    return forward(self, batch)
RotationTask.forward = slow
data, out = sys.argv[1:3]
train(TrainConfig(task="rotation", data=data, out=out, backbone="resnet10", image_size=32, batch_size=8, epochs=3,
                  decoder="pil", progress=False, checkpoint_every=2, num_threads=1))
"""


def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(tiny_data, tmp_path):
    whole = train(config(tiny_data, tmp_path / "a"))
    out = tmp_path / "b"
    process = subprocess.Popen([sys.executable, "-c", KILLED, tiny_data, str(out)])
    deadline = time.monotonic() + 120
    while not (out / "checkpoints" / "step_4.pt").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    logged = steps_logged(out)
    assert 4 <= len(logged) < 9, logged  # killed mid-run, after a checkpoint
    resumed = train(config(tiny_data, out, resume=True))
    assert steps_logged(out) == list(range(1, 10))
    assert resumed.losses == whole.losses
    a, b = checkpoint.load(whole.checkpoint)["model"], checkpoint.load(resumed.checkpoint)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_resumed_run_shows_each_step_once_in_tensorboard(tiny_data, tmp_path, monkeypatch):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    from fastssl.tasks.rotation import RotationTask

    forward, calls = RotationTask.forward, []

    def failing(self, batch):  # step 6 fails: step 5 was logged after the checkpoint of step 4
        calls.append(1)
        if len(calls) == 6:
            raise RuntimeError("injected")
        return forward(self, batch)

    monkeypatch.setattr(RotationTask, "forward", failing)
    with pytest.raises(RuntimeError, match="injected"):
        train(config(tiny_data, tmp_path))
    monkeypatch.setattr(RotationTask, "forward", forward)
    board = event_accumulator.EventAccumulator(str(tmp_path / "tensorboard"))
    assert [e.step for e in board.Reload().Scalars("loss")] == [1, 2, 3, 4, 5]
    train(config(tiny_data, tmp_path, resume=True))
    events = event_accumulator.EventAccumulator(str(tmp_path / "tensorboard")).Reload().Scalars("loss")
    assert [e.step for e in events] == steps_logged(tmp_path) == list(range(1, 10))
    assert [e.value for e in events] == pytest.approx([r["loss"] for r in read_csv(str(tmp_path / "log.csv"))])
