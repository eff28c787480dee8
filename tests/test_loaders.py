"""Loaders for real files: nlb_tools .h5 tensors and raw NWB (pynwb)."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from sklearn_blend.datasets import load_mc_maze_small, load_nlb_h5, load_nwb

from .helpers import write_small_nwb

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mc_maze_small"
TEST_NWB = SHARED / "sub-Jenkins_ses-small_desc-test_ecephys.nwb"


@pytest.mark.skipif(not TEST_NWB.exists(), reason="needs ../shared/data beside the repo")
def test_official_test_nwb_bins_like_the_nlb_tensors():
    data = load_nwb(TEST_NWB, align_field="move_onset_time", align_range_ms=(-250, 450),
                    bin_size_ms=5)
    assert data.spikes.shape == (100, 140, 107)
    assert data.spikes_heldout.shape == (100, 140, 0)
    assert data.behavior is None
    bundled = load_mc_maze_small().spikes
    r = np.corrcoef(data.spikes.mean(axis=(0, 1)), bundled.mean(axis=(0, 1)))[0, 1]
    assert r > 0.99  # same units, same order, different trials


@pytest.mark.skipif(not TEST_NWB.exists(), reason="needs ../shared/data beside the repo")
def test_clear_errors_for_wrong_fields_and_missing_behavior():
    with pytest.raises(ValueError, match="align_field='go_cue_time' is not a column"):
        load_nwb(TEST_NWB, align_field="go_cue_time")
    with pytest.raises(ValueError, match=r"no behavior time series \['hand_vel'\].*spikes only"):
        load_nwb(TEST_NWB, behavior="hand_vel")
    with pytest.raises(ValueError, match="multiple of bin_size_ms"):
        load_nwb(TEST_NWB, align_range_ms=(-250, 452))


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no NWB file"):
        load_nwb(tmp_path / "absent.nwb")
    with pytest.raises(FileNotFoundError, match="no NLB tensor file"):
        load_nlb_h5(tmp_path / "absent.h5")


def test_nwb_with_behavior_and_heldout_units(tmp_path):
    path = tmp_path / "small.nwb"
    write_small_nwb(path)
    data = load_nwb(path, align_range_ms=(-100, 100), bin_size_ms=10, behavior="hand_vel",
                    behavior_lag_ms=20)
    assert data.spikes.shape == (3, 20, 2) and data.spikes_heldout.shape == (3, 20, 1)
    assert np.all(data.spikes[:, 10, 0] == 1) and data.spikes[:, :, 0].sum() == 3
    assert np.all(data.spikes[:, 0, 1] == 2)
    assert np.all(data.spikes_heldout[:, 11, 0] == 1)
    assert data.behavior.shape == (3, 20, 2)
    # bin 0 of trial 1 covers [1.2, 1.21) s + 20 ms lag: mean of samples 1.220..1.229 s
    assert data.behavior[1, 0, 0] == pytest.approx(1.2245, abs=1e-6)
    assert data.behavior[1, 0, 1] == pytest.approx(-1.2245, abs=1e-6)
    assert list(data.unit_ids_heldout) == [2]


def test_nlb_h5_round_trip(tmp_path):
    path = tmp_path / "tensors.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f["train_spikes_heldin"] = rng.poisson(1, (4, 6, 3)).astype("float32")
        f["train_spikes_heldout"] = rng.poisson(1, (4, 6, 2)).astype("float32")
        f["train_behavior"] = rng.normal(size=(4, 6, 2))
    data = load_nlb_h5(path, bin_size_ms=20)
    assert data.spikes.shape == (4, 6, 3) and data.spikes_heldout.shape == (4, 6, 2)
    assert data.spikes_forward is None and data.bin_size_ms == 20
    with pytest.raises(ValueError, match="not an nlb_tools tensor file"):
        load_nlb_h5(path, split="eval")
