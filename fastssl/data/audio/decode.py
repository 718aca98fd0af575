"""Decoding windows of audio — mono, at one sample rate, sample-aligned with the track — and only what they need.

:meth:`AudioDecoder.decode_batch` returns, per item, the window ``[start, start + seconds)`` (container seconds,
the clock of :attr:`~fastssl.data.audio.index.AudioInfo.start` and of the video frames' timestamps) of that
audio as ``round(seconds * rate)`` float32 samples in [-1, 1]: the mean of the channels, resampled to ``rate``.
Sample j of a window is the track's sample ``k0 + j`` at ``rate``, where ``k0 = round((start - info.start) *
rate)``: windows lie on one grid anchored at the track's first sample, so a window is a slice of the whole track
decoded and resampled in one go, to within the codec's and resampler's rounding (never a fraction of a sample
off). Samples of a window before the track's start or after its end are 0.

With PyAV (every file, and the only way for a video's own track), per window:

1. seek (``container.seek`` on the audio stream, backward) to :data:`PREROLL` seconds before the window,
   so that the decoder's state has converged when the window starts (Opus needs ~0.3 s for 1e-4; AAC one
   frame; PCM and FLAC nothing);
2. decode until the end of the window, placing each frame's samples by its timestamp. Where the stream's time
   base is coarser than a sample (Matroska / WebM: milliseconds), a frame's timestamp is rounded; frames of
   a constant size then lie on the grid of the track's first frame size plus multiples of that size, so the
   first frame after the seek is snapped onto it (the first two frames are decoded once per file to learn it).
   The following frames are placed one after the other (a frame whose timestamp says otherwise, a gap in
   the stream, is placed by its timestamp). Opus's pre-skip and AAC's priming samples are dropped by
   FFmpeg (also after a seek, the frame's timestamp moved with them);
3. take the channels' mean and resample with PyAV's ``av.AudioResampler`` (FFmpeg's swresample, format flt,
   layout mono), from a native sample on the grid shared by both rates (so the output samples fall on the
   window's grid exactly) and with :data:`RESAMPLE_MARGIN` samples of context on either side.

With DALI (``decoder="dali"``, or "auto" where DALI is installed): audio files beside the videos (WAV, FLAC,
OGG, also as tar members; :attr:`~fastssl.data.audio.index.AudioInfo.sidecar`) up to :data:`DALI_LONGEST`
seconds ("auto": :data:`DALI_AUTO_LONGEST`, where DALI is the faster) are decoded whole by ``fn.decoders.audio``
on the CPU (``downmix=True``: the channels' mean; ``sample_rate=rate``: DALI's windowed-sinc resampler), and the
window cut from that. Without resampling the windows equal PyAV's; DALI's resampler is not swresample: resampled
windows agree with PyAV's to ~2e-4 inside the track and ~0.03 within a few samples of its ends (the two filters
treat the ends apart).
A video's own track always goes through PyAV (DALI does not demux video containers), as do the files DALI fails
on. :attr:`AudioDecoder.decoder_name` says which decodes the audio files; :attr:`AudioDecoder.decoded` counts the
windows each decoded.

A window that cannot be decoded gives a one-line reason string, not an exception; the other items of the batch
are not affected. Items decode in parallel threads, one PyAV container each (PyAV releases the GIL).

Example (the window grid; decoding needs a file):
    >>> first_sample(start=1.00001, track_start=0.0, rate=16000)  # a window's first sample on the track's grid
    16000
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..dali_runs import ReusedPipeline, bisect_failures, read_checked
from ..video.index import _one_line, open_video, read_video
from .index import AudioInfo, frame_samples

#: The decoders by name; "auto" takes DALI (for audio files beside the videos) where it is installed, else PyAV.
AUDIO_DECODERS = ("auto", "dali", "pyav")
#: Seconds decoded before a window after a seek, by codec, so that the decoder's state has converged (Opus: the
#: error is ~1e-2 after 0.08 s, ~1e-4 after 0.25 s); other codecs take the default. Frames of PCM and FLAC stand
#: alone.
PREROLL = {"opus": 0.3, "flac": 0.0}
DEFAULT_PREROLL = 0.1
#: Samples at the lower of the two rates decoded beyond each end of a window for the resampler's filter
#: (swresample's is 32 taps long).
RESAMPLE_MARGIN = 64
#: Audio files longer than this (seconds) go to PyAV with ``decoder="dali"``: DALI decodes whole files, into memory.
DALI_LONGEST = 60.0
#: ... and with ``decoder="auto"``: DALI decodes the whole file for each window, PyAV seeks. 1 s windows at 16 kHz,
#: batches of 32 on 2 cores, ms per window DALI / PyAV: 3 s files WAV 1.7 / 3.0, FLAC 2.2 / 2.5, OGG 4.3 / 4.5;
#: 10 s files WAV 5.9 / 3.5, FLAC 8.1 / 3.1, OGG 14.4 / 5.1.
DALI_AUTO_LONGEST = 4.0
#: The bytes FFmpeg reads to learn a file's streams before decoding a window (see :func:`_open`).
PROBE_BYTES = 1 << 15
#: Windows longer than this many samples are refused (a plan's bug, not a bad file).
MAX_WINDOW_SAMPLES = 1 << 26


class AudioDecodeError(ValueError):
    """Audio that cannot be decoded as its index entry says."""


def first_sample(start: float, track_start: float, rate: int) -> int:
    """k0: a window from ``start`` (container seconds) is the samples k0, k0 + 1, ... at ``rate`` of the track whose
    first sample is at ``track_start`` (sample 0); see the module docstring."""
    return round((start - track_start) * rate)


class AudioDecoder:
    """Decodes windows of indexed audio, mono at ``rate`` Hz (see the module docstring); needs PyAV.

    Args:
        rate: the sample rate of the windows (Hz).
        num_threads: windows decoded at once (PyAV: one thread each; DALI: its threads).
        decoder: "auto" | "dali" | "pyav" (:data:`AUDIO_DECODERS`): who decodes the audio files beside the
            videos ("auto": DALI where installed, for the files up to :data:`DALI_AUTO_LONGEST` seconds); "dali"
            fails here when DALI is not installed.
    """

    def __init__(self, rate: int = 48000, *, num_threads: int = 2, decoder: str = "auto"):
        import av  # noqa: F401  (fails here, with PyAV's own message, when it is missing)

        if decoder not in AUDIO_DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(AUDIO_DECODERS)}, got {decoder!r}")
        if not isinstance(rate, int) or rate <= 0:
            raise ValueError(f"rate must be a positive int (Hz), got {rate!r}")
        longest = DALI_LONGEST
        if decoder == "auto":
            import importlib.util

            installed = importlib.util.find_spec("nvidia") and importlib.util.find_spec("nvidia.dali")
            decoder, longest = ("dali" if installed else "pyav"), DALI_AUTO_LONGEST
        self.rate = rate
        self.dali = _DaliAudio(rate, num_threads, longest) if decoder == "dali" else None
        #: what decodes the audio files beside the videos ("dali" | "pyav"); a video's own track: always PyAV
        self.decoder_name = decoder
        #: windows decoded so far by each decoder (failures included), {"pyav": n, "dali": m}
        self.decoded = {"pyav": 0, "dali": 0}
        self.pool = ThreadPoolExecutor(max(1, num_threads), thread_name_prefix="fastssl-audio")

    def decode_batch(self, infos: list[AudioInfo], starts: list[float], seconds: float) -> list[np.ndarray | str]:
        """Per item b: the window ``[starts[b], starts[b] + seconds)`` of ``infos[b]``'s audio as
        ``(round(seconds * rate),)`` float32 in [-1, 1], or a one-line reason (str) when it cannot be decoded."""
        if len(starts) != len(infos):
            raise ValueError(f"starts must have one start per item ({len(infos)}), got {len(starts)}")
        if not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"seconds must be a positive number, got {seconds!r}")
        count = round(seconds * self.rate)
        if count > MAX_WINDOW_SAMPLES:
            raise ValueError(f"a window of {seconds} s at {self.rate} Hz is {count} samples (at most "
                             f"{MAX_WINDOW_SAMPLES})")
        starts = [float(s) for s in starts]
        results: list = [None] * len(infos)
        to_dali = [b for b, info in enumerate(infos) if self.dali is not None and self.dali.takes(info)]
        chosen = set(to_dali)
        to_pyav = [b for b in range(len(infos)) if b not in chosen]
        pending = {b: self.pool.submit(self._pyav, infos[b], starts[b], count) for b in to_pyav}
        if to_dali:
            done, failed = self.dali.windows([infos[b] for b in to_dali], [starts[b] for b in to_dali], count)
            for b, window in zip(to_dali, done):
                results[b] = window
            for k, why in failed:  # handed to PyAV, saying why when it fails too
                pending[to_dali[k]] = self.pool.submit(self._pyav, infos[to_dali[k]], starts[to_dali[k]], count, why)
            self.decoded["dali"] += len(to_dali) - len(failed)
        for b, future in pending.items():
            results[b] = future.result()
        self.decoded["pyav"] += len(pending)
        return results

    def _pyav(self, info: AudioInfo, start: float, count: int, dali_failure: str = "") -> np.ndarray | str:
        import av

        if info.bad is not None:
            return info.bad
        try:
            return pyav_window(info, start, count, self.rate)
        except (AudioDecodeError, av.FFmpegError, OSError, ValueError) as error:
            reason = _one_line(error)
            return f"{reason} (DALI: {dali_failure})" if dali_failure else reason


# --- PyAV ----------------------------------------------------------------------------------------------------------


def pyav_window(info: AudioInfo, start: float, count: int, rate: int) -> np.ndarray:
    """(count,) float32 in [-1, 1]: the window of ``count`` samples at ``rate`` from ``start`` (container seconds) of
    the audio ``info`` describes, decoded with PyAV (see the module docstring); AudioDecodeError when it cannot be."""
    if info.bad is not None:
        raise AudioDecodeError(info.bad)
    native = info.sample_rate
    k0 = first_sample(start, info.start, rate)
    total = _ceil_div(info.samples * rate, native)  # the track's samples at rate
    window = np.zeros(count, dtype=np.float32)
    low, high = max(k0, 0), min(k0 + count, total)  # the part of the window inside the track
    if high <= low:
        return window
    # native samples [first, last) cover the part, with margins for the resampler, from a sample on the grid shared
    # by both rates: block samples at native are step samples at rate
    shared = math.gcd(native, rate)
    block, step = native // shared, rate // shared
    margin = 0 if native == rate else RESAMPLE_MARGIN * _ceil_div(native, rate) + RESAMPLE_MARGIN
    first = (low * native // rate - margin) // block * block
    last = _ceil_div(_ceil_div(high * native, rate) + margin, block) * block
    native_samples = np.zeros(last - first, dtype=np.float32)
    _decode_native(info, max(first, 0), min(last, info.samples), native_samples, first)
    resampled = native_samples if native == rate else resample(native_samples, native, rate)
    offset = first // block * step  # the track sample at rate of resampled[0]
    window[low - k0:high - k0] = resampled[low - offset:high - offset]
    return np.clip(window, -1.0, 1.0, out=window)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def resample(samples: np.ndarray, native: int, rate: int) -> np.ndarray:
    """(len * rate / native,) float32: mono ``samples`` at ``native`` Hz resampled to ``rate`` with PyAV's
    ``av.AudioResampler`` (swresample; flushed, so the output is time-aligned: output j is at input time
    j / rate)."""
    import av

    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, dtype=np.float32)[None], format="flt",
                                       layout="mono")
    frame.sample_rate = native
    pieces = resampler.resample(frame) + resampler.resample(None)
    out = np.concatenate([p.to_ndarray().reshape(-1) for p in pieces]) if pieces else np.zeros(0, np.float32)
    expected = len(samples) * rate // native
    if len(out) < expected:
        out = np.concatenate([out, np.zeros(expected - len(out), np.float32)])
    return out[:expected]


def _decode_native(info: AudioInfo, low: int, high: int, out: np.ndarray, origin: int) -> None:
    """Writes the channels' mean of the track's samples [low, high) (at its own rate) to ``out[n - origin]``: seeking
    to :data:`PREROLL` before ``low``; decoding from the start when that is near, or when the seek lands after
    ``low`` or on a frame without a timestamp."""
    preroll = 0.0 if info.codec.startswith("pcm_") else PREROLL.get(info.codec, DEFAULT_PREROLL)
    target = info.start + low / info.sample_rate - preroll
    if target > info.start and _fill(info, low, high, out, origin, seek_to=target):
        return
    _fill(info, low, high, out, origin, seek_to=None)


def _open(source, info: AudioInfo, probesize: int | None):
    """The container of ``source`` (PyAV) and its first audio stream, checked against the index entry. FFmpeg's
    default probe reads 5 MB ahead to learn the streams (9 ms for a WAV file: more than the window's decoding); the
    headers of the containers read here say enough in ``probesize`` bytes, so it is tried first."""
    import av

    try:
        options = {"probesize": str(probesize)} if probesize else {}
        container = av.open(source, metadata_errors="ignore", options=options)
    except (av.FFmpegError, OSError) as error:
        raise AudioDecodeError(f"unreadable: {_one_line(error)}") from None
    stream = container.streams.audio[0] if container.streams.audio else None
    if stream is None or (stream.codec_context.sample_rate, stream.codec_context.channels) != (info.sample_rate,
                                                                                             info.channels):
        container.close()
        if probesize:
            if not isinstance(source, str):
                source.seek(0)
            return _open(source, info, None)
        if stream is None:
            raise AudioDecodeError("no audio stream (the index says there is one)")
        context = stream.codec_context
        raise AudioDecodeError(f"its stream is {context.sample_rate} Hz x {context.channels} channels, the index says "
                               f"{info.sample_rate} Hz x {info.channels}")
    return container, stream



def _fill(info: AudioInfo, low: int, high: int, out: np.ndarray, origin: int, seek_to: float | None) -> bool:
    """One pass of :func:`_decode_native`: False when, after a seek, the first frame lies after ``low`` or cannot be
    placed; True when the samples are written."""
    import av

    with open_video(info) as source:
        container, stream = _open(source, info, PROBE_BYTES)
        with container:
            try:
                return _fill_from(container, stream, info, low, high, out, origin, seek_to)
            except av.FFmpegError as error:
                raise AudioDecodeError(f"decoding failed: {_one_line(error)}") from None


def _fill_from(container, stream, info: AudioInfo, low: int, high: int, out: np.ndarray, origin: int,
               seek_to: float | None) -> bool:
    unit = stream.time_base
    if seek_to is not None:
        container.seek(math.floor(seek_to / unit), stream=stream, backward=True)
    places = _Placer(info, unit, None if unit * info.sample_rate <= 1 else frame_grid(info),
                     start_at=None if seek_to is not None else 0)
    first = True
    for frame in container.decode(stream):
        if frame.samples == 0:
            continue
        n = places.next(frame)
        if n is None or (first and seek_to is not None and n > low):
            return False  # after a seek: cannot be placed, or landed after the window
        first = False
        if n + frame.samples > low and n < high:
            channels = frame_samples(frame)
            mono = channels[0] if len(channels) == 1 else channels.mean(axis=0)
            a, b = max(n, low), min(n + frame.samples, high)
            out[a - origin:b - origin] = mono[a - n:b - n]
        if n + frame.samples >= high:
            return True
    return True


class _Placer:
    """Where each decoded frame of a pass starts, in track samples (see the module docstring, step 2): by its
    timestamp for the first frame (snapped onto the frame grid when the time base is coarser than a sample), then
    one after the other unless a timestamp says otherwise by more than its rounding."""

    def __init__(self, info: AudioInfo, unit, grid: tuple[int, int] | None, start_at: int | None):
        self.info, self.unit, self.grid = info, unit, grid
        self.seconds_per_tick = float(unit)  # float: exact to far below a sample over any real track's length
        self.coarse = unit * info.sample_rate > 1
        # a coarse timestamp is rounded twice where FFmpeg trimmed the frame's start (the packet's, then the trim's)
        self.tolerance = float(unit * info.sample_rate) + 1 if self.coarse else 1.0
        self.position = start_at  # where the next frame starts when it follows the last one (None: unknown)

    def next(self, frame) -> int | None:
        """Where ``frame`` starts (track samples at its rate), or None when that cannot be told."""
        stamped = None
        if frame.pts is not None:
            stamped = (frame.pts * self.seconds_per_tick - self.info.start) * self.info.sample_rate
        if self.position is not None and (stamped is None or abs(stamped - self.position) <= self.tolerance):
            n = self.position
        elif stamped is None:
            return None
        else:
            n = self._snap(stamped, frame.samples)
        self.position = n + frame.samples
        return n

    def _snap(self, stamped: float, size: int) -> int:
        if not self.coarse or self.grid is None:
            return round(stamped)
        first, step = self.grid
        end = first + round((stamped + size - first) / step) * step  # a whole frame, or one trimmed at its start
        if abs(end - size - stamped) <= self.tolerance:
            return end - size
        begin = first + round((stamped - first) / step) * step  # the last frame, cut short at its end
        if abs(begin - stamped) <= self.tolerance:
            return begin
        return round(stamped)


@functools.lru_cache(maxsize=1 << 16)
def frame_grid(info: AudioInfo) -> tuple[int, int] | None:
    """(size of the first frame, size of the second) of the audio's track, decoded once per file (the index entry
    keys the cache): after the first frame, frames of a constant size end at first + k * step. None when the
    track has fewer than two frames or cannot be read."""
    import av

    sizes = []
    try:
        with open_video(info) as source, av.open(source, metadata_errors="ignore") as container:
            for frame in container.decode(container.streams.audio[0]):
                if frame.samples:
                    sizes.append(frame.samples)
                if len(sizes) == 2:
                    return sizes[0], sizes[1]
    except (av.FFmpegError, OSError, IndexError):
        return None
    return None


# --- DALI ----------------------------------------------------------------------------------------------------------


class _DaliAudio:
    """Whole audio files decoded by DALI's ``fn.decoders.audio`` on the CPU, mono at ``rate``, and windows cut."""

    def __init__(self, rate: int, num_threads: int, longest: float):
        import nvidia.dali  # noqa: F401  (fails here, with its own message, when DALI is missing)

        self.rate, self.num_threads, self.longest = rate, max(1, num_threads), longest
        self.runs = ReusedPipeline(self._build)

    def takes(self, info: AudioInfo) -> bool:
        """Whether DALI decodes ``info``: usable audio of its own beside the video (a WAV, FLAC or OGG file or tar
        member: :attr:`~fastssl.data.audio.index.AudioInfo.sidecar`), up to ``longest`` seconds."""
        return info.bad is None and info.sidecar and info.duration <= self.longest

    def windows(self, infos: list[AudioInfo], starts: list[float], count: int) -> tuple[list, list]:
        """(per item its window or None, [(item, why DALI failed)]): one DALI run for all of them; when it fails,
        each half again until the files at fault are isolated."""
        results: list = [None] * len(infos)
        failed = []
        encoded = {}
        for k, info in enumerate(infos):
            data, why = read_checked(info, read_video)
            if data is None:
                failed.append((k, why))
            else:
                encoded[k] = data
        done, broken = bisect_failures(functools.partial(self._run, encoded), list(encoded))
        for k, decoded in done.items():
            results[k] = _cut(decoded, infos[k], starts[k], count, self.rate)
        return results, sorted(failed + broken)

    def _build(self, batch_size: int):
        from nvidia.dali import fn, pipeline_def, types

        @pipeline_def(batch_size=batch_size, num_threads=self.num_threads, device_id=None, prefetch_queue_depth=1,
                      exec_dynamic=True)
        def audio_pipeline():
            encoded = fn.external_source(name="encoded", dtype=types.UINT8, ndim=1)
            decoded, _ = fn.decoders.audio(encoded, downmix=True, dtype=types.FLOAT, sample_rate=float(self.rate))
            return decoded

        return audio_pipeline()

    def _run(self, encoded: dict, positions: list[int]) -> dict:
        """{position: the whole file, mono float32 at rate}; RuntimeError (one line) on any failure."""
        return self.runs.run({"encoded": [encoded[k] for k in positions]},
                             lambda out: {k: np.array(out[0][i]).reshape(-1) for i, k in enumerate(positions)})


def _cut(decoded: np.ndarray, info: AudioInfo, start: float, count: int, rate: int) -> np.ndarray:
    """The window of ``count`` samples from ``start`` out of the whole track ``decoded`` (mono at ``rate``)."""
    k0 = first_sample(start, info.start, rate)
    total = min(len(decoded), _ceil_div(info.samples * rate, info.sample_rate))
    window = np.zeros(count, dtype=np.float32)
    low, high = max(k0, 0), min(k0 + count, total)
    if high > low:
        window[low - k0:high - k0] = decoded[low:high]
    return np.clip(window, -1.0, 1.0, out=window)
