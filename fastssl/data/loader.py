"""The input pipeline: encoded files → decoded ragged batch on the device → views, in a background thread.

Per batch (ids from :class:`~fastssl.data.order.EpochOrder`): read the files (thread pool), decode them
(:mod:`fastssl.data.decoders`: DALI on the GPU or CPU, else torchvision or Pillow), then run the
transform on the decoded :class:`~fastssl.ragged.RaggedImages` where it lies — by default the views of a
:class:`~fastssl.recipes.Recipe` through ``fastssl.ops.augment`` (cpp on the CPU, the GPU kernels on CUDA).
Decoding runs one batch ahead of the views, in a thread of its own, and up to ``prefetch`` batches are
made ahead while the consumer trains.

Batches are dicts on the device: ``ids`` (B,) int64 sample ids, ``labels`` (B,) int64 (-1: none),
``epoch``, ``index`` (the batch's position in the epoch, an int: skipped batches leave gaps), ``images``
(the decoded RaggedImages, with ``keep_images``), and what the transform adds
(``views``: list of (B, 3, h, w) tensors, ``params``: the AugmentParams of each view). A file that cannot
be read or decoded is left out of its batch, counted and named in ``stats.bad_files`` (``strict=True``
raises :class:`BadImageError` instead), so a batch may hold fewer than ``batch_size`` samples (and a
batch of only bad files is skipped, counted in ``stats.empty_batches``). Data that is broken as a whole
ends the epoch with a :class:`BadImageError` naming some of the files instead of yielding nothing:
``max_consecutive_bad`` files in a row that cannot be decoded, or an epoch none of whose files decode.

Example:
    >>> import tempfile
    >>> from fastssl import recipes
    >>> from fastssl.data import Loader, synthetic
    >>> root = synthetic.write_image_folder(tempfile.mkdtemp(), classes=2, per_class=3, seed=0)
    >>> loader = Loader(root, batch_size=4, views=recipes.simclr(size=32), decoder="pil")
    >>> batch = next(iter(loader.epoch(0)))
    >>> batch["ids"].shape, [v.shape for v in batch["views"]]
    (torch.Size([4]), [torch.Size([4, 3, 32, 32]), torch.Size([4, 3, 32, 32])])
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

import torch

from ..ops.augment import Augment
from ..ragged import RaggedImages
from ..recipes import Recipe
from .decoders import make_decoder
from .headers import MAX_PIXELS
from .order import EpochOrder
from .sources import Source, open_source
from .stats import LoaderStats

Transform = Callable[[RaggedImages, torch.Tensor, int], dict]


class BadImageError(RuntimeError):
    """A file could not be read or decoded and the loader is strict."""


def _distributed_shard() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def check_pipeline(prefetch: int, max_consecutive_bad: int | None) -> None:
    """The checks of the background pipeline's settings, shared by every loader."""
    if prefetch < 1:
        raise ValueError(f"prefetch must be >= 1, got {prefetch}")
    if max_consecutive_bad is not None and max_consecutive_bad < 1:
        raise ValueError(f"max_consecutive_bad must be >= 1 or None, got {max_consecutive_bad}")


class RecipeViews:
    """The default transform: every view of ``recipe`` via ``fastssl.ops.augment`` → {"views", "params"}."""

    def __init__(self, recipe: Recipe, *, seed: int = 0, dtype: torch.dtype = torch.float32,
                 channels_last: bool = False, backend: str = "auto"):
        self.augment = Augment(recipe, seed=seed, dtype=dtype, channels_last=channels_last, backend=backend)

    def __call__(self, images: RaggedImages, ids: torch.Tensor, epoch: int) -> dict:
        out, params = self.augment(images, ids, epoch)
        return {"views": out, "params": params}


class Loader:
    """Batches of decoded, augmented images from ``source`` (see the module docstring).

    Args:
        source: an image folder (class subfolders → labels, or flat), a ``.txt`` file list, a ``.tar``
            shard or a list of them, or a :class:`~fastssl.data.sources.Source`.
        batch_size: samples per batch (per rank).
        views: a :class:`~fastssl.recipes.Recipe` whose views every batch gets (``transform`` otherwise).
        transform: ``f(images, ids, epoch) -> dict`` run on each decoded batch instead of ``views``.
        device: where decoding and the views happen ("cpu" or a CUDA device).
        decoder: "auto" | "dali" | "torchvision" | "pil" (auto: the first installed, in that order).
        seed: keys the shuffle and the views; the same (seed, epoch, id) gives the same views whatever
            the batch size, thread count or number of shards.
        shuffle, drop_last: as in torch's DataLoader (a fresh order every epoch).
        shard_id, num_shards: this rank's share (default: torch.distributed's rank and world size).
        num_threads: threads reading files and decoding.
        prefetch: batches prepared ahead of the consumer.
        strict: raise on the first bad file instead of skipping it.
        max_consecutive_bad: raise :class:`BadImageError` after this many files in a row (in epoch order)
            could not be read or decoded (None: never; an epoch of only bad files raises regardless).
        max_pixels: files whose header claims more pixels are skipped as too large, before decoding.
        keep_images: also return the decoded images.
        dtype, channels_last, backend: output dtype / layout of the views and the augment backend.

    CPU mode: decoding and the views take turns on the same cores. Run with ``OMP_WAIT_POLICY=PASSIVE`` in
    the environment (it is read when torch starts): torch's OpenMP threads then sleep between the views'
    parallel loops instead of spinning on the cores the decoder's threads need next (+3% on 2 cores).
    """

    bad_error = BadImageError  #: what bad files raise (strict, or too many in a row)

    def __init__(self, source, *, batch_size: int, views: Recipe | None = None, transform: Transform | None = None,
                 device="cpu", decoder: str = "auto", seed: int = 0, shuffle: bool = True, drop_last: bool = False,
                 shard_id: int | None = None, num_shards: int | None = None, num_threads: int | None = None,
                 prefetch: int = 2, strict: bool = False, max_consecutive_bad: int | None = 100,
                 max_pixels: int = MAX_PIXELS, keep_images: bool = False, hw_decoder_load: float = 0.65,
                 dtype: torch.dtype = torch.float32, channels_last: bool = False, backend: str = "auto"):
        if views is not None and transform is not None:
            raise ValueError("give views or transform, not both")
        check_pipeline(prefetch, max_consecutive_bad)
        self.source: Source = open_source(source)
        rank, world = _distributed_shard()
        self.order = EpochOrder(len(self.source), batch_size, seed=seed, shuffle=shuffle, drop_last=drop_last,
                                shard_id=rank if shard_id is None else shard_id,
                                num_shards=world if num_shards is None else num_shards)
        self.device = torch.device(device)
        threads = num_threads or min(8, os.cpu_count() or 1)
        self.decoder = make_decoder(decoder, self.device, num_threads=threads, hw_decoder_load=hw_decoder_load,
                                    max_pixels=max_pixels)
        self.read_threads = threads
        self.readers = ThreadPoolExecutor(threads, thread_name_prefix="fastssl-read")
        if views is not None:
            transform = RecipeViews(views, seed=seed, dtype=dtype, channels_last=channels_last, backend=backend)
        self.transform, self.prefetch, self.strict, self.keep_images = transform, prefetch, strict, keep_images
        self.max_consecutive_bad = max_consecutive_bad
        self.next_epoch = 0
        self.stats = LoaderStats()

    def __len__(self) -> int:
        """Batches per epoch on this rank."""
        return len(self.order)

    @property
    def decoder_name(self) -> str:
        return self.decoder.name

    def __iter__(self) -> Iterator[dict]:
        """The next epoch (0, 1, ... or from :meth:`set_epoch`)."""
        epoch = self.next_epoch
        self.next_epoch += 1
        return self.epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.next_epoch = epoch

    def epoch(self, epoch: int, start: int = 0, visit: torch.Tensor | None = None) -> Iterator[dict]:
        """The batches of ``epoch`` from batch ``start`` on (to resume mid-epoch); resets ``stats``. ``visit``: the
        sample ids to visit instead of the epoch's shuffled order (see :meth:`EpochOrder.batches`)."""
        batches = self.order.batches(epoch, visit)
        if not 0 <= start <= len(batches):
            raise ValueError(f"start must be in [0, {len(batches)}], got {start}")
        self.stats = LoaderStats()
        return _Epoch(self, epoch, batches[start:], start)

    # --- the background thread's work, one batch at a time ---

    def _read(self, ids: torch.Tensor) -> tuple[list[int], list[bytes], list[tuple[int, str]]]:
        def read(chunk: list[int]):
            results = []
            for i in chunk:
                try:
                    results.append((self.source.read(i), None))
                except OSError as error:
                    results.append((None, f"cannot be read: {error}"))
            return results

        # One task per reader thread, each reading its share in order: a task per file would cost more
        # in the pool's bookkeeping (~40 us of Python each) than reading a cached file does.
        ids_list = ids.tolist()
        share = max(1, -(-len(ids_list) // self.read_threads))
        chunks = [ids_list[k:k + share] for k in range(0, len(ids_list), share)]
        results = [result for chunk in self.readers.map(read, chunks) for result in chunk]
        good = [k for k, (data, _) in enumerate(results) if data is not None]
        bad = [(k, why) for k, (data, why) in enumerate(results) if data is None]
        return good, [results[k][0] for k in good], bad

    def _decode(self, epoch: int, ids: torch.Tensor) -> tuple:
        """Stage 1 of a batch: read and decode. Returns (ids, readable positions, Decoded, unreadable)."""
        t0 = time.perf_counter()
        readable, encoded, bad = self._read(ids)
        t1 = time.perf_counter()
        decoded = self.decoder.decode(encoded)
        self.stats.add(read_s=t1 - t0, decode_s=time.perf_counter() - t1)
        return ids, readable, decoded, bad

    def _finish(self, epoch: int, run: "_BadRun", ids: torch.Tensor, readable: list[int], decoded,
                bad: list) -> dict | None:
        """Stage 2 of a batch: account for the bad files, then the transform. None when nothing decoded."""
        t0 = time.perf_counter()
        bad = dict(bad + [(readable[k], why) for k, why in decoded.failed])
        named = {k: (self.source.names[int(ids[k])], why) for k, why in sorted(bad.items())}
        if named:
            if self.strict:
                raise BadImageError("; ".join(f"{name}: {why}" for name, why in named.values()))
            with self.stats._lock:
                self.stats.bad_files += named.values()
        run.update([named.get(k) for k in range(len(ids))])
        if decoded.images is None:
            with self.stats._lock:
                self.stats.empty_batches += 1
            return None
        kept = ids[[readable[k] for k in decoded.kept]]
        batch = {"ids": kept.to(self.device), "labels": torch.from_numpy(self.source.labels[kept.numpy()]).to(self.device),
                 "epoch": epoch}
        if self.keep_images:
            batch["images"] = decoded.images
        if self.transform is not None:
            batch.update(self.transform(decoded.images, batch["ids"], epoch))
        self.stats.add(augment_s=time.perf_counter() - t0)
        return batch


class _BadRun:
    """The files of an epoch that could not be decoded in a row (epoch order); raises past ``limit`` of them,
    or at the end of an epoch in which no file decoded."""

    SHOWN = 3  # files named in the error

    def __init__(self, limit: int | None, epoch: int, error: type[Exception] = BadImageError):
        self.limit, self.epoch, self.error = limit, epoch, error
        self.length, self.first, self.any_good = 0, [], False

    def update(self, outcomes: list[tuple[str, str] | None]) -> None:
        """``outcomes``: per file of a batch, in order, (name, why) when it failed, None when it decoded."""
        for outcome in outcomes:
            if outcome is None:
                self.length, self.first, self.any_good = 0, [], True
                continue
            self.length += 1
            if len(self.first) < self.SHOWN:
                self.first.append(outcome)
            if self.limit is not None and self.length >= self.limit:
                raise self.error(f"{self.length} files in a row could not be decoded "
                                    f"(max_consecutive_bad={self.limit}): {self._examples()}; check the data")

    def finish(self) -> None:
        if self.length and not self.any_good:
            raise self.error(f"none of the {self.length} files of epoch {self.epoch} could be decoded: "
                                f"{self._examples()}; check the data")

    def _examples(self) -> str:
        shown = "; ".join(f"{name} ({why})" for name, why in self.first)
        return shown + (" ..." if self.length > len(self.first) else "")


_DONE = object()


def _put(q: queue.Queue, stop: threading.Event, item) -> bool:
    """Puts ``item`` unless the consumer has left; False when it has."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _decode_ahead(loader: Loader, epoch: int, batches: list[torch.Tensor], q: queue.Queue, stop: threading.Event,
                  stream) -> None:
    """Stage 1 thread: reads and decodes the batches in order, one ahead of stage 2, so that decoding the
    next batch overlaps the views of this one (each stage alone leaves cores idle between its calls)."""
    try:
        with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
            for ids in batches:
                if stop.is_set() or not _put(q, stop, loader._decode(epoch, ids)):
                    return
    except BaseException as error:  # handed to stage 2, then to the consumer
        _put(q, stop, error)


def _produce(loader: Loader, epoch: int, batches: list[torch.Tensor], q: queue.Queue, stop: threading.Event,
             stream, start: int) -> None:
    """Stage 2 thread: the views of each decoded batch, in order, on the loader's CUDA stream (the decoding
    stage uses the same stream, so its output is ready for the views); hands over errors."""
    decoded: queue.Queue = queue.Queue(maxsize=1)
    decoder = threading.Thread(target=_decode_ahead, args=(loader, epoch, batches, decoded, stop, stream),
                               name="fastssl-decode-ahead", daemon=True)
    decoder.start()
    run = _BadRun(loader.max_consecutive_bad, epoch, loader.bad_error)
    try:
        for index in range(start, start + len(batches)):
            item = _get(decoded, stop)
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            if stream is not None:
                with torch.cuda.stream(stream):
                    batch = loader._finish(epoch, run, *item)
                    ready = torch.cuda.Event()
                    ready.record(stream)
            else:
                batch, ready = loader._finish(epoch, run, *item), None
            del item
            if batch is not None:
                batch["index"] = index
            if batch is not None and not _put(q, stop, (batch, ready)):
                return
        run.finish()
        _put(q, stop, _DONE)
    except BaseException as error:  # handed to the consumer, raised there
        _put(q, stop, error)
    finally:
        stop.set()  # stage 1 ends; the decoder is never left running into the next epoch
        decoder.join()


def _get(q: queue.Queue, stop: threading.Event):
    """The next item of ``q``, or None once ``stop`` is set."""
    while not stop.is_set():
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue
    return None


class _Epoch:
    """Iterator over one epoch's batches, made ahead in a background thread; closing it stops the thread.

    The thread holds no reference to this iterator, so a consumer that drops it mid-epoch (a ``break``)
    frees it, and ``__del__`` stops the thread.
    """

    def __init__(self, loader: Loader, epoch: int, batches: list[torch.Tensor], start: int = 0):
        self.loader, self.epoch, self.batches = loader, epoch, batches
        self.queue: queue.Queue = queue.Queue(maxsize=loader.prefetch)
        self.stop = threading.Event()
        stream = torch.cuda.Stream(loader.device) if loader.device.type == "cuda" else None
        self.thread = threading.Thread(target=_produce,
                                       args=(loader, epoch, batches, self.queue, self.stop, stream, start),
                                       name="fastssl-loader", daemon=True)
        self.thread.start()

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        stats = self.loader.stats
        if stats.started is None:
            stats.started = time.perf_counter()
        if stats.finished is not None:
            raise StopIteration
        t0 = time.perf_counter()
        item = self.queue.get()
        stats.add(wait_s=time.perf_counter() - t0)
        if item is _DONE:
            stats.finished = time.perf_counter()
            self.close()
            raise StopIteration
        if isinstance(item, BaseException):
            self.close()
            raise item
        batch, ready = item
        if ready is not None:
            consumer = torch.cuda.current_stream(self.loader.device)
            consumer.wait_event(ready)
            for tensor in _tensors(batch):
                if tensor.is_cuda:
                    tensor.record_stream(consumer)
        stats.add(batches=1, images=len(batch["ids"]))
        return batch

    def close(self) -> None:
        """Stops the background thread (also when the consumer leaves the epoch early)."""
        self.stop.set()
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                break
        if threading.current_thread() is not self.thread:
            self.thread.join()

    def __del__(self):
        self.close()


def _tensors(value):
    """Every tensor inside a batch (dicts, lists, dataclasses such as RaggedImages and AugmentParams)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)
    elif hasattr(value, "__dataclass_fields__"):
        for name in value.__dataclass_fields__:
            yield from _tensors(getattr(value, name))
