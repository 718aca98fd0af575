"""Training ranks as gloo processes on the CPU, with a deadline: a hang fails the test instead of stalling it."""

from __future__ import annotations

import datetime
import os
import traceback

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def run_ranks(worker, world: int, tmp_path, *args, deadline_s: float = 120) -> list[dict]:
    """Runs ``worker(rank, world, *args) -> dict`` in ``world`` spawned processes joined in one gloo group.

    The processes meet through a file store; a rank that returns passes a barrier before tearing the group
    down, a rank that raises leaves at once. Returns each rank's dict, with ``error`` (the exception's one-line
    message, None when it returned), ``seconds`` (its time in ``worker``) and ``ended`` (time.time() then). Processes still running after
    ``deadline_s`` are killed and the call fails with AssertionError ("hang")."""
    results = [str(tmp_path / f"rank{r}.result.pt") for r in range(world)]
    context = mp.start_processes(_process, args=(world, str(tmp_path / "gloo-rendezvous"), worker, args, results),
                                 nprocs=world, join=False, start_method="spawn")
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=deadline_s)
    while not context.join(timeout=1):
        if datetime.datetime.now() > deadline:
            for process in context.processes:
                if process.is_alive():
                    process.kill()
            raise AssertionError(f"the ranks did not finish within {deadline_s} s (a hang)")
    return [torch.load(path) for path in results]


def _process(rank, world, init_file, worker, args, results):
    import time

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=60))
    started = time.perf_counter()
    try:
        result, error = worker(rank, world, *args), None
    except Exception as exception:  # the test judges the message
        result, error = {}, str(exception)
        if "TEST_TRACEBACKS" in os.environ:
            traceback.print_exc()
    torch.save({**result, "error": error, "seconds": time.perf_counter() - started, "ended": time.time()},
               results[rank])
    try:
        if error is None:
            dist.barrier()  # no rank leaves while its peer still talks to it
    finally:
        dist.destroy_process_group()


def step_summary(result) -> dict:
    """What :func:`assert_ranks_in_step` reads of a rank's TrainResult (picklable, sent back by the worker)."""
    return {"steps": result.steps, "losses": result.losses, "skipped_files": result.skipped_files,
            "skipped_batches": result.skipped_batches, "checkpoint": result.checkpoint}


def assert_ranks_in_step(r0: dict, r1: dict, *, positions: int, inject: bool, out) -> None:
    """Two ranks ran without error and in step: each of the epoch's ``positions`` a step on both or skipped by both
    (a batch left with one sample is skipped: batch normalisation needs two), rank 0 alone checkpointed, files
    skipped (and named in ``out``'s bad-files list) exactly when failures were injected."""
    from fastssl.train.trainer import BAD_FILES

    assert r0["error"] is r1["error"] is None, (r0["error"], r1["error"])
    assert r0["steps"] == r1["steps"] and r0["skipped_batches"] == r1["skipped_batches"]
    assert r0["steps"] + r0["skipped_batches"] == positions and (r0["skipped_batches"] > 0) <= inject
    assert r0["checkpoint"] is not None and r1["checkpoint"] is None
    assert (r0["skipped_files"] > 0) == inject and r0["skipped_files"] == r1["skipped_files"]
    if inject:
        assert "injected" in (out / BAD_FILES).read_text()

