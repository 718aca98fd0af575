"""The run folder (``--out``): what a new run, ``overwrite`` and ``resume`` accept there, and what they leave.

- A new run refuses a folder that already holds a run (a ``log.csv``, ``checkpoints/``, ``tensorboard/`` or
  ``bad_files.txt``) rather than mixing two runs' logs and checkpoints; ``overwrite`` deletes those (the run's
  own files only: anything else in the folder is left alone) and starts afresh.
- The temporary files of a checkpoint save killed mid-write (``checkpoints/.tmp-*.pt``) are deleted.
- ``resume`` continues from the newest checkpoint that loads and was written by this trainer; newer ones that
  cannot be used are set aside (``step_<n>.pt.unusable``) and reported. Every setting that changes the run's
  meaning (``settings``: data, lr, schedule, batch, ...) must be what the checkpoint was written with; with
  ``resume_anyway`` the differences are reported and the new settings win.

Every message goes through ``say`` (one line each); refusals raise :class:`~fastssl.train.ranks.TrainError`.

Example:
    >>> import tempfile
    >>> out = tempfile.mkdtemp()
    >>> prepare(out, {"lr": 0.1}, resume=False, resume_anyway=False, overwrite=False, say=print)
    (None, None)
    >>> open(os.path.join(out, "log.csv"), "w").close()  # now the folder holds a run: refused without overwrite
    >>> prepare(out, {"lr": 0.1}, resume=False, resume_anyway=False, overwrite=True, say=print)  # doctest: +ELLIPSIS
    --overwrite: deleted the previous run's log.csv in ...
    (None, None)
"""

from __future__ import annotations

import os
import shutil
from typing import Callable

from . import checkpoint
from .ranks import TrainError

RUN_FILES = ("log.csv", "checkpoints", "tensorboard", "bad_files.txt")
CHECKPOINT_KEYS = ("model", "optimizer", "step", "epoch", "position", "steps_per_epoch", "settings")


def prepare(out: str, settings: dict, *, resume: bool, resume_anyway: bool, overwrite: bool,
            say: Callable[[str], None]) -> tuple[str | None, dict | None]:
    """Readies ``out`` for a run; returns (checkpoint path, its state) to resume from, or (None, None)."""
    folder = os.path.join(out, "checkpoints")
    if not resume:
        present = [name for name in RUN_FILES if os.path.exists(os.path.join(out, name))]
        if present and not overwrite:
            raise TrainError(f"--out {out} already holds a run ({', '.join(present)}): pass --resume to continue it, "
                             f"or --overwrite to delete it and start again")
        for name in present:
            path = os.path.join(out, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
        if present:
            say(f"--overwrite: deleted the previous run's {', '.join(present)} in {out}")
    for name in checkpoint.remove_temporaries(folder):
        say(f"deleted {os.path.join(folder, name)}, left by a checkpoint save that did not finish")
    if not resume:
        return None, None
    path, state, notes = checkpoint.newest_usable(folder, _not_a_checkpoint)
    for note in notes:
        say(f"--resume: {note}")
    if path is None:
        if notes:
            raise TrainError(f"--resume: no usable checkpoint in {folder} (see above); pass --overwrite instead of "
                             f"--resume to start again")
        say(f"--resume: no checkpoint in {folder} yet; starting from the beginning")
        return None, None
    changes = changed_settings(state["settings"], settings)
    if changes and not resume_anyway:
        raise TrainError(f"--resume: {path} belongs to a run with other settings ({'; '.join(changes)}); pass "
                         f"--resume-anyway to continue it with the new ones, or another --out")
    if changes:
        say(f"--resume-anyway: continuing {path} with the new settings ({'; '.join(changes)})")
    say(f"resuming from {path} (step {state['step']}, epoch {state['epoch']})")
    return path, state


def changed_settings(saved: dict, now: dict) -> list[str]:
    """One ``"name: <saved> there, <now> now"`` per setting that differs (in ``now``'s order, then saved-only)."""
    names = list(now) + [name for name in saved if name not in now]
    return [f"{name}: {saved.get(name)!r} there, {now.get(name)!r} now" for name in names
            if saved.get(name) != now.get(name)]


def _not_a_checkpoint(state: dict) -> str | None:
    missing = [key for key in CHECKPOINT_KEYS if key not in state]
    return f"no {', '.join(missing)}: not a checkpoint of this fastssl trainer" if missing else None


__all__ = ["RUN_FILES", "changed_settings", "prepare"]
