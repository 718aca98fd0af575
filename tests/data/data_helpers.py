"""Shared by the data tests (a module of its own: conftest modules of several folders share one name)."""

from fastssl.data import available_decoders

DECODERS = [name for name, ok in available_decoders().items() if ok]
