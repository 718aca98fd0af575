"""Where the encoded images come from: an image folder, a file list, or tar shards.

A :class:`Source` is an indexable, immutable list of samples: sample ``i`` (its id) has a name (for
reports), a label (-1 when unlabelled) and ``read(i)`` returns its encoded bytes. Samples are sorted by
name when scanned, so ids are the same on every machine and every rank.

- :func:`image_folder`: ``root/<class>/<file>`` gives labels from the sorted class folders; a folder
  with images and no class subfolders is a flat, unlabelled set.
- :func:`file_list`: a text file with one ``path [label]`` per line (paths relative to the list's folder).
- :func:`tar_shards`: uncompressed tar files (webdataset layout: ``key.jpg`` with an optional ``key.cls``
  holding the integer label), indexed once; reading a sample is one seek + read. A compressed shard
  (gzip, bzip2, xz, zstd — whatever its name) is refused with a message saying to decompress it: its
  members have no offset to seek to.

Example:
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> for c in ("cat", "dog"):
    ...     os.makedirs(os.path.join(root, c))
    ...     open(os.path.join(root, c, "a.jpg"), "wb").close()
    >>> source = image_folder(root)
    >>> len(source), source.classes, source.labels.tolist()
    (2, ['cat', 'dog'], [0, 1])
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass, field

import numpy as np

TAR_EXTENSIONS = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar.zst")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".pnm", ".ppm", ".pgm")


@dataclass(frozen=True)
class Source:
    """Samples ``0..len-1``: ``names[i]`` (path or ``shard:member``), ``labels[i]`` (int64, -1 = none)."""

    names: list[str]
    labels: np.ndarray
    classes: list[str] = field(default_factory=list)
    _locations: list[tuple[str, int, int]] | None = None  # tar shards: (shard path, data offset, size)

    def __post_init__(self):
        if len(self.names) == 0:
            raise ValueError("the source holds no images")
        if len(self.labels) != len(self.names):
            raise ValueError(f"labels has {len(self.labels)} entries for {len(self.names)} images")

    def __len__(self) -> int:
        return len(self.names)

    def read(self, i: int) -> bytes:
        """The encoded bytes of sample ``i`` (raises OSError when the file cannot be read)."""
        if self._locations is None:
            with open(self.names[i], "rb") as f:
                return f.read()
        path, offset, size = self._locations[i]
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(size)
        if len(data) != size:
            raise OSError(f"{self.names[i]}: the shard ends after {len(data)} of {size} bytes")
        return data


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def image_folder(root: str) -> Source:
    """Images under ``root``: class subfolders (labels = index of the sorted class names) or flat (labels -1)."""
    return folder(root, IMAGE_EXTENSIONS, "images")


def folder(root: str, extensions: tuple[str, ...], what: str) -> Source:
    """Files with one of ``extensions`` under ``root``: class subfolders (labels = index of the sorted class names,
    files found recursively) or flat (labels -1); ``what`` names them in errors ("images", "videos")."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"data folder {root!r} does not exist")
    wanted = tuple(e.lower() for e in extensions)
    entries = sorted(os.scandir(root), key=lambda e: e.name)
    classes = [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]
    names, labels = [], []
    if classes:
        for label, cls in enumerate(classes):
            for dirpath, dirnames, filenames in os.walk(os.path.join(root, cls), followlinks=True):
                dirnames.sort()
                names += [os.path.join(dirpath, f) for f in sorted(filenames) if f.lower().endswith(wanted)]
                labels += [label] * (len(names) - len(labels))
    else:
        names = [e.path for e in entries if e.is_file() and e.name.lower().endswith(wanted)]
        labels = [-1] * len(names)
    if not names:
        raise ValueError(f"data folder {root!r} holds no {what} (extensions: {', '.join(extensions)})")
    return Source(names, np.asarray(labels, dtype=np.int64), classes)


def file_list(path: str) -> Source:
    """Images listed in a text file, one ``path [label]`` per line; relative paths are taken from its folder."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"file list {path!r} does not exist")
    base = os.path.dirname(os.path.abspath(path))
    names, labels = [], []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            parts = line.strip().rsplit(maxsplit=1)
            if not parts or parts[0].startswith("#"):
                continue
            label = -1
            if len(parts) == 2:
                try:
                    label = int(parts[1])
                except ValueError:  # a path with a space and no label
                    parts = [line.strip()]
            names.append(os.path.join(base, parts[0]))
            labels.append(label)
    if not names:
        raise ValueError(f"file list {path!r} lists no images")
    return Source(names, np.asarray(labels, dtype=np.int64))


def tar_shards(paths: list[str]) -> Source:
    """Images inside tar files (members ``key.<image ext>``, optional ``key.cls`` label), in shard order."""
    return tar_members(paths, IMAGE_EXTENSIONS, "images")


def tar_members(paths: list[str], extensions: tuple[str, ...], what: str) -> Source:
    """Members with one of ``extensions`` inside uncompressed tar files (webdataset layout: ``key.<ext>`` with an
    optional ``key.cls`` label), named ``shard:member``, in shard order then member name."""
    if isinstance(paths, str):
        paths = [paths]
    names, labels, locations = [], [], []
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"tar shard {path!r} does not exist")
        _refuse_compressed(path)
        try:
            with tarfile.open(path, "r:") as tar:
                members = [m for m in tar.getmembers() if m.isfile()]
                cls = {os.path.splitext(m.name)[0]: m for m in members if m.name.endswith(".cls")}
                for m in sorted((m for m in members if m.name.lower().endswith(extensions)), key=lambda m: m.name):
                    key = os.path.splitext(m.name)[0]
                    names.append(f"{path}:{m.name}")
                    labels.append(_tar_label(tar, path, cls[key]) if key in cls else -1)
                    locations.append((path, m.offset_data, m.size))
        except tarfile.TarError as error:
            raise ValueError(f"tar shard {path!r} cannot be read: {error}") from error
    if not names:
        raise ValueError(f"tar shards {paths} hold no {what}")
    return Source(names, np.asarray(labels, dtype=np.int64), _locations=locations)


# Leading bytes of the compressions tarfile would undo on the fly; samples are read by their offset in the file.
_COMPRESSIONS = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}


def _refuse_compressed(path: str) -> None:
    """A compressed shard has no member offsets to seek to: say so, and how to fix it."""
    with open(path, "rb") as f:
        head = f.read(6)
    for magic, name in _COMPRESSIONS.items():
        if head.startswith(magic):
            raise ValueError(f"tar shard {path!r} is {name}-compressed; samples are read by seeking into the "
                             f"shard, so decompress it first ({name} -dc {path} > plain.tar)")


def _tar_label(tar: tarfile.TarFile, path: str, member: tarfile.TarInfo) -> int:
    text = tar.extractfile(member).read().decode(errors="replace").strip()
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"tar shard {path!r}: label member {member.name!r} holds {text[:40]!r}, "
                         f"not an integer class index") from None


def open_source(spec) -> Source:
    """A Source from a folder, a ``.txt`` file list, a ``.tar`` path or a list of them, or a Source."""
    if isinstance(spec, Source):
        return spec
    if isinstance(spec, (list, tuple)):
        return tar_shards(list(spec))
    spec = os.fspath(spec)
    if spec.endswith(TAR_EXTENSIONS):
        return tar_shards([spec])
    if os.path.isfile(spec):
        return file_list(spec)
    return image_folder(spec)
