"""MoCo under the trainer: the queue, its pointer and the key encoder live in checkpoints (a killed and resumed run
gives the uninterrupted run's losses bit for bit), and two gloo ranks (shuffled BN across ranks, keys gathered
before the enqueue) compute what one process with two BN groups computes and keep the same queue."""

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from gloo_ranks import run_ranks

from fastssl.ragged import RaggedImages
from fastssl.tasks import make_task
from fastssl.train import TrainConfig, checkpoint, train

OPTIONS = {"queue_size": 20, "bn_groups": 2}  # 20: not a multiple of the global batch, the ring wraps


def config(data, out, **overrides):
    base = dict(task="moco", data=data, out=str(out), backbone="resnet10", image_size=32, batch_size=12, epochs=2,
                decoder="pil", progress=False, checkpoint_every=2, num_threads=1, task_options=OPTIONS)
    return TrainConfig(**{**base, **overrides})


def test_kill_and_resume_gives_the_same_losses(tiny_data, tmp_path):
    whole = train(config(tiny_data, tmp_path / "a"))
    assert whole.steps == 4 and all(map(torch.isfinite, torch.tensor(whole.losses)))  # 24 images, batches of 12
    state = checkpoint.load(whole.checkpoint, map_location="cpu")["model"]
    assert int(state["queue_ptr"]) == 4 * 12 % 20 and state["queue"].shape == (20, 128)
    assert any(name.startswith("key_encoder.") for name in state)
    first = train(config(tiny_data, tmp_path / "b", max_steps=2))  # "killed" after step 2 (checkpointed)
    assert first.steps == 2
    resumed = train(config(tiny_data, tmp_path / "b", resume=True))
    assert resumed.steps == 4 and resumed.losses == whole.losses  # queue, pointer, key encoder restored
    again = checkpoint.load(resumed.checkpoint, map_location="cpu")["model"]
    assert all(torch.equal(value, again[name]) for name, value in state.items())


def _images(n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    low = torch.rand(n, 3, 6, 6, generator=g)
    return (F.interpolate(low, size=(40, 40), mode="bilinear", align_corners=False) * 255).round().to(torch.uint8)


def _one_step(task, images: torch.Tensor, ids: torch.Tensor) -> dict:
    """One training forward + backward of ``task`` on ``images``: its loss, queue, pointer and a head gradient."""
    batch = task.transform(RaggedImages.from_dense(images), ids, 1)
    batch.update(ids=ids, epoch=1)
    out = task.train()(batch)
    out["loss"].backward()
    return {"loss": out["loss"].item(), "queue": task.queue.clone(), "ptr": int(task.queue_ptr),
            "grad": task.head[2].weight.grad.clone()}


def _rank(rank, world, data, out):
    from fastssl.tasks.moco import MoCoTask

    torch.manual_seed(0)
    task = make_task("moco", backbone="resnet10", image_size=32, queue_size=24)
    n = 8 // world
    step = _one_step(task, _images(8)[rank * n:(rank + 1) * n], torch.arange(rank * n, (rank + 1) * n) + 10)

    live, forward = {}, MoCoTask.forward

    def recording(self, batch):
        live["task"] = self
        return forward(self, batch)

    MoCoTask.forward = recording
    result = train(config(data, out, batch_size=4, epochs=1, device="cpu", collective_timeout_s=30))
    trained = live["task"]
    return {"step": step, "steps": result.steps, "checkpoint": result.checkpoint, "queue": trained.queue.clone(),
            "ptr": int(trained.queue_ptr),
            "key_encoder": torch.cat([p.flatten() for p in trained.key_encoder.parameters()])}


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo")
def test_two_ranks_match_one_process_with_two_bn_groups_and_share_the_queue(tiny_data, tmp_path):
    r0, r1 = run_ranks(_rank, 2, tmp_path, tiny_data, str(tmp_path / "run"))
    assert r0["error"] is r1["error"] is None, (r0["error"], r1["error"])
    torch.manual_seed(0)
    single = _one_step(make_task("moco", backbone="resnet10", image_size=32, queue_size=24, bn_groups=2),
                       _images(8), torch.arange(8) + 10)
    ranks = [r0["step"], r1["step"]]
    # per-rank BN for the queries, the keys' shuffle across ranks = one process's 2 groups of the same permutation
    assert sum(r["loss"] for r in ranks) / 2 == pytest.approx(single["loss"], rel=1e-5)
    torch.testing.assert_close((ranks[0]["grad"] + ranks[1]["grad"]) / 2, single["grad"], rtol=1e-4, atol=1e-6)
    for r in ranks:  # every rank enqueued the keys of the global batch, in rank order
        assert r["ptr"] == single["ptr"] == 8
        torch.testing.assert_close(r["queue"], single["queue"], rtol=1e-5, atol=1e-6)

    assert r0["steps"] == r1["steps"] == 24 // 2 // 4  # 24 images, 2 shards of 12, batches of 4, 1 epoch
    assert r0["ptr"] == r1["ptr"] == r0["steps"] * 8 % 20
    assert torch.equal(r0["queue"], r1["queue"]) and torch.equal(r0["key_encoder"], r1["key_encoder"])
    saved = checkpoint.load(r0["checkpoint"], map_location="cpu")["model"]
    assert torch.equal(saved["queue"], r0["queue"]) and int(saved["queue_ptr"]) == r0["ptr"]
