"""Every public op with backend="triton" over GPU-sized inputs: its launches, compiled for sm_80 and sm_90.

Each case calls one op on CPU tensors under :func:`fastssl.triton._common.capture_launches` (the
launchers choose their GPU tile configs; nothing runs), then every distinct launch is compiled with
Triton's compiler for each architecture. Runs in a process without TRITON_INTERPRET=1:

    python tests/triton/compile_cases.py                    # the table kernel x arch x dtype, to stdout
    python tests/triton/compile_cases.py --out benchmarks/results/triton_compile.md
    python tests/triton/compile_cases.py --json             # one JSON record per (case, launch, arch)

tests/triton/test_compile.py runs the ``--json`` form and checks the records.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from fastssl import ops, recipes  # noqa: E402
from fastssl.ragged import RaggedImages  # noqa: E402
from fastssl.triton._common import MAX_GRID, capture_launches, compile_launch  # noqa: E402

HOST = "(host)"  # the kernel name of records of an op that raised before launching anything

ARCHES = (80, 90)
DTYPES = {"uint8": torch.uint8, "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
FLOATS = ("fp32", "fp16", "bf16")
IMAGE_DTYPES = ("uint8",) + FLOATS
#: (H, W): one pixel, odd sides, the usual training size
SIDES = ((1, 1), (7, 13), (224, 224))
EMBEDDING_DIMS = (64, 128, 256, 512, 2048)
CONTRASTIVE_DIM = 128  # the D of the float32 and float16 cases
SIMCLR_BATCH = 256  # pairs: 512 rows: 32 x 32 tiles (their 64 x 64 tiles cannot fill 132 SMs)
LARGE_BATCH = 4224  # pairs: 8448 rows, 64 x 64 tiles
INFO_NCE_KEYS = 4096
MOCO_QUEUE = 65536  # MoCo's queue of negatives (queue_info_nce_loss)
SINGLE_CHUNK_DIM = 16  # D held in one tile (no loop over D) for every dtype
BINS = 261  # in-gamut ab bins of fastssl.ops.ab_bins
AUDIO_SECOND = 48000  # L3-Net's input: 1 s at 48 kHz, n_fft 512, 480-sample windows, hop 240: 257 bins x 199 frames
KMEANS_DIM = 256  # DeepCluster clusters PCA-whitened features of 256 dimensions


@dataclass
class Record:
    """One launch of one case compiled for one architecture (``error`` set when it did not compile).

    ``spill_bytes`` is the local memory per thread (the stack frame holding spilled registers)."""

    op: str
    case: str
    dtype: str
    kernel: str
    arch: int
    constants: str
    pointer_types: str
    grid: tuple
    guarded: bool
    registers: int = -1
    spill_bytes: int = -1
    shared_bytes: int = -1
    error: str = ""


def _images(shape, dtype: str, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if dtype == "uint8":
        return torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)
    return torch.rand(shape, generator=g).to(DTYPES[dtype])


def _clips(h: int, w: int, dtype: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(2, 8, 3, h, w) clips, contiguous and channels-last (a strided last dimension)."""
    return _images((2, 8, 3, h, w), dtype), _images((2, 8, h, w, 3), dtype).permute(0, 1, 4, 2, 3)


def _rows(shape, dtype: str, seed: int = 0, grad: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g).to(DTYPES[dtype]).requires_grad_(grad)


def _nt_xent(d: int, dtype: str, normalize: bool = True, batch: int = SIMCLR_BATCH):
    z1, z2 = _rows((batch, d), dtype, 1, True), _rows((batch, d), dtype, 2, True)
    ops.nt_xent_loss(z1, z2, normalize=normalize, backend="triton").backward()


def _info_nce(d: int, dtype: str, keys: int = INFO_NCE_KEYS, exclude: bool = True):
    q, k = _rows((SIMCLR_BATCH, d), dtype, 1, True), _rows((keys, d), dtype, 2, True)
    positive = torch.arange(SIMCLR_BATCH) * (keys // SIMCLR_BATCH) % keys
    exclude_index = (positive + 1) % keys if exclude else None
    ops.info_nce_loss(q, k, positive, exclude_index=exclude_index, backend="triton").backward()


def _queue_info_nce(d: int, dtype: str):
    q, k = _rows((SIMCLR_BATCH, d), dtype, 1, True), _rows((SIMCLR_BATCH, d), dtype, 2, True)
    ops.queue_info_nce_loss(q, k, _rows((MOCO_QUEUE, d), dtype, 3), backend="triton").backward()


def _contrastive_cases() -> list[tuple[str, str, str, callable]]:
    """Every launch class of the contrastive kernels, for each dtype: 32 x 32 and 64 x 64 tiles, D in one
    tile and D looped over in chunks, the fixed maximum (normalised) and the online one, with and without
    excluded columns. D is a run-time argument: every D above one chunk runs the same kernels, so the other
    dimensions of EMBEDDING_DIMS run in bfloat16 only (their launch plans)."""
    out = []
    for dt in FLOATS:
        for d in EMBEDDING_DIMS if dt == "bf16" else (CONTRASTIVE_DIM,):
            out.append(("nt_xent_loss", f"N={SIMCLR_BATCH} D={d} fwd+bwd", dt, lambda d=d, dt=dt: _nt_xent(d, dt)))
            out.append(("info_nce_loss", f"M={SIMCLR_BATCH} K={INFO_NCE_KEYS} D={d} exclude fwd+bwd", dt,
                        lambda d=d, dt=dt: _info_nce(d, dt)))
        one = SINGLE_CHUNK_DIM
        out.append(("nt_xent_loss", f"N={SIMCLR_BATCH} D={one} normalize=False fwd+bwd", dt,
                    lambda dt=dt: _nt_xent(one, dt, normalize=False)))
        for d, normalize in ((CONTRASTIVE_DIM, True), (one, False)):
            out.append(("nt_xent_loss", f"N={LARGE_BATCH} D={d} normalize={normalize} fwd+bwd", dt,
                        lambda d=d, dt=dt, n=normalize: _nt_xent(d, dt, normalize=n, batch=LARGE_BATCH)))
        out.append(("info_nce_loss", f"M={SIMCLR_BATCH} K={SIMCLR_BATCH} D={one} fwd+bwd", dt,
                    lambda dt=dt: _info_nce(one, dt, keys=SIMCLR_BATCH, exclude=False)))
        for d in (CONTRASTIVE_DIM, one):
            out.append(("queue_info_nce_loss", f"M={SIMCLR_BATCH} K={MOCO_QUEUE} D={d} fwd+bwd", dt,
                        lambda d=d, dt=dt: _queue_info_nce(d, dt)))
    return out


def _ab_grid() -> torch.Tensor:
    """BINS ab points 10 apart (as many as fastssl.ops.ab_bins has; computing those takes a minute here)."""
    grid = torch.arange(-110, 120, 10, dtype=torch.float32)
    return torch.cartesian_prod(grid, grid)[:BINS].contiguous()


def _ragged_large(count: int = 4) -> RaggedImages:
    sides = [(1080, 1920), (1003, 1417), (333, 500), (1, 1)][:count]
    return RaggedImages.from_list([_images((3, h, w), "uint8", i) for i, (h, w) in enumerate(sides)])


def _augment(recipe, dtype: str, channels_last: bool):
    batch = _ragged_large()
    transform = ops.Augment(recipe, seed=3, dtype=DTYPES[dtype], channels_last=channels_last, backend="triton")
    transform(batch, torch.arange(len(batch)), epoch=1)


def _spectrograms(mels: bool, odd: bool):
    """L3-Net's 1 s windows (257 bins or 64 mels x 199 frames), or odd sizes: a 400-point DFT of 301-sample frames
    (13 mels), more frames than the audio holds, ragged lengths, shifts of both signs, gains."""
    audio = _rows((3, 1001) if odd else (4, AUDIO_SECOND), "fp32")
    if not odd:
        return (ops.log_mel_spectrogram if mels else ops.log_spectrogram)(audio, backend="triton")
    options = dict(n_fft=400, win_length=301, hop_length=123, frames=11, lengths=torch.tensor([1001, 700, 0]),
                   shift=torch.tensor([0, -250, 333]), gain=torch.tensor([1.0, 0.5, 2.0]), backend="triton")
    if mels:
        return ops.log_mel_spectrogram(audio, sample_rate=16000, n_mels=13, **options)
    return ops.log_spectrogram(audio, **options)


def cases() -> list[tuple[str, str, str, callable]]:
    """(op, case, dtype, call) for every op and input this file covers."""
    out = _contrastive_cases()
    for h, w in SIDES:
        for dt in IMAGE_DTYPES:
            x = (2, 3, h, w)
            out.append(("rgb_to_lab", f"{h}x{w}", dt,
                        lambda x=x, dt=dt: ops.rgb_to_lab(_images(x, dt), backend="triton")))
            if dt in ("uint8", "bf16"):
                out.append(("rgb_to_lab", f"{h}x{w} channels_last", dt, lambda x=x, dt=dt: ops.rgb_to_lab(
                    _images(x, dt).permute(0, 2, 3, 1), channels_last=True, backend="triton")))
            if dt != "uint8":
                out.append(("lab_to_rgb", f"{h}x{w}", dt, lambda x=x, dt=dt: ops.lab_to_rgb(
                    _images(x, dt) * 100, backend="triton")))
            out.append(("rotations", f"{h}x{h}", dt,
                        lambda h=h, dt=dt: ops.rotations(_images((2, 3, h, h), dt), backend="triton")))
            two = (2, 3, max(h, 2), max(w, 2))  # inpainting and counting need 2 x 2 images at least
            for mode in ("center", "random_block"):
                out.append(("inpainting_masks", f"{two[2]}x{two[3]} {mode}", dt, lambda x=two, dt=dt, m=mode:
                            ops.inpainting_masks(_images(x, dt), m, ids=torch.arange(2), backend="triton")))
            out.append(("counting_tiles", f"{two[2]}x{two[3]}", dt, lambda x=two, dt=dt: ops.counting_tiles(
                _images(x, dt), size=min(x[2] // 2, x[3] // 2, 64), backend="triton")))
            out.append(("motion_energy", f"T=8 {h}x{w} pool 1, {min(h, w, 4)}", dt, lambda h=h, w=w, dt=dt: [
                ops.motion_energy(x, pool=p, backend="triton") for x in _clips(h, w, dt) for p in {1, min(h, w, 4)}]))
            out.append(("frame_difference_sum", f"T=8 {h}x{w}", dt, lambda h=h, w=w, dt=dt: [
                ops.frame_difference_sum(x, backend="triton") for x in _clips(h, w, dt)]))
        for factor in (1, 4):
            out.append(("colorization_targets", f"{h}x{w} factor {factor}", "uint8", lambda h=h, w=w, f=factor: (
                ops.colorization_targets(_images((2, 3, h, w), "uint8"), bins=_ab_grid(), factor=f, backend="triton"),
                ops.colorization_targets(_images((2, h, w, 3), "uint8"), bins=_ab_grid(), class_weights=torch.ones(
                    BINS), channels_last=True, factor=f, pool="stride", k=1, backend="triton"))))
    for dt in IMAGE_DTYPES:
        out.append(("rotations", "8193x8193", dt,
                    lambda dt=dt: ops.rotations(_images((1, 1, 8193, 8193), dt), backend="triton")))
        out.append(("jigsaw_tiles", "255x255 grid 3", dt,
                    lambda dt=dt: ops.jigsaw_tiles(_images((4, 3, 255, 255), dt), backend="triton")))
        out.append(("jigsaw_tiles", "255x255 grid 3 replace_tiles 2", dt, lambda dt=dt: ops.jigsaw_tiles(
            _images((4, 3, 255, 255), dt), replace_tiles=2, ids=torch.arange(4), backend="triton")))
        out.append(("mae_masking", "224x224 p16", dt, lambda dt=dt: ops.mae_masking(
            _images((4, 3, 224, 224), dt), ids=torch.arange(4), backend="triton")))
        out.append(("relative_position_pairs", "225x225 p64", dt, lambda dt=dt: ops.relative_position_pairs(
            _images((4, 3, 225, 225), dt), patch=64, gap=8, jitter=4, ids=torch.arange(4), backend="triton")))
    # Every recipe in bfloat16 (what training uses); the other output dtypes and layouts with SimCLR's.
    for recipe in (recipes.simclr(), recipes.byol(), recipes.mocov2(), recipes.mae(), recipes.multicrop()):
        out.append(("augment", f"{recipe.name} ragged up to 1080x1920", "bf16",
                    lambda r=recipe: _augment(r, "bf16", False)))
    for dt, channels_last in (("fp32", False), ("fp16", False), ("bf16", True)):
        out.append(("augment", f"simclr ragged up to 1080x1920{' channels_last' * channels_last}", dt,
                    lambda dt=dt, cl=channels_last: _augment(recipes.simclr(), dt, cl)))
    out.append(("augment", "simclr 1x1 outputs of a ragged batch", "bf16",
                lambda: _augment(recipes.simclr(size=1), "bf16", False)))
    # MAE's recipe makes the bicubic resize launch without the blur pass; with a blur (CLAMP and BLUR) too
    bicubic_blur = recipes.Recipe("bicubic_blur", (replace(recipes.simclr().views[0], interpolation="bicubic"),))
    out.append(("augment", "bicubic with blur ragged up to 1080x1920", "bf16",
                lambda: _augment(bicubic_blur, "bf16", False)))
    for op, mels in (("log_spectrogram", False), ("log_mel_spectrogram", True)):
        out.append((op, f"1 s at 48 kHz: {64 if mels else 257} x 199", "fp32", lambda m=mels: _spectrograms(m, False)))
        out.append((op, f"n_fft 400, 301-sample frames{', 13 mels' * mels}, ragged", "fp32",
                    lambda m=mels: _spectrograms(m, True)))
    for dt in FLOATS:  # 64-row tiles (16384 rows), 32-row tiles with splits of the centroids (1000 rows)
        for n, k in ((16384, 1000), (1000, 10000)):
            out.append(("kmeans_assign", f"N={n} K={k} D={KMEANS_DIM}", dt, lambda n=n, k=k, dt=dt: ops.kmeans_assign(
                _rows((n, KMEANS_DIM), dt), _rows((k, KMEANS_DIM), "fp32", 1), backend="triton")))
    return out


def capture(selected=None):
    """Yields (op, case, dtype, launches or the error the op raised) for every case (or those whose op is selected)."""
    for op, case, dtype, call in cases():
        if selected and op not in selected:
            continue
        try:
            with capture_launches() as launches:
                call()
        except Exception as error:  # reported as a record: the op failed on the host side
            launches = f"{type(error).__name__}: {error}"
        yield op, case, dtype, launches


def _compile(launch, arch: int) -> tuple[int, int, int] | str:
    """(registers, spill bytes, shared bytes) of ``launch`` compiled for ``arch``, or what the compiler said."""
    try:
        return tuple(compile_launch(launch, arch))
    except Exception as error:  # reported in the record
        return _first_lines(error)


def _describe(constants: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in constants.items())


def _first_lines(error: Exception, count: int = 12) -> str:
    return f"{type(error).__name__}: " + "\n".join(str(error).strip().splitlines()[:count])


def compile_all(selected=None, arches=ARCHES, workers: int = 2) -> list[Record]:
    """Records of every case's launches compiled for ``arches``.

    This process captures the cases one after another; each distinct (specialisation, arch) is
    compiled once, by a pool of ``workers`` processes that starts while later cases are captured.
    """
    records, compiling = [], {}
    with ProcessPoolExecutor(workers) as pool:
        for op, case, dtype, launches in capture(selected):
            if isinstance(launches, str):
                records += [(Record(op, case, dtype, HOST, arch, "", "", (), False, error=launches), None)
                            for arch in arches]
                continue
            for launch, arch in itertools.product(launches, arches):
                key = launch.key() + (arch,)
                if key not in compiling:
                    compiling[key] = pool.submit(_compile, launch, arch)
                records.append((Record(op, case, dtype, launch.name, arch, _describe(launch.constants()),
                                       " ".join(launch.pointer_types()), launch.grid, launch.guarded), key))
        for record, key in records:
            if key is None:
                continue
            usage = compiling[key].result()
            if isinstance(usage, str):
                record.error = usage
            else:
                record.registers, record.spill_bytes, record.shared_bytes = usage
    return [record for record, _ in records]


def table(records: list[Record]) -> str:
    """Markdown: one row per (kernel, arch, dtype, constants) with the largest registers/spills/shared over cases."""
    rows: dict[tuple, list] = {}
    for r in records:
        key = (r.kernel, r.arch, r.dtype, r.constants)
        row = rows.setdefault(key, [r.registers, r.spill_bytes, r.shared_bytes, set(), r.error])
        row[0], row[1], row[2] = max(row[0], r.registers), max(row[1], r.spill_bytes), max(row[2], r.shared_bytes)
        row[3].add(r.op)
        grid = "" if all(g <= limit for g, limit in zip(r.grid, MAX_GRID)) else f"grid {tuple(r.grid)} over the limit"
        row[4] = row[4] or r.error or grid
    lines = ["| kernel | arch | dtype | compile-time constants | registers | spill bytes | shared bytes | ops "
             "| problem |",
             "|---|---|---|---|---:|---:|---:|---|---|"]
    for (kernel, arch, dtype, constants), (regs, spills, shared, op_names, error) in sorted(rows.items()):
        error = error.splitlines()[0][:120] if error else ""
        lines.append(f"| {kernel} | sm_{arch} | {dtype} | {constants} | {regs} | {spills} | {shared} | "
                     f"{', '.join(sorted(op_names))} | {error} |")
    return "\n".join(lines) + "\n"


def write_table(records: list[Record], path: str, note: str = "") -> None:
    """The markdown table of ``records`` with a header saying how it was made."""
    import triton

    with open(path, "w") as file:
        file.write("# Triton kernels compiled for sm_80 / sm_90 (no GPU)\n\n"
                   f"`python tests/triton/compile_cases.py --out {path}` (triton {triton.__version__}): every "
                   "launch of every public op over the cases of that file, compiled with Triton's compiler; "
                   "registers per thread, local memory per thread (spills), shared memory per block, from "
                   "cuobjdump -res-usage and the compiler's metadata. One row per kernel specialisation, the "
                   "largest numbers over the cases that launch it.\n\n" + (note + "\n\n" if note else "")
                   + table(records))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON record per line instead of the table")
    parser.add_argument("--out", help="also write the markdown table to this file")
    parser.add_argument("--ops", nargs="*", help="only these ops (default: all)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        parser.error("run without TRITON_INTERPRET=1: the launches are compiled, not interpreted")
    records = compile_all(args.ops, workers=args.workers)
    if args.json:
        for r in records:
            print(json.dumps(asdict(r)))
    else:
        print(table(records), end="")
    if args.out:
        write_table(records, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
