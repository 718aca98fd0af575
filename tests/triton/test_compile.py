"""Every Triton launch of every public op, compiled for sm_80 and sm_90 with the tile configs a GPU gets.

The interpreter (TRITON_INTERPRET=1, which this suite runs under) never runs Triton's compiler: a
kernel can pass every interpreted test and still fail to compile, need more shared memory than a
block gets, spill registers, or launch a grid CUDA refuses. compile_cases.py (next to this file)
drives each op with backend="triton" over GPU-sized inputs in a subprocess without the interpreter,
captures its launches as a GPU would specialise them and compiles each for sm_80 and sm_90; the
tests below check the records it prints. Compiled kernels land in Triton's cache (~/.triton/cache),
so later runs take a fraction of the first one's time.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import pytest

import fastssl.triton.nt_xent
from fastssl.triton._common import MAX_GRID, MAX_SHARED_BYTES

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
#: the public ops with a Triton backend: each must make at least one launch in compile_cases.py
TRITON_OPS = ("augment", "colorization_targets", "counting_tiles", "frame_difference_sum", "inpainting_masks",
              "info_nce_loss", "jigsaw_tiles", "kmeans_assign", "lab_to_rgb", "log_mel_spectrogram", "log_spectrogram",
              "mae_masking", "motion_energy", "nt_xent_loss", "queue_info_nce_loss", "relative_position_pairs",
              "rgb_to_lab", "rotations")
CONTRASTIVE_OPS = ("nt_xent_loss", "info_nce_loss", "queue_info_nce_loss")
HOST = "(host)"


def _compiler_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (ROOT, env.get("PYTHONPATH"))))
    return env


def _run_without_interpreter(args: list[str], timeout: int = 1200) -> str:
    done = subprocess.run([sys.executable, *args], env=_compiler_env(), cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def records() -> list[dict]:
    out = _run_without_interpreter([os.path.join(HERE, "compile_cases.py"), "--json"])
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _describe(r: dict) -> str:
    return (f"{r['kernel']} sm_{r['arch']} {r['dtype']} [{r['constants']}] ({r['op']}: {r['case']}): "
            f"{r['registers']} registers, {r['spill_bytes']} spill bytes, {r['shared_bytes']} shared bytes")


def _compiled(records):
    return [r for r in records if r["kernel"] != HOST and not r["error"]]


def _fail_listing(problems: list[str], what: str):
    if problems:
        pytest.fail(f"{len(problems)} {what}:\n" + "\n".join(problems[:40]))


def test_every_op_launches(records):
    """Each op ran its host side to the launches (no error before them) and launched at least one kernel."""
    failed = [f"{r['op']} ({r['case']}, {r['dtype']}): {r['error']}" for r in records if r["kernel"] == HOST]
    _fail_listing(sorted(set(failed)), "op calls raised before launching")
    launched = {r["op"] for r in records}
    assert set(TRITON_OPS) <= launched, f"ops that launched nothing: {sorted(set(TRITON_OPS) - launched)}"


def test_every_launch_compiles(records):
    failed = [f"{_describe(r)}\n    {r['error']}" for r in records if r["kernel"] != HOST and r["error"]]
    _fail_listing(failed, "launches did not compile")


def test_shared_memory_fits_a_block(records):
    over = [f"{_describe(r)} > {MAX_SHARED_BYTES[r['arch']]} allowed" for r in _compiled(records)
            if r["shared_bytes"] > MAX_SHARED_BYTES[r["arch"]]]
    _fail_listing(over, "launches need more shared memory than a block gets")


def test_image_kernels_do_not_spill(records):
    spilling = [_describe(r) for r in _compiled(records) if r["op"] not in CONTRASTIVE_OPS and r["spill_bytes"] > 0]
    _fail_listing(spilling, "image kernels spill registers")


def test_contrastive_kernels_spill_within_bound(records):
    bound = getattr(fastssl.triton.nt_xent, "MAX_SPILL_BYTES", 0)
    spilling = [f"{_describe(r)} > {bound} allowed" for r in _compiled(records)
                if r["op"] in CONTRASTIVE_OPS and r["spill_bytes"] > bound]
    _fail_listing(spilling, "NT-Xent / InfoNCE kernels spill more than fastssl.triton.nt_xent.MAX_SPILL_BYTES")


def test_contrastive_cases_cover_every_launch_class(records):
    """Both tile sizes (32 x 32 for batches that 64 x 64 tiles cannot spread over the GPU) x D in one tile or
    in chunks, for each dtype and both kernels: the classes whose shared memory and registers differ."""
    covered = set()
    for r in _compiled(records):
        if r["op"] in CONTRASTIVE_OPS:
            constants = dict(item.split("=", 1) for item in r["constants"].split())
            covered.add((r["kernel"], r["dtype"], constants["BLOCK_M"], constants["SINGLE_D"]))
    wanted = set(itertools.product(("_lse_kernel", "_grad_kernel"), ("fp32", "fp16", "bf16"), ("32", "64"),
                                   ("True", "False")))
    assert wanted <= covered, f"launch classes compile_cases.py does not reach: {sorted(wanted - covered)}"


def test_grids_within_cuda_limits(records):
    over = [f"{_describe(r)}: grid {tuple(r['grid'])} > {MAX_GRID}" for r in records
            if any(g > limit for g, limit in zip(r["grid"], MAX_GRID))]
    _fail_listing(over, "launches exceed CUDA's grid limits")


def test_jigsaw_reads_bfloat16_images_as_they_are(records):
    """On a GPU bfloat16 images go to the kernel unconverted (only the interpreter, without bfloat16, widens)."""
    bf16 = [r for r in records if r["op"] == "jigsaw_tiles" and r["dtype"] == "bf16" and r["kernel"] != HOST]
    assert bf16, "compile_cases.py has no bfloat16 jigsaw case"
    widened = [f"{_describe(r)}: pointer types {r['pointer_types']}" for r in bf16
               if "bf16" not in r["pointer_types"].split()]
    _fail_listing(widened, "bfloat16 jigsaw launches read a converted copy instead of the images")


COUNTING_SPECIALISATIONS = """
import torch
from fastssl.ops import counting_tiles
from fastssl.triton._common import capture_launches
# sides neither 1 nor multiples of 16, outputs of more than one block: only the int arguments' values differ
with capture_launches() as launches:
    for h, w in [(37, 53), (45, 99), (101, 75), (223, 227)]:
        for size in (17, 23, 41, 57):
            counting_tiles(torch.zeros(2, 3, h, w), size=size, backend="triton")
print(len({launch.key() for launch in launches}))
"""


def test_counting_compiles_one_kernel_for_every_size():
    """Image sides and output size are run-time arguments: one compiled kernel serves them all."""
    count = int(_run_without_interpreter(["-c", COUNTING_SPECIALISATIONS], timeout=300).split()[-1])
    assert count == 1, f"counting_tiles compiled {count} kernel variants for 16 (H, W, size) of float32 images"
