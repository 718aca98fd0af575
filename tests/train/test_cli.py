"""The command line: train / eval / demo end to end on tiny data, and clear messages for bad input."""

import argparse
import json
import os
import subprocess
import sys
import time

import pytest

from fastssl.cli import _parser, main
from fastssl.train import TrainConfig


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
    assert "Traceback" not in done.stderr, done.stderr[-2000:]


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(tmp_path):
    missing = str(tmp_path / "missing.pt")
    with pytest.raises(SystemExit) as ended:
        main(["eval", "--checkpoint", missing, "--data", str(tmp_path)])
    message = str(ended.value)
    assert message.startswith("fastssl eval: ") and missing in message and "--debug" in message
    assert "\n" not in message
    with pytest.raises(Exception) as raised:
        main(["--debug", "eval", "--checkpoint", missing, "--data", str(tmp_path)])
    assert not isinstance(raised.value, SystemExit)


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


def _parsers(parser, name="fastssl"):
    """(command, parser) for every command and task of the command line."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_help_shows_every_default():
    for name, parser in _parsers(_parser()):
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            default = action.default
            if default is None or default is False or default == [] or default is argparse.SUPPRESS:
                continue
            assert f"(default: {default})" in text or "default:" in (action.help or ""), (name, action.dest)


def test_train_task_help_lists_the_task_options_with_types_and_defaults(capsys):
    with pytest.raises(SystemExit) as done:
        main(["train", "pirl", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "usage: fastssl train pirl" in text and "--image-size INT" in text and "(default: 64)" in text
    options = {line.split()[0]: line.split(None, 2)[1:] for line in text.split("pirl options")[1].splitlines()[1:]}
    assert options["temperature"] == ["float", "(default: 0.07)"]
    assert options["permutations"] == ["int", "(default: 1000)"]
    assert options["num_samples"] == ["int", "(default: the number of images in --data)"]
    with pytest.raises(SystemExit):
        main(["train", "rotation", "--help"])
    assert "rotation has no task options" in capsys.readouterr().out


def test_the_backbone_default_is_the_task_s_own(capsys):
    with pytest.raises(SystemExit):
        main(["train", "mae", "--help"])
    assert "(default: vit_tiny)" in " ".join(capsys.readouterr().out.split())
    assert TrainConfig(task="mae", data=".", out="x").backbone == "vit_tiny"
    assert TrainConfig(task="simclr", data=".", out="x").backbone == "resnet18"


@pytest.mark.parametrize("task, option, message", [
    ("simclr", "tau=0.1", "simclr has no option 'tau' (its options: temperature, strength, projection_dim, "
                          "min_scale; see fastssl train simclr --help)"),
    ("rotation", "grid=2", "rotation has no option 'grid' (it takes none; see fastssl train rotation --help)"),
    ("simclr", "temperature=hot", "--option temperature expects float, got 'hot'"),
    ("jigsaw", "cell=2.5", "--option cell expects int | None, got '2.5'"),
    ("mae", "norm_pix=False", "--option norm_pix expects bool (JSON: true or false), got 'False'"),
])
def test_a_bad_task_option_names_the_valid_ones(task, option, message, tmp_path):
    with pytest.raises(SystemExit) as done:
        main(["train", task, "--data", ".", "--out", str(tmp_path / "run"), "--option", option])
    assert str(done.value.code) == f"fastssl train: {message}"
    assert not (tmp_path / "run").exists()
