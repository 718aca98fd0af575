"""The trainer: resume gives the same losses, checkpoints are atomic, the NaN guard, logs, bad settings."""

import os

import pytest
import torch

from fastssl.train import TrainConfig, train
from fastssl.train import checkpoint
from fastssl.train.log import read_csv
from fastssl.train.optim import LARS, make_optimizer, warmup_cosine


def config(data, out, **overrides):
    base = dict(task="rotation", data=data, out=str(out), backbone="resnet10", image_size=32, batch_size=8, epochs=3,
                decoder="pil", progress=False, checkpoint_every=2, num_threads=1)
    base.update(overrides)
    return TrainConfig(**base)


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
    with pytest.raises(ValueError, match="batch_size"):
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
    assert [r["skipped"] for r in read_csv(str(tmp_path / "a" / "log.csv"))] == [0, 1, 2, 2, 2, 2]

    monkeypatch.setattr(RotationTask, "forward", lambda self, batch: {"loss": forward(self, batch)["loss"] * float("nan")})
    with pytest.raises(FloatingPointError, match="3 steps in a row"):
        train(config(tiny_data, tmp_path / "b", max_bad_steps=3))


@pytest.mark.parametrize("overrides,match", [
    (dict(precision="fp16"), "precision"), (dict(batch_size=0), "batch_size"), (dict(lr=-1.0), "lr"),
    (dict(task="sudoku"), "task must be one of"), (dict(backbone="vgg"), "backbone must be one of"),
    (dict(optimizer="adam"), "optimizer must be one of"),
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
