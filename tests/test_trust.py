"""Trust, round two: each defect a hostile test found, held to its fix (one test each; the
all-or-nothing updates are in ``test_skeleton.py``)."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
import warnings

import h5py
import numpy as np
import pytest
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_blend import (BandPower, BlendEstimator, BlendTeacher, CrossModalEstimator,
                           LFPPreprocessor, MaskedAutoencoder, NedsEstimator, NeuronEmbedding,
                           SessionTrials, load, persistence)
from sklearn_blend.cli import main
from sklearn_blend.datasets import make_cell_types, make_synthetic

from .helpers import TINY, TINY_NEURONS, rewrite_model_file, write_small_nwb

SESSIONS = dict(hidden_size=8, n_layers=1, n_heads=2, ffn_size=16, max_epochs=2,
                batch_size=8, warmup_steps=1, early_stopping=False, random_state=0)


@pytest.fixture(scope="module")
def data():
    return make_synthetic("simple", n_trials=24, n_time=10, n_neurons=6, random_state=0)


# ------------------------------------------------------------------ 2. memory= folders
def test_a_pipelines_memory_folder_is_reset_on_load(data, tmp_path):
    X, b = data
    folder = tmp_path / "planted"
    pipe = Pipeline([("scale", StandardScaler()), ("ridge", RidgeCV())],
                    memory=str(folder)).fit(X.reshape(-1, 6), b.reshape(-1, 2))
    path = tmp_path / "pipe.safetensors"
    persistence.save(pipe, path)
    with pytest.warns(UserWarning, match=r"Pipeline.memory=.*planted.*\(now None\)"):
        loaded = load(path)
    assert loaded.memory is None
    np.testing.assert_array_equal(loaded.predict(X.reshape(-1, 6)), pipe.predict(X.reshape(-1, 6)))


# ------------------------------------------------------------------ 3. bfloat16 everywhere
def _fit_in_bfloat16(name, X, b):
    bf16 = dict(TINY, random_state=0, precision="bfloat16")
    if name == "BlendEstimator":
        return BlendEstimator(**bf16).fit(X, b).transform(X)
    if name == "BlendTeacher":
        return BlendTeacher(**bf16).fit(X, b).predict_rates(X, b)
    if name == "NedsEstimator":
        neds = NedsEstimator(**dict(SESSIONS, precision="bfloat16")).fit(X, b)
        return np.concatenate([neds.predict(X), neds.predict_rates(X)], axis=-1)
    if name == "NEDS teacher":
        teacher = NedsEstimator(**dict(SESSIONS, precision="bfloat16"))
        return BlendEstimator(teacher=teacher, **bf16).fit(X, b).transform(X)
    if name == "MaskedAutoencoder":
        return MaskedAutoencoder(**dict(SESSIONS, precision="bfloat16")).fit(X).transform(X)
    if name == "CrossModalEstimator":
        model = CrossModalEstimator(**dict(SESSIONS, precision="bfloat16"))
        return model.fit(X - 1.0, privileged=X).transform(X - 1.0)
    cells = make_cell_types(n_sessions=2, n_neurons=12, n_frames=64, random_state=0)
    return NeuronEmbedding(**TINY_NEURONS, random_state=0, precision="bfloat16").fit_transform(
        cells.X)


@pytest.mark.parametrize("name", ["BlendEstimator", "BlendTeacher", "NedsEstimator",
                                  "NEDS teacher", "MaskedAutoencoder", "CrossModalEstimator",
                                  "NeuronEmbedding"])
def test_every_estimator_fits_and_predicts_in_bfloat16(data, name):
    X, b = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # emulated bfloat16 on some CPUs
        out = _fit_in_bfloat16(name, X, b)
    assert np.isfinite(out).all()


# ------------------------------------------------------------------ 4, 6, 7. the command line
def _fitted_model(tmp_path, n_heldout=0):
    X, b = make_synthetic("simple", n_trials=16, n_time=10, n_neurons=13, random_state=0)
    path = tmp_path / "model.safetensors"
    BlendEstimator(n_heldout=n_heldout, **TINY, random_state=0).fit(X, b).save(path)
    return path


def _nwb_with_neurons(path, n_heldin, n_heldout):
    from datetime import datetime, timezone

    from pynwb import NWBHDF5IO, NWBFile

    nwb = NWBFile(session_description="t", identifier="t",
                  session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc))
    nwb.add_trial_column("move_onset_time", "onset")
    for i in range(4):
        nwb.add_trial(start_time=float(i), stop_time=i + 0.9, move_onset_time=i + 0.3)
    nwb.add_unit_column("heldout", "held-out")
    rng = np.random.default_rng(0)
    for unit in range(n_heldin + n_heldout):
        nwb.add_unit(spike_times=np.sort(rng.uniform(0, 4, 40)), heldout=unit >= n_heldin)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def test_cli_predict_refuses_a_model_without_rates(tmp_path, capsys):
    lfp = np.random.default_rng(0).normal(size=(8, 6, 3))
    path = tmp_path / "auto.safetensors"
    MaskedAutoencoder(modality="lfp", **SESSIONS).fit(lfp).save(path)
    assert main(["predict", str(path), "--out", str(tmp_path / "rates.h5")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "predicts no rates" in err and "BlendEstimator" in err
    assert not (tmp_path / "rates.h5").exists()


def test_cli_predict_checks_the_neurons_against_the_model(tmp_path, capsys):
    model = _fitted_model(tmp_path, n_heldout=3)  # 10 held-in + 3 held-out
    data = _nwb_with_neurons(tmp_path / "seven.nwb", 7, 3)
    assert main(["predict", str(model), "--data", str(data), "--align-range", "-100", "100",
                 "--bin-size", "20", "--out", str(tmp_path / "rates.h5")]) == 2
    err = capsys.readouterr().err
    assert "7 held-in and 3 held-out neurons, but the model was fitted on 10 held-in" in err
    assert not (tmp_path / "rates.h5").exists()


@pytest.mark.parametrize("argv, message", [
    (["--bin-size", "0"], "--bin-size must be a positive number of ms, got 0"),
    (["--bin-size", "nan"], "--bin-size must be a finite number"),
    (["--forward-ms", "-5"], "--forward-ms must be 0 or more"),
    (["--align-range", "100", "-100"], "--align-range must be START STOP with START < STOP"),
    (["--set", "n_heldout=3"], "--set n_heldout=...: the command sets n_heldout"),
    (["--seed", "-1"], "--seed must be a whole number in [0, 2**32 - 1], got -1"),
    (["--seed", str(2**32)], "--seed must be a whole number in [0, 2**32 - 1]"),
])
def test_cli_numeric_options_are_checked_before_any_work(tmp_path, capsys, monkeypatch, argv,
                                                          message):
    monkeypatch.setattr("sklearn_blend.datasets.load_mc_maze_small",
                        lambda: pytest.fail("loaded data despite a bad option"))
    assert main(["fit", *argv, "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err


def test_a_window_too_large_for_memory_is_refused_with_its_size(tmp_path, capsys):
    path = tmp_path / "small.nwb"
    write_small_nwb(path)
    start = time.perf_counter()
    assert main(["fit", "--data", str(path), "--forward-ms", "1e12", "--bin-size", "1",
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "would take" in err and "GiB, more than the" in err
    assert time.perf_counter() - start < 60


# ------------------------------------------------------------------ 5. a full disk
def _full_disk(monkeypatch):
    """Every atomic write fails as on a full disk, after writing part of its file."""
    from sklearn_blend.persistence import files

    original = files.write_atomic

    def full(path, write):
        def partial(tmp):
            with open(tmp, "wb") as file:
                file.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")

        return original(path, partial)

    monkeypatch.setattr(files, "write_atomic", full)
    monkeypatch.setattr(persistence, "write_atomic", full)


def test_a_full_disk_is_exit_1_with_one_line_and_no_file(tmp_path, capsys, monkeypatch):
    model = _fitted_model(tmp_path)
    _full_disk(monkeypatch)
    out = tmp_path / "rates.h5"
    assert main(["predict", str(model), "--data", str(_nwb_with_neurons(
        tmp_path / "ten.nwb", 13, 0)), "--align-range", "-100", "100", "--bin-size", "20",
        "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "No space left" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors", "ten.nwb"]
    with pytest.raises(OSError, match="No space left"):
        load(model).save(tmp_path / "again.safetensors")
    assert not (tmp_path / "again.safetensors").exists()


def test_a_full_disk_at_the_output_folder_is_exit_1(tmp_path, capsys, monkeypatch):
    _full_disk(monkeypatch)
    monkeypatch.setattr("sklearn_blend.cli.write_atomic",
                        sys.modules["sklearn_blend.persistence.files"].write_atomic)
    monkeypatch.setattr("sklearn_blend.datasets.load_mc_maze_small",
                        lambda: pytest.fail("loaded data despite a full disk"))
    assert main(["fit", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write to the output folder") and err.count("\n") == 1
    assert "No space left" in err


def test_write_errors_name_the_users_path_and_keep_their_errno(tmp_path):
    from sklearn_blend.persistence.files import write_atomic

    def full(tmp):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as caught:
        write_atomic(tmp_path / "rates.h5", full)
    assert caught.value.errno == errno.ENOSPC and "rates.h5" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_safetensors_write_errors_become_os_errors(data, tmp_path, monkeypatch):
    from safetensors import SafetensorError

    X, b = data
    model = BlendEstimator(strategy=None, **TINY, random_state=0).fit(X)

    def failing(*args, **kwargs):
        raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: "
                              "StorageFull, message: \"No space left on device\" })")

    monkeypatch.setattr("safetensors.numpy.save_file", failing)
    with pytest.raises(OSError) as caught:
        model.save(tmp_path / "model.safetensors")
    assert caught.value.errno == errno.ENOSPC and "model.safetensors" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_h5_files_are_written_from_memory(tmp_path):
    from sklearn_blend.persistence.files import write_h5_atomic

    write_h5_atomic(tmp_path / "a.h5", lambda f: f.create_dataset("x", data=np.arange(3)))
    with h5py.File(tmp_path / "a.h5") as f:
        assert f["x"][:].tolist() == [0, 1, 2]


# ------------------------------------------------------------------ 8. crafted files
def test_a_crafted_size_is_refused_before_anything_is_built(data, tmp_path):
    X, b = data
    path = tmp_path / "model.safetensors"
    BlendEstimator(strategy=None, **TINY, random_state=0).fit(X).save(path)

    def deep(tree):
        tree["state"]["n_layers"] = 10**6

    rewrite_model_file(path, deep)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"n_layers must be in \[1, 1024\]"):
        load(path)
    assert time.perf_counter() - start < 5

    BlendEstimator(strategy=None, **TINY, random_state=0).fit(X).save(path)

    def long(tree):  # a fitted shape that the weights in the file do not have
        tree["state"]["n_time_in_"] = 10**6

    rewrite_model_file(path, long)
    with pytest.raises(ValueError, match="in the file, but the parameters describe"):
        load(path)


def test_a_crafted_fitted_size_is_refused_before_the_builder_allocates(data, tmp_path):
    X, b = data
    path = tmp_path / "model.safetensors"
    for value in (1_500_000_000, -3, 2.5, [6, 10**12]):
        BlendEstimator(strategy=None, **TINY, random_state=0).fit(X).save(path)
        rewrite_model_file(path, lambda tree: tree["state"].__setitem__("n_features_in_", value))
        start = time.perf_counter()
        with pytest.raises(ValueError, match=r"n_features_in_=.* is not a size"):
            load(path)
        assert time.perf_counter() - start < 5


def test_parameters_changed_after_fit_and_list_parameters_save_and_load(data, tmp_path):
    """A file is refused for weights of other shapes, not for a parameter set after fit
    (``set_params`` before ``save``) or a list the fitted config holds as a tuple."""
    X, b = data
    model = BlendEstimator(**TINY, random_state=0).fit(X, b)
    model.set_params(dropout=0.3)
    model.save(tmp_path / "blend.safetensors")
    loaded = load(tmp_path / "blend.safetensors")
    assert loaded.dropout == 0.3
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    neds = NedsEstimator(behavior_groups=[[0, 1]], hidden_size=8, n_layers=1, n_heads=2,
                         max_epochs=2, batch_size=8, early_stopping=False,
                         random_state=0).fit(X, b)
    neds.save(tmp_path / "neds.safetensors")
    np.testing.assert_array_equal(load(tmp_path / "neds.safetensors").predict(X),
                                  neds.predict(X))


def test_special_files_are_refused(tmp_path):
    with pytest.raises(ValueError, match="not a regular file"):
        load("/dev/zero")
    with pytest.raises(ValueError, match="not a regular file"):
        load(tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        load(fifo)  # returns at once: a FIFO is never opened


def test_a_file_cannot_replace_methods_or_class_attributes(data, tmp_path):
    X, b = data
    path = tmp_path / "model.safetensors"
    for name, value in (("get_params", None), ("__sklearn_clone__", None),
                        ("_parameters", {"t": "dict", "s": {}}),
                        ("__class__", None), ("fit", 3)):
        BlendEstimator(strategy=None, **TINY, random_state=0).fit(X).save(path)
        rewrite_model_file(path, lambda tree: tree["state"].__setitem__(name, value))
        with pytest.raises(ValueError, match="neither a parameter nor a fitted attribute"):
            load(path)


def test_a_file_cannot_replace_methods_of_the_objects_inside_an_estimator(data, tmp_path):
    X, b = data
    path = tmp_path / "model.safetensors"

    def shadow(name):
        def edit(tree):
            encoding = tree["state"]["teacher_"]["state"]["behavior_encoding_"]
            assert encoding["t"] == "object"
            encoding["state"]["s"][name] = None
        return edit

    for name in ("check_compatible", "__class__", "__reduce__"):
        BlendEstimator(**TINY, random_state=0).fit(X, b).save(path)
        rewrite_model_file(path, shadow(name))
        with pytest.raises(ValueError, match="BehaviorEncoding sets .*neither a parameter"):
            load(path)


@pytest.mark.parametrize("version", ["0", "-1", "\u0661", "", "1.0", "9" * 5000])
def test_a_damaged_format_version_is_refused(data, tmp_path, version):
    X, b = data
    path = tmp_path / "model.safetensors"
    BlendEstimator(strategy=None, **TINY, random_state=0).fit(X).save(path)
    rewrite_model_file(path, format_version=version)
    with pytest.raises(ValueError, match="format version .* is damaged"):
        load(path)


@pytest.mark.parametrize("top", [[], "text", None, {"t": "dict", "s": {}}])
def test_a_file_whose_content_is_no_estimator_is_refused(data, tmp_path, top):
    X, b = data
    path = tmp_path / "model.safetensors"
    BlendEstimator(strategy=None, **TINY, random_state=0).fit(X).save(path)
    rewrite_model_file(path, content=json.dumps({"object": top}))
    with pytest.raises(ValueError, match="no estimator"):
        load(path)


# ------------------------------------------------------------------ 9. the float32 range
def test_values_beyond_float32_are_an_error_not_inf(data, tmp_path):
    X, b = data
    huge = np.full((4, 600, 2), 1e300)
    tiny = np.full((4, 600, 2), 1e-300)
    for transformer in (LFPPreprocessor(sfreq=250.0, l_freq=None, h_freq=None, zscore=False),
                        BandPower(sfreq=250.0)):
        with pytest.raises(ValueError, match="beyond the float32 range"):
            transformer.fit_transform(huge)
        with pytest.raises(ValueError, match="below the float32 range"):
            transformer.fit_transform(tiny)
    with pytest.raises(ValueError, match="X holds spike counts up to 4e\\+300, beyond"):
        NedsEstimator(**SESSIONS).fit(X.astype(np.float64) * 1e300, b)
    with pytest.raises(ValueError, match="beyond the float32 range"):
        CrossModalEstimator(strategy=None, **SESSIONS).fit(huge[:, :10])
    for scale in (1e300, 1e-300):  # behavior in extreme units: NEDS decodes it in them
        neds = NedsEstimator(**SESSIONS).fit(X, b.astype(np.float64) * scale)
        decoded = neds.predict(X)
        assert decoded.dtype == np.float64 and np.isfinite(decoded).all()
        assert 1e-3 < np.abs(decoded).max() / scale < 1e3


def test_load_nwb_lfp_refuses_values_beyond_float32(tmp_path):
    from tests.test_lfp import _write_lfp_nwb

    from sklearn_blend.datasets import load_nwb_lfp

    path = _write_lfp_nwb(tmp_path / "lfp.nwb")
    with h5py.File(path, "a") as f:
        f["acquisition/lfp/data"].attrs["conversion"] = 1e300
    with pytest.raises(ValueError, match="beyond the float32 range"):
        load_nwb_lfp(path)


# ------------------------------------------------------------------ 10. the notch
def test_a_notch_below_line_frequencies_is_refused_at_once():
    start = time.perf_counter()
    with pytest.raises(ValueError, match="notch=0.01 Hz is not a line frequency"):
        LFPPreprocessor(sfreq=1000.0, notch=0.01).fit(np.zeros((2, 5000, 1)))
    assert time.perf_counter() - start < 2
    prep = LFPPreprocessor(sfreq=20000.0, l_freq=None, h_freq=None, notch=50.0,
                           common_average=False, zscore=False)
    prep.fit(np.random.default_rng(0).normal(size=(1, 40000, 1)))
    assert len([name for name, *_ in prep._filters if "notch" in name]) == 50


# ------------------------------------------------------------------ 11. loose ends
def test_device_meta_is_refused_in_fit(data):
    X, b = data
    with pytest.raises(ValueError, match="device='meta' is no device"):
        BlendEstimator(device="meta", **TINY).fit(X, b)


def test_neds_encoding_from_longer_behavior_is_a_clear_error(data):
    X, b = data
    neds = NedsEstimator(**SESSIONS).fit(X, b)
    longer = np.concatenate([b, b], axis=1)
    with pytest.raises(ValueError, match="b has 20 bins; the model was fitted on trials of 10"):
        neds.predict_rates(b=longer)


def test_all_zero_modality_weights_are_refused(data):
    X, b = data
    with pytest.raises(ValueError, match="weighs every loss of this model .* 0"):
        NedsEstimator(modality_weights={"spikes": 0, "behavior": 0}, **SESSIONS).fit(X, b)


def test_saving_into_a_missing_folder_names_the_users_path(data, tmp_path):
    X, b = data
    model = BlendEstimator(strategy=None, **TINY, random_state=0).fit(X)
    target = tmp_path / "missing" / "model.safetensors"
    with pytest.raises(OSError, match=r"cannot write .*missing/model\.safetensors'") as caught:
        model.save(target)
    assert ".model.safetensors." not in str(caught.value)


def test_load_nwb_lfp_errors(tmp_path):
    from tests.test_lfp import _write_lfp_nwb

    from sklearn_blend.datasets import load_nwb_lfp

    other = tmp_path / "other.nwb"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match="is not a valid NWB file"):
        load_nwb_lfp(other)
    path = _write_lfp_nwb(tmp_path / "nan.nwb")
    with h5py.File(path, "a") as f:
        stops = f["intervals/trials/stop_time"][:]
        stops[1] = np.nan
        f["intervals/trials/stop_time"][...] = stops
    with pytest.raises(ValueError, match=r"trials \[1\] .* have no stop_time"):
        load_nwb_lfp(path)
    path = _write_lfp_nwb(tmp_path / "rate.nwb")
    with h5py.File(path, "a") as f:
        f["acquisition/lfp/starting_time"].attrs["rate"] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="sampling rate of 0 Hz"):
            load_nwb_lfp(path)


def test_a_nan_session_key_is_refused():
    with pytest.raises(ValueError, match="keys must be hashable values that equal themselves"):
        SessionTrials([np.zeros((2, 3, 4))], keys=[float("nan")])
    with pytest.raises(ValueError, match="keys must be hashable"):
        SessionTrials([np.zeros((2, 3, 4))], keys=[["a"]])


def test_sigterm_during_fit_is_an_interrupt_that_leaves_no_file(tmp_path):
    out = tmp_path / "run"
    script = ("import sys; from sklearn_blend.cli import main; "
              f"sys.exit(main(['fit', '--out', {str(out)!r}, '--quiet', '--set', "
              "'max_epochs=100000', 'early_stopping=False', 'hidden_size=8', 'n_layers=1']))")
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (out / "models").exists():
        time.sleep(0.2)
    time.sleep(3)  # into the first fit
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "interrupted" in err
    leftovers = [p for p in out.rglob("*") if p.is_file()]
    assert leftovers == [], leftovers
