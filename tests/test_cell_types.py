import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_blend import Recordings
from sklearn_blend.datasets._cell_types import (
    DEFAULT_SUBCLASS_PROPORTIONS,
    SUBCLASSES,
    make_cell_types,
)

FIELDS = {"X", "ei", "subclass", "ttype", "session", "mouse", "session_names",
          "behavior_names", "frame_rate", "DESCR"}


@pytest.fixture(scope="module")
def data():
    """The default size (4 sessions x 200 neurons x 2000 frames)."""
    return make_cell_types(random_state=0)


def _corr(a, b):
    a, b = a - a.mean(0), b - b.mean(0)
    return (a * b).sum(0) / np.sqrt((a**2).sum(0) * (b**2).sum(0))


def _features(data):
    """Per neuron: correlation with running and pupil, lag-1 autocorrelation, correlation with
    the population mean, skewness."""
    rows = []
    for x, b in zip(data.X.activity, data.X.behavior):
        x = x.astype(float)
        skew = ((x - x.mean(0)) ** 3).mean(0) / x.std(0) ** 3
        rows.append(np.column_stack([
            _corr(x, b[:, [0]]), _corr(x, b[:, [1]]), _corr(x[1:], x[:-1]),
            _corr(x, x.mean(1, keepdims=True)), skew,
        ]))
    return np.vstack(rows)


def _balanced_accuracy(features, labels):
    model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced"))
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    return cross_val_score(model, features, labels, cv=cv, scoring="balanced_accuracy").mean()


def test_fields_shapes_and_order():
    data = make_cell_types(n_sessions=3, n_neurons=40, n_frames=150, sessions_per_mouse=2,
                           random_state=0)
    assert set(data) == FIELDS
    assert isinstance(data.X, Recordings) and len(data.X) == 120
    assert [a.shape for a in data.X.activity] == [(150, 40)] * 3
    assert [b.shape for b in data.X.behavior] == [(150, 2)] * 3
    assert data.X.activity[0].dtype == np.float32
    for field in ("ei", "subclass", "ttype", "session", "mouse"):
        assert data[field].shape == (120,)
    for field in ("ei", "subclass", "ttype", "mouse"):
        assert data[field].dtype.kind == "U"
    assert data.session.dtype.kind == "i"
    np.testing.assert_array_equal(data.session, data.X.sessions)  # session by session
    np.testing.assert_array_equal(data.X.neuron_index, np.tile(np.arange(40), 3))
    assert data.session_names == ["M0_S0", "M0_S1", "M1_S0"]
    assert data.mouse.tolist() == ["M0"] * 80 + ["M1"] * 40
    assert data.behavior_names == ["running_speed", "pupil_size"]
    assert data.frame_rate == 4.3
    assert "Bugeon" in data.DESCR and "Pvalb 0.054" in data.DESCR


def test_labels_are_consistent(data):
    ec = data.ttype == "EC"
    np.testing.assert_array_equal(data.ei == "EC", ec)
    np.testing.assert_array_equal(data.subclass[ec], "")
    np.testing.assert_array_equal(data.subclass[~ec], data.ttype[~ec])
    assert set(data.subclass[~ec]) == set(SUBCLASSES)


def test_same_seed_same_data_other_seed_other_data():
    kwargs = {"n_sessions": 2, "n_neurons": 30, "n_frames": 100}
    a, b = make_cell_types(**kwargs, random_state=3), make_cell_types(**kwargs, random_state=3)
    c = make_cell_types(**kwargs, random_state=np.random.RandomState(4))
    for x, y in zip(a.X.activity + a.X.behavior, b.X.activity + b.X.behavior):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.ttype, b.ttype)
    assert not np.array_equal(a.X.activity[0], c.X.activity[0])
    assert not np.array_equal(a.X.behavior[0], c.X.behavior[0])
    assert not np.array_equal(a.ttype, c.ttype)


def test_class_proportions_match_the_documented_ones(data):
    assert abs(np.mean(data.ei == "IN") - 0.18) < 0.01
    inhibitory = data.subclass[data.ei == "IN"]
    for name, share in DEFAULT_SUBCLASS_PROPORTIONS.items():
        assert abs(np.mean(inhibitory == name) - share) < 0.03, name
    counts = {name: int((inhibitory == name).sum()) for name in SUBCLASSES}
    assert min(counts, key=counts.get) == "Sncg"


@pytest.mark.parametrize("n_neurons, fraction", [(2, 0.18), (5, 0.01), (5, 0.99), (200, 0.18)])
def test_every_session_has_both_classes(n_neurons, fraction):
    data = make_cell_types(n_sessions=3, n_neurons=n_neurons, n_frames=20,
                           inhibitory_fraction=fraction, random_state=1)
    for s in range(3):
        assert set(data.ei[data.session == s]) == {"EC", "IN"}


def test_custom_subclass_proportions():
    shares = dict.fromkeys(SUBCLASSES, 0.0) | {"Vip": 1.0}
    data = make_cell_types(n_sessions=1, n_neurons=50, n_frames=20, subclass_proportions=shares,
                           random_state=0)
    assert set(data.subclass[data.ei == "IN"]) == {"Vip"}


def test_activity_is_z_scored(data):
    for x in data.X.activity:
        np.testing.assert_allclose(x.mean(0), 0, atol=1e-4)
        np.testing.assert_allclose(x.std(0), 1, atol=1e-3)


def test_behavior_has_running_bouts_and_a_lagging_pupil(data):
    for b in data.X.behavior:
        running, pupil = b[:, 0].astype(float), b[:, 1].astype(float)
        assert running.min() >= 0 and pupil.min() > 0
        moving = running > 2.0
        assert 0.1 < moving.mean() < 0.8  # both running and rest
        assert np.sum(moving[1:] != moving[:-1]) >= 4  # several bouts
        lag = 7  # frames, about 1.6 s
        assert _corr(pupil, running) > 0.2
        assert _corr(pupil[lag:], running[:-lag]) > _corr(pupil[:-lag], running[lag:])


def test_subclasses_differ_in_state_modulation_as_documented(data):
    features = _features(data)
    run, pupil = features[:, 0], features[:, 1]

    def mean(values, *types):
        return values[np.isin(data.ttype, types)].mean()

    # Vip, Lamp5, Sncg follow running and arousal; Pvalb and Sst hardly
    assert mean(run, "Vip", "Lamp5", "Sncg") > mean(run, "Pvalb", "Sst") + 0.1
    for name in ("Vip", "Lamp5", "Sncg"):
        assert mean(run, name) > mean(run, "Pvalb") and mean(run, name) > mean(run, "Sst")
        assert mean(pupil, name) > mean(pupil, "Pvalb")
    assert mean(run, "Vip") > mean(run, "EC") and mean(pupil, "Sncg") > mean(pupil, "EC")
    # heterogeneous: every class has cells of both signs of running correlation
    for name in ("EC", "Sst"):
        assert (run[data.ttype == name] < 0).any() and (run[data.ttype == name] > 0).any()


def test_labels_are_learnable_but_not_trivially():
    # 8 sessions: enough inhibitory cells (288) for a stable 5-fold estimate
    data = make_cell_types(n_sessions=8, n_frames=1000, random_state=0)
    features = _features(data)
    ei = _balanced_accuracy(features, data.ei)
    assert 0.65 < ei < 0.95
    inhibitory = data.ei == "IN"
    subclass = _balanced_accuracy(features[inhibitory], data.subclass[inhibitory])
    assert 0.35 < subclass < 0.85  # chance is 0.2
    # the relation to behavior carries much of the subclass information
    activity_only = _balanced_accuracy(features[inhibitory][:, 2:], data.subclass[inhibitory])
    assert activity_only < subclass - 0.05


def test_no_class_specific_modulation_removes_the_premise():
    data = make_cell_types(modulation=0.0, random_state=0)
    run = _features(data)[:, 0]
    up = run[np.isin(data.ttype, ["Vip", "Lamp5", "Sncg"])].mean()
    down = run[np.isin(data.ttype, ["Pvalb", "Sst"])].mean()
    assert abs(up - down) < 0.15  # against about 0.35 with the default modulation


@pytest.mark.parametrize("kwargs, error, match", [
    ({"n_sessions": 0}, ValueError, "n_sessions"),
    ({"n_sessions": 1.5}, TypeError, "n_sessions"),
    ({"n_neurons": 1}, ValueError, "n_neurons"),
    ({"n_frames": 1}, ValueError, "n_frames"),
    ({"n_frames": "10"}, TypeError, "n_frames"),
    ({"frame_rate": 0}, ValueError, "frame_rate"),
    ({"frame_rate": None}, TypeError, "frame_rate"),
    ({"sessions_per_mouse": 0}, ValueError, "sessions_per_mouse"),
    ({"inhibitory_fraction": 1.0}, ValueError, "inhibitory_fraction"),
    ({"inhibitory_fraction": 0}, ValueError, "inhibitory_fraction"),
    ({"modulation": -1}, ValueError, "modulation"),
    ({"heterogeneity": float("nan")}, ValueError, "heterogeneity"),
    ({"noise": -0.1}, ValueError, "noise"),
    ({"subclass_proportions": [0.2] * 5}, TypeError, "subclass_proportions"),
    ({"subclass_proportions": {"Vip": 1.0}}, ValueError, "subclass_proportions"),
    ({"subclass_proportions": dict.fromkeys(SUBCLASSES, 0.0)}, ValueError,
     "subclass_proportions"),
    ({"subclass_proportions": dict.fromkeys(SUBCLASSES, 1.0) | {"Sst": -1.0}}, ValueError,
     r"subclass_proportions\['Sst'\]"),
    ({"random_state": "seed"}, TypeError, "random_state"),
])
def test_argument_errors_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_cell_types(**{"n_sessions": 1, "n_neurons": 4, "n_frames": 10, **kwargs})
