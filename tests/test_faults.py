"""Faults are never silent: divergence and interrupts stop a fit and nothing is cached, and
strided views of the user's arrays are accepted everywhere."""

import numpy as np
import pandas as pd
import pytest

from sklearn_blend import BlendEstimator, BlendTeacher, NeuronEmbedding
from sklearn_blend.datasets import make_cell_types
from sklearn_blend.training import core, teacher_cache

from .helpers import TINY, TINY_NEURONS


@pytest.mark.parametrize("make", [
    lambda: BlendEstimator(**dict(TINY, lr=1e6), random_state=0),
    lambda: BlendTeacher(**dict(TINY, lr=1e6), random_state=0),
])
def test_divergence_stops_the_fit_with_a_clear_error(trials, make):
    X, b = trials
    with pytest.raises(ValueError, match=r"training of the teacher diverged: .* Lower lr"):
        make().fit(X, b)
    assert teacher_cache._in_process == {}


def test_an_extreme_count_stops_the_fit_and_the_prediction(trials):
    X, b = trials
    extreme = X.copy()
    extreme[0, 0, 0] = 1e30
    with pytest.raises(ValueError, match="diverged"):
        BlendEstimator(**TINY, random_state=0).fit(extreme, b)
    est = BlendEstimator(strategy=None, **TINY, random_state=0).fit(X)
    with pytest.raises(ValueError, match="non-finite|overflow"):
        est.transform(extreme)


def test_divergence_of_a_neuron_model():
    data = make_cell_types(n_sessions=1, n_neurons=12, n_frames=64, random_state=0)
    with pytest.raises(ValueError, match="diverged"):
        NeuronEmbedding(strategy=None, **dict(TINY_NEURONS, lr=1e8), random_state=0).fit(
            data.X)


def test_an_interrupt_propagates_and_nothing_is_cached(trials, monkeypatch, tmp_path):
    X, b = trials
    calls = []
    original = core.ObjectiveNet.get_loss

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(core.ObjectiveNet, "get_loss", interrupted)
    for cache in (True, str(tmp_path)):
        calls.clear()
        with pytest.raises(KeyboardInterrupt, match="teacher was interrupted"):
            BlendEstimator(**TINY, teacher_cache=cache, random_state=0).fit(X, b)
    assert teacher_cache._in_process == {}
    assert not list(tmp_path.rglob("output.pkl"))
    # early stopping, which skorch also signals with KeyboardInterrupt, is not an interrupt
    monkeypatch.setattr(core.ObjectiveNet, "get_loss", original)
    settings = dict(TINY, max_epochs=30, early_stopping=True, n_iter_no_change=1)
    est = BlendEstimator(strategy=None, **settings, random_state=0).fit(X)
    assert est.n_iter_ < 30


def test_reversed_and_reordered_inputs_are_accepted(trials):
    X, b = trials
    est = BlendEstimator(**TINY, random_state=0).fit(X, b)
    np.testing.assert_allclose(est.transform(X[::-1]), est.transform(X)[::-1], rtol=1e-5,
                               atol=1e-6)
    BlendTeacher(**TINY, random_state=0).fit(X[:, ::-1], b[:, ::-1])
    BlendEstimator(**TINY, random_state=0).fit(X[..., ::-1], b[::-1])
    frame = pd.DataFrame(b[:, 0, :], columns=["vx", "vy"])[["vy", "vx"]]  # reordered columns
    teacher = BlendTeacher(**TINY, random_state=0).fit(X, frame)
    assert np.isfinite(teacher.predict_rates(X[::-1], frame[::-1])).all()
