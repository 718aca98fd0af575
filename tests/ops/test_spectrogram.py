"""log_spectrogram and log_mel_spectrogram: the reference against librosa (the oracle), every backend against the
float64 reference over ragged, shifted, clipped, strided and half-precision audio, gradients (gradcheck, finite
differences, zero where clamped), opcheck, torch.compile, and every input error raised before any backend.

Error model of the float32 backends: a float32 FFT's error is absolute on the scale of its frame, |dP[k]| <=
POWER_RTOL * max_k P[k]; through the filters (dM[m] <= POWER_RTOL * max_k P[k] * sum_k filters[m, k]) and the log
(d log M = dM / M) that gives each value its own budget, plus LOG_ATOL for the rounding of the log itself.
"""

import math

import pytest
import torch

from fastssl import _validation
from fastssl.backends import BackendUnavailable, triton_interpreter
from fastssl.ops.spectrogram import SPECTROGRAM, log_mel_spectrogram, log_spectrogram, mel_filters
from fastssl.reference import spectrogram as reference
from helpers import backend_cases, require
from host_reads import count_host_reads

BACKENDS = backend_cases(("reference", "cpp", "triton"))
COMPARED = backend_cases(("reference", "cpp", "triton"), compared_with_reference=True)
POWER_RTOL = 1e-5
LOG_ATOL = 1e-5
LIBROSA_LOG_ATOL = 1e-9  # the float64 reference against librosa's float64 numpy
LOG_FLOOR = 1e-10


def _require(backend: str, device: str) -> None:
    require(backend, device)
    reason = SPECTROGRAM.unavailable_reason(backend, torch.device(device))
    if reason:
        pytest.skip(reason)


class Setting:
    """One configuration of the op: the frame geometry, the filters (None: log spectrogram) and the per-window
    arguments, with the float64 reference of any audio under it."""

    def __init__(self, name, n_fft, win_length, hop_length, frames=None, n_mels=None, sample_rate=8000,
                 lengths=None, shift=None, gain=None):
        self.name, self.n_fft, self.win_length, self.hop_length = name, n_fft, win_length, hop_length
        self.frames, self.n_mels, self.sample_rate = frames, n_mels, sample_rate
        self.lengths, self.shift, self.gain = lengths, shift, gain

    def __repr__(self):
        return self.name

    def kwargs(self, audio: torch.Tensor) -> dict:
        device = audio.device
        per_window = {name: None if value is None else torch.tensor(value).to(device)
                      for name, value in (("lengths", self.lengths), ("shift", self.shift), ("gain", self.gain))}
        kwargs = dict(n_fft=self.n_fft, win_length=self.win_length, hop_length=self.hop_length, frames=self.frames,
                      **per_window)
        if self.n_mels is not None:
            kwargs.update(n_mels=self.n_mels, sample_rate=self.sample_rate)
        return kwargs

    def run(self, audio: torch.Tensor, backend: str, **extra) -> torch.Tensor:
        op = log_spectrogram if self.n_mels is None else log_mel_spectrogram
        return op(audio, backend=backend, **{**self.kwargs(audio), **extra})

    def inputs64(self, audio: torch.Tensor, log_floor: float = LOG_FLOOR) -> tuple:
        """The kernel-level arguments of the float64 reference for ``audio`` (its values read exactly)."""
        B, S = audio.shape
        frames = self.frames or 1 + (S - self.win_length) // self.hop_length
        lengths = torch.tensor(self.lengths) if self.lengths is not None else torch.full((B,), S)
        shift = torch.tensor(self.shift) if self.shift is not None else torch.zeros(B, dtype=torch.int64)
        gain = torch.tensor(self.gain, dtype=torch.float64) if self.gain is not None else torch.ones(B).double()
        filters = None if self.n_mels is None else mel_filters(self.sample_rate, self.n_fft, self.n_mels,
                                                               dtype=torch.float64)
        return (audio.detach().cpu().double(), lengths, shift, gain,
                reference.hann_window(self.win_length, torch.float64), filters, self.n_fft, self.hop_length, frames,
                log_floor)

    def expected(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The float64 reference's output and the absolute error of each value allowed by the error model."""
        args = self.inputs64(audio)
        audio64, lengths, shift, gain, window, filters, n_fft, hop, frames, log_floor = args
        _, power = reference.power_spectrum(audio64, lengths, shift, gain, window, n_fft, hop, frames)
        peak = power.amax(-1, keepdim=True)  # (B, T, 1)
        scale = peak if filters is None else peak * filters.sum(-1)  # (B, T, 1) or (B, T, M)
        expected = reference.spectrogram(*args)
        budget = LOG_ATOL + POWER_RTOL * scale.transpose(1, 2) / expected.exp().clamp_min(log_floor)
        return expected, budget


def assert_within_budget(actual: torch.Tensor, expected: torch.Tensor, budget: torch.Tensor, name: str = "output"):
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert actual.dtype == torch.float32, f"{name}: dtype {actual.dtype}"
    error = (actual.detach().cpu().double() - expected).abs()
    ratio = (error / budget).nan_to_num(nan=math.inf)
    worst = int(ratio.argmax())
    assert ratio.max() <= 1, (f"{name}: error {error.flatten()[worst]:.3g} > budget {budget.flatten()[worst]:.3g} "
                              f"at flat index {worst} (expected {expected.flatten()[worst]:.6g})")


SETTINGS = [
    Setting("one frame", n_fft=16, win_length=16, hop_length=4),
    Setting("ragged mel", n_fft=32, win_length=30, hop_length=7, n_mels=8, lengths=[101, 57, 0],
            shift=[0, -9, 13], gain=[1.0, 0.5, -2.0]),
    Setting("frames past the end", n_fft=20, win_length=17, hop_length=5, frames=12, lengths=[33, 1, 20],
            shift=[40, -50, -3], gain=[0.25, 3.0, 1.0]),
    Setting("odd n_fft mel", n_fft=15, win_length=15, hop_length=6, n_mels=3, sample_rate=16000,
            shift=[5, -5, 1]),
    Setting("L3 geometry mel", n_fft=512, win_length=480, hop_length=240, n_mels=64, sample_rate=48000,
            lengths=[1001, 700, 313], shift=[0, 17, -241]),
]
SIZES = {"one frame": 16, "ragged mel": 101, "frames past the end": 33, "odd n_fft mel": 64, "L3 geometry mel": 1001}


def _audio(setting: Setting, dtype=torch.float32) -> torch.Tensor:
    return (0.5 * torch.randn(3, SIZES[setting.name], dtype=torch.float64)).to(dtype)


# ------------------------------------------------------------------------------------------- the oracle


@pytest.mark.parametrize("sample_rate,n_fft,n_mels,f_min,f_max", [
    (48000, 512, 64, 0.0, None), (16000, 400, 40, 20.0, 7600.0), (22050, 2048, 128, 0.0, None),
    (8000, 255, 10, 300.0, 3000.0)])
def test_mel_filters_match_librosa(sample_rate, n_fft, n_mels, f_min, f_max):
    librosa = pytest.importorskip("librosa")
    expected = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max,
                                   dtype="float64")
    filters = mel_filters(sample_rate, n_fft, n_mels, f_min, f_max, dtype=torch.float64)
    torch.testing.assert_close(filters, torch.from_numpy(expected), atol=1e-15, rtol=1e-12)
    single = mel_filters(sample_rate, n_fft, n_mels, f_min, f_max)
    assert single.dtype == torch.float32 and single.shape == (n_mels, n_fft // 2 + 1)


def test_hann_window_is_torchs_periodic_window():
    for n in (1, 4, 15, 480):
        torch.testing.assert_close(reference.hann_window(n, torch.float64),
                                   torch.hann_window(n, periodic=True, dtype=torch.float64), atol=1e-15, rtol=0)


def _librosa_padded(audio: torch.Tensor, n_fft: int, win_length: int):
    """The audio with (n_fft - W) // 2 zeros prepended, and the rest of n_fft - W appended (the same frame count)."""
    import numpy as np

    left = (n_fft - win_length) // 2
    return np.pad(audio.double().numpy(), ((0, 0), (left, n_fft - win_length - left)))


@pytest.mark.parametrize("sample_rate,n_fft,win_length,hop_length,n_mels", [
    (48000, 512, 480, 240, 64), (16000, 400, 400, 160, 40), (16000, 512, 400, 160, 80)])
def test_reference_matches_librosa(sample_rate, n_fft, win_length, hop_length, n_mels):
    librosa = pytest.importorskip("librosa")
    audio = 0.3 * torch.randn(2, sample_rate // 10, dtype=torch.float64)
    y = _librosa_padded(audio, n_fft, win_length)
    setting = Setting("", n_fft, win_length, hop_length, n_mels=n_mels, sample_rate=sample_rate)
    mel = librosa.feature.melspectrogram(y=y, sr=sample_rate, n_fft=n_fft, hop_length=hop_length,
                                         win_length=win_length, window="hann", center=False, power=2.0,
                                         n_mels=n_mels, dtype="float64")
    expected = torch.from_numpy(mel).clamp_min(LOG_FLOOR).log()
    torch.testing.assert_close(reference.spectrogram(*setting.inputs64(audio)), expected, atol=LIBROSA_LOG_ATOL,
                               rtol=0)
    stft = librosa.stft(y, n_fft=n_fft, hop_length=hop_length, win_length=win_length, window="hann", center=False)
    setting = Setting("", n_fft, win_length, hop_length)
    expected = torch.from_numpy(abs(stft) ** 2).clamp_min(LOG_FLOOR).log()
    torch.testing.assert_close(reference.spectrogram(*setting.inputs64(audio)), expected, atol=LIBROSA_LOG_ATOL,
                               rtol=0)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_log_mel_spectrogram_matches_librosa(backend, device):
    """The public op at its defaults (48 kHz, 10 ms windows, 64 mel bands) on 30 ms of a tone in noise."""
    librosa = pytest.importorskip("librosa")
    _require(backend, device)
    t = torch.arange(1440, dtype=torch.float64) / 48000
    audio = (0.3 * torch.randn(1440, dtype=torch.float64) + torch.sin(2 * math.pi * 1234.5 * t))[None]
    out = log_mel_spectrogram(audio.float().to(device), backend=backend)
    assert out.shape == (1, 64, 5) and out.dtype == torch.float32
    mel = librosa.feature.melspectrogram(y=_librosa_padded(audio.float(), 512, 480), sr=48000, n_fft=512,
                                         hop_length=240, win_length=480, window="hann", center=False, n_mels=64,
                                         dtype="float64")
    expected, budget = Setting("", 512, 480, 240, n_mels=64, sample_rate=48000).expected(audio.float())
    torch.testing.assert_close(torch.from_numpy(mel).clamp_min(LOG_FLOOR).log(), expected, atol=LIBROSA_LOG_ATOL,
                               rtol=0)
    assert_within_budget(out, expected, budget)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_one_second_at_48khz_is_257_by_199(backend, device):
    librosa = pytest.importorskip("librosa")
    _require(backend, device)
    if backend == "triton" and triton_interpreter():
        pytest.skip("199 frames of 512 bins take minutes under Triton's interpreter (the other tests cover it)")
    audio = 0.3 * torch.randn(2, 48000)
    out = log_spectrogram(audio.to(device), backend=backend)
    assert out.shape == (2, 257, 199) and out.dtype == torch.float32
    stft = librosa.stft(_librosa_padded(audio, 512, 480), n_fft=512, hop_length=240, win_length=480, window="hann",
                        center=False)
    expected, budget = Setting("", 512, 480, 240).expected(audio)
    torch.testing.assert_close(torch.from_numpy(abs(stft) ** 2).clamp_min(LOG_FLOOR).log(), expected,
                               atol=LIBROSA_LOG_ATOL, rtol=0)
    assert_within_budget(out, expected, budget)


# ------------------------------------------------------------------------------ backends against the reference


@pytest.mark.parametrize("backend,device", COMPARED)
@pytest.mark.parametrize("setting", SETTINGS, ids=repr)
def test_backend_matches_reference(backend, device, setting):
    _require(backend, device)
    if backend == "triton" and triton_interpreter() and setting.n_fft == 512:
        pytest.skip("seconds per window under Triton's interpreter: test_log_mel_spectrogram_matches_librosa has it")
    audio = _audio(setting)
    expected, budget = setting.expected(audio)
    assert_within_budget(setting.run(audio.to(device), backend), expected, budget)


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64], ids=str)
def test_other_dtypes_are_read_as_float32(backend, device, dtype):
    _require(backend, device)
    setting = SETTINGS[1]
    audio = _audio(setting, dtype)
    expected, budget = setting.expected(audio.float())  # the values the op reads
    assert_within_budget(setting.run(audio.to(device), backend), expected, budget)


def test_reference_in_float32_is_within_the_budget_of_float64():
    setting = SETTINGS[2]
    audio = _audio(setting)
    expected, budget = setting.expected(audio)
    float32_reference = reference.spectrogram(*[a.float() if isinstance(a, torch.Tensor) and a.is_floating_point()
                                                else a for a in setting.inputs64(audio)])
    assert_within_budget(float32_reference, expected, budget, "reference in float32")


@pytest.mark.parametrize("backend,device", COMPARED)
@pytest.mark.parametrize("kind", ["every_other_sample", "transposed", "offset_rows"])
def test_non_contiguous_audio(backend, device, kind):
    _require(backend, device)
    setting = SETTINGS[1]
    S = SIZES[setting.name]
    if kind == "every_other_sample":
        audio = torch.randn(3, 2 * S)[:, ::2]
    elif kind == "transposed":
        audio = torch.randn(S, 3).t()
    else:
        audio = torch.randn(5, S + 7)[1:4, 3:S + 3]
    assert not audio.is_contiguous()
    expected, budget = setting.expected(audio)
    assert_within_budget(setting.run(audio.to(device), backend), expected, budget)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_silence_is_log_floor_with_zero_gradients(backend, device):
    _require(backend, device)
    audio = torch.zeros(2, 50, device=device, requires_grad=True)
    gain = torch.tensor([1.0, 2.0], device=device, requires_grad=True)
    out = log_mel_spectrogram(audio, sample_rate=8000, n_fft=16, win_length=12, hop_length=6, n_mels=4, gain=gain,
                              log_floor=1e-6, backend=backend)
    assert torch.equal(out.cpu(), torch.full_like(out.cpu(), math.log(1e-6)))
    out.sum().backward()
    assert torch.equal(audio.grad, torch.zeros_like(audio)) and torch.equal(gain.grad, torch.zeros_like(gain))


@pytest.mark.parametrize("backend,device", COMPARED)
def test_clipped_audio(backend, device):
    """Square waves at +-1, samples beyond it (3, -7) and a large gain: no saturation anywhere."""
    _require(backend, device)
    setting = Setting("clipped", n_fft=32, win_length=24, hop_length=8, n_mels=6, gain=[1.0, 1.0, 40.0])
    square = torch.sign(torch.sin(torch.arange(100.0) * 0.7))
    audio = torch.stack([square, square.clamp(-1, 1) * torch.tensor([3.0, -7.0]).repeat(50), square])
    expected, budget = setting.expected(audio)
    assert_within_budget(setting.run(audio.to(device), backend), expected, budget)


# ------------------------------------------------------------------------------------------------ gradients


def _loss64(setting: Setting, audio64: torch.Tensor, gain64: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    args = list(setting.inputs64(audio64))
    args[0], args[3] = audio64, gain64
    return (reference.spectrogram(*args) * weights).sum()


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("setting", [SETTINGS[1], SETTINGS[2]], ids=repr)
def test_gradients_match_autograd_through_the_float64_reference(backend, device, setting):
    _require(backend, device)
    audio = _audio(setting)
    gain = torch.tensor(setting.gain)
    weights = torch.rand_like(setting.expected(audio)[0])
    audio_d, gain_d = audio.to(device, copy=True).requires_grad_(), gain.to(device, copy=True).requires_grad_()
    out = setting.run(audio_d, backend, gain=gain_d)
    (out * weights.float().to(device)).sum().backward()
    audio64, gain64 = audio.double().requires_grad_(), gain.double().requires_grad_()
    grad_audio, grad_gain = torch.autograd.grad(_loss64(setting, audio64, gain64, weights), (audio64, gain64))
    for got, want, name in ((audio_d.grad, grad_audio, "audio"), (gain_d.grad, grad_gain, "gain")):
        relative = (got.cpu().double() - want).norm() / want.norm()
        assert relative < 1e-4, f"grad {name}: relative error {relative:.3g}"


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_gradient_matches_finite_differences(backend, device):
    """The directional derivative of the op's loss against central differences of the float64 reference."""
    _require(backend, device)
    setting = SETTINGS[1]
    audio, direction = _audio(setting), torch.randn(3, SIZES[setting.name], dtype=torch.float64)
    gain = torch.tensor(setting.gain, dtype=torch.float64)
    weights = torch.rand_like(setting.expected(audio)[0])
    audio_d = audio.to(device, copy=True).requires_grad_()
    (setting.run(audio_d, backend) * weights.float().to(device)).sum().backward()
    step = 1e-6
    plus = _loss64(setting, audio.double() + step * direction, gain, weights)
    minus = _loss64(setting, audio.double() - step * direction, gain, weights)
    numeric = float((plus - minus) / (2 * step))
    analytic = float((audio_d.grad.cpu().double() * direction).sum())
    assert analytic == pytest.approx(numeric, rel=1e-4)


@pytest.mark.parametrize("n_fft,win_length,hop_length,n_mels", [(16, 12, 5, None), (15, 11, 4, None), (16, 16, 3, 4)])
def test_gradcheck(n_fft, win_length, hop_length, n_mels):
    """The op's backward (torch ops, shared by every backend) in float64 through its reference backend."""
    audio = torch.randn(2, 37, dtype=torch.float64, requires_grad=True)
    gain = torch.tensor([0.7, -1.3], dtype=torch.float64, requires_grad=True)
    lengths, shift = torch.tensor([37, 20]), torch.tensor([-5, 3])
    window = reference.hann_window(win_length, torch.float64)
    filters = None if n_mels is None else mel_filters(8000, n_fft, n_mels, dtype=torch.float64)

    def op(audio, gain):
        return torch.ops.fastssl.spectrogram(audio, lengths, shift, gain, window, filters, n_fft, hop_length, 7,
                                             LOG_FLOOR, "reference")

    assert torch.autograd.gradcheck(op, (audio, gain))


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_clamped_values_have_no_gradient(backend, device):
    _require(backend, device)
    audio = torch.randn(2, 40, device=device, requires_grad=True)
    out = log_spectrogram(audio, n_fft=8, win_length=8, hop_length=4, lengths=torch.tensor([40, 0]),
                          log_floor=1e6, backend=backend)  # a floor above every power: everything clamped
    assert torch.equal(out.cpu(), torch.full_like(out.cpu(), math.log(1e6)))
    out.sum().backward()
    assert torch.equal(audio.grad, torch.zeros_like(audio))


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_opcheck(backend, device):
    _require(backend, device)
    audio = torch.randn(2, 29, device=device, requires_grad=True)
    gain = torch.tensor([1.5, -0.5], device=device, requires_grad=True)
    lengths, shift = torch.tensor([29, 11], device=device), torch.tensor([-3, 4], device=device)
    window = reference.hann_window(10).to(device)
    for filters in (None, mel_filters(8000, 16, 3).to(device)):
        torch.library.opcheck(torch.ops.fastssl.spectrogram.default,
                              (audio, lengths, shift, gain, window, filters, 16, 4, 5, LOG_FLOOR, backend))


def test_compiles_in_one_graph():
    audio = torch.randn(2, 300)

    def features(x):
        return log_mel_spectrogram(x, sample_rate=8000, n_fft=64, win_length=60, hop_length=30, n_mels=8,
                                   backend="reference")

    compiled = torch.compile(features, fullgraph=True, dynamic=False, backend="eager")
    torch.testing.assert_close(compiled(audio), features(audio), atol=0, rtol=0)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_reads_nothing_back(backend, device):
    _require(backend, device)
    audio = torch.randn(2, 100, device=device)
    per_window = {"lengths": torch.tensor([100, 60], device=device), "shift": torch.tensor([3, -2], device=device),
                  "gain": torch.tensor([1.0, 0.5], device=device)}
    log_mel_spectrogram(audio, sample_rate=8000, n_fft=32, win_length=30, hop_length=10, n_mels=4, backend=backend)
    with _validation.asynchronous_checks(), count_host_reads() as reads:
        log_mel_spectrogram(audio, sample_rate=8000, n_fft=32, win_length=30, hop_length=10, n_mels=4,
                            backend=backend, **per_window)
        log_spectrogram(audio, n_fft=32, win_length=30, hop_length=10, backend=backend, **per_window)
    assert reads == [], reads


# ----------------------------------------------------------------------------------------------------- errors


A = torch.zeros(2, 480)


@pytest.mark.parametrize("audio,kwargs,error,match", [
    ([[0.0]], {}, TypeError, "audio must be a torch.Tensor"),
    (torch.zeros(480), {}, ValueError, r"audio must have shape \(B, S\)"),
    (torch.zeros(2, 0), {}, ValueError, "audio is empty"),
    (torch.zeros(2, 480, dtype=torch.int16), {}, ValueError, "audio must have dtype float32, float64"),
    (A, {"n_fft": 0}, ValueError, "n_fft must be an integer >= 1"),
    (A, {"win_length": 2.0}, ValueError, "win_length must be an integer >= 1"),
    (A, {"n_fft": 16, "win_length": 17}, ValueError, "win_length must be <= n_fft = 16"),
    (A, {"hop_length": 0}, ValueError, "hop_length must be an integer >= 1"),
    (A, {"frames": 0}, ValueError, "frames must be an integer >= 1"),
    (A, {"frames": True}, ValueError, "frames must be an integer >= 1"),
    (torch.zeros(2, 479), {}, ValueError, "audio has 479 samples, fewer than win_length = 480"),
    (A, {"log_floor": 0.0}, ValueError, r"log_floor must be a number in \(0.0, inf\]"),
    (A, {"log_floor": math.inf}, ValueError, "log_floor must be finite"),
    (A, {"lengths": torch.tensor([480])}, ValueError, r"lengths must have shape \(2,\)"),
    (A, {"lengths": torch.tensor([480.0, 5.0])}, TypeError, "lengths must be an integer tensor"),
    (A, {"lengths": torch.tensor([481, 5])}, ValueError, r"lengths out of range: every value must lie in \[0, 480\]"),
    (A, {"lengths": torch.tensor([-1, 5])}, ValueError, r"lengths out of range"),
    (A, {"shift": torch.zeros(2, 1, dtype=torch.int64)}, ValueError, r"shift must have shape \(2,\)"),
    (A, {"shift": torch.zeros(2)}, TypeError, "shift must be an integer tensor"),
    (A, {"gain": 2.0}, TypeError, "gain must be a torch.Tensor"),
    (A, {"gain": torch.ones(3)}, ValueError, r"gain must have shape \(2,\)"),
    (A, {"gain": torch.ones(2, dtype=torch.int64)}, ValueError, "gain must be a float tensor"),
    (A, {"gain": torch.tensor([1.0, math.nan])}, ValueError, "gain contains 1 NaN or infinite"),
])
def test_bad_input_is_named_before_any_backend(audio, kwargs, error, match):
    """backend="cuda" on CPU tensors would raise BackendUnavailable: the checks come first."""
    with pytest.raises(error, match=match):
        log_spectrogram(audio, backend="cuda", **kwargs)
    with pytest.raises(error, match=match):
        log_mel_spectrogram(audio, backend="cuda", sample_rate=8000, **kwargs)


@pytest.mark.parametrize("kwargs,match", [
    ({"sample_rate": 0}, r"sample_rate must be a number in \(0.0, inf\]"),
    ({"n_mels": 0}, "n_mels must be an integer >= 1"),
    ({"f_max": 4000.5}, r"f_max must be a number in \(0.0, 4000.0\]"),
    ({"f_max": 0.0}, r"f_max must be a number in \(0.0, 4000.0\]"),
    ({"f_min": -1.0}, r"f_min must be a number in \[0.0, 4000.0\]"),
    ({"f_min": 500.0, "f_max": 400.0}, r"f_min must be a number in \[0.0, 400.0\]"),
    ({"f_min": 400.0, "f_max": 400.0}, "f_min must be < f_max = 400.0"),
])
def test_bad_mel_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        log_mel_spectrogram(A, backend="cuda", frames=1, **{"sample_rate": 8000, **kwargs})


def test_valid_input_reaches_the_backend_choice():
    with pytest.raises(BackendUnavailable):
        log_spectrogram(torch.zeros(1, 480), backend="cuda")
