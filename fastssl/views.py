"""Deprecated alias, for one release: :mod:`fastssl.views` was split between the op and the pipeline's policy.

- :class:`~fastssl.ops.augment_params.AugmentParams` (what ``fastssl.ops.augment`` takes), ``INTERPOLATIONS``
  and ``COLOR_OPS`` (formerly ``COLOUR_OPS``): :mod:`fastssl.ops.augment_params`;
- the recipes (``ViewRecipe``, ``Recipe``, ``simclr``, ``byol``, ``mocov2``, ``mae``, ``multicrop``,
  ``IMAGENET_MEAN``, ``IMAGENET_STD``) and the drawing of parameters (``draw``, ``draw_view``):
  :mod:`fastssl.recipes`.

Importing this module, and every use of one of its names, gives a ``FutureWarning`` naming the new home;
the names are the new modules' objects themselves.
"""

from __future__ import annotations

import warnings

from . import recipes as _recipes
from .ops import augment_params as _augment_params

_RENAMED = {"COLOUR_OPS": "COLOR_OPS"}
_PARAMS_NAMES = ("AugmentParams", "INTERPOLATIONS", "COLOR_OPS")

warnings.warn("fastssl.views is deprecated and will be removed in the next release: import AugmentParams from "
              "fastssl.ops.augment_params and the recipes (simclr, draw, ...) from fastssl.recipes",
              FutureWarning, stacklevel=2)


def _home(name: str):
    """The module that now holds ``name`` (after its renaming), or None."""
    new_name = _RENAMED.get(name, name)
    if new_name in _PARAMS_NAMES:
        return _augment_params
    for module in (_recipes, _augment_params):
        if hasattr(module, new_name):
            return module
    return None


def __getattr__(name: str):
    module = _home(name)
    if module is None or name.startswith("__"):
        raise AttributeError(f"module 'fastssl.views' has no attribute {name!r}")
    new_name = _RENAMED.get(name, name)
    warnings.warn(f"fastssl.views.{name} is deprecated and will be removed in the next release: use "
                  f"{module.__name__}.{new_name}", FutureWarning, stacklevel=2)
    return getattr(module, new_name)


__all__ = [*_recipes.__all__, *_PARAMS_NAMES, *_RENAMED]
