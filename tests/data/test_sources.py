"""Sources: image folders (labelled and flat), file lists, tar shards, and their errors."""

import io
import os
import tarfile

import pytest

from fastssl.data import file_list, image_folder, open_source, tar_shards


def touch(path, data=b"x"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def test_labelled_folder(tmp_path):
    for name in ("b/2.png", "b/1.jpg", "a/z.JPEG", "a/sub/y.jpg", "a/notes.txt", "c/.hidden/q.jpg"):
        touch(tmp_path / name)
    source = image_folder(str(tmp_path))
    assert source.classes == ["a", "b", "c"]
    assert [os.path.relpath(n, tmp_path) for n in source.names] == ["a/z.JPEG", "a/sub/y.jpg", "b/1.jpg", "b/2.png",
                                                                    "c/.hidden/q.jpg"]
    assert source.labels.tolist() == [0, 0, 1, 1, 2]
    assert source.read(2) == b"x"


def test_flat_folder_is_unlabelled(tmp_path):
    touch(tmp_path / "2.jpg", b"two")
    touch(tmp_path / "1.jpg", b"one")
    source = open_source(str(tmp_path))
    assert source.labels.tolist() == [-1, -1] and source.read(0) == b"one"


def test_file_list(tmp_path):
    touch(tmp_path / "img" / "a b.jpg", b"ab")
    touch(tmp_path / "img" / "c.jpg", b"c")
    (tmp_path / "list.txt").write_text("# comment\nimg/a b.jpg 3\n\nimg/c.jpg\n")
    source = file_list(str(tmp_path / "list.txt"))
    assert source.labels.tolist() == [3, -1]
    assert source.read(0) == b"ab" and source.read(1) == b"c"


def test_tar_shards(tmp_path):
    path = str(tmp_path / "shard.tar")
    with tarfile.open(path, "w") as tar:
        for key, data, label in (("k2", b"second", b"7"), ("k1", b"first", None)):
            for name, payload in ((f"{key}.jpg", data), (f"{key}.cls", label)):
                if payload is not None:
                    info = tarfile.TarInfo(name)
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))
    source = open_source(path)
    assert source.names == [f"{path}:k1.jpg", f"{path}:k2.jpg"]
    assert source.labels.tolist() == [-1, 7]
    assert source.read(0) == b"first" and source.read(1) == b"second"
    assert len(tar_shards([path, path])) == 4


def test_errors_name_the_source(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        image_folder(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        image_folder(str(tmp_path / "empty"))
    (tmp_path / "list.txt").write_text("\n# nothing\n")
    with pytest.raises(ValueError, match="lists no images"):
        file_list(str(tmp_path / "list.txt"))
    (tmp_path / "broken.tar").write_bytes(b"not a tar at all" * 64)
    with pytest.raises(ValueError, match="broken.tar"):
        tar_shards([str(tmp_path / "broken.tar")])


def test_a_label_that_is_no_integer_names_the_shard_and_member(tmp_path):
    path = str(tmp_path / "shard.tar")
    with tarfile.open(path, "w") as tar:
        for name, payload in (("k1.jpg", b"x"), ("k1.cls", b"dog\n")):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(ValueError, match=r"shard.tar': label member 'k1.cls' holds 'dog', not an integer") as error:
        tar_shards([path])
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("compression, name", [("gz", "gzip"), ("bz2", "bzip2"), ("xz", "xz")])
def test_compressed_shards_are_refused_whatever_their_name(tmp_path, compression, name):
    for file in ("shard.tar", f"shard.tar.{compression}"):
        path = str(tmp_path / file)
        with tarfile.open(path, f"w:{compression}") as tar:
            info = tarfile.TarInfo("k.jpg")
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
        with pytest.raises(ValueError, match=f"{file}' is {name}-compressed.*decompress it first"):
            open_source(path)
