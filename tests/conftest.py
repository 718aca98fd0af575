"""Test configuration: `cuda` tests skip without a GPU; `triton` tests need a GPU or TRITON_INTERPRET=1;
every test's random inputs are seeded from its id, so a failure reproduces on every run; the docstring
examples of fastssl's modules are collected with --doctest-modules (see pyproject.toml)."""

import os
import random
import sys
import zlib

import numpy as np

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))  # tests/helpers.py


def pytest_collection_modifyitems(config, items):
    has_cuda = torch.cuda.is_available()
    interpreter = os.environ.get("TRITON_INTERPRET", "0") == "1"
    skip_cuda = pytest.mark.skip(reason="needs a CUDA GPU")
    skip_triton = pytest.mark.skip(reason="Triton needs a CUDA GPU or TRITON_INTERPRET=1")
    for item in items:
        if "cuda" in item.keywords and not has_cuda:
            item.add_marker(skip_cuda)
        if "triton" in item.keywords and not (has_cuda or interpreter):
            item.add_marker(skip_triton)


@pytest.fixture(autouse=True)
def _seed_from_test_id(request):
    """Seeds torch (CPU and CUDA), numpy and random with a hash of the test's id before each test."""
    seed = zlib.crc32(request.node.nodeid.encode())
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
