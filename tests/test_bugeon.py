"""load_bugeon on a tiny copy of the published Bugeon et al. (2022) file layout."""

from __future__ import annotations

import numpy as np
import pytest

from sklearn_blend.datasets._bugeon import load_bugeon
from sklearn_blend.data.recordings import Recordings

FRAME_RATE = 4.3
#: session name -> (lines of neuron.ttype.txt, n_frames)
SESSIONS = {
    "SB025/2019-10-04": (
        ["EC", "EC", "IN", "Pvalb-Tpbg", "Sst-Chodl", "Vip-Ptprt-Pkp2", "", "EC"], 200
    ),
    "SB025/2019-10-07": (
        ["EC", "Lamp5-Lsp1", "nan", "Sncg-Vip-Nptx2", "Serpinf1-Aqp5-Vip", "EC"], 180
    ),
    "SB026/2019-10-11": (
        ["EC", "IN", "Sst-Calb2-Pdlim5", "EC", "EC", "Pvalb-Reln-Itm2a"], 150
    ),
}
BLOCK_FILES = (
    "frame.neuralActivity.npy", "frame.times.npy", "running.speed.npy", "running.times.npy",
    "eye.size.npy", "eye.times.npy",
)


def running_speed(t):
    return 2.0 * t + 1.0


def pupil_size(t):
    return 50.0 - 0.5 * t


def write_block(block_dir, n_frames, n_neurons, rng, start):
    """One <stimulus>/<block> folder: activity, frame times and behavior on their own clocks."""
    block_dir.mkdir(parents=True)
    frame_times = start + np.arange(n_frames) / FRAME_RATE
    activity = rng.gamma(2.0, 1.5, size=(n_frames, n_neurons))
    running_times = np.arange(start - 0.5, frame_times[-1] + 0.5, 1 / 13.0)
    eye_times = np.arange(start - 0.3, frame_times[-1] + 0.3, 1 / 10.0)
    eye_size = pupil_size(eye_times)
    eye_size[[3, 4, 40]] = np.nan  # dropped pupil samples
    for name, values in {
        "frame.neuralActivity.npy": activity,
        "frame.times.npy": frame_times[:, None],
        "running.speed.npy": running_speed(running_times)[:, None],
        "running.times.npy": running_times[:, None],
        "eye.size.npy": eye_size[:, None],
        "eye.times.npy": eye_times[:, None],
        "frame.states.npy": np.zeros((n_frames, 1)),
    }.items():
        np.save(block_dir / name, values)
    return activity, frame_times


def write_layout(root, *, constant_neuron=True):
    """The published layout under ``root``; returns raw activity and frame times per session."""
    rng = np.random.default_rng(0)
    root.mkdir(exist_ok=True)
    (root / "states.names.txt").write_text("Running\nStationary Desynchronized\n")
    (root / "ttypes.names.txt").write_text("Pvalb-Tpbg\nSst-Chodl\n")
    (root / "__MACOSX" / "SB099" / "2019-01-01").mkdir(parents=True)  # zip debris, skipped
    raw = {}
    for index, (name, (ttypes, n_frames)) in enumerate(SESSIONS.items()):
        session_dir = root / name
        session_dir.mkdir(parents=True)
        (session_dir / "neuron.ttype.txt").write_text("\n".join(ttypes) + "\n")
        np.save(session_dir / "neuron.UniqueID.npy", np.full((len(ttypes), 1), np.nan))
        activity, frame_times = write_block(
            session_dir / "Blank" / "01", n_frames, len(ttypes), rng, start=10.0 * index
        )
        if constant_neuron and index == 0:
            activity[:, 1] = 3.0
            np.save(session_dir / "Blank" / "01" / "frame.neuralActivity.npy", activity)
        raw[name] = activity, frame_times
    return raw


@pytest.fixture
def layout(tmp_path):
    root = tmp_path / "Bugeon et al 2022"
    return root, write_layout(root)


def zscore(a):
    return (a - a.mean(axis=0)) / a.std(axis=0)


def test_shapes_sessions_and_fields(layout):
    root, _ = layout
    data = load_bugeon(root)
    assert set(data) == {
        "X", "ei", "subclass", "ttype", "session", "mouse", "session_names",
        "behavior_names", "frame_rate", "DESCR",
    }
    assert isinstance(data.X, Recordings)
    assert data.session_names == list(SESSIONS)
    assert data.X.shape == (20, 1) and data.X.n_sessions == 3
    assert [a.shape for a in data.X.activity] == [(200, 8), (180, 6), (150, 6)]
    assert [b.shape for b in data.X.behavior] == [(200, 2), (180, 2), (150, 2)]
    assert {a.dtype for a in data.X.activity + data.X.behavior} == {np.dtype(np.float32)}
    np.testing.assert_array_equal(data.session, [0] * 8 + [1] * 6 + [2] * 6)
    np.testing.assert_array_equal(data.session, data.X.sessions)
    np.testing.assert_array_equal(data.mouse, ["SB025"] * 14 + ["SB026"] * 6)
    assert data.behavior_names == ["running_speed", "pupil_size"]
    assert data.frame_rate == pytest.approx(FRAME_RATE)
    assert "Bugeon" in data.DESCR and "19448531" in data.DESCR and "Blank/01" in data.DESCR


def test_labels_follow_the_ttype_file(layout):
    root, _ = layout
    data = load_bugeon(root)
    lines = [line for ttypes, _ in SESSIONS.values() for line in ttypes]
    expected_ttype = ["" if line == "nan" else line for line in lines]
    np.testing.assert_array_equal(data.ttype, expected_ttype)
    np.testing.assert_array_equal(data.ei, [
        "EC", "EC", "IN", "IN", "IN", "IN", "", "EC",
        "EC", "IN", "", "IN", "IN", "EC",
        "EC", "IN", "IN", "EC", "EC", "IN",
    ])
    np.testing.assert_array_equal(data.subclass, [
        "", "", "", "Pvalb", "Sst", "Vip", "", "",
        "", "Lamp5", "", "Sncg", "", "",  # Serpinf1 is none of the five subclasses
        "", "", "Sst", "", "", "Pvalb",
    ])
    for field in ("ei", "subclass", "ttype"):
        assert data[field].dtype.kind == "U" and data[field].shape == (20,)


def test_activity_is_zscored_per_neuron_over_the_session(layout):
    root, raw = layout
    data = load_bugeon(root)
    for loaded, (activity, _) in zip(data.X.activity, raw.values()):
        varying = activity.std(axis=0) > 0
        np.testing.assert_allclose(loaded[:, varying], zscore(activity[:, varying]),
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(loaded[:, varying].mean(axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(loaded[:, varying].std(axis=0), 1, atol=1e-5)
    np.testing.assert_array_equal(data.X.activity[0][:, 1], 0.0)  # the constant neuron


def test_behavior_is_interpolated_at_frame_times(layout):
    root, raw = layout
    data = load_bugeon(root, zscore_behavior=False)
    for behavior, (_, frame_times) in zip(data.X.behavior, raw.values()):
        # both signals are linear in time, so interpolation at the frames is exact, also
        # across the NaN pupil samples
        np.testing.assert_allclose(behavior[:, 0], running_speed(frame_times), rtol=1e-5)
        np.testing.assert_allclose(behavior[:, 1], pupil_size(frame_times), rtol=1e-5)
    standardized = load_bugeon(root)
    for behavior, raw_units in zip(standardized.X.behavior, data.X.behavior):
        np.testing.assert_allclose(behavior, zscore(raw_units.astype(np.float64)), atol=1e-5)


def test_mice_and_sessions_select_sessions(layout):
    root, raw = layout
    data = load_bugeon(root, mice="SB026")
    assert data.session_names == ["SB026/2019-10-11"]
    assert data.X.shape == (6, 1)
    np.testing.assert_array_equal(data.session, 0)
    np.testing.assert_array_equal(data.mouse, "SB026")
    np.testing.assert_array_equal(data.ttype, SESSIONS["SB026/2019-10-11"][0])

    data = load_bugeon(root, mice=["SB025"], sessions=["SB025/2019-10-07", "SB026/2019-10-11"])
    assert data.session_names == ["SB025/2019-10-07"]
    np.testing.assert_allclose(
        data.X.activity[0], zscore(raw["SB025/2019-10-07"][0]), rtol=1e-5, atol=1e-5
    )
    with pytest.raises(ValueError, match=r"mice \['SB027'\] are not under path.*'SB025'"):
        load_bugeon(root, mice=["SB027"])
    with pytest.raises(ValueError, match=r"sessions \['SB025/2019-10-05'\] are not under"):
        load_bugeon(root, sessions="SB025/2019-10-05")
    with pytest.raises(ValueError, match="select no session"):
        load_bugeon(root, mice="SB026", sessions="SB025/2019-10-04")


def test_other_stimulus_blocks(layout):
    root, _ = layout
    write_block(root / "SB026" / "2019-10-11" / "Drifting Gratings" / "01", 120, 6,
                np.random.default_rng(1), start=0.0)
    data = load_bugeon(root, mice="SB026", stimulus="Drifting Gratings")
    assert data.X.activity[0].shape == (120, 6)
    assert "Drifting Gratings/01" in data.DESCR
    with pytest.raises(FileNotFoundError, match=r"Drifting Gratings.*holds \['Blank/01'\]"):
        load_bugeon(root, stimulus="Drifting Gratings")
    with pytest.raises(ValueError, match="stimulus must be a folder name"):
        load_bugeon(root, stimulus="Blank/01")


def test_clear_errors_for_a_wrong_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no Bugeon et al\. data folder.*figshare"):
        load_bugeon(tmp_path / "absent")
    (tmp_path / "empty" / "SB025").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"no session folders <mouse>/<YYYY-MM-DD>"):
        load_bugeon(tmp_path / "empty")


@pytest.mark.parametrize("missing", ["neuron.ttype.txt", *BLOCK_FILES])
def test_a_missing_file_is_named(tmp_path, missing):
    root = tmp_path / "data"
    write_layout(root)
    session_dir = root / "SB025" / "2019-10-07"
    target = session_dir / missing if missing.endswith(".txt") else (
        session_dir / "Blank" / "01" / missing
    )
    target.unlink()
    with pytest.raises(FileNotFoundError, match=rf"missing file .*{missing}.*expected"):
        load_bugeon(root)


def test_mismatched_files_raise_value_errors(tmp_path):
    root = tmp_path / "data"
    write_layout(root)
    session_dir = root / "SB026" / "2019-10-11"
    (session_dir / "neuron.ttype.txt").write_text("EC\nIN\n")
    with pytest.raises(ValueError, match="has 2 lines but the activity has 6 neurons"):
        load_bugeon(root)
    (session_dir / "neuron.ttype.txt").write_text("EC\n" * 6 + "\n\n")  # trailing blank lines
    assert load_bugeon(root, mice="SB026").X.shape == (6, 1)
    np.save(session_dir / "Blank" / "01" / "frame.times.npy", np.arange(10.0)[:, None])
    with pytest.raises(ValueError, match="has 10 times but frame.neuralActivity.npy has 150"):
        load_bugeon(root)
