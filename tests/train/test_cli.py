"""The command line: train / eval / demo end to end on tiny data, and clear messages for bad input."""

import json
import os
import subprocess
import sys
import time

import pytest

from fastssl.cli import main


def fastssl(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "fastssl", *args], capture_output=True, text=True, timeout=timeout)


def test_train_then_eval(tiny_data, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "rotation", "--data", tiny_data, "--out", out, "--backbone", "resnet10", "--image-size",
                 "32", "--batch-size", "8", "--epochs", "1", "--decoder", "pil", "--quiet"]) == 0
    assert "trained 3 steps" in capsys.readouterr().out
    ckpt = os.path.join(out, "checkpoints", "step_3.pt")
    assert main(["eval", "--checkpoint", ckpt, "--data", tiny_data, "--decoder", "pil", "--baseline", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert set(scores) == {"trained", "random_init"}
    assert all(0 <= s["knn"] <= 1 and 0 <= s["linear"] <= 1 and s["classes"] == 4 for s in scores.values())


def test_demo_runs_and_reports(tmp_path):
    done = fastssl("demo", "--minutes", "0.05", "--images", "48", "--out", str(tmp_path), "--decoder", "pil",
                   "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "kNN" in done.stdout and "linear probe" in done.stdout and "random init" in done.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["steps"] >= 1 and report["files"] and all(os.path.exists(f) for f in report["files"])


@pytest.mark.parametrize("args,message", [
    (["train", "sudoku", "--data", ".", "--out", "x"], "invalid choice: 'sudoku'"),
    (["train", "rotation", "--data", "/nowhere", "--out", "x"], "'/nowhere' does not exist"),
    (["train", "rotation", "--data", ".", "--out", "x", "--option", "novalue"], "key=value"),
    (["eval", "--checkpoint", "/nowhere.pt", "--data", "."], "/nowhere.pt"),
    (["bench", "nonsense"], "no benchmark 'nonsense'"),
])
def test_bad_input_gets_a_clear_message(args, message):
    done = fastssl(*args, timeout=120)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr or "RuntimeError: checkpoint" in done.stderr


def test_a_used_out_is_refused_in_one_line_and_overwrite_starts_again(tiny_data, tmp_path):
    out = str(tmp_path / "run")
    args = ["train", "rotation", "--data", tiny_data, "--out", out, "--backbone", "resnet10", "--image-size", "32",
            "--batch-size", "8", "--decoder", "pil", "--quiet", "--checkpoint-every", "2"]
    assert fastssl(*args, "--epochs", "2").returncode == 0  # checkpoints step_4, step_6
    started = time.monotonic()
    again = fastssl(*args, "--epochs", "1")
    assert again.returncode != 0 and time.monotonic() - started < 60
    assert again.stderr.strip().splitlines() == [again.stderr.strip()] and "--overwrite" in again.stderr
    fresh = fastssl(*args, "--epochs", "1", "--overwrite")
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    printed = fresh.stdout.split("checkpoint ")[1].split(";")[0]
    assert os.path.exists(printed) and printed.endswith("step_3.pt")
    assert sorted(os.listdir(os.path.join(out, "checkpoints"))) == ["step_2.pt", "step_3.pt"]
    assert "0 files" in fresh.stdout and "0 non-finite steps" in fresh.stdout
