"""Benchmark of the fused SimCLR augmentation: two views of B decoded images, fastssl against torchvision and kornia.

Case: B random uint8 images of an ImageNet-like size (375 x 500 by default) -> two SimCLR views at
224 x 224 (random resized crop, flip, colour jitter in random order, grayscale, Gaussian blur 23 taps,
normalise), float32 on CPU, bfloat16 on CUDA (fastssl rows; the peers produce float32).

Providers (every one draws its own random parameters inside the timed call):
  * ``torchvision v2 per-sample``: torchvision.transforms.v2.functional ops, one image and one view at
    a time (per-sample parameters, the semantics of the spec), on float images / 255;
  * ``torchvision v2 batched``: the same ops on the whole dense batch with ONE parameter set per view
    (not per-sample augmentation: every image gets the same crop, colour and blur);
  * ``kornia``: kornia.augmentation RandomResizedCrop, ColorJiggle, RandomGrayscale, RandomGaussianBlur,
    RandomHorizontalFlip (per-sample parameters) on the dense float batch;
  * ``DALI ops``: NVIDIA DALI's own operators on the already-decoded images fed through
    ``fn.external_source`` (a CPU pipeline with device_id=None on CPU, a GPU pipeline on CUDA):
    ``fn.random_resized_crop`` -> ``fn.color_twist`` -> ``fn.gaussian_blur`` ->
    ``fn.crop_mirror_normalize`` (flip + normalise + CHW + cast), per-sample random arguments from
    ``fn.random.*``. NOT torchvision's semantics (see DALI_NOTE): the comparison is of speed only;
  * ``fastssl reference``, ``fastssl cpp`` (CPU) and ``fastssl triton`` (CUDA):
    ``fastssl.ops.augment.Augment(recipes.simclr())`` on the packed ragged batch (the decoder's output
    format), parameters drawn by fastssl.random. The triton row is skipped on CPU (the interpreter is
    for tests, not timing).

Examples:
  python benchmarks/bench_augment.py                   # CPU, B = 32, all cores torch uses
  python benchmarks/bench_augment.py --threads 2       # the same cores for every provider
  python benchmarks/bench_augment.py --device cuda     # B = 256, fastssl triton (cpp is skipped there)
  python benchmarks/bench_augment.py --quick           # a few seconds (smoke run)
Results: benchmarks/results/augment_<device>.json and .md (``_quick`` under --quick; ``--out`` elsewhere).
"""

from __future__ import annotations

import sys

import torch

import common
from fastssl import recipes
from fastssl.backends import unavailable_reason
from fastssl.ops.augment import Augment, augment
from fastssl.ops.augment_params import AugmentParams
from fastssl.ragged import RaggedImages

VIEWS = 2


# ------------------------------------------------------------------------------------ torchvision


def _torchvision():
    import torchvision.transforms.v2.functional as tvF

    return tvF


def torchvision_view(tvF, x: torch.Tensor, p: AugmentParams, b: int, size: tuple[int, int]) -> torch.Tensor:
    """View b of float images x ((3, H, W) or (B, 3, H, W) in [0, 1]) with the parameters of sample b."""
    top, left, h, w = p.crop[b].tolist()
    y = tvF.resized_crop(x, top, left, h, w, list(size), antialias=True)
    if p.flip[b]:
        y = tvF.horizontal_flip(y)
    ops = (tvF.adjust_brightness, tvF.adjust_contrast, tvF.adjust_saturation, tvF.adjust_hue)
    factors = (p.brightness[b].item(), p.contrast[b].item(), p.saturation[b].item(), p.hue[b].item())
    for op in p.order[b].tolist():
        y = ops[op](y, factors[op])
    if p.grayscale[b]:
        y = tvF.rgb_to_grayscale(y, 3)
    if p.blur_sigma[b] > 0:
        y = tvF.gaussian_blur(y, [p.blur_kernel] * 2, [p.blur_sigma[b].item()] * 2)
    return tvF.normalize(y, list(p.mean), list(p.std))


def torchvision_per_sample(dense: torch.Tensor, recipe: recipes.Recipe, counter: list[int]):
    """Per image and view: fresh parameters (drawn like the recipe), torchvision functional ops."""
    tvF = _torchvision()
    sizes = torch.tensor([list(dense.shape[2:])] * dense.shape[0])

    def run():
        counter[0] += 1
        params = recipes.draw(recipe, torch.arange(dense.shape[0]), sizes, seed=counter[0])
        out = []
        for p in params:
            out.append(torch.stack([torchvision_view(tvF, dense[b].float() / 255, p, b, p.size)
                                    for b in range(dense.shape[0])]))
        return out

    return run


def torchvision_batched(dense: torch.Tensor, recipe: recipes.Recipe, counter: list[int]):
    """The whole batch through the same ops with ONE parameter set per view (sample 0's)."""
    tvF = _torchvision()
    sizes = torch.tensor([list(dense.shape[2:])])

    def run():
        counter[0] += 1
        params = recipes.draw(recipe, torch.arange(1), sizes, seed=counter[0])
        x = dense.float() / 255
        return [torchvision_view(tvF, x, p, 0, p.size) for p in params]

    return run


# ------------------------------------------------------------------------------------------ kornia


def kornia_pipeline(dense: torch.Tensor, size: int):
    """kornia.augmentation with SimCLR's settings, per-sample parameters, two views of the float batch."""
    import kornia.augmentation as K

    view = K.AugmentationSequential(
        K.RandomResizedCrop((size, size), scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)),
        K.RandomHorizontalFlip(p=0.5),
        K.ColorJiggle(0.8, 0.8, 0.8, 0.2, p=0.8),
        K.RandomGrayscale(p=0.2),
        K.RandomGaussianBlur((23, 23), (0.1, 2.0), p=0.5),
        K.Normalize(mean=torch.tensor(recipes.IMAGENET_MEAN), std=torch.tensor(recipes.IMAGENET_STD)),
    ).to(dense.device)

    def run():
        x = dense.float() / 255
        return [view(x) for _ in range(VIEWS)]

    return run


# -------------------------------------------------------------------------------------------- DALI

#: Where DALI's operators differ from torchvision's (and fastssl's) semantics. Checked against DALI's
#: documentation and source (dali/operators/image/color/color_twist.h) and, for the blur, by running
#: fn.gaussian_blur against fastssl.reference.augment.blur on the CPU (equal to 1e-7 on images larger
#: than half the kernel).
DALI_NOTE = (
    "DALI ops differ from torchvision's SimCLR semantics: fn.color_twist folds brightness, contrast, "
    "saturation and hue into ONE linear RGB transform in a fixed order (no per-sample random order) with "
    "no clamp between the ops (one saturating cast at the end); contrast pivots on the middle of the range "
    "(0.5, or 128 for uint8) instead of the image's mean gray; hue is in degrees (the recipe's 0.2 turns = "
    "72 degrees here) and is a rotation in YIQ space, an approximation of the HSV hue shift; saturation "
    "scales YIQ chroma (grayscale here = saturation 0, luma 0.299/0.587/0.114 as torchvision); the blur "
    "runs on every sample (sigma 0.1, nearly identity, for the ~50% that should not blur: DALI has no "
    "per-sample skip without pipeline conditionals); the flip is crop_mirror_normalize's mirror; the "
    "GPU pipeline writes float16 (not bfloat16); fn.random_resized_crop draws its own crops (same "
    "distribution as torchvision, not fastssl.random's ids)."
)


def dali_pipeline(dense: torch.Tensor, size: int, threads: int):
    """DALI's own ops, two SimCLR-like views per image; parameters drawn per sample by fn.random (see DALI_NOTE)."""
    from nvidia.dali import fn, pipeline_def, types

    B = dense.shape[0]
    on_gpu = dense.device.type == "cuda"
    hwc = dense.permute(0, 2, 3, 1).contiguous()
    samples = [hwc[b] if on_gpu else hwc[b].numpy() for b in range(B)]  # already decoded, HWC uint8
    mean = [255 * m for m in recipes.IMAGENET_MEAN]
    std = [255 * s for s in recipes.IMAGENET_STD]
    recipe = recipes.simclr(size=size).views[0]
    bright, contrast, saturation, hue = recipe.jitter

    def around_one(jitter, spread):
        return 1.0 + jitter * (fn.random.uniform(range=(max(0.0, 1 - spread), 1 + spread)) - 1.0)

    @pipeline_def(batch_size=B, num_threads=max(1, threads), device_id=torch.cuda.current_device() if on_gpu else None,
                  exec_async=False, exec_pipelined=False, prefetch_queue_depth=1, seed=0)
    def pipe():
        images = fn.external_source(source=lambda: samples, layout="HWC", dtype=types.UINT8,
                                    device="gpu" if on_gpu else "cpu")
        outs = []
        for _ in range(VIEWS):
            x = fn.random_resized_crop(images, size=(size, size), random_area=recipe.scale,
                                       random_aspect_ratio=recipe.ratio, antialias=True)
            jitter = fn.random.coin_flip(probability=recipe.jitter_p)
            gray = fn.random.coin_flip(probability=recipe.grayscale_p)
            x = fn.color_twist(x, brightness=around_one(jitter, bright), contrast=around_one(jitter, contrast),
                               saturation=around_one(jitter, saturation) * (1 - gray),
                               hue=jitter * fn.random.uniform(range=(-360.0 * hue, 360.0 * hue)))
            blur = fn.random.coin_flip(probability=recipe.blur_p)
            low, high = recipe.blur_sigma
            x = fn.gaussian_blur(x, window_size=recipe.blur_kernel,
                                 sigma=low + blur * (fn.random.uniform(range=(low, high)) - low))
            outs.append(fn.crop_mirror_normalize(x, mirror=fn.random.coin_flip(probability=recipe.flip_p),
                                                 mean=mean, std=std, output_layout="CHW",
                                                 dtype=types.FLOAT16 if on_gpu else types.FLOAT))
        return tuple(outs)

    pipeline = pipe()
    pipeline.build()
    return pipeline.run  # one call = both views of the batch, computed synchronously


def dali_provider(dense: torch.Tensor, size: int) -> common.Provider:
    try:
        import nvidia.dali  # noqa: F401
        skip = None
    except ImportError as error:
        skip = f"NVIDIA DALI is not installed ({error}); pip install nvidia-dali-cuda130"
    return common.Provider("DALI ops", make=lambda: dali_pipeline(dense, size, torch.get_num_threads()), skip=skip,
                           note="per-sample parameters, DALI semantics (not torchvision's: see notes)"
                                + (", float16 out" if dense.device.type == "cuda" else ""))


# ------------------------------------------------------------------------------------------ fastssl


def fastssl_provider(ragged: RaggedImages, recipe: recipes.Recipe, backend: str, dtype: torch.dtype) -> common.Provider:
    reason = unavailable_reason(backend, ragged.device)
    if reason is None and backend == "cpp" and ragged.device.type != "cpu":
        reason = "the cpp backend runs on CPU tensors"
    if reason is None and backend == "triton" and ragged.device.type == "cpu":
        reason = "Triton on CPU tensors is its interpreter: for tests, not timing (run with --device cuda)"
    transform = Augment(recipe, seed=0, dtype=dtype, backend=backend)
    ids = torch.arange(len(ragged), device=ragged.device)
    counter = [0]

    def make():
        def run():
            counter[0] += 1
            return transform(ragged, ids, epoch=counter[0])[0]

        return run

    note = "parameters drawn per call (fastssl.random)" + (", bfloat16 out" if dtype == torch.bfloat16 else "")
    if backend == "triton":
        note += ("; moves more than the strictly-needed bytes: the contrast pre-pass re-reads the crop of "
                 "every jittered sample, and blurred samples go through a float32 (B, 3, h, w) scratch "
                 "(written once, read and written by the row pass, read by the column pass: 48 B/pixel)")
    return common.Provider(f"fastssl {backend}", make=make, skip=reason, note=note)


def accuracy_note(ragged: RaggedImages, recipe: recipes.Recipe, dtype: torch.dtype) -> str:
    """fastssl's fast backend on this device (cpp on CPU, triton on CUDA) against the reference on the same
    parameters: errors on the [0, 1] scale."""
    backend = "cpp" if ragged.device.type == "cpu" else "triton"
    reason = unavailable_reason(backend, ragged.device)
    if reason is not None:
        return f"{backend} vs reference: not measured ({reason})"
    n = min(len(ragged), 4)
    sub = RaggedImages(ragged.data, ragged.offsets[:n], ragged.sizes[:n])
    worst_mean = worst_max = 0.0
    for p in recipes.draw(recipe, torch.arange(n), sub.sizes, seed=123, dtype=dtype):
        fast = augment(sub, p, backend=backend).cpu().double()
        diff = (fast - augment(sub, p, backend="reference").cpu().double()).abs()
        diff = diff * torch.tensor(p.std, dtype=torch.float64).view(1, 3, 1, 1)
        worst_mean, worst_max = max(worst_mean, diff.mean().item()), max(worst_max, diff.max().item())
    return (f"fastssl {backend} vs reference on the same parameters ({n} images, both views, {dtype}): mean "
            f"|error| {worst_mean:.2e}, max |error| {worst_max:.2e} on the [0, 1] scale (the backend tests "
            f"allow 1/255 and 3/255)")


# ---------------------------------------------------------------------------------------------- case


def cases(run: common.Run):
    """The one case: two SimCLR views of B random uint8 images, with the accuracy of the fast backend as its note."""
    device, config = run.device, run.config
    B, H, W, S = config["batch"], config["height"], config["width"], config["size"]
    generator = torch.Generator().manual_seed(0)
    dense = torch.randint(0, 256, (B, 3, H, W), dtype=torch.uint8, generator=generator).to(device)
    ragged = RaggedImages.from_dense(dense)  # what a decoder hands over: packed HWC
    recipe = recipes.simclr(size=S)
    dtype = getattr(torch, config["dtype"])
    out_bytes = VIEWS * B * 3 * S * S * dtype.itemsize
    case = common.Case(f"simclr 2 views, {H}x{W} -> {S}x{S}", B, B * 3 * H * W + out_bytes,
                       f"B = {B} random uint8 images of {H} x {W} -> {VIEWS} SimCLR views of {S} x {S} "
                       f"({config['dtype']} for fastssl, float32 for the peers); images/s counts source images, "
                       f"views/s = {VIEWS} x images/s (in the note)")
    counter = [0]
    providers = [
        common.Provider("torchvision v2 per-sample", make=lambda: torchvision_per_sample(dense, recipe, counter),
                        note="per-sample parameters, float ops"),
        common.Provider("torchvision v2 batched", make=lambda: torchvision_batched(dense, recipe, counter),
                        note="ONE parameter set per view for the whole batch (not per-sample)"),
        common.Provider("kornia", make=lambda: kornia_pipeline(dense, S), note="per-sample parameters"),
        fastssl_provider(ragged, recipe, "reference", dtype),
        fastssl_provider(ragged, recipe, "cpp", dtype),
        fastssl_provider(ragged, recipe, "triton", dtype),
        # Last: once a DALI pipeline has run, its worker threads slow the CPU providers timed after it
        # (measured here: the per-sample reference 14x slower on 2 cores).
        dali_provider(dense, S),
    ]
    yield common.Workload(case, providers, notes=[accuracy_note(ragged, recipe, dtype)])


NOTES = [
    "GB/s counts the bytes strictly needed: each source image read once and both views written once.",
    "Every provider draws fresh random parameters per call; the crops differ between providers, so the "
    "work is statistically (not exactly) the same. torchvision batched applies one parameter set to the "
    "whole batch: cheaper, and not the per-sample augmentation the others compute.",
]


BENCHMARK = common.Benchmark(
    name="augment", doc=__doc__, cases=cases, baselines=("torchvision v2 per-sample", "kornia"),
    notes=NOTES + [DALI_NOTE], note_row=lambda row: f"{VIEWS * row.images_per_s:,.0f} views/s; ",
    defaults={"cpu": {"batch": 32, "height": 375, "width": 500, "size": 224, "dtype": "float32", "copy_mib": 256,
                      "budget_s": 4.0},
              "cuda": {"batch": 256, "height": 375, "width": 500, "size": 224, "dtype": "bfloat16", "copy_mib": 1024,
                       "budget_s": 2.0}},
    quick={"batch": 4, "height": 120, "width": 160, "size": 64, "copy_mib": 32, "budget_s": 0.3, "memory": False},
    flags=(common.flag("--height", type=int, help="source image height"),
           common.flag("--width", type=int, help="source image width"),
           common.flag("--size", type=int, help="output side")),
    headline="batch {batch}, {height}x{width} -> {size}")


if __name__ == "__main__":
    sys.exit(common.main(BENCHMARK))
