"""Gloo processes on the CPU (as torchrun would start them): DDP + sharded loader, and ranks that stay in step
whatever their shards hold — uneven sizes, a bad file on one rank, a shard of only bad files, a non-finite loss
on one rank, a rank that stalls. Every case ends (trained or with a one-line error) well within its deadline."""

import os

import pytest
import torch
import torch.distributed as dist
from gloo_ranks import run_ranks

from fastssl.data import EpochOrder, open_source, synthetic
from fastssl.train.log import read_csv

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="needs torch.distributed gloo")


def _train(rank, world, data, out, overrides, inject=None):
    from fastssl.train import TrainConfig, train

    if inject is not None:
        inject(rank)
    base = dict(task="simclr", data=data, out=out, backbone="resnet10", image_size=32, batch_size=4, epochs=2,
                decoder="pil", progress=False, num_threads=1, device="cpu", collective_timeout_s=20)
    result = train(TrainConfig(**{**base, **overrides}))
    return {"losses": result.losses, "steps": result.steps, "checkpoint": result.checkpoint,
            "skipped_steps": result.skipped_steps, "skipped_batches": result.skipped_batches,
            "skipped_files": result.skipped_files}


def _folder(tmp_path, images: int) -> str:
    return synthetic.write_image_folder(str(tmp_path / "data"), classes=1, per_class=images, min_size=36, max_size=40,
                                        seed=0)


def _spoil(data: str, ids) -> list[str]:
    """Overwrites the files of ``ids`` with text; their names."""
    names = [open_source(data).names[int(i)] for i in ids]
    for name in names:
        with open(os.path.join(data, name) if not os.path.isabs(name) else name, "w") as f:
            f.write("not an image")
    return names


def test_two_process_training(tiny_data, tmp_path):
    r0, r1 = run_ranks(_train, 2, tmp_path, tiny_data, str(tmp_path / "run"), {})
    assert r0["error"] is r1["error"] is None
    assert r0["steps"] == r1["steps"] == 2 * (24 // 2 // 4)  # 24 images, 2 shards of 12, batches of 4, 2 epochs
    # NT-Xent with gather=True: every rank computes the loss of the global batch
    assert r0["losses"] == pytest.approx(r1["losses"], rel=1e-5)
    assert r0["checkpoint"] is not None and r1["checkpoint"] is None  # rank 0 writes
    assert len(os.listdir(tmp_path / "run" / "checkpoints")) >= 1


@pytest.mark.parametrize("world,images,batch", [(2, 15, 4), (3, 10, 2)])
def test_uneven_shards_run_the_same_steps(tmp_path, world, images, batch):
    """15 images on 2 ranks at batch 4 (8 + 7: 2 batches and 1 before padding), 10 on 3 at batch 2 (4 + 3 + 3)."""
    data = _folder(tmp_path, images)
    per_epoch = -(-images // world) // batch
    results = run_ranks(_train, world, tmp_path, data, str(tmp_path / "run"), {"batch_size": batch, "task": "rotation"})
    assert [r["error"] for r in results] == [None] * world
    assert [r["steps"] for r in results] == [2 * per_epoch] * world
    rows = read_csv(str(tmp_path / "run" / "log.csv"))
    assert [r["step"] for r in rows] == list(range(1, 2 * per_epoch + 1))
    assert {r["global_batch"] for r in rows} == {world * batch}


def test_a_bad_file_on_one_rank_is_skipped_by_all(tmp_path):
    data = _folder(tmp_path, 8)
    (bad,) = _spoil(data, [EpochOrder(8, 1, seed=0, shard_id=1, num_shards=2).batches(0)[1][0]])  # rank 1's 2nd
    r0, r1 = run_ranks(_train, 2, tmp_path, data, str(tmp_path / "run"), {"batch_size": 1, "task": "rotation"})
    assert r0["error"] is r1["error"] is None
    assert r0["steps"] == r1["steps"] == 2 * (4 - 1)  # 4 positions per epoch, one skipped by both ranks
    assert r0["skipped_batches"] == r1["skipped_batches"] == 2 and r0["skipped_files"] == r1["skipped_files"] == 2
    rows = read_csv(str(tmp_path / "run" / "log.csv"))
    assert [r["step"] for r in rows] == list(range(1, 7)) and [r["epoch"] for r in rows] == [0] * 3 + [1] * 3
    assert rows[-1]["skipped_files"] == 2
    assert os.path.basename(bad) in (tmp_path / "run" / "bad_files.txt").read_text()


def test_a_shard_of_only_bad_files_stops_every_rank_with_one_line(tmp_path):
    data = _folder(tmp_path, 8)
    names = _spoil(data, torch.cat(EpochOrder(8, 2, seed=0, shard_id=1, num_shards=2).batches(0)))
    results = run_ranks(_train, 2, tmp_path, data, str(tmp_path / "run"), {"batch_size": 2, "task": "rotation"},
                        deadline_s=90)
    for r in results:
        assert r["error"] is not None and "\n" not in r["error"] and r["seconds"] < 30, r
        assert "decode" in r["error"]  # the loader's "could not be decoded", or the trainer's "could decode"
    assert "rank 1" in results[0]["error"]  # rank 0 names the rank that stopped
    listed = (tmp_path / "run" / "bad_files.txt").read_text()
    assert all(os.path.basename(name) in listed for name in names)


def _nan_on_rank_1_second_step(rank):
    from fastssl.tasks.rotation import RotationTask

    forward, calls = RotationTask.forward, {"n": 0}

    def forward_nan_once(self, batch):
        calls["n"] += 1
        out = forward(self, batch)
        return {**out, "loss": out["loss"] * float("nan")} if rank == 1 and calls["n"] == 2 else out

    RotationTask.forward = forward_nan_once


def test_a_non_finite_loss_on_one_rank_is_skipped_by_all(tmp_path):
    data = _folder(tmp_path, 16)
    r0, r1 = run_ranks(_train, 2, tmp_path, data, str(tmp_path / "run"),
                       {"batch_size": 2, "task": "rotation", "epochs": 1}, _nan_on_rank_1_second_step)
    assert r0["error"] is r1["error"] is None
    assert r0["steps"] == r1["steps"] == 4
    assert r0["skipped_steps"] == r1["skipped_steps"] == 1
    rows = read_csv(str(tmp_path / "run" / "log.csv"))
    assert [r["skipped_steps"] for r in rows] == [0, 1, 1, 1]


STALL_S = 30


def _stall_rank_1(rank):
    import time

    from fastssl.data import loader

    if rank == 1:
        epoch = loader.Loader.epoch

        def slow_epoch(self, *args, **kwargs):
            time.sleep(STALL_S)
            return epoch(self, *args, **kwargs)

        loader.Loader.epoch = slow_epoch


def test_a_stalled_rank_is_an_error_after_the_timeout_not_a_hang(tmp_path):
    data = _folder(tmp_path, 8)
    r0, r1 = run_ranks(_train, 2, tmp_path, data, str(tmp_path / "run"),
                       {"batch_size": 2, "task": "rotation", "collective_timeout_s": 3}, _stall_rank_1, deadline_s=180)
    assert r0["error"] is not None and "no answer from the other ranks within 3 s" in r0["error"], r0["error"]
    assert "\n" not in r0["error"] and r0["ended"] < r1["ended"] - STALL_S / 2  # it gave up, it did not wait
    assert r1["error"] is not None


def _deepcluster(rank, world, data, out):
    from fastssl.train import TrainConfig, checkpoint, train

    result = train(TrainConfig(task="deepcluster", data=data, out=out, backbone="resnet10", image_size=32,
                               batch_size=4, epochs=1, decoder="pil", progress=False, num_threads=1, device="cpu",
                               collective_timeout_s=20, task_options={"num_samples": 15, "clusters": 3}))
    assignments = checkpoint.load(result.checkpoint)["model"]["assignments"] if result.checkpoint else None
    return {"steps": result.steps, "assignments": assignments}


def test_deepcluster_clusters_every_sample_on_every_rank(tmp_path):
    """Each rank extracts the features of its shard; the clusters are made from the whole set's, so every sample
    (odd count: one shard padded by wrapping) has a cluster, the same one on every rank."""
    data = _folder(tmp_path, 15)
    r0, r1 = run_ranks(_deepcluster, 2, tmp_path, data, str(tmp_path / "run"))
    assert r0["error"] is r1["error"] is None, (r0["error"], r1["error"])
    assert r0["steps"] == r1["steps"] > 0
    assignments = r0["assignments"]
    assert assignments.shape == (15,) and bool((assignments >= 0).all()), assignments
    assert len(assignments.unique()) > 1


def _nt_xent_reads(rank, world):
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from host_reads import count_host_reads

    from fastssl import _validation
    from fastssl.ops import nt_xent_loss

    n = (3, 2)[rank]  # uneven: 3 samples on rank 0, 2 on rank 1
    g = torch.Generator().manual_seed(rank)
    z1, z2 = torch.randn(n, 8, generator=g), torch.randn(n, 8, generator=g)
    out = {}
    for name, counts in (("gathered", None), ("given", [3, 2])):
        with _validation.asynchronous_checks(), count_host_reads() as reads:
            loss = nt_xent_loss(z1, z2, 0.5, gather=True, rank_rows=counts)
        out[name] = (float(loss), list(reads))
    try:
        nt_xent_loss(z1, z2, 0.5, gather=True, rank_rows=[2, 3])
    except ValueError as error:
        out["wrong"] = str(error)
    return out


def test_row_counts_the_trainer_knows_spare_the_gather_a_host_read(tmp_path):
    r0, r1 = run_ranks(_nt_xent_reads, 2, tmp_path)
    assert r0["error"] is r1["error"] is None, (r0["error"], r1["error"])
    for r in (r0, r1):
        assert r["given"][0] == r["gathered"][0]  # the same loss
        assert r["given"][1] == [] and any("__int__" in read for read in r["gathered"][1]), (r["given"], r["gathered"])
        assert r["wrong"].startswith("sizes must hold every rank's row count")
