"""Old names of public arguments, kept working for one release with a FutureWarning that names the new one.

Example:
    >>> import warnings
    >>> @renamed_arguments(colour="color")
    ... def paint(*, color="red"):
    ...     return color
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     paint(colour="blue"), str(caught[0].message)
    ('blue', 'paint(colour=...) is deprecated and will be removed in the next release: use color=')
"""

from __future__ import annotations

import functools
import warnings


def renamed_arguments(**new_names: str):
    """Decorator: each keyword ``old=new`` given maps the old keyword argument to the new one, with a
    FutureWarning; passing both is a TypeError."""

    def decorate(fn):
        @functools.wraps(fn)
        def call(*args, **kwargs):
            for old, new in new_names.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{fn.__name__}() got {old}= and {new}=: pass {new}= only")
                    warnings.warn(f"{fn.__name__}({old}=...) is deprecated and will be removed in the next release: "
                                  f"use {new}=", FutureWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return call

    return decorate
