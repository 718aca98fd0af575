"""The audio-visual tasks: their inputs (frame crops and spectrograms), heads, losses and retrieval scores, on frames
and audio made in memory."""

import pytest
import torch
from task_helpers import assert_loss_falls

from fastssl.clips import RaggedClips
from fastssl.ops.spectrogram import log_mel_spectrogram, log_spectrogram
from fastssl.tasks import AV_TASKS, make_task
from fastssl.tasks.audio_visual import FusionHead, recall_at, stft_sizes

RATE, WINDOW = 8000, 0.5
TARGETS = {"avc": "corresponds", "ave": "corresponds", "av_sync": "in_sync"}


def small_task(name, **options):
    torch.manual_seed(0)
    return make_task(name, backbone="resnet10", image_size=32, audio_backbone="l3_audio_small", sample_rate=RATE,
                     window=WINDOW, min_shift=0.1, max_shift=0.2, **options)


def inputs(task, ids, epoch=0, seed=0):
    """A batch: per id a frame with a bright square at an id-dependent place and a tone at an id-dependent pitch;
    the label says whether they go together (frame i with tone i)."""
    g = torch.Generator().manual_seed(seed)
    frames = []
    for i in ids.tolist():
        frame = torch.full((1, 40, 44, 3), 20, dtype=torch.uint8)
        frame[0, 5 + 3 * (i % 8):20 + 3 * (i % 8), 10:30] = 230
        frames.append(frame)
    label = torch.arange(len(ids)) % 2
    tone_of = torch.where(label == 1, ids, ids + 1)
    t = torch.arange(int(RATE * WINDOW)) / RATE
    audio = 0.3 * torch.sin(2 * torch.pi * (200 + 150 * (tone_of % 8))[:, None] * t) + 0.01 * torch.randn(
        len(ids), len(t), generator=g)
    batch = task.transform(RaggedClips.from_list(frames), audio, ids, epoch)
    return {**batch, TARGETS[task.name]: label, "ids": ids, "epoch": epoch}


@pytest.mark.parametrize("name", AV_TASKS)
def test_a_step_on_a_fixed_batch_lowers_the_loss(name):
    task = small_task(name)
    batch = inputs(task, torch.arange(8))
    assert batch["inputs"].shape == (8, 3, 32, 32)
    n_fft, win, hop = stft_sizes(RATE)
    assert batch["spectrogram"].shape == (8, 1, n_fft // 2 + 1, 1 + (int(RATE * WINDOW) - win) // hop)
    out = task(batch)
    assert 0 <= float(out["accuracy"]) <= 1 and torch.isfinite(out["loss"])
    assert_loss_falls(task, batch, steps=12)


def test_ave_infonce_takes_every_sample_as_a_positive_and_the_batch_as_negatives():
    task = small_task("ave", loss="infonce")
    assert task.pairs.positive_fraction == 1.0
    batch = inputs(task, torch.arange(8))
    out = task(batch)
    assert set(out) == {"loss", "accuracy"}
    assert_loss_falls(task, batch, steps=12)


def test_the_spectrogram_is_l3_nets_at_48khz_and_the_gain_is_keyed_by_id():
    assert stft_sizes(48000) == (512, 480, 240)
    task = small_task("avc")
    audio = 0.2 * torch.randn(4, int(RATE * WINDOW), generator=torch.Generator().manual_seed(1))
    ids = torch.tensor([3, 9, 4, 1])
    plain = task.spectrogram(audio)
    n_fft, win, hop = stft_sizes(RATE)
    assert torch.allclose(plain[:, 0], log_spectrogram(audio, n_fft=n_fft, win_length=win, hop_length=hop))
    gained = task.spectrogram(audio, ids, epoch=2)
    # a gain g adds 2 log g to every bin above the floor: the same shift over a whole spectrogram, within ±gain_db
    shift = (gained - plain).flatten(1)
    assert torch.allclose(shift, shift[:, :1].expand_as(shift), atol=1e-3)
    db = 10 * shift[:, 0] / torch.log(torch.tensor(10.0))
    assert bool((db.abs() <= task.gain_db + 1e-3).all()) and len(db.unique()) == 4
    again = task.spectrogram(audio[[2, 0]], ids[[2, 0]], epoch=2)
    assert torch.allclose(again, gained[[2, 0]])
    assert not torch.allclose(task.spectrogram(audio, ids, epoch=3), gained)


def test_mel_bins_give_a_log_mel_spectrogram():
    task = small_task("avc", mel_bins=32)
    audio = 0.2 * torch.randn(2, int(RATE * WINDOW), generator=torch.Generator().manual_seed(2))
    n_fft, win, hop = stft_sizes(RATE)
    expected = log_mel_spectrogram(audio, sample_rate=RATE, n_fft=n_fft, win_length=win, hop_length=hop, n_mels=32)
    assert torch.allclose(task.spectrogram(audio)[:, 0], expected)


def test_the_fusion_heads_all_pairs_are_the_head_on_each_pair():
    torch.manual_seed(0)
    head = FusionHead(6, 4, hidden=5)
    head(torch.randn(16, 6) * 3 + 1, torch.randn(16, 4) * 0.5 - 2)  # running statistics away from (0, 1)
    head.eval()
    v, a = torch.randn(3, 6), torch.randn(7, 4)
    scores = head.all_pairs(v, a, chunk=2)
    logits = head(v.repeat_interleave(7, 0), a.repeat(3, 1)).view(3, 7, 2)
    assert torch.allclose(scores, logits[..., 1] - logits[..., 0], atol=1e-5)


@pytest.mark.parametrize("name", AV_TASKS)
def test_match_scores_rank_frames_against_audio(name):
    task = small_task(name).eval()
    v, a = torch.randn(5, task.feature_dim), torch.randn(6, task.audio_feature_dim)
    assert task.match_scores(v, a).shape == (5, 6)


def test_recall_counts_the_own_column_in_the_top_k_with_ties_against():
    scores = torch.tensor([[3.0, 1.0, 2.0], [5.0, 4.0, 0.0], [1.0, 1.0, 1.0]])
    # row 0: own first; row 1: own second; row 2: three-way tie, ranked last
    assert recall_at(scores, ks=(1, 2, 3)) == {"recall@1": 1 / 3, "recall@2": 2 / 3, "recall@3": 1.0}


@pytest.mark.parametrize("name", AV_TASKS)
@pytest.mark.parametrize("backbone,layout", [("r3d_10", (3, 4)), ("resnet10", (4, 3))])
def test_clips_feed_a_video_backbone_or_an_image_backbone_averaged_over_frames(name, backbone, layout):
    task = make_task(name, backbone=backbone, image_size=32, audio_backbone="l3_audio_small", sample_rate=RATE,
                     window=WINDOW, min_shift=0.1, max_shift=0.2, clip_len=4, stride=2)
    assert task.pairs.clip.length == 4 and task.eval_pairs.clip.stride == 2
    g = torch.Generator().manual_seed(5)
    clips = RaggedClips.from_list([torch.randint(0, 256, (4, 40, 44, 3), dtype=torch.uint8, generator=g)
                                   for _ in range(4)])
    audio = 0.1 * torch.randn(4, int(RATE * WINDOW), generator=g)
    batch = task.transform(clips, audio, torch.arange(4), 0)
    assert batch["inputs"].shape == (4, *layout, 32, 32)
    assert task.eval_transform(clips, audio, torch.arange(4), 0)["inputs"].shape == (4, *layout, 32, 32)
    assert task.features(batch["inputs"]).shape == (4, task.feature_dim)
    out = task({**batch, TARGETS[name]: torch.tensor([1, 0, 1, 0])})
    assert torch.isfinite(out["loss"])
    if backbone == "resnet10":  # one frame's features are the frame's
        frames = batch["inputs"]
        task.eval()
        assert torch.allclose(task.features(frames[:, :1]), task.backbone(frames[:, 0]), atol=1e-6)


def test_min_scale_sets_the_crops_area_and_one_keeps_the_whole_frame():
    frame = torch.zeros(1, 32, 32, 3, dtype=torch.uint8)
    frame[0, :, :16] = 255  # the left half white: a crop's mean says how much of the frame it kept
    clips = RaggedClips.from_list([frame] * 16)
    audio = torch.zeros(16, int(RATE * WINDOW))
    ids = torch.arange(16)
    whole = small_task("avc", min_scale=1.0).transform(clips, audio, ids, 0)["inputs"]
    assert torch.allclose(whole.mean(dim=(1, 2, 3)), whole[0].mean().expand(16), atol=1e-4)
    cropped = small_task("avc", min_scale=0.2).transform(clips, audio, ids, 0)["inputs"]
    assert float(cropped.mean(dim=(1, 2, 3)).std()) > 0.05
    with pytest.raises(ValueError, match="min_scale"):
        small_task("avc", min_scale=0.0)
