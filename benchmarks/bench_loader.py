"""Benchmark of the input pipeline: a JPEG folder → two SimCLR views per image, fastssl's loader against the peers.

Case: one epoch over a generated folder of N JPEGs of ImageNet-like sizes (333..500 px per side, the
procedural classes of fastssl.data.synthetic, quality 90), each image → 2 SimCLR views of 224 × 224
(float32 on CPU, bfloat16 on CUDA for fastssl), batches of 64. One timed call = one whole epoch.

Content (``--content``): "photo" (default) adds synthetic's 1/f texture, so the files carry ImageNet's
~0.6 bytes per pixel and cost what photographs cost to decode; "smooth" leaves the procedural images
plain (~0.22 bytes per pixel), which decode ~1.6x faster — the ceiling rises and every provider that
does more than decode reaches a smaller share of it. The results of "smooth" go to loader_<device>_smooth.

Providers:
  * ``decode only (DALI)``: DALI's file reader + ``decoders.image`` and nothing else — the ceiling;
  * ``fastssl, DALI decode``: ``fastssl.data.Loader(decoder="dali")`` (CPU pipeline on CPU; "mixed"
    nvJPEG on CUDA) → ``fastssl.ops.augment`` on the decoded ragged batch;
  * ``fastssl, torchvision decode`` / ``fastssl, Pillow decode``: the loader's fallback decoders;
  * ``DALI ops (solo-learn way)``: one DALI pipeline doing everything with DALI's own operators
    (random_resized_crop, color_twist, hsv-free grayscale via saturation 0, gaussian_blur under a
    coin flip, crop_mirror_normalize) — note DALI's colour semantics differ from torchvision's;
  * ``torchvision DataLoader``: ``ImageFolder`` + ``transforms.v2`` SimCLR pipeline, one worker per core.

Examples:
  python benchmarks/bench_loader.py                  # CPU, 1024 images, all cores
  python benchmarks/bench_loader.py --device cuda    # 2048 images (DALI providers need DALI installed)
  python benchmarks/bench_loader.py --quick          # a few seconds (smoke run)
  python benchmarks/bench_loader.py --rounds 3       # each provider's median of 3 rounds (the committed CPU results)
  python benchmarks/bench_loader.py --content smooth # low-detail JPEGs: decoding is cheaper, the ceiling higher
Results: benchmarks/results/loader_<device>.json and .md (``_quick`` under --quick; ``--out`` elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

import common
from fastssl import recipes
from fastssl.data import Loader, available_decoders, image_folder, synthetic

VIEWS = 2
CEILING = "decode only (DALI)"
TEXTURE = {"photo": 35.0, "smooth": 0.0}  # synthetic.write_image_folder's texture per --content


def jpeg_folder(config: dict) -> str:
    """The generated JPEG folder (cached in the temp folder: generating costs seconds)."""
    if config["data"]:
        return config["data"]
    n, lo, hi, content = config["images"], config["min_size"], config["max_size"], config["content"]
    root = os.path.join(tempfile.gettempdir(), f"fastssl-bench-jpegs-{n}-{lo}-{hi}-{content}")
    if not os.path.isdir(root):
        classes = 8
        synthetic.write_image_folder(root + ".partial", classes=classes, per_class=(n + classes - 1) // classes,
                                     min_size=lo, max_size=hi, texture=TEXTURE[content], seed=0)
        os.replace(root + ".partial", root)
    return root


def epoch_runner(loader):
    """A call that runs one epoch of ``loader`` (any iterable of batches) to the end."""
    def run():
        count = 0
        for batch in loader:
            count += 1
        return None
    return run


# ----------------------------------------------------------------------------------------- fastssl


def fastssl_provider(root: str, config: dict, device: torch.device, decoder: str, label: str) -> common.Provider:
    def make():
        loader = Loader(root, batch_size=config["batch"], views=recipes.simclr(size=config["size"]), device=device,
                        decoder=decoder, num_threads=config["threads"],
                        dtype=torch.bfloat16 if device.type == "cuda" else torch.float32)
        return epoch_runner(loader)

    skip = None if available_decoders()[decoder] else f"{decoder} is not installed"
    where = "GPU" if device.type == "cuda" else "CPU"
    return common.Provider(f"fastssl, {label} decode", make=make, skip=skip,
                           note=f"{decoder} decoding on the {where}, fastssl.ops.augment (auto backend)")


# -------------------------------------------------------------------------------------------- DALI


def _dali_pipeline(root: str, config: dict, device: torch.device, augment: bool):
    from nvidia.dali import fn, pipeline_def, types

    gpu = device.type == "cuda"
    size = config["size"]
    mean = [255 * m for m in recipes.IMAGENET_MEAN]
    std = [255 * s for s in recipes.IMAGENET_STD]

    @pipeline_def(batch_size=config["batch"], num_threads=config["threads"],
                  device_id=(device.index or 0) if gpu else None, enable_conditionals=augment, seed=0)
    def pipeline():
        encoded, labels = fn.readers.file(file_root=root, random_shuffle=True, name="reader")
        images = fn.decoders.image(encoded, device="mixed" if gpu else "cpu", output_type=types.RGB)
        if not augment:
            return images, labels
        outputs = []
        for _ in range(VIEWS):
            view = fn.random_resized_crop(images, size=[size, size], random_area=[0.08, 1.0],
                                          random_aspect_ratio=[3 / 4, 4 / 3], antialias=True)
            jitter = fn.random.coin_flip(probability=0.8)
            gray = fn.random.coin_flip(probability=0.2)
            one = types.Constant(1.0)
            view = fn.color_twist(
                view, brightness=jitter * fn.random.uniform(range=[0.6, 1.4]) + (one - jitter),
                contrast=jitter * fn.random.uniform(range=[0.6, 1.4]) + (one - jitter),
                saturation=(jitter * fn.random.uniform(range=[0.6, 1.4]) + (one - jitter)) * (one - gray),
                hue=jitter * fn.random.uniform(range=[-36.0, 36.0]))  # degrees: ±0.1 turn
            if fn.random.coin_flip(probability=0.5):
                view = fn.gaussian_blur(view, window_size=23, sigma=fn.random.uniform(range=[0.1, 2.0]))
            outputs.append(fn.crop_mirror_normalize(view, mirror=fn.random.coin_flip(probability=0.5),
                                                    dtype=types.FLOAT, output_layout="CHW", mean=mean, std=std))
        return (*outputs, labels)

    pipe = pipeline()
    pipe.build()
    return pipe


def dali_provider(name: str, root: str, config: dict, device: torch.device, augment: bool, note: str):
    def make():
        from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

        pipe = _dali_pipeline(root, config, device, augment)
        keys = [f"view{v}" for v in range(VIEWS)] + ["label"] if augment else ["images", "label"]
        if augment:
            iterator = DALIGenericIterator([pipe], keys, reader_name="reader",
                                           last_batch_policy=LastBatchPolicy.PARTIAL, auto_reset=True)
            return epoch_runner(iterator)

        def decode_epoch():  # ragged decoded images cannot go through DALIGenericIterator: run the pipeline
            epoch_size = pipe.epoch_size("reader")
            for _ in range((epoch_size + config["batch"] - 1) // config["batch"]):
                pipe.run()
        return decode_epoch

    skip = None if available_decoders()["dali"] else "nvidia-dali is not installed"
    return common.Provider(name, make=make, skip=skip, note=note)


# ------------------------------------------------------------------------------------- torchvision


class TwoViews:
    def __init__(self, transform):
        self.transform = transform

    def __call__(self, image):
        return [self.transform(image) for _ in range(VIEWS)]


def torchvision_provider(root: str, config: dict, device: torch.device) -> common.Provider:
    def make():
        import torchvision
        from torchvision.transforms import v2

        size = config["size"]
        transform = v2.Compose([
            v2.PILToTensor(), v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), v2.RandomGrayscale(0.2),
            v2.RandomApply([v2.GaussianBlur(23, (0.1, 2.0))], p=0.5), v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(recipes.IMAGENET_MEAN, recipes.IMAGENET_STD)])
        dataset = torchvision.datasets.ImageFolder(root, transform=TwoViews(transform))
        workers = config["threads"]
        loader = torch.utils.data.DataLoader(dataset, batch_size=config["batch"], shuffle=True, num_workers=workers,
                                             persistent_workers=workers > 0, pin_memory=device.type == "cuda")

        def run():
            for views_, _ in loader:
                [v.to(device, non_blocking=True) for v in views_]
        return run

    return common.Provider("torchvision DataLoader", make=make,
                           note=f"ImageFolder (PIL decode) + transforms.v2, {config['threads']} worker processes")


NOTES = [
    "One call = one epoch over the folder; images/s counts source images (2 views each).",
    "× vs decode only = the share of the decode-only ceiling a provider reaches (1.00× = augmentation for free).",
    "GB/s counts the JPEG bytes read plus both views written once; % of copy against the copy bandwidth "
    "measured in the same run.",
    "DALI's colour ops differ from torchvision's (and fastssl's): color_twist applies brightness, contrast, "
    "saturation and hue in one fixed order (not a random order), hue is in degrees, contrast pivots around "
    "the middle grey (0.5) rather than the image's own grey mean; its random_resized_crop samples crops "
    "like torchvision's.",
    "Every provider runs in a fresh process with OMP_WAIT_POLICY=PASSIVE (unless the caller sets it): "
    "torch's OpenMP threads then sleep between parallel regions instead of spinning on the cores the "
    "decoder's threads need (measured on 2 cores: fastssl + DALI 789 -> 815 img/s; no effect on DALI's "
    "own pipelines, which use no OpenMP).",
]


def cases(run: common.Run):
    """The one case: an epoch over the JPEG folder (generated, or --data)."""
    config, device = run.config, run.device
    root = jpeg_folder(config)
    print(f"folder {root}", flush=True)
    source = image_folder(root)
    n = len(source)
    encoded = sum(os.path.getsize(name) for name in source.names)
    pixels = sum(_pixels(name) for name in source.names)
    out_bytes = VIEWS * n * 3 * config["size"] ** 2 * (2 if device.type == "cuda" else 4)
    files = (f"{encoded / n / 1024:.0f} KiB on average, {encoded / pixels:.2f} bytes per pixel, " +
             ("a given folder" if config["data"] else
              f"{config['min_size']}..{config['max_size']} px per side, {config['content']} content"))
    case = common.Case(f"{n} JPEGs -> {VIEWS} SimCLR views of {config['size']}", n, encoded + out_bytes,
                       f"{n} JPEGs ({files}) -> {VIEWS} views of {config['size']}², batches of {config['batch']}, "
                       f"{config['threads']} threads")
    providers = [
        dali_provider(CEILING, root, config, device, augment=False,
                      note=f"DALI {'mixed (nvJPEG)' if device.type == 'cuda' else 'CPU'} decoding, nothing else"),
        fastssl_provider(root, config, device, "dali", "DALI"),
        fastssl_provider(root, config, device, "torchvision", "torchvision"),
        fastssl_provider(root, config, device, "pil", "Pillow"),
        dali_provider("DALI ops (solo-learn way)", root, config, device, augment=True,
                      note="DALI's own operators, per-sample parameters, DALI colour semantics"),
        torchvision_provider(root, config, device),
    ]
    if config["only"]:
        providers = [p for p in providers if p.name == config["only"]]
    yield common.Workload(case, providers)


def _pixels(path: str) -> int:
    import PIL.Image

    with PIL.Image.open(path) as image:  # reads the header only
        return image.width * image.height


def provider_environment() -> dict:
    """The providers' environment: OMP_WAIT_POLICY=PASSIVE unless set (see NOTES; the Loader's docs say why)."""
    return {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}


def time_loader(workload: common.Workload, run: common.Run, copy_gbps: float) -> tuple[list, list]:
    """Each provider in a fresh process (see :func:`isolated`), or all in this one under --in-process."""
    if run.config["in_process"]:
        return common.time_in_process(workload, run, copy_gbps)
    return isolated(workload.providers, run.argv, run.config["rounds"])


def isolated(providers: list[common.Provider], argv: list[str], rounds: int = 1,
             script: str = __file__) -> tuple[list, list]:
    """Each provider in a fresh process: DALI's worker threads and the DataLoader's workers of one provider
    must not take the cores of the next (measured: they slow the providers timed after them). With several
    rounds, every provider runs once per round and its median round is kept (the others in its note).
    ``script``: the benchmark run as ``script *argv --in-process --only <provider> --out <folder>``."""
    runs = [_isolated_round(providers, argv, script) for _ in range(rounds)]
    rows, skipped = [], runs[0][1]
    for provider in providers:
        mine = sorted((r for run_rows, _ in runs for r in run_rows if r.provider == provider.name), key=lambda r: r.ms)
        if not mine:
            continue
        kept = mine[(len(mine) - 1) // 2]
        if rounds > 1:
            kept.note = (f"median of {len(mine)} rounds (images/s: "
                         f"{', '.join(f'{r.images_per_s:,.0f}' for r in mine)}); " + kept.note)
        rows.append(kept)
    return rows, skipped


def _isolated_round(providers: list[common.Provider], argv: list[str], script: str) -> tuple[list, list]:
    rows, skipped = [], []
    for provider in providers:
        with tempfile.TemporaryDirectory() as out:
            done = subprocess.run([sys.executable, script, *argv, "--in-process", "--only", provider.name,
                                   "--out", out], capture_output=True, text=True, env=provider_environment())
            results = list(Path(out).glob("*.json"))
            if done.returncode != 0 or not results:
                skipped.append(common.Skipped("", provider.name, (done.stderr.strip().splitlines() or ["failed"])[-1]))
                continue
            payload = json.loads(results[0].read_text())
        rows += [common.Row(**r) for r in payload["results"] if r["provider"] == provider.name]
        skipped += [common.Skipped(**s) for s in payload["skipped"] if s["provider"] == provider.name]
        for line in done.stdout.splitlines():
            if line.strip().startswith(provider.name):
                print(line, flush=True)
    for item in rows + skipped:
        item.case = item.case or (rows[0].case if rows else "")
    return rows, skipped


#: The flags of a benchmark whose providers :func:`isolated` runs (settings ``only``, ``in_process``, ``rounds``).
ISOLATION_FLAGS = (
    common.flag("--only", help=argparse.SUPPRESS),  # one provider by exact name (the isolated runs)
    common.flag("--in-process", action="store_true",
                help="time every provider in this process (default: each in a fresh one)"),
    common.flag("--rounds", type=common.positive_int,
                help="run the providers this many times, one after the other, and report each provider's "
                     "median round (the load of a shared machine drifts over minutes)"))

# 16 batches an epoch on the CPU: a loader's first decode and last views of an epoch do not overlap
# anything, which a 4-batch epoch would weigh 4x more than a real (thousands of batches) one does.
BENCHMARK = common.Benchmark(
    name="loader", doc=__doc__, cases=cases, time=time_loader, notes=NOTES,
    baselines=(CEILING, "DALI ops (solo-learn way)", "torchvision DataLoader"),
    defaults={kind: {"images": images, "batch": batch, "min_size": 333, "max_size": 500, "size": 224, "budget_s": 6.0,
                     "copy_mib": 256, "memory": False, "threads": os.cpu_count(), "content": "photo", "rounds": 1,
                     "in_process": False}
              for kind, images, batch in (("cpu", 1024, 64), ("cuda", 2048, 256))},
    quick={"images": 32, "batch": 16, "min_size": 60, "max_size": 100, "size": 64, "budget_s": 0.5, "copy_mib": 64},
    flags=(common.flag("--images", type=int, help="JPEGs in the generated folder"),
           common.flag("--data", help="an existing image folder to read instead of the generated one"),
           common.flag("--content", choices=sorted(TEXTURE),
                       help="the generated JPEGs: photo-like detail (ImageNet's bytes per pixel) or smooth"),
           *ISOLATION_FLAGS),
    tag=lambda config: "_".join(["quick"] * config["quick"] + [config["content"]] * (config["content"] != "photo")),
    headline="{images} images, batch {batch}")


if __name__ == "__main__":
    sys.exit(common.main(BENCHMARK))
