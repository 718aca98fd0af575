"""Benchmark of audio features: spectrograms/s of fastssl's log spectrogram and log-mel ops against librosa and torch.

Cases (``--batch`` windows of 1 s at 48 kHz, float32: noise under a few tones), L3-Net's frames (512-point FFT of
10 ms periodic Hann windows, half overlap):
  * "log spectrogram 257x199": log(max(|STFT|^2, 1e-10)) -> (B, 257, 199);
  * "log-mel 64x199": the same power summed by 64 Slaney mel filters before the log -> (B, 64, 199).

Providers (all compute in float32 and give the same values, frame for frame):
  * ``librosa``: one call per window on its numpy array, as a Dataset's ``__getitem__`` makes it:
    ``librosa.stft`` (log spectrogram) or ``librosa.feature.melspectrogram`` (log-mel), ``center=False``,
    then ``np.log(np.maximum(x, 1e-10))``; on the CPU whatever ``--device`` says (numpy);
  * ``torch``: the whole batch through ``torch.stft(center=False)``, ``|.|^2``, the mel matmul and
    ``log(clamp_min)``, on ``--device``;
  * ``fastssl reference`` / ``fastssl cpp`` / ``fastssl triton``: ``fastssl.ops.log_spectrogram`` and
    ``log_mel_spectrogram`` with that backend (reference: frames gathered, ``torch.fft.rfft``, matmul, log).

librosa and torch put the shorter window in the middle of each n_fft frame: their audio gets the 16 zeros
before and after it that make their frames fastssl's (see fastssl.ops.spectrogram), outside the timed calls.

Section "AV loader" (skipped without PyAV, or with ``--sections spectrograms``): audio-visual samples/s over
the embedded set of videos with sound (``fastssl.data.synthetic.write_av_folder``: 4 classes x 8 VP9 + Opus
WebM videos of 3 s, 48 x 48 at 16 fps, 48 kHz; cached in the temp folder), one epoch per timed call, batches of
``--av-batch``. Every provider follows the same correspondence pairs (``fastssl.data.av.AVPairs("avc")``): per
video one frame and 1 s of audio (its own around the frame, or another video's), made into a 64 x 64 normalised
crop and L3-Net's 257 x 199 log spectrogram:
  * ``decode only``: the clip decoder on the planned frames and ``AudioDecoder`` on the planned windows, nothing
    else (the ceiling);
  * ``fastssl AVLoader``: ``AVLoader`` with the ``avc`` task's transform (crop + ``log_spectrogram`` with a
    random gain), batches on the device;
  * ``DataLoader + PyAV + librosa``: what user code does today — a ``Dataset`` that opens the video with PyAV,
    decodes frames from the start up to the planned one, decodes the audio stream from the start up to the
    window's end, resamples with PyAV, cuts the window, ``librosa.stft`` and log, ``transforms.v2`` on the frame;
    ``DataLoader`` with ``--threads`` worker processes.

Examples:
  python benchmarks/bench_audio.py                 # CPU, 16 windows
  python benchmarks/bench_audio.py --device cuda   # 256 windows
  python benchmarks/bench_audio.py --quick         # a few seconds (smoke run)
Results: benchmarks/results/audio_<device>.json and .md (``_quick`` under --quick; ``--out`` elsewhere).
"""

from __future__ import annotations

import importlib.util
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import common
from fastssl.backends import unavailable_reason
from fastssl.ops.spectrogram import log_mel_spectrogram, log_spectrogram, mel_filters
from fastssl.reference import spectrogram as reference

SAMPLE_RATE = 48000
N_FFT, WIN_LENGTH, HOP_LENGTH, N_MELS = 512, 480, 240, 64
LOG_FLOOR = 1e-10
FASTSSL_BACKENDS = ("reference", "cpp", "triton")
BASELINES = ("librosa", "torch")


def windows(batch: int, device: torch.device) -> torch.Tensor:
    """(batch, 48000) float32: 1 s of noise (std 0.05) under three tones of random pitch and level per window."""
    generator = torch.Generator().manual_seed(0)
    t = torch.arange(SAMPLE_RATE, dtype=torch.float64) / SAMPLE_RATE
    pitch = 100 * 2 ** (7 * torch.rand(batch, 3, 1, generator=generator, dtype=torch.float64))
    level = 0.3 * torch.rand(batch, 3, 1, generator=generator, dtype=torch.float64)
    tones = (level * torch.sin(2 * math.pi * pitch * t)).sum(1)
    noise = 0.05 * torch.randn(batch, SAMPLE_RATE, generator=generator, dtype=torch.float64)
    return (tones + noise).float().to(device)


def centred(audio: torch.Tensor) -> torch.Tensor:
    """The audio with the zeros that make a centred-window STFT's frames fastssl's (same count, same values)."""
    left = (N_FFT - WIN_LENGTH) // 2
    return F.pad(audio, (left, N_FFT - WIN_LENGTH - left))


def librosa_features(mel: bool):
    """One window's log (mel) spectrogram with librosa, as user code computes it."""
    import librosa

    def one(y: np.ndarray) -> np.ndarray:
        if mel:
            power = librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH,
                                                   win_length=WIN_LENGTH, window="hann", center=False,
                                                   n_mels=N_MELS)
        else:
            power = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH, window="hann",
                                        center=False)) ** 2
        return np.log(np.maximum(power, LOG_FLOOR))

    return one


def torch_features(audio: torch.Tensor, mel: bool):
    """The batch's log (mel) spectrogram in plain torch: torch.stft, power, mel matmul, log."""
    window = torch.hann_window(WIN_LENGTH, periodic=True, device=audio.device)
    filters = mel_filters(SAMPLE_RATE, N_FFT, N_MELS).to(audio.device) if mel else None

    def run() -> torch.Tensor:
        spectrum = torch.stft(audio, N_FFT, HOP_LENGTH, WIN_LENGTH, window=window, center=False,
                              return_complex=True)
        power = spectrum.real.square() + spectrum.imag.square()  # (B, 257, T)
        if filters is not None:
            power = filters @ power
        return power.clamp_min(LOG_FLOOR).log()

    return run


def providers(audio: torch.Tensor, mel: bool) -> list[tuple[str, object, str]]:
    """(name, the function to time or why it cannot run, note) of every provider."""
    op = log_mel_spectrogram if mel else log_spectrogram
    found = []
    if importlib.util.find_spec("librosa") is None:
        found.append(("librosa", "librosa is not installed (pip install librosa)", ""))
    else:
        one = librosa_features(mel)
        arrays = list(centred(audio).cpu().numpy())
        found.append(("librosa", lambda: [one(y) for y in arrays], "one call per window, numpy on the CPU"))
    found.append(("torch", torch_features(centred(audio), mel), "torch.stft of the batch"))
    for backend in FASTSSL_BACKENDS:
        reason = unavailable_reason(backend, audio.device)
        found.append((f"fastssl {backend}", reason or (lambda b=backend: op(audio, backend=b)), ""))
    return found


def as_tensor(output) -> torch.Tensor:
    if isinstance(output, list):
        return torch.from_numpy(np.stack(output))
    return output.detach().cpu()


def bench_spectrograms(run: common.Run) -> list[dict]:
    """Times every provider on both cases; one dict per (case, provider): milliseconds per batch, spectrograms/s,
    speedups over the baselines, the max |error| against the float64 reference (log units), or why it was
    skipped. ``config["providers"]`` (comma-separated substrings) keeps only the providers it names."""
    config = run.config
    audio = windows(config["batch"], run.device)
    wanted = [w.strip() for w in (config.get("providers") or "").split(",") if w.strip()]
    rows = []
    for mel, case in ((False, f"log spectrogram {N_FFT // 2 + 1}x199"), (True, f"log-mel {N_MELS}x199")):
        print(case, flush=True)
        audio64 = audio.cpu().double()
        B = audio64.shape[0]
        expected = reference.spectrogram(
            audio64, torch.full((B,), SAMPLE_RATE), torch.zeros(B, dtype=torch.int64), torch.ones(B).double(),
            reference.hann_window(WIN_LENGTH, torch.float64),
            mel_filters(SAMPLE_RATE, N_FFT, N_MELS, dtype=torch.float64) if mel else None, N_FFT, HOP_LENGTH, 199,
            LOG_FLOOR)
        case_rows = []
        for name, fn, note in providers(audio, mel):
            if wanted and not any(w in name for w in wanted):
                continue
            row = {"section": "spectrograms", "case": case, "provider": name, "note": note, "skipped": None}
            if isinstance(fn, str):
                row["skipped"] = fn
            else:
                try:
                    start = time.perf_counter()
                    output = fn()
                    if run.device.type == "cuda":
                        torch.cuda.synchronize(run.device)
                    row["first_call_s"] = time.perf_counter() - start
                    row["max_abs_err"] = float((as_tensor(output).double() - expected).abs().max())
                    timing = common.time_fn(fn, run.device, warmup=1, budget_s=config["budget_s"])
                    row.update(ms=timing.median_ms, min_ms=timing.min_ms, repeats=timing.repeats,
                               spectrograms_per_s=B / (timing.median_ms * 1e-3))
                except Exception as error:  # noqa: BLE001 (one failing provider must not stop the run)
                    row["skipped"] = f"{type(error).__name__}: {error}".splitlines()[0][:300]
            print(f"  {name:20s} " + (f"skipped: {row['skipped']}" if row["skipped"] else
                                      f"{row['ms']:9.2f} ms {row['spectrograms_per_s']:10.1f} spectrograms/s  "
                                      f"max abs err {row['max_abs_err']:.2g}"), flush=True)
            case_rows.append(row)
        timed = {r["provider"]: r["ms"] for r in case_rows if not r["skipped"]}
        for row in case_rows:
            if not row["skipped"]:
                row["speedup"] = {b: timed[b] / row["ms"] for b in BASELINES if b in timed}
        rows += case_rows
    return rows


AV_SET = {"classes": 4, "per_class": 8, "frames": 48, "size": 48, "fps": 16}
AV_CROP = 64


def av_folder() -> str:
    """The embedded set of videos with sound (cached in the temp folder)."""
    import os
    import tempfile

    from fastssl.data import synthetic

    root = os.path.join(tempfile.gettempdir(), "fastssl-bench-av-{classes}x{per_class}-{frames}f-{size}px".format(
        **AV_SET))
    if not os.path.isdir(root):
        synthetic.write_av_folder(root + ".partial", **AV_SET, sample_rate=SAMPLE_RATE, seed=0)
        os.replace(root + ".partial", root)
    return root


class _PairedDataset(torch.utils.data.Dataset):
    """``dataset[(id, epoch)]`` → (frame crop, log spectrogram, label) as user code makes them: PyAV from the start
    of the file, librosa, torchvision. The pairs are fastssl's (every provider reads the same frames and windows)."""

    def __init__(self, loader, transform):
        self.videos, self.audio, self.pairs = loader.source.videos, loader.audio, loader.pairs
        self.timing, self.population, self.transform = loader.timing, loader.usable, transform

    def __len__(self) -> int:
        return len(self.population)

    def __getitem__(self, key):
        import av
        import librosa

        index, epoch = key
        plan = self.pairs.plan(torch.tensor([index]), epoch, timing=self.timing, population=self.population)
        wanted = int(plan.frames[0, 0])
        with av.open(self.videos[index].path) as container:
            for position, frame in enumerate(container.decode(video=0)):
                if position == wanted:
                    image = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)
                    break
        start = float(plan.audio_starts[0])
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        chunks, first = [], None
        with av.open(self.audio[int(plan.audio_ids[0])].path) as container:
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    if first is None:
                        first = float(out.pts * out.time_base) if out.pts is not None else 0.0
                    chunks.append(out.to_ndarray()[0])
                if sum(len(c) for c in chunks) / SAMPLE_RATE + (first or 0.0) > start + 1.0:
                    break
        samples = np.concatenate(chunks)
        begin = max(0, round((start - (first or 0.0)) * SAMPLE_RATE))
        window = np.zeros(SAMPLE_RATE, dtype=np.float32)
        piece = samples[begin:begin + SAMPLE_RATE]
        window[:len(piece)] = piece
        padded = np.pad(window, (N_FFT - WIN_LENGTH) // 2)
        power = np.abs(librosa.stft(padded, n_fft=N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH,
                                    window="hann", center=False)) ** 2
        spectrogram = torch.from_numpy(np.log(np.maximum(power, LOG_FLOOR)))
        return self.transform(image), spectrogram, int(plan.targets["corresponds"][0])


def bench_av_loader(run: common.Run) -> list[dict]:
    """AV samples/s of the decode-only ceiling, fastssl's AVLoader and the DataLoader way (see the module
    docstring); one dict per provider."""
    if importlib.util.find_spec("av") is None:
        return [{"section": "av_loader", "case": "AV loader", "provider": "all", "note": "",
                 "skipped": "PyAV is not installed"}]
    from fastssl.data.av import AVLoader
    from fastssl.tasks import make_task

    config, root = run.config, av_folder()
    threads, batch = config["threads"] or 2, config["av_batch"]
    task = make_task("avc", backbone="resnet10", image_size=AV_CROP, sample_rate=SAMPLE_RATE).to(run.device)

    def loader(**options):
        return AVLoader(root, batch_size=batch, pairs=task.pairs, rate=SAMPLE_RATE, device=run.device,
                        num_threads=threads, cache=False, **options)

    def decode_only():
        av_loader, epochs = loader(decoder="pyav"), iter(range(10**9))

        def epoch():
            e = next(epochs)
            for ids in av_loader.usable.split(batch):
                _, _, (frames, audio) = av_loader._decode(e, ids)
                failed = [r for r in frames + audio if isinstance(r, str)]
                if failed:
                    raise RuntimeError(f"{len(failed)} not decoded: {failed[0]}")
        return epoch

    def fastssl():
        av_loader, epochs = loader(decoder="auto", transform=task.transform), iter(range(10**9))

        def epoch():
            for _ in av_loader.epoch(next(epochs)):
                pass
        return epoch

    def dataloader():
        from torchvision.transforms import v2

        from fastssl.recipes import IMAGENET_MEAN, IMAGENET_STD

        transform = v2.Compose([v2.RandomResizedCrop(AV_CROP, scale=(0.35, 1.0), antialias=True),
                                v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32, scale=True),
                                v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
        reference_loader = loader(decoder="pyav")
        dataset = _PairedDataset(reference_loader, transform)
        epochs = iter(range(10**9))
        ids = reference_loader.usable.tolist()
        data = torch.utils.data.DataLoader(dataset, batch_size=batch, num_workers=threads,
                                           persistent_workers=True)

        def epoch():
            e = next(epochs)
            data.batch_sampler.sampler = [(i, e) for i in ids]  # the epoch's keys, in id order
            for frames, spectrograms, labels in data:
                frames.to(run.device), spectrograms.to(run.device)
        return epoch

    providers = [("decode only (PyAV frames + audio windows)", decode_only,
                  "the clip decoder and AudioDecoder on the planned frames and windows, nothing else"),
                 ("fastssl AVLoader", fastssl, "AVLoader(decoder='auto') + the avc task's transform (crop, "
                                               "log_spectrogram with a random gain, auto backend)"),
                 ("DataLoader + PyAV + librosa", dataloader, f"PyAV from the start of each file, librosa.stft, "
                                                             f"transforms.v2; {threads} worker processes")]
    rows = []
    print("AV loader", flush=True)
    for name, make, note in providers:
        row = {"section": "av_loader", "case": "AV loader", "provider": name, "note": note, "skipped": None}
        try:
            fn = make()
            timing = common.time_fn(fn, run.device, warmup=1, min_repeats=2, budget_s=config["budget_s"])
            samples = len(open_samples(root))
            row.update(ms=timing.median_ms, min_ms=timing.min_ms, repeats=timing.repeats,
                       samples_per_s=samples / (timing.median_ms * 1e-3))
        except Exception as error:  # noqa: BLE001 (one failing provider must not stop the run)
            row["skipped"] = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        print(f"  {name:45s} " + (f"skipped: {row['skipped']}" if row["skipped"] else
                                  f"{row['samples_per_s']:8.1f} samples/s"), flush=True)
        rows.append(row)
    timed = {r["provider"]: r["samples_per_s"] for r in rows if not r["skipped"]}
    for row in rows:
        if not row["skipped"]:
            row["speedup"] = {peer: row["samples_per_s"] / timed[peer] for peer in timed}
    return rows


def open_samples(root: str) -> list:
    """The usable videos of the AV set (all of them: the set has no bad file)."""
    from fastssl.data.video import open_video_source

    return open_video_source(root).good.tolist()


def _cell(value, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def markdown(env: dict, config: dict, rows: list[dict]) -> str:
    lines = [f"# audio benchmark on {env['device_kind']}", "",
             f"- device: **{env['device_name']}**, {env['torch_threads']} torch threads, torch {env['torch']}, "
             f"triton {env['triton']}, fastssl {env['fastssl']}; date {env['date']}; load average "
             f"{env.get('load_average_1_5_15')} at start, {env.get('load_average_end')} at end",
             f"- {config['batch']} windows of 1 s at {SAMPLE_RATE} Hz; n_fft {N_FFT}, Hann window {WIN_LENGTH}, "
             f"hop {HOP_LENGTH}", ""]
    spectrograms = [r for r in rows if r["section"] == "spectrograms"]
    for case in dict.fromkeys(r["case"] for r in spectrograms):
        lines += [f"## {case}", "", "| provider | ms per batch | spectrograms/s | × vs librosa | × vs torch | "
                  "max abs err | first call s | note |", "|---|---|---|---|---|---|---|---|"]
        for r in (r for r in spectrograms if r["case"] == case and not r["skipped"]):
            speedup = r.get("speedup", {})
            lines.append(f"| {r['provider']} | {_cell(r['ms'], 3)} | {_cell(r['spectrograms_per_s'], 1)} | "
                         f"{_cell(speedup.get('librosa'))}× | {_cell(speedup.get('torch'))}× | "
                         f"{r['max_abs_err']:.2g} | {_cell(r['first_call_s'])} | {r['note']} |")
        lines.append("")
    av_rows = [r for r in rows if r["section"] == "av_loader" and not r["skipped"]]
    if av_rows:
        peers = [r["provider"] for r in av_rows]
        lines += [f"## AV loader: {AV_SET['classes'] * AV_SET['per_class']} videos with sound (one frame + 1 s "
                  f"of audio each), batches of {config['av_batch']}", "",
                  "| provider | samples/s | " + " | ".join(f"× vs {p}" for p in peers) + " | note |",
                  "|---|---|" + "---|" * len(peers) + "---|"]
        for r in av_rows:
            lines.append(f"| {r['provider']} | {_cell(r['samples_per_s'], 1)} | "
                         + " | ".join(f"{_cell(r['speedup'].get(p))}×" for p in peers) + f" | {r['note']} |")
        lines.append("")
    skipped = [r for r in rows if r["skipped"]]
    if skipped:
        lines += ["## Skipped", "", "| case | provider | reason |", "|---|---|---|"]
        lines += [f"| {r['case']} | {r['provider']} | {r['skipped'].replace('|', '/')} |" for r in skipped] + [""]
    lines += ["## Notes", "", "- ms per batch: median after warmup; × vs X = time of X / time of the row.",
              "- max abs err: against the float64 reference, in log units (largest at the quietest bins).", ""]
    return "\n".join(lines)


def measure(run: common.Run, env: dict) -> common.Report:
    sections = run.config.get("sections") or "spectrograms,av_loader"
    rows = bench_spectrograms(run) if "spectrograms" in sections else []
    if "av_loader" in sections:
        rows += bench_av_loader(run)
    payload = {"benchmark": "audio", "config": run.config, "environment": env, "results": rows}
    return common.Report(payload, lambda: markdown(env, run.config, rows))


BENCHMARK = common.Benchmark(
    name="audio", doc=__doc__, measure=measure,
    defaults={"cpu": {"batch": 16, "budget_s": 2.0, "av_batch": 8}, "cuda": {"batch": 256, "budget_s": 2.0,
                                                                            "av_batch": 8}},
    quick={"batch": 2, "budget_s": 0.1},
    flags=(common.flag("--threads", type=int, help="threads of torch (torch.set_num_threads)"),
           common.flag("--providers", help="comma-separated substrings: run only the providers matching one"),
           common.flag("--sections", help="comma-separated: spectrograms, av_loader (default: both)")),
    headline="{batch} windows of 1 s at 48 kHz")


if __name__ == "__main__":
    sys.exit(common.main(BENCHMARK))
