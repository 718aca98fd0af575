"""The DALI runs the whole-file decoders share, on a stand-in pipeline (no DALI needed): reuse, rebuilds, one-line
failures, and bisection down to the files at fault."""

import numpy as np
import pytest

from fastssl.data.dali_runs import ReusedPipeline, bisect_failures, one_line, read_checked


class FakePipeline:
    """Returns its inputs doubled; fails on a negative input, and for good once it has failed (as DALI's do)."""

    def __init__(self, batch_size):
        self.batch_size, self.fed, self.broken = batch_size, {}, False

    def build(self):
        pass

    def feed_input(self, name, data):
        assert len(data) <= self.batch_size
        self.fed[name] = data

    def run(self):
        if self.broken or any(x < 0 for x in self.fed["x"]):
            self.broken = True
            raise RuntimeError("Critical error in pipeline:\nError in CPU operator `x`, which was used with the "
                               "following traceback:\n  ...\nencountered:\n\nbad input x\n")
        return ([2 * x for x in self.fed["x"]],)


def test_a_pipeline_is_reused_grown_and_rebuilt_after_a_failure():
    built = []
    runs = ReusedPipeline(lambda size: built.append(size) or FakePipeline(size))
    assert runs.run({"x": [1, 2]}, lambda out: out[0]) == [2, 4]
    assert runs.run({"x": [3]}, lambda out: out[0]) == [6] and built == [2]  # a smaller batch: the same pipeline
    assert runs.run({"x": [1, 2, 3]}, lambda out: out[0]) == [2, 4, 6] and built == [2, 3]
    with pytest.raises(RuntimeError, match="^bad input x$"):
        runs.run({"x": [1, -1]}, lambda out: out[0])
    assert runs.pipe is None
    assert runs.run({"x": [5]}, lambda out: out[0]) == [10] and built == [2, 3, 3]


def test_bisection_isolates_every_bad_position_and_keeps_the_rest():
    values = [4, -1, 7, 8, -2, 9, 1]
    runs = ReusedPipeline(FakePipeline)

    def run(positions):
        return dict(zip(positions, runs.run({"x": [values[p] for p in positions]}, lambda out: out[0])))

    done, failed = bisect_failures(run, list(range(len(values))))
    assert done == {p: 2 * v for p, v in enumerate(values) if v >= 0}
    assert failed == [(1, "decoding failed: bad input x"), (4, "decoding failed: bad input x")]
    assert bisect_failures(run, []) == ({}, [])


def test_one_line_joins_dalis_message_and_what_its_native_code_printed():
    error = RuntimeError("Traceback ...\nCritical error encountered:\n  Invalid data\n  at frame 3\n")
    printed = "[/opt/dali/a.cc:1] libav: broken packet\n\n[/opt/dali/a.cc:1] libav: broken packet\nsecond\n"
    assert one_line(error, printed) == "Invalid data; libav: broken packet; second"
    assert one_line(RuntimeError(""), "") == "DALI error"


class Info:
    def __init__(self, size):
        self.bytes = size


def test_read_checked_says_why_a_file_is_not_what_was_indexed():
    data, why = read_checked(Info(3), lambda info: b"abc")
    assert data.dtype == np.uint8 and data.tolist() == [97, 98, 99] and why == ""
    assert read_checked(Info(4), lambda info: b"abc") == (None, "changed since it was indexed (3 bytes, the index "
                                                                "says 4)")

    def unreadable(info):
        raise FileNotFoundError(2, "No such file or directory")

    assert read_checked(Info(4), unreadable) == (None, "unreadable: No such file or directory")
