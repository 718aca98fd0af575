"""Two gloo processes on the CPU (as torchrun would start them): DDP + sharded loader + NT-Xent with gather."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers import free_port


def _worker(rank, world, port, data, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from fastssl.train import TrainConfig, train

    try:
        result = train(TrainConfig(task="simclr", data=data, out=out, backbone="resnet10", image_size=32, batch_size=4,
                                   epochs=2, decoder="pil", progress=False, num_threads=1, device="cpu"))
        torch.save({"losses": result.losses, "steps": result.steps, "checkpoint": result.checkpoint},
                   os.path.join(out, f"rank{rank}.pt"))
        dist.barrier()  # no rank leaves (and takes rank 0's store with it) while its peer still talks to it
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo")
def test_two_process_training(tiny_data, tmp_path):
    mp.spawn(_worker, args=(2, free_port(), tiny_data, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    assert r0["steps"] == r1["steps"] == 2 * (24 // 2 // 4)  # 24 images, 2 shards of 12, batches of 4, 2 epochs
    # NT-Xent with gather=True: every rank computes the loss of the global batch
    assert r0["losses"] == pytest.approx(r1["losses"], rel=1e-5)
    assert r0["checkpoint"] is not None and r1["checkpoint"] is None  # rank 0 writes
    assert len(os.listdir(tmp_path / "checkpoints")) >= 1
