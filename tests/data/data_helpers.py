"""Shared by the data tests (a module of its own: conftest modules of several folders share one name)."""

import threading

from fastssl.data import available_decoders

DECODERS = [name for name, ok in available_decoders().items() if ok]


def epoch_within(loader, epoch: int = 0, seconds: float = 60.0) -> dict:
    """{"batches": the batches of ``epoch``} or {"error": the error it ended with}, consumed in a thread: a hang
    fails the test instead of stalling it."""
    result = {}

    def consume():
        try:
            result["batches"] = list(loader.epoch(epoch))
        except Exception as error:
            result["error"] = error

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the epoch did not end within {seconds} s"
    return result
