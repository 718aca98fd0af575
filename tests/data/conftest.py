"""Shared data for the loader tests: a small generated JPEG folder with awkward and broken files."""

import pytest

from fastssl.data import synthetic


@pytest.fixture(scope="session")
def image_root(tmp_path_factory):
    """3 classes × 7 JPEGs of 20–70 px per side, plus the hostile files in class_2 (``bad_*``: 5 undecodable;
    ``odd_*``: 10 awkward but decodable): 36 files."""
    root = str(tmp_path_factory.mktemp("images"))
    synthetic.write_image_folder(root, classes=3, per_class=7, min_size=20, max_size=70, seed=3)
    synthetic.write_hostile_files(f"{root}/class_2")
    return root


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory):
    """{path: decodable} for the awkward and broken files, in a folder of their own."""
    folder = str(tmp_path_factory.mktemp("bad"))
    return {f"{folder}/{name}": ok for name, ok in synthetic.write_bad_files(folder).items()}
