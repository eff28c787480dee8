"""The command line: fit on real data end to end (tiny settings), reload a model, predict."""

import json
import pathlib

import h5py
import joblib
import pytest

from sklearn_blend import BlendEstimator, load
from sklearn_blend.cli import build_parser, load_data, main, parse_assignments

from .helpers import write_small_nwb

TINY = ["base=ndt", "hidden_size=8", "n_layers=1", "ffn_size=16", "max_epochs=2", "early_stopping=False"]


def test_help_documents_every_option(capsys):
    for command in (["--help"], ["fit", "--help"], ["predict", "--help"]):
        with pytest.raises(SystemExit):
            main(command)
    text = capsys.readouterr().out
    for option in ("--data", "--align-field", "--align-range", "--forward-ms", "--behavior",
                   "--behavior-lag", "--methods", "--test-fraction", "--seed", "--set",
                   "--out", "--quiet"):
        assert option in text
    for action in build_parser()._subparsers._group_actions[0].choices["fit"]._actions:
        assert action.help, action.dest


def test_fit_on_bundled_data_writes_table_figure_and_models(tmp_path, capsys):
    out = tmp_path / "run"
    main(["fit", "--methods", "ndt", "hard", "teacher", "--set", *TINY, "--out", str(out),
          "--quiet"])
    table = (out / "results.md").read_text()
    for method in ("ndt", "hard", "teacher"):
        assert f"| {method} |" in table
    assert (out / "velocity.png").stat().st_size > 10_000
    run = json.loads((out / "run.json").read_text())
    assert len(run["test_trials"]) == 15
    assert sorted(p.name for p in (out / "models").iterdir()) == [
        "hard.safetensors", "ndt.safetensors", "teacher.safetensors"]
    model = load(out / "models" / "hard.safetensors")  # the safe format: no pickle
    assert isinstance(model, BlendEstimator) and model.n_heldout == 35
    assert model.forward_bins == 40
    rates_file = tmp_path / "rates.h5"
    main(["predict", str(out / "models" / "hard.safetensors"), "--out", str(rates_file)])
    with h5py.File(rates_file) as f:
        assert f["rates"].shape == (75, 140, 142)
    # a pickle is refused (one error line, status 2), whatever its name
    joblib.dump(model, tmp_path / "pickled.safetensors")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "pickled.safetensors"), "--out",
                 str(tmp_path / "other.h5")]) == 2
    assert "looks like a pickle" in capsys.readouterr().err
    assert not (tmp_path / "other.h5").exists()


def test_fit_with_the_lfads_base(tmp_path):
    out = tmp_path / "gru_run"
    main(["fit", "--methods", "ndt", "hard", "--set", "base=gru", "hidden_size=8",
          "n_layers=1", "max_epochs=2", "early_stopping=False", "--out", str(out), "--quiet"])
    model = load(out / "models" / "hard.safetensors")
    assert model.base == "gru" and type(model.student_.base).__name__ == "GRUModel"


def test_fit_on_an_nwb_file(tmp_path):
    path = tmp_path / "small.nwb"
    write_small_nwb(path)
    out = tmp_path / "nwb_run"
    main(["fit", "--data", str(path), "--align-range", "-100", "100", "--bin-size", "10",
          "--behavior", "hand_vel", "--methods", "ndt", "hard", "--test-fraction", "0.3",
          "--set", *TINY, "--out", str(out), "--quiet"])
    assert "| hard |" in (out / "results.md").read_text()


def test_bad_arguments_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="--set expects NAME=VALUE"):
        parse_assignments(["alpha"])
    assert parse_assignments(["alpha=0.3", "strategy=None", "hidden_size=8"]) == {
        "alpha": 0.3, "strategy": None, "hidden_size": 8}
    with pytest.raises(ValueError, match="a .h5 or a .nwb file"):
        load_data(build_parser().parse_args(["fit", "--data", str(tmp_path / "data.csv")]))


@pytest.mark.parametrize("argv, message", [
    (["--data", "data.csv"], "error: --data must be 'mc_maze_small', a .h5 or a .nwb file"),
    (["--data", "absent.nwb"], "error: no NWB file"),
    (["--set", "bogus=1"], "error: --set: .*bogus"),
    (["--set", "alpha=7"], "error: alpha must be"),
    (["--set", "alpha"], "error: --set expects NAME=VALUE"),
    (["--test-fraction", "1.5"], "error: --test-fraction must be in"),
])
def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch, argv, message):
    import re

    from sklearn_blend import cli

    monkeypatch.chdir(tmp_path)
    # options are checked before any work: nothing may train
    monkeypatch.setattr("sklearn_blend.evaluation.evaluate_split",
                        lambda *a, **k: pytest.fail("trained despite a bad option"))
    assert cli.main(["fit", *argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert re.match(message, err) and err.count("\n") == 1, err


def test_an_unwritable_output_fails_before_any_work(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setattr("sklearn_blend.datasets.load_mc_maze_small",
                        lambda: pytest.fail("loaded data despite an unwritable --out"))
    assert main(["fit", "--out", str(blocker / "run")]) == 2
    assert "error: cannot write to the output folder" in capsys.readouterr().err


def test_files_are_written_atomically(tmp_path):
    from sklearn_blend.cli import write_atomic

    target = tmp_path / "model.joblib"
    target.write_text("previous")

    def crash_midway(tmp):
        pathlib.Path(tmp).write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, crash_midway)
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["model.joblib"]
    write_atomic(target, lambda tmp: pathlib.Path(tmp).write_text("new"))
    assert target.read_text() == "new" and len(list(tmp_path.iterdir())) == 1
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert target.stat().st_mode == plain.stat().st_mode  # not the temporary file's 0600


def test_console_script_and_module_entry_points():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).with_name("sklearn-blend")
    assert script.exists(), "pip install -e . installs the sklearn-blend console script"
    for command in ([str(script), "--help"], [sys.executable, "-m", "sklearn_blend", "--help"]):
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        assert "{fit,predict,submit}" in result.stdout


def test_fit_runs_the_baselines_and_the_default_student_unless_told_otherwise():
    args = build_parser().parse_args(["fit"])
    assert args.methods == ["smoothing", "ndt", "teacher", BlendEstimator().strategy]
    assert BlendEstimator().strategy == "feature" and BlendEstimator().base == "gru"
    every = build_parser().parse_args(["fit", "--methods", "hard", "soft", "correlation"])
    assert every.methods == ["hard", "soft", "correlation"]
