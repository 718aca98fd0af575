"""motion_energy and frame_difference_sum: the definitions, every backend against the float64 reference over odd
shapes, every dtype and strided clips, opcheck, torch.compile, errors raised before any kernel, no host reads."""

import pytest
import torch

from fastssl import _validation
from fastssl.backends import BackendUnavailable
from fastssl.ops.motion_energy import frame_difference_sum, motion_energy
from fastssl.reference import motion_energy as reference
from helpers import assert_close_to_reference, backend_cases, random_images, require, triton_device
from host_reads import count_host_reads

BACKENDS = backend_cases(("reference", "cpp", "triton"))
COMPARED = backend_cases(("reference", "cpp", "triton"), compared_with_reference=True)  # checked against the reference
DTYPES = [torch.uint8, torch.float32, torch.float16, torch.bfloat16]
#: (B, T, C, H, W) and a pool: single pixels, odd sides with remainders, pool = min(H, W), planes of several
#: stripes of the C++ kernels (H x W > 8192), runs of pairs that span clips when split over threads
SHAPES = [((1, 2, 1, 1, 1), 1), ((2, 3, 3, 7, 11), 1), ((2, 4, 3, 7, 11), 3), ((3, 3, 2, 5, 9), 5),
          ((1, 3, 2, 70, 130), 1), ((1, 2, 1, 70, 130), 4)]
ENERGY_ATOL = 1e-6  # float32 sums of the squares of values in [0, 1]
DIFFERENCE_ATOL = 1e-6


def _values64(clips: torch.Tensor) -> torch.Tensor:
    """The clips' values in float64 (uint8 / 255): the input of the exact reference."""
    return clips.double() / 255 if clips.dtype == torch.uint8 else clips.double()


def test_reference_follows_the_definitions():
    clips = torch.rand(2, 4, 3, 7, 10, dtype=torch.float64)
    pool = 3  # 2 x 3 cells: the last row and column are ignored
    energy = reference.motion_energy(clips, pool)
    assert energy.shape == (2, 3) and energy.dtype == torch.float64
    for b in range(2):
        for t in range(3):
            cells = [[(clips[b, t + 1, :, 3 * i:3 * i + 3, 3 * j:3 * j + 3]
                       - clips[b, t, :, 3 * i:3 * i + 3, 3 * j:3 * j + 3]).mean((-2, -1)) for j in range(3)]
                     for i in range(2)]
            expected = torch.stack([torch.stack(row) for row in cells]).square().mean()
            torch.testing.assert_close(energy[b, t], expected, atol=1e-15, rtol=0)
    encoding = reference.frame_difference_sum(clips)
    expected = sum((clips[:, t + 1] - clips[:, t]).abs() for t in range(3)) / 3
    torch.testing.assert_close(encoding, expected, atol=1e-15, rtol=0)


def test_reference_reads_uint8_as_value_over_255_and_keeps_dtypes():
    clips = torch.randint(0, 256, (2, 3, 3, 6, 6), dtype=torch.uint8)
    assert reference.motion_energy(clips, 2).dtype == torch.float32
    assert reference.frame_difference_sum(clips).dtype == torch.float32
    torch.testing.assert_close(reference.motion_energy(clips, 2),
                               reference.motion_energy(clips.double() / 255, 2).float())
    torch.testing.assert_close(reference.frame_difference_sum(clips),
                               reference.frame_difference_sum(clips.double() / 255).float())
    assert reference.frame_difference_sum(clips.half()).dtype == torch.float16


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_still_clip_has_no_motion_and_absolute_differences_see_the_order(backend, device):
    require(backend, device)
    still = torch.rand(2, 1, 3, 5, 6).expand(2, 4, 3, 5, 6).to(device)  # frame stride 0
    assert motion_energy(still, pool=2, backend=backend).abs().max().item() == 0
    assert frame_difference_sum(still, backend=backend).abs().max().item() == 0
    frames = torch.rand(1, 5, 2, 3, 4)
    shuffled = frames[:, [0, 2, 1, 3, 4]]  # same first and last frames: the signed sum cannot tell them apart
    a = frame_difference_sum(frames.to(device), backend=backend)
    b = frame_difference_sum(shuffled.to(device), backend=backend)
    torch.testing.assert_close((frames[:, -1] - frames[:, 0]), (shuffled[:, -1] - shuffled[:, 0]))
    assert (a - b).abs().max().item() > 1e-3


@pytest.mark.parametrize("backend,device", COMPARED)
@pytest.mark.parametrize("shape,pool", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_backend_matches_reference(backend, device, shape, pool, dtype):
    require(backend, device)
    clips = random_images(shape, dtype)
    energy = motion_energy(clips.to(device), pool=pool, backend=backend)
    assert energy.dtype == torch.float32 and energy.device.type == device
    assert_close_to_reference(energy, reference.motion_energy(_values64(clips), pool), ENERGY_ATOL, "energy")
    encoding = frame_difference_sum(clips.to(device), backend=backend)
    assert encoding.dtype == (torch.float32 if dtype == torch.uint8 else dtype)
    assert_close_to_reference(encoding, reference.frame_difference_sum(_values64(clips)), DIFFERENCE_ATOL, "encoding")


def _strided(kind: str, dtype) -> torch.Tensor:
    if kind == "channels_last":  # stored (B, T, H, W, C): a strided last dimension
        return random_images((2, 3, 9, 10, 3), dtype).permute(0, 1, 4, 2, 3)
    if kind == "every_other_frame_and_a_crop":  # unit column stride, other strides uneven
        return random_images((2, 7, 3, 12, 15), dtype)[:, ::2, :, 1:10, 2:13]
    return random_images((2, 4, 3, 9, 22), dtype)[..., ::2]  # every other column


@pytest.mark.parametrize("backend,device", COMPARED)
@pytest.mark.parametrize("kind", ["channels_last", "every_other_frame_and_a_crop", "every_other_column"])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32], ids=str)
def test_non_contiguous_clips(backend, device, kind, dtype):
    require(backend, device)
    clips = _strided(kind, dtype)
    assert not clips.is_contiguous()
    for pool in (1, 2):
        assert_close_to_reference(motion_energy(clips.to(device), pool=pool, backend=backend),
                                  reference.motion_energy(_values64(clips), pool), ENERGY_ATOL)
    assert_close_to_reference(frame_difference_sum(clips.to(device), backend=backend),
                              reference.frame_difference_sum(_values64(clips)), DIFFERENCE_ATOL)


@pytest.mark.parametrize("threads", [1, 3])
def test_cpp_runs_of_pairs_across_clips(threads):
    """Each thread takes a run of (clip, pair) that may start and end inside clips."""
    require("cpp", "cpu")
    clips = random_images((5, 4, 2, 6, 7), torch.uint8)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        energy = motion_energy(clips, backend="cpp")
        encoding = frame_difference_sum(clips, backend="cpp")
    finally:
        torch.set_num_threads(previous)
    assert_close_to_reference(energy, reference.motion_energy(_values64(clips)), ENERGY_ATOL)
    assert_close_to_reference(encoding, reference.frame_difference_sum(_values64(clips)), DIFFERENCE_ATOL)


def test_long_uint8_clip_is_exact_in_float32():
    """uint8 sums are integers: one rounding of the mean, as the float64 reference rounded to float32."""
    require("cpp", "cpu")
    clips = random_images((1, 300, 1, 4, 5), torch.uint8)
    expected = reference.frame_difference_sum(_values64(clips)).float()
    assert torch.equal(frame_difference_sum(clips, backend="cpp"), expected)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_opcheck(backend, device):
    require(backend, device)
    x = torch.rand(2, 3, 2, 6, 5, device=device)
    u8 = torch.randint(0, 256, (1, 2, 1, 4, 4), dtype=torch.uint8, device=device)
    for clips, pool in ((x, 2), (u8, 1)):
        torch.library.opcheck(torch.ops.fastssl.motion_energy.default, (clips, pool, backend))
        torch.library.opcheck(torch.ops.fastssl.frame_difference_sum.default, (clips, backend))


def test_compiles_in_one_graph():
    require("cpp", "cpu")
    clips = random_images((2, 3, 3, 8, 8), torch.uint8)

    def signals(x):
        return motion_energy(x, pool=2, backend="cpp"), frame_difference_sum(x, backend="cpp")

    compiled = torch.compile(signals, fullgraph=True, dynamic=False)
    for got, want in zip(compiled(clips), signals(clips)):
        torch.testing.assert_close(got, want, atol=0, rtol=0)


@pytest.mark.parametrize(
    "x,kwargs,error,match",
    [
        (torch.rand(3, 2, 4, 4), {}, ValueError, r"clips must have shape \(B, T, C, H, W\)"),
        (torch.rand(2, 1, 3, 4, 4), {}, ValueError, "clips must have T >= 2 frames"),
        (torch.rand(2, 2, 0, 4, 4), {}, ValueError, "clips is empty"),
        (torch.zeros(1, 2, 3, 4, 4, dtype=torch.int32), {}, ValueError, "clips must have dtype uint8, float32"),
        (torch.zeros(1, 2, 3, 4, 4, dtype=torch.float64), {}, ValueError, "clips must have dtype"),
        (torch.rand(1, 2, 3, 4, 6), {"pool": 0}, ValueError, "pool must be an integer >= 1"),
        (torch.rand(1, 2, 3, 4, 6), {"pool": 2.0}, ValueError, "pool must be an integer >= 1"),
        (torch.rand(1, 2, 3, 4, 6), {"pool": True}, ValueError, "pool must be an integer >= 1"),
        (torch.rand(1, 2, 3, 4, 6), {"pool": 5}, ValueError, r"pool must be <= min\(H, W\) = 4"),
        ([[1.0]], {}, TypeError, "clips must be a torch.Tensor"),
    ],
)
def test_bad_input_is_named_before_any_backend(x, kwargs, error, match):
    """backend="cuda" on CPU tensors would raise BackendUnavailable: the checks come first."""
    with pytest.raises(error, match=match):
        motion_energy(x, backend="cuda", **kwargs)
    if "pool" not in kwargs:
        with pytest.raises(error, match=match):
            frame_difference_sum(x, backend="cuda")


def test_valid_clips_reach_the_backend_choice():
    with pytest.raises(BackendUnavailable):
        motion_energy(torch.rand(1, 2, 1, 2, 2), backend="cuda")
    with pytest.raises(BackendUnavailable):
        frame_difference_sum(torch.rand(1, 2, 1, 2, 2), backend="cuda")


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_reads_nothing_back(backend, device):
    require(backend, device)
    clips = random_images((2, 3, 3, 5, 6), torch.float32, device=device)
    motion_energy(clips, backend=backend)  # first call: imports, extension loading
    with _validation.asynchronous_checks(), count_host_reads() as reads:
        motion_energy(clips, pool=2, backend=backend)
        frame_difference_sum(clips, backend=backend)
    assert reads == [], reads


@pytest.mark.triton
def test_triton_launches_inside_the_device_guard():
    require("triton", triton_device())
    from fastssl.triton._common import watch_launches

    clips = random_images((1, 3, 2, 4, 5), torch.uint8, device=triton_device())
    with watch_launches() as launches:
        motion_energy(clips, pool=2, backend="triton")
        frame_difference_sum(clips, backend="triton")
    assert [launch.name for launch in launches] == ["_motion_energy_kernel", "_frame_difference_kernel"]
    assert all(launch.guarded for launch in launches)


def test_docstring_examples():
    clips = torch.zeros(1, 3, 1, 4, 4, dtype=torch.uint8)
    clips[0, 1, :, :2, :2] = 255
    assert motion_energy(clips).tolist() == [[0.25, 0.25]]
    assert motion_energy(clips, pool=4).tolist() == [[0.0625, 0.0625]]
    one_pixel = torch.tensor([0.0, 1.0, 0.0, 0.5]).view(1, 4, 1, 1, 1)
    assert frame_difference_sum(one_pixel).flatten().tolist() == [pytest.approx(2.5 / 3)]
