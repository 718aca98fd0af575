"""The trainer: the epoch as the unit (skipped batches never repeated), resume gives the same losses, checkpoints
are atomic, the NaN guard, one host read per step, logs, bad settings."""

import itertools
import os
import signal
import sys
import time

import pytest
import torch

from fastssl.data import synthetic
from fastssl.train import TrainConfig, TrainError, train
from fastssl.train import checkpoint
from fastssl.train.log import read_csv
from fastssl.train.optim import LARS, make_optimizer, warmup_cosine


def config(data, out, **overrides):
    base = dict(task="rotation", data=data, out=str(out), backbone="resnet10", image_size=32, batch_size=8, epochs=3,
                decoder="pil", progress=False, checkpoint_every=2, num_threads=1)
    base.update(overrides)
    return TrainConfig(**base)


@pytest.fixture
def deadline():
    """Fails (TimeoutError) a test still running after 120 s: a hang is a failure, not a stalled suite."""
    def expired(*_):
        raise TimeoutError("the test ran past its 120 s deadline (a hang)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def one_bad_file(tmp_path_factory):
    """6 JPEGs and ``zz_bad.jpg``, a text file, in one folder."""
    root = synthetic.write_image_folder(str(tmp_path_factory.mktemp("one_bad")), classes=1, per_class=6, min_size=36,
                                        max_size=40, seed=0)
    with open(os.path.join(root, "class_0", "zz_bad.jpg"), "w") as f:
        f.write("this is not an image")
    return root


@pytest.mark.parametrize("seed", [0, 8])
def test_a_batch_that_decodes_to_nothing_is_skipped_not_repeated(one_bad_file, tmp_path, seed, deadline):
    result = train(config(one_bad_file, tmp_path, batch_size=1, epochs=2, seed=seed))
    assert (result.steps, result.skipped_batches, result.skipped_files, result.skipped_steps) == (12, 2, 2, 0)
    assert result.epochs_done == 2
    rows = read_csv(str(tmp_path / "log.csv"))
    assert [r["step"] for r in rows] == list(range(1, 13))
    assert [r["epoch"] for r in rows] == [0] * 6 + [1] * 6  # each epoch: its 6 good images once
    assert [r["global_batch"] for r in rows] == [1] * 12 and rows[-1]["skipped_files"] == 2
    listed = (tmp_path / "bad_files.txt").read_text().splitlines()
    assert len(listed) == 1 and listed[0].split("\t")[0].endswith("zz_bad.jpg")


def test_resume_after_a_skipped_batch_is_exact(one_bad_file, tmp_path, deadline):
    """The position in the epoch comes from the checkpoint, not from the step count (which lags behind it)."""
    whole = train(config(one_bad_file, tmp_path / "a", batch_size=1, epochs=2, seed=8))
    for stop in (3, 8):
        out = tmp_path / f"b{stop}"
        train(config(one_bad_file, out, batch_size=1, epochs=2, seed=8, max_steps=stop))
        resumed = train(config(one_bad_file, out, batch_size=1, epochs=2, seed=8, resume=True))
        assert resumed.losses == whole.losses and resumed.steps == whole.steps
        assert [r["step"] for r in read_csv(str(out / "log.csv"))] == list(range(1, 13))


def test_an_epoch_without_a_usable_batch_is_an_error_naming_the_files(tmp_path, deadline):
    root = tmp_path / "data"
    root.mkdir()
    for k in range(3):
        (root / f"broken_{k}.jpg").write_text("not an image")
    with pytest.raises((TrainError, RuntimeError), match="broken_0.jpg"):
        train(config(str(root), tmp_path / "run", batch_size=1))


def test_one_host_read_per_step_and_no_work_per_parameter(tiny_data, tmp_path, monkeypatch):
    """The trainer itself reads the device back once per step (loss, gradient norm and metrics together), and
    the number of tensor operations it calls per step does not grow with the number of parameters."""
    trainer_file = sys.modules[train.__module__].__file__
    counts = {"reads": 0, "ops": 0}
    reads = {"item", "tolist", "__bool__", "__float__", "__int__", "__index__", "cpu", "numpy"}

    class Count(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = getattr(func, "__name__", "")
            if sys._getframe(1).f_code.co_filename == trainer_file and name not in ("__get__", "__set__"):
                counts["ops"] += 1
                counts["reads"] += name in reads
            return func(*args, **(kwargs or {}))

    per_step = {}
    for backbone in ("resnet10", "resnet18"):
        counts.update(reads=0, ops=0)
        with Count():
            result = train(config(tiny_data, tmp_path / backbone, backbone=backbone, epochs=1, checkpoint_every=100))
        per_step[backbone] = (counts["reads"] / result.steps, counts["ops"] / result.steps)
    assert per_step["resnet10"][0] == per_step["resnet18"][0] == 1
    assert per_step["resnet10"][1] == per_step["resnet18"][1]


def test_a_batch_larger_than_the_data_is_reduced_with_a_warning(tiny_data, tmp_path):
    with pytest.warns(UserWarning, match="batch_size 64 is larger than the data .24 images.: training with batches of 24"):
        result = train(config(tiny_data, tmp_path, batch_size=64, epochs=2))
    assert result.steps == 2
    assert checkpoint.load(result.checkpoint)["config"]["batch_size"] == 24


def test_a_time_schedule_follows_the_training_time(tiny_data, tmp_path, monkeypatch):
    """With schedule_by_time the learning rate follows the training time: on a clock that advances 1 s at each
    reading, a 100 s budget ends the run long before its 50 epochs (150 steps), and the rates of its steps fall
    along the whole cosine, the last near its end."""
    clock = itertools.count(0)
    monkeypatch.setattr(time, "perf_counter", lambda: float(next(clock)))
    result = train(config(tiny_data, tmp_path, epochs=50, warmup_epochs=0.0, time_limit_s=100.0, schedule_by_time=True,
                          lr=1e-3, checkpoint_every=1000))
    lrs = [row["lr"] for row in read_csv(str(tmp_path / "log.csv"))]
    assert 2 < result.steps < 150
    assert lrs == sorted(lrs, reverse=True) and lrs[0] > 0.9e-3 and lrs[-1] < 0.1e-3, lrs


def test_kill_and_resume_gives_the_same_losses(tiny_data, tmp_path):
    whole = train(config(tiny_data, tmp_path / "a"))
    assert whole.steps == 9 and len(whole.losses) == 9 and all(map(torch.isfinite, torch.tensor(whole.losses)))
    first = train(config(tiny_data, tmp_path / "b", max_steps=4))  # "killed" after step 4 (checkpointed)
    assert first.steps == 4 and first.checkpoint.endswith("step_4.pt")
    resumed = train(config(tiny_data, tmp_path / "b", resume=True))
    assert resumed.steps == 9
    assert resumed.losses == whole.losses  # bit for bit: same order, same views, same optimiser state
    rows = read_csv(os.path.join(tmp_path / "b", "log.csv"))
    assert [r["step"] for r in rows] == list(range(1, 10))
    assert [r["loss"] for r in rows] == pytest.approx(whole.losses, rel=1e-6)


def test_resume_refuses_a_different_run(tiny_data, tmp_path):
    train(config(tiny_data, tmp_path, max_steps=2))
    with pytest.raises(TrainError, match="global_batch: 8 there, 4 now"):
        train(config(tiny_data, tmp_path, resume=True, batch_size=4))


def test_checkpoints_are_never_half_written(tmp_path, monkeypatch):
    path = checkpoint.save_atomic({"step": 1}, str(tmp_path / "step_1.pt"))

    def broken_save(obj, f):
        f.write(b"partial bytes")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save_atomic({"step": 2}, str(tmp_path / "step_2.pt"))
    assert sorted(os.listdir(tmp_path)) == ["step_1.pt"]  # no partial file, no temp file left
    assert checkpoint.load(path)["step"] == 1 and checkpoint.latest(str(tmp_path)) == path
    (tmp_path / "step_9.pt").write_bytes(b"garbage")
    with pytest.raises(RuntimeError, match="step_9.pt"):
        checkpoint.load(str(tmp_path / "step_9.pt"))


def test_nan_guard_skips_bad_steps_and_stops_a_diverged_run(tiny_data, tmp_path, monkeypatch):
    from fastssl.tasks.rotation import RotationTask

    forward = RotationTask.forward
    calls = {"n": 0}

    def sometimes_nan(self, batch):
        calls["n"] += 1
        out = forward(self, batch)
        return {**out, "loss": out["loss"] * float("nan")} if calls["n"] in (2, 3) else out

    monkeypatch.setattr(RotationTask, "forward", sometimes_nan)
    result = train(config(tiny_data, tmp_path / "a", epochs=2))
    assert result.skipped_steps == 2 and result.steps == 6
    assert [r["skipped_steps"] for r in read_csv(str(tmp_path / "a" / "log.csv"))] == [0, 1, 2, 2, 2, 2]

    monkeypatch.setattr(RotationTask, "forward", lambda self, batch: {"loss": forward(self, batch)["loss"] * float("nan")})
    with pytest.raises(FloatingPointError, match="3 steps in a row"):
        train(config(tiny_data, tmp_path / "b", max_bad_steps=3))


@pytest.mark.parametrize("overrides,match", [
    (dict(precision="fp16"), "precision"), (dict(batch_size=0), "batch_size"), (dict(lr=-1.0), "lr"),
    (dict(task="sudoku"), "task must be one of"), (dict(backbone="vgg"), "backbone must be one of"),
    (dict(optimizer="adam"), "optimizer must be one of"), (dict(schedule_by_time=True), "schedule_by_time needs"),
])
def test_bad_settings_are_named(tiny_data, tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        train(config(tiny_data, tmp_path, **overrides))


def test_schedule_and_lars():
    factors = [warmup_cosine(s, total=100, warmup=10) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == 1.0 and factors[10] == 1.0
    assert all(a >= b for a, b in zip(factors[10:], factors[11:])) and factors[-1] < 0.001
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    opt = make_optimizer("lars", net, lr=0.1, weight_decay=0.1)
    assert isinstance(opt, LARS) and [g["exclude"] for g in opt.param_groups] == [False, True]
    w = net[0].weight.detach().clone()
    net(torch.randn(5, 3)).square().sum().backward()
    g = net[0].weight.grad + 0.1 * w
    opt.step()  # the first step moves the weight by lr * eta * ||w|| / ||g|| * g
    expected = w - 0.1 * 0.001 * w.norm() / g.norm() * g
    torch.testing.assert_close(net[0].weight.detach(), expected)


@pytest.mark.slow
def test_compiled_backbone_keeps_plain_checkpoint_keys(tiny_data, tmp_path):
    result = train(config(tiny_data, tmp_path, epochs=1, compile=True))
    keys = list(checkpoint.load(result.checkpoint)["model"])
    assert result.steps == 3 and keys and not any("_orig_mod" in k for k in keys)
