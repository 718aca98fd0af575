"""fastssl.progress: a line per update on a terminal (redrawn), few lines in a log."""

import io

from fastssl.progress import Progress, maybe


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_the_line_redrawn_and_a_newline_at_the_end():
    out = Terminal()
    bar = Progress(3, "writing images", stream=out, every_s=0)
    for done in (1, 2, 3):
        bar.update(done)
    assert out.getvalue() == ("\rwriting images [##########....................] 1/3"
                              "\rwriting images [####################..........] 2/3"
                              "\rwriting images [##############################] 3/3\n")


def test_a_log_gets_the_first_and_the_last_line_of_a_short_run():
    out = io.StringIO()
    bar = Progress(100, stream=out, every_s=0)
    for done in range(1, 101):
        bar.update(done, "text")
    assert out.getvalue().splitlines() == [f"[{'.' * 30}] 1/100 text", f"[{'#' * 30}] 100/100 text"]


def test_maybe_is_none_when_disabled():
    assert maybe(False, 10) is None and isinstance(maybe(True, 10), Progress)
