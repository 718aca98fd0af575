"""The loader: epoch accounting, determinism across batch sizes / shards / decoders, bad files, resume, shutdown."""

import io
import os
import tarfile
import threading

import numpy as np
import pytest
import torch

from fastssl import recipes
from fastssl.data import BadImageError, Loader, synthetic

from data_helpers import DECODERS, epoch_within
from helpers import spawn_gloo

RECIPE = recipes.simclr(size=16)

def broken(names: list[str]) -> set[str]:
    """The undecodable files of the ``image_root`` fixture (synthetic's catalogue names them ``bad_*``)."""
    return {os.path.basename(n) for n in names if os.path.basename(n).startswith("bad_")}


def run_epoch(loader, epoch=0):
    """{id: batch entries of that sample} for one epoch, checking every id comes once."""
    out = {}
    for batch in loader.epoch(epoch):
        assert batch["epoch"] == epoch and batch["labels"].shape == batch["ids"].shape
        for k, i in enumerate(batch["ids"].tolist()):
            assert i not in out, f"sample {i} came twice"
            out[i] = {"label": int(batch["labels"][k]), "views": [v[k] for v in batch.get("views", [])]}
    return out


@pytest.mark.parametrize("decoder", DECODERS)
def test_every_good_sample_once_per_epoch_bad_ones_reported(image_root, decoder):
    loader = Loader(image_root, batch_size=5, views=RECIPE, decoder=decoder, seed=1)
    names = loader.source.names
    bad = broken(names)
    assert len(bad) == 5
    for epoch in (0, 1):
        seen = run_epoch(loader, epoch)
        assert set(seen) == {i for i, n in enumerate(names) if os.path.basename(n) not in bad}
        assert sorted(os.path.basename(n) for n, _ in loader.stats.bad_files) == sorted(bad)
        assert loader.stats.bad_count == len(bad) and loader.stats.empty_batches == 0
        assert all(seen[i]["label"] == int(loader.source.labels[i]) for i in seen)
        assert loader.stats.images == len(seen) and loader.stats.batches == len(loader) == 8
    assert loader.decoder_name == decoder


def test_views_do_not_depend_on_batch_size_shards_or_threads(image_root):
    whole = run_epoch(Loader(image_root, batch_size=36, views=RECIPE, decoder="pil", seed=4), epoch=2)
    parts = {}
    for shard in range(3):
        loader = Loader(image_root, batch_size=3, views=RECIPE, decoder="pil", seed=4, shard_id=shard, num_shards=3,
                        num_threads=1)
        parts.update(run_epoch(loader, epoch=2))
    assert parts.keys() == whole.keys()
    for i in whole:
        for a, b in zip(whole[i]["views"], parts[i]["views"]):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    other = run_epoch(Loader(image_root, batch_size=36, views=RECIPE, decoder="pil", seed=4), epoch=3)
    assert any(not torch.equal(whole[i]["views"][0], other[i]["views"][0]) for i in whole)  # fresh views per epoch


@pytest.mark.parametrize("decoder", [d for d in DECODERS if d != "pil"])
def test_decoders_give_the_same_views(image_root, decoder):
    loader = Loader(image_root, batch_size=8, views=RECIPE, decoder=decoder, seed=0)
    a, b = run_epoch(loader), run_epoch(Loader(image_root, batch_size=8, views=RECIPE, decoder="pil", seed=0))
    assert a.keys() == b.keys()
    for i in a:
        if os.path.basename(loader.source.names[i]) == "odd_cmyk.jpg":  # CMYK -> RGB rounds differently by 1
            assert (a[i]["views"][0] - b[i]["views"][0]).abs().mean() <= 0.05
        else:
            torch.testing.assert_close(a[i]["views"][0], b[i]["views"][0], rtol=0, atol=0)


def test_strict_mode_names_the_file(image_root):
    loader = Loader(image_root, batch_size=36, decoder="pil", strict=True, shuffle=False)
    with pytest.raises(BadImageError, match="bad_"):
        next(iter(loader))


def test_resume_mid_epoch_continues_the_same_sequence(image_root):
    loader = Loader(image_root, batch_size=4, decoder="pil", seed=2, keep_images=True)
    full = [b["ids"].tolist() for b in loader.epoch(1)]
    resumed = [b["ids"].tolist() for b in loader.epoch(1, start=3)]
    assert resumed == full[3:]
    batch = next(iter(loader.epoch(0)))
    assert len(batch["images"]) == len(batch["ids"])
    with pytest.raises(ValueError, match="start"):
        loader.epoch(0, start=99)


def test_iteration_walks_the_epochs(image_root):
    loader = Loader(image_root, batch_size=16, decoder="pil", seed=0)
    first, second = ([b["ids"].tolist() for b in loader] for _ in range(2))
    assert first != second and loader.next_epoch == 2
    loader.set_epoch(0)
    assert [b["ids"].tolist() for b in loader] == first


@pytest.mark.parametrize("decoder", DECODERS)
def test_leaving_early_stops_the_background_threads(image_root, decoder):
    before = threading.active_count()
    loader = Loader(image_root, batch_size=2, views=RECIPE, decoder=decoder, prefetch=1)
    for _ in range(3):
        for k, _batch in enumerate(loader):
            if k == 1:
                break
    stages = ("fastssl-loader", "fastssl-decode-ahead")
    assert not any(t.name in stages and t.is_alive() for t in threading.enumerate())
    assert threading.active_count() <= before + 2 * 8  # the reader / decoder pools, not one thread per epoch
    # The decoding stage of an abandoned epoch is over: a new epoch gets every sample once.
    full = Loader(image_root, batch_size=3, views=RECIPE, decoder=decoder)
    assert sorted(run_epoch(loader, 7)) == sorted(run_epoch(full, 7))


def test_decoder_errors_reach_the_consumer(image_root):
    loader = Loader(image_root, batch_size=4, views=RECIPE, decoder="pil")

    def decode(encoded):
        raise MemoryError("boom in the decoder")

    loader.decoder.decode = decode
    with pytest.raises(MemoryError, match="boom in the decoder"):
        list(loader.epoch(0))
    assert not any(t.name == "fastssl-decode-ahead" and t.is_alive() for t in threading.enumerate())


def test_transform_errors_reach_the_consumer(image_root):
    def transform(images, ids, epoch):
        raise ZeroDivisionError("boom in the transform")

    loader = Loader(image_root, batch_size=4, transform=transform, decoder="pil")
    with pytest.raises(ZeroDivisionError, match="boom"):
        list(loader.epoch(0))


def test_custom_transform_gets_the_decoded_batch(image_root):
    def transform(images, ids, epoch):
        return {"sizes": images.sizes.clone(), "n": len(images)}

    batch = next(iter(Loader(image_root, batch_size=4, transform=transform, decoder="pil", shuffle=False)))
    assert batch["n"] == 4 and batch["sizes"].shape == (4, 2)


def test_bad_arguments(image_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        Loader(str(tmp_path / "nowhere"), batch_size=2)
    with pytest.raises(ValueError, match="holds no images"):
        Loader(str(tmp_path), batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        Loader(image_root, batch_size=0)
    with pytest.raises(ValueError, match="views or transform"):
        Loader(image_root, batch_size=2, views=RECIPE, transform=lambda *a: {})
    with pytest.raises(ValueError, match="decoder must be"):
        Loader(image_root, batch_size=2, decoder="opencv")


@pytest.mark.cuda
@pytest.mark.parametrize("decoder", [d for d in DECODERS if d != "pil"])
def test_gpu_loader_matches_cpu(image_root, decoder):
    gpu = run_epoch(Loader(image_root, batch_size=8, views=RECIPE, decoder=decoder, device="cuda", seed=0))
    cpu = run_epoch(Loader(image_root, batch_size=8, views=RECIPE, decoder="pil", seed=0))
    assert gpu.keys() == cpu.keys()
    for i in gpu:
        assert gpu[i]["views"][0].is_cuda
        assert (gpu[i]["views"][0].cpu() - cpu[i]["views"][0]).abs().mean() <= 0.05


def _shard_worker(rank, world, root, out_dir):
    loader = Loader(root, batch_size=4, decoder="pil", seed=7)  # shard from torch.distributed
    ids = [i for batch in loader.epoch(1) for i in batch["ids"].tolist()]
    torch.save({"ids": ids, "shard": (loader.order.shard_id, loader.order.num_shards)},
               os.path.join(out_dir, f"rank{rank}.pt"))


def test_ranks_read_disjoint_shards_that_cover_the_dataset(image_root, tmp_path):
    spawn_gloo(_shard_worker, 2, tmp_path, image_root, str(tmp_path))
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert [r["shard"] for r in results] == [(0, 2), (1, 2)]
    a, b = set(results[0]["ids"]), set(results[1]["ids"])
    single = Loader(image_root, batch_size=4, decoder="pil", seed=7)
    everything = {i for batch in single.epoch(1) for i in batch["ids"].tolist()}
    assert not a & b and a | b == everything


def write_files(folder, files: dict) -> str:
    os.makedirs(folder, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    return str(folder)


@pytest.mark.parametrize("decoder", DECODERS)
def test_a_folder_of_only_corrupt_files_is_an_error_naming_them(tmp_path, decoder):
    rng = np.random.default_rng(0)
    root = write_files(tmp_path, {f"{k}.jpg": b"\xff\xd8\xff" + rng.integers(0, 256, 500, dtype=np.uint8).tobytes()
                                  for k in range(6)})
    result = epoch_within(Loader(root, batch_size=4, decoder=decoder, shuffle=False))
    assert isinstance(result.get("error"), BadImageError), result
    message = str(result["error"])
    assert "none of the 6 files of epoch 0 could be decoded" in message and "0.jpg" in message and "\n" not in message


def test_consecutive_undecodable_files_stop_the_epoch(tmp_path):
    good = synthetic._encode(synthetic.render(0, 2, 24, 24, np.random.default_rng(0)))
    files = {"a_good.jpg": good, **{f"b_bad{k:02d}.jpg": b"not an image" for k in range(12)}, "c_good.jpg": good}
    root = write_files(tmp_path, files)
    result = epoch_within(Loader(root, batch_size=3, decoder="pil", shuffle=False, max_consecutive_bad=5))
    message = str(result["error"])
    assert isinstance(result["error"], BadImageError) and "5 files in a row could not be decoded" in message
    assert "b_bad00.jpg (not an image" in message and "max_consecutive_bad=5" in message
    loader = Loader(root, batch_size=3, decoder="pil", shuffle=False, max_consecutive_bad=None)
    result = epoch_within(loader)
    assert [b["ids"].tolist() for b in result["batches"]] == [[0], [13]]
    assert [b["index"] for b in result["batches"]] == [0, 4]
    assert loader.stats.bad_count == 12 and loader.stats.empty_batches == 3
    assert loader.stats.bad_files[0] == (os.path.join(root, "b_bad00.jpg"), "not an image (unknown file signature)")
    with pytest.raises(ValueError, match="max_consecutive_bad"):
        Loader(root, batch_size=3, decoder="pil", max_consecutive_bad=0)


def test_a_compressed_tar_is_refused_with_what_to_do(tmp_path):
    path = str(tmp_path / "shard.tar")
    data = synthetic._encode(synthetic.render(0, 2, 24, 24, np.random.default_rng(0)))
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("k.jpg")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match=r"shard.tar' is gzip-compressed.*decompress it first \(gzip -dc"):
        Loader(path, batch_size=2, decoder="pil")
