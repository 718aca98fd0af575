"""Test configuration: `cuda` tests skip without a GPU; `triton` tests need a GPU or TRITON_INTERPRET=1;
every test's random inputs are seeded from its id, so a failure reproduces on every run; the docstring
examples of fastssl's modules (collected with --doctest-modules, see pyproject.toml) run except those of
the modules in DOCTESTS_BEING_FIXED."""

import os
import random
import sys
import zlib

import numpy as np

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))  # tests/helpers.py


#: Temporary: modules (by name) whose docstring examples do not pass yet while their owners rewrite them;
#: their examples are reported as skipped. Remove a module as soon as its examples pass.
DOCTESTS_BEING_FIXED: set[str] = set()


def pytest_collection_modifyitems(config, items):
    has_cuda = torch.cuda.is_available()
    interpreter = os.environ.get("TRITON_INTERPRET", "0") == "1"
    skip_cuda = pytest.mark.skip(reason="needs a CUDA GPU")
    skip_triton = pytest.mark.skip(reason="Triton needs a CUDA GPU or TRITON_INTERPRET=1")
    skip_example = pytest.mark.skip(reason="docstring examples being rewritten (DOCTESTS_BEING_FIXED)")
    for item in items:
        example = getattr(item, "dtest", None)  # a doctest: the examples of one docstring
        if example is not None and example.globs.get("__name__") in DOCTESTS_BEING_FIXED:
            item.add_marker(skip_example)
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
