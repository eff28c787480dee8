"""Safe model files: save / load round trips of every estimator, and what load refuses."""

import json
import math
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
import sklearn
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from sklearn_blend import (BandPower, BlendEstimator, BlendTeacher, CrossModalEstimator,
                           LFPPreprocessor, MaskedAutoencoder, NedsEstimator, NeuronEmbedding,
                           PerBin, Recordings, SessionTrials, load, persistence, save)
from sklearn_blend.datasets import make_synthetic
from sklearn_blend.distill import Soft, Strategy
from sklearn_blend.estimators.smoothing import SmoothingGLM
from sklearn_blend.modalities import LFP
from sklearn_blend.models import register_base
from sklearn_blend.models.base import BASES

from .helpers import TINY, TINY_GRU, TINY_LFADS, TINY_NEURONS, TinyGRU, rewrite_model_file

NEDS = dict(hidden_size=8, n_layers=1, n_heads=2, ffn_size=16, max_epochs=2, batch_size=8,
            warmup_steps=1, early_stopping=False, random_state=0)
SESSION = dict(hidden_size=8, n_layers=1, n_heads=2, ffn_size=16, max_epochs=2, batch_size=8,
               warmup_steps=1, early_stopping=False, random_state=0)


@pytest.fixture(scope="module")
def data():
    X, b = make_synthetic("simple", n_trials=24, n_time=12, n_neurons=6, random_state=0)
    return X, b


def round_trip(estimator, tmp_path, name="model.safetensors", **load_options):
    path = tmp_path / name
    estimator.save(path) if hasattr(estimator, "save") else save(estimator, path)
    loaded = load(path, **load_options)
    assert type(loaded) is type(estimator)
    assert_same_params(loaded.get_params(), estimator.get_params())
    return loaded


def assert_same_params(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert_same_value(a[key], b[key], key)


def assert_same_value(a, b, where="value"):
    """Equal values of the same types (estimators: same class and parameters)."""
    assert type(a) is type(b), (where, type(a), type(b))
    if isinstance(a, Strategy):  # a module: compare its constructor arguments
        assert {k: v for k, v in vars(a).items() if not k.startswith("_")} == {
            k: v for k, v in vars(b).items() if not k.startswith("_")}, where
    elif isinstance(a, BaseEstimator):
        assert_same_params(a.get_params(deep=False), b.get_params(deep=False))
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert a.flags.f_contiguous == b.flags.f_contiguous, where
        if a.dtype.kind == "O":
            for x, y in zip(a.ravel(), b.ravel()):
                assert_same_value(x, y, where)
        else:
            np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for x, y in zip(a, b):
            assert_same_value(x, y, where)
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            assert_same_value(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (float, np.floating)) and math.isnan(a):
        assert math.isnan(b), where
    elif isinstance(a, (float, np.floating)):
        assert a == b and math.copysign(1, a) == math.copysign(1, b), where
    else:
        assert a == b, where


def same(a, b):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def same_history(a, b):
    assert len(a.history) == len(b.history)
    for key in ("epoch", "train_loss"):
        assert list(a.history[:, key]) == list(b.history[:, key])


# ------------------------------------------------------------------------- BLEND
@pytest.mark.parametrize("base, sizes", [("ndt", TINY), ("gru", TINY_GRU),
                                         ("blend_lfads", TINY_GRU), ("lfads", TINY_LFADS),
                                         ("neuprint", TINY)])
def test_students_and_teachers_of_every_base(data, tmp_path, base, sizes):
    X, b = data
    window, forward = X[:, :10], X[:, 10:]
    est = BlendEstimator(strategy="hard", n_heldout=2, forward_bins=2, random_state=0,
                         **dict(sizes, base=base)).fit(window, b[:, :10],
                                                       spikes_forward=forward)
    loaded = round_trip(est, tmp_path)
    same(loaded.transform(window), est.transform(window))
    same(loaded.predict_rates(window[..., :4], forward=True),
         est.predict_rates(window[..., :4], forward=True))
    assert loaded.score(window) == est.score(window)
    same(loaded.teacher_.predict_rates(window, b[:, :10]),
         est.teacher_.predict_rates(window, b[:, :10]))
    same_history(loaded.student_net_, est.student_net_)
    same_history(loaded.teacher_.net_, est.teacher_.net_)
    assert loaded.device_ == "cpu" and loaded.n_iter_ == est.n_iter_
    # a loaded teacher is a teacher: saved on its own, and distilled from again
    teacher = round_trip(est.teacher_, tmp_path, "teacher.safetensors")
    same(teacher.predict_rates(window, b[:, :10]), est.teacher_.predict_rates(window, b[:, :10]))


def test_students_of_every_strategy(data, tmp_path):
    X, b = data
    strategies = ["hard", "soft", "correlation", "feature", Soft(tau=3.0, reduction="trial"), Soft]
    for strategy in strategies:  # one teacher, shared through the cache
        est = BlendEstimator(strategy=strategy, teacher_hidden_size=16, random_state=0,
                             **TINY).fit(X, b)
        loaded = round_trip(est, tmp_path)
        same(loaded.transform(X), est.transform(X))
        same(loaded.predict_rates(X), est.predict_rates(X))
        same_history(loaded.student_net_, est.student_net_)
        # the objective's own weights (the feature projections) come back too
        for key, value in est.student_net_.criterion_.state_dict().items():
            same(loaded.student_net_.criterion_.state_dict()[key], value)
        if strategy == "feature":
            assert any("projections" in k for k in est.student_net_.criterion_.state_dict())
    assert isinstance(loaded.strategy, type) and loaded.strategy is Soft


def test_plain_model_latents_and_refit(data, tmp_path):
    X, b = data
    est = BlendEstimator(strategy=None, output="latents", inference="full", random_state=0,
                         **TINY).fit(X, b)
    loaded = round_trip(est, tmp_path)
    assert loaded.teacher_ is None
    same(loaded.transform(X), est.transform(X))
    # a loaded estimator is an estimator: it refits as the original does
    same(loaded.fit(X, b).transform(X), BlendEstimator(**est.get_params()).fit(X, b).transform(X))


def test_a_prefit_teacher_is_stored_once(data, tmp_path):
    from safetensors import safe_open

    X, b = data
    teacher = BlendTeacher(random_state=1, **TINY).fit(X, b)
    est = BlendEstimator(teacher=teacher, random_state=0, **TINY).fit(X, b)
    assert est.teacher_ is teacher
    loaded = round_trip(est, tmp_path)
    assert loaded.teacher is loaded.teacher_
    same(loaded.transform(X), est.transform(X))
    with safe_open(tmp_path / "model.safetensors", "np") as f:
        nets = {key.split(".")[0] for key in f.keys() if key.startswith("net")}
    assert len(nets) == 2  # the teacher's weights once, not again inside the student's objective


# ------------------------------------------------------------------------- NEDS
def test_neds_single_session_with_labels_forward_bins_and_heldout_neurons(tmp_path):
    rng = np.random.default_rng(0)
    velocity = np.cumsum(rng.normal(size=(24, 12, 2)), 1) * 0.3
    spikes = rng.poisson(np.exp(0.3 + np.tanh(velocity) @ rng.normal(size=(2, 6)))).astype(
        np.float32)
    window, forward = spikes[:, :10], spikes[:, 10:]
    neds = NedsEstimator(n_heldout=2, forward_bins=2, **NEDS).fit(
        window, velocity[:, :10], spikes_forward=forward)
    loaded = round_trip(neds, tmp_path)
    for method in ("predict", "transform"):
        same(getattr(loaded, method)(window), getattr(neds, method)(window))
    same(loaded.predict_rates(window, forward=True), neds.predict_rates(window, forward=True))
    same(loaded.predict_rates(b=velocity[:, :10]), neds.predict_rates(b=velocity[:, :10]))
    assert loaded.score(window, velocity[:, :10]) == neds.score(window, velocity[:, :10])
    same_history(loaded.net_, neds.net_)
    # per-trial labels (strings) and a continuous per-trial variable
    labels = np.empty((24, 2), dtype=object)
    labels[:, 0] = np.where(velocity[:, -1, 0] > 0, "right", "left")
    labels[:, 1] = rng.normal(size=24)
    neds = NedsEstimator(categorical_behavior=[0], **NEDS).fit(window, labels)
    loaded = round_trip(neds, tmp_path)
    assert_same_value(loaded.classes_, neds.classes_)
    same(loaded.predict(window), neds.predict(window))
    for mine, theirs in zip(loaded.predict_proba(window), neds.predict_proba(window)):
        same(mine, theirs)
    # a loaded NEDS is a BLEND teacher, and so is one inside a saved student
    student = BlendEstimator(teacher=loaded, random_state=0, **TINY).fit(window, labels)
    again = round_trip(student, tmp_path, "student.safetensors")
    same(again.transform(window), student.transform(window))


def test_neds_over_sessions_and_finetuning_after_load(tmp_path):
    X, b = make_synthetic("simple", n_trials=8, n_time=10, n_neurons=[5, 7], n_sessions=2,
                          random_state=0)
    neds = NedsEstimator(**NEDS).fit(X, b)
    loaded = round_trip(neds, tmp_path)
    same(loaded.predict(X), neds.predict(X))
    same(loaded.predict_rates(X), neds.predict_rates(X))
    same(loaded.predict_rates(b=b[:3], session=1), neds.predict_rates(b=b[:3], session=1))
    # fine-tuning (a new session) starts from the loaded weights as from the saved ones
    new, b_new = make_synthetic("simple", n_trials=8, n_time=10, n_neurons=4, random_state=1)
    new = SessionTrials([new], keys=["new"])
    loaded.finetune(new, b_new, max_epochs=1)
    neds.finetune(new, b_new, max_epochs=1)
    same(loaded.predict(new), neds.predict(new))
    same(loaded.predict(X), neds.predict(X))


# ------------------------------------------------------------------------- cross-modal
def _lfp_session(rng, n_trials, n_neurons, n_channels):
    latents = rng.normal(size=(n_trials, 10, 2))
    spikes = rng.poisson(np.exp(0.3 + latents @ rng.normal(size=(2, n_neurons))))
    lfp = latents @ rng.normal(size=(2, n_channels)) + rng.normal(size=(n_trials, 10,
                                                                        n_channels))
    return lfp.astype(np.float32), spikes.astype(np.float32)


def test_cross_modal_estimator_and_masked_autoencoder(tmp_path):
    rng = np.random.default_rng(0)
    lfp, spikes = _lfp_session(rng, 16, 6, 4)
    model = CrossModalEstimator(teacher_hidden_size=16, **SESSION).fit(lfp, privileged=spikes)
    loaded = round_trip(model, tmp_path)
    same(loaded.transform(lfp), model.transform(lfp))
    same(loaded.teacher_.transform(spikes), model.teacher_.transform(spikes))
    projection = [k for k in model.net_.criterion_.state_dict() if "projection" in k]
    assert projection
    for key in projection:
        same(loaded.net_.criterion_.state_dict()[key], model.net_.criterion_.state_dict()[key])
    # the LFP-only model over two sessions; new sessions are added to the loaded model alike
    other, _ = _lfp_session(rng, 12, 6, 5)
    trials = SessionTrials([lfp, other], keys=["a", "b"], modality=LFP)
    auto = MaskedAutoencoder(modality="lfp", **SESSION).fit(trials)
    loaded = round_trip(auto, tmp_path)
    same(loaded.transform(trials), auto.transform(trials))
    added, _ = _lfp_session(rng, 8, 6, 3)
    added = SessionTrials([added], keys=["c"], modality=LFP)
    loaded.add_sessions(added, max_epochs=1)
    auto.add_sessions(added, max_epochs=1)
    same(loaded.transform(added), auto.transform(added))
    same(loaded.transform(trials), auto.transform(trials))


def test_a_cross_modal_file_of_format_3_keeps_its_uncentred_alignment(tmp_path):
    """Before format 4 latent alignment compared the latents uncentred: such a file loads
    with ``LatentAlignment(centre=False)`` (what it was trained with, and what a refit
    repeats), named or given as an instance; a file of format 4 keeps the centred default."""
    from sklearn_blend.distill import LatentAlignment

    rng = np.random.default_rng(0)
    lfp, spikes = _lfp_session(rng, 16, 6, 4)
    for strategy in ("latent", LatentAlignment(metric="cosine")):
        model = CrossModalEstimator(strategy=strategy, **SESSION).fit(lfp, privileged=spikes)
        path = tmp_path / "model.safetensors"
        model.save(path)
        current = load(path)
        assert current.strategy == "latent" or current.strategy.centre

        def before_centre(tree):  # format 3 had no centre parameter
            node = tree["state"]["strategy"]
            if type(node) is dict:
                del node["params"]["s"]["centre"]

        rewrite_model_file(path, before_centre, format_version="3")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", persistence.InconsistentVersionWarning)
            old = load(path)
        assert isinstance(old.strategy, LatentAlignment) and old.strategy.centre is False
        assert old.strategy.metric == ("mse" if strategy == "latent" else "cosine")
        assert old.strategy.head == "linear"
        same(old.transform(lfp), model.transform(lfp))


def test_metadata_routing_requests_are_kept(tmp_path):
    rng = np.random.default_rng(0)
    lfp, spikes = _lfp_session(rng, 16, 6, 4)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = Pipeline([
            ("lfp", CrossModalEstimator(**SESSION).set_fit_request(privileged=True)),
            ("decode", PerBin(RidgeCV())),
        ]).fit(lfp, lfp[..., :2], privileged=spikes)
        loaded = round_trip(pipe, tmp_path)
        assert (str(loaded.get_metadata_routing()) == str(pipe.get_metadata_routing()))
        assert loaded[0]._metadata_request.owner is loaded[0]
        same(loaded.predict(lfp), pipe.predict(lfp))


# ------------------------------------------------------------------------- per neuron
def test_neuron_embedding_seen_and_new_neurons(tmp_path):
    rng = np.random.default_rng(0)
    behavior = rng.normal(size=(64, 2)).astype(np.float32)
    activity = (behavior[:, :1] * rng.normal(size=12) + rng.normal(size=(64, 12))).astype(
        np.float32)
    recordings = Recordings([activity], [behavior])
    fitted = recordings[np.arange(8)]
    emb = NeuronEmbedding(strategy="feature", teacher_hidden_size=16, random_state=0,
                          **TINY_NEURONS).fit(fitted)
    loaded = round_trip(emb, tmp_path)
    same(loaded.transform(fitted), emb.transform(fitted))
    same(loaded.transform(recordings), emb.transform(recordings))  # 4 new neurons fitted now
    assert loaded.get_feature_names_out().tolist() == emb.get_feature_names_out().tolist()
    reads = NeuronEmbedding(strategy=None, behavior_inputs=True, random_state=0,
                            **TINY_NEURONS).fit(fitted)
    loaded = round_trip(reads, tmp_path)
    same(loaded.transform(recordings), reads.transform(recordings))
    # a pipeline ending in RidgeCV, one sample per neuron
    pipe = make_pipeline(NeuronEmbedding(strategy=None, random_state=0, **TINY_NEURONS),
                         StandardScaler(), RidgeCV()).fit(fitted, np.arange(8.0))
    loaded = round_trip(pipe, tmp_path)
    same(loaded.predict(recordings), pipe.predict(recordings))


# ------------------------------------------------------------------------- the rest
def test_smoothing_perbin_lfp_and_pipelines(data, tmp_path):
    X, b = data
    glm = SmoothingGLM(kern_sd_ms=20, n_heldout=2).fit(X)
    same(round_trip(glm, tmp_path).predict_rates(X[..., :4]), glm.predict_rates(X[..., :4]))
    perbin = PerBin(RidgeCV(alphas=(0.1, 1.0))).fit(X, b)
    same(round_trip(perbin, tmp_path).predict(X), perbin.predict(X))
    lfp = np.random.default_rng(0).normal(size=(3, 900, 4))
    prep = LFPPreprocessor(sfreq=300, l_freq=2.0, notch=60, target_rate=100).fit(lfp)
    same(round_trip(prep, tmp_path).transform(lfp), prep.transform(lfp))
    power = BandPower(sfreq=100, bands=[(1, 4), (8, 13)], window_s=0.5).fit(prep.transform(lfp))
    same(round_trip(power, tmp_path).transform(prep.transform(lfp)),
         power.transform(prep.transform(lfp)))
    # a pipeline ending in RidgeCV (per bin), and a plain scikit-learn one
    pipe = make_pipeline(BlendEstimator(random_state=0, **TINY), PerBin(RidgeCV())).fit(X, b)
    loaded = round_trip(pipe, tmp_path)
    same(loaded.predict(X), pipe.predict(X))
    assert loaded.score(X, b) == pipe.score(X, b)
    flat, labels = X.reshape(-1, 6), (b.reshape(-1, 2)[:, 0] > 0)
    classifier = make_pipeline(StandardScaler(), LogisticRegression()).fit(flat, labels)
    loaded = round_trip(classifier, tmp_path)
    same(loaded.predict_proba(flat), classifier.predict_proba(flat))


def test_values_round_trip_exactly(data, tmp_path):
    X, b = data
    model = PerBin(RidgeCV()).fit(X, b)
    objects = np.empty(3, dtype=object)
    objects[:] = ["a", 1, None]
    model.values_ = {
        "tuple": (1, (2.5, "x")), "list": [1, [2, 3]], 1: "int key", (2, "b"): "tuple key",
        None: "none key", 2.5: "float key", "scalars": [np.float32(1.1), np.int64(-7),
                                                        np.bool_(True), np.float64(np.nan)],
        "floats": [math.nan, math.inf, -math.inf, -0.0, 1e-310, 0.1], "big": 2 ** 70,
        "dtype": np.dtype(">f8"), "types": [np.float32, float, int],
        "sets": [{1, 2}, frozenset({"a"})], "bytes": b"\x00\xff", "complex": 1 + 2j,
        "strings": np.array([["ab", "c"]]), "objects": objects,
        "arrays": [np.arange(6.0).reshape(2, 3).T, np.arange(3, dtype=">i4"), np.array(2.5),
                   np.zeros((0, 3)), np.array([True, False]), np.arange(4, dtype=np.float16),
                   np.arange(3, dtype=np.uint64) + 2 ** 63, np.array([1 + 2j]),
                   np.array(["2020-01-01"], dtype="datetime64[D]")],
        "state": np.random.RandomState(3), "path": Path("a") / "b",
    }
    loaded = round_trip(model, tmp_path)
    state = model.values_.pop("state")
    again = loaded.values_.pop("state")
    assert_same_value(loaded.values_, model.values_)
    assert again.randint(1000, size=5).tolist() == state.randint(1000, size=5).tolist()


def test_load_never_unpickles(data, tmp_path, monkeypatch):
    X, b = data
    est = BlendEstimator(random_state=0, **TINY).fit(X, b)
    est.save(tmp_path / "model.safetensors")

    def refuse(*args, **kwargs):
        raise AssertionError("load unpickled")

    for target in ("pickle.load", "pickle.loads", "pickle.Unpickler", "torch.load",
                   "joblib.load"):
        monkeypatch.setattr(target, refuse)
    rng_state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    same(load(tmp_path / "model.safetensors").transform(X), est.transform(X))
    assert torch.equal(torch.get_rng_state(), rng_state)  # loading draws nothing
    same(np.random.get_state()[1], np_state)


def test_pickles_truncated_and_edited_files_are_refused(data, tmp_path):
    X, b = data
    est = BlendEstimator(strategy=None, random_state=0, **TINY).fit(X, b)
    path = tmp_path / "model.safetensors"
    est.save(path)
    content = path.read_bytes()
    bad = tmp_path / "bad.safetensors"
    joblib.dump(est, bad)
    with pytest.raises(ValueError, match="looks like a pickle .* joblib.load"):
        load(bad)
    header = 8 + int.from_bytes(content[:8], "little")
    for size in (0, 5, 100, header - 1, header + 10, len(content) - 1):
        bad.write_bytes(content[:size])
        with pytest.raises(ValueError, match="not a valid sklearn_blend model file|damaged"):
            load(bad)
    content_start = content.index(b'"content"')
    for position in (3, 40, content_start + 30, header - 20, header + 5, len(content) - 1):
        flipped = bytearray(content)
        flipped[position] ^= 0x01
        bad.write_bytes(bytes(flipped))
        with pytest.raises(ValueError, match="not a valid sklearn_blend model file|damaged"):
            load(bad)
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(3)}, bad)  # safetensors, but not ours
    with pytest.raises(ValueError, match="not a model written by sklearn_blend.save"):
        load(bad)
    assert load(path).get_params() == est.get_params()  # the good file still loads


def _rewrite_metadata(path, **changes):
    """The file at ``path`` with metadata entries replaced (the checksum left as it was)."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(path, "np") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors, path, metadata=dict(metadata, **changes))


def test_format_and_package_versions(data, tmp_path, monkeypatch):
    X, b = data
    glm = SmoothingGLM(kern_sd_ms=20, n_heldout=1).fit(X)
    path = tmp_path / "glm.safetensors"
    glm.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load(path)  # the same versions: no warning
    _rewrite_metadata(path, format_version=str(persistence.FORMAT_VERSION + 1))
    newer, current = persistence.FORMAT_VERSION + 1, persistence.FORMAT_VERSION
    with pytest.raises(ValueError, match=f"format {newer} .* reads formats up to {current}. "
                                         "Upgrade"):
        load(path)
    monkeypatch.setattr("sklearn_blend._version.__version__", "0.0.1")
    glm.save(path)
    monkeypatch.undo()
    with pytest.warns(persistence.InconsistentVersionWarning, match="written by sklearn_blend "
                                                                    "0.0.1"):
        loaded = load(path)
    same(loaded.predict_rates(X), glm.predict_rates(X))


def test_what_cannot_be_saved(data, tmp_path):
    X, b = data
    path = tmp_path / "model.safetensors"
    with pytest.raises(NotFittedError):
        BlendEstimator().save(path)
    with pytest.raises(NotFittedError):
        save(make_pipeline(StandardScaler(), RidgeCV()), path)
    user_base = BlendEstimator(random_state=0, **dict(
        TINY, base=TinyGRU, hidden_size=None, n_layers=None, n_heads=None, ffn_size=None,
        dropout=None)).fit(X, b)
    with pytest.raises(ValueError, match=r"BlendEstimator.base = .*TinyGRU.*register_base.*"
                                         r"joblib.dump or pickle"):
        user_base.save(path)
    register_base("tiny_gru_for_saving", TinyGRU)
    try:  # registered by name: stored by that name
        loaded = round_trip(user_base, tmp_path, "registered.safetensors")
        assert loaded.base is TinyGRU
        same(loaded.transform(X), user_base.transform(X))
    finally:
        del BASES["tiny_gru_for_saving"]

    class Mine(Strategy):
        def forward(self, student, teacher):
            return (student.predictions["spikes"] - teacher.predictions["spikes"]).abs().mean()

    own = BlendEstimator(strategy=Mine, random_state=0, **TINY).fit(X, b)
    with pytest.raises(ValueError, match="register_strategy"):
        own.save(path)

    class MyScaler(TransformerMixin, BaseEstimator):
        def fit(self, X, y=None):
            self.fitted_ = True
            return self

        def transform(self, X):
            return X

    for pipe in (make_pipeline(MyScaler(), RidgeCV()),
                 make_pipeline(FunctionTransformer(np.log1p), RidgeCV())):
        pipe.fit(X.reshape(-1, 6), b.reshape(-1, 2))
        with pytest.raises(ValueError, match="cannot store"):
            save(pipe, path)


class ReportingBlend(BlendEstimator):
    """A user's subclass: one extra method, the rest inherited."""

    def mean_rate(self, X):
        return float(self.predict_rates(X).mean())


def test_subclasses_of_the_estimators_save_and_load(data, tmp_path):
    X, b = data
    path = tmp_path / "sub.safetensors"
    model = ReportingBlend(strategy="hard", random_state=0, **TINY).fit(X, b)
    model.save(path)
    loaded = load(path)
    assert type(loaded) is ReportingBlend and type(loaded.teacher_) is BlendTeacher
    assert loaded.mean_rate(X) == model.mean_rate(X)
    same(loaded.transform(X), model.transform(X))
    # a process that does not define the subclass refuses the file, importing nothing
    code = ("import sys, sklearn_blend\n"
            "try:\n    sklearn_blend.load(sys.argv[1])\n"
            "except ValueError as error:\n    print('refused:', error)\n"
            "print('imported' if 'tests.test_persistence' in sys.modules else 'not imported')")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                            text=True, timeout=300, cwd=tmp_path)
    assert "refused:" in result.stdout and "not on the allow-list" in result.stdout
    assert "not imported" in result.stdout


def test_a_model_fitted_on_a_gpu_loads_on_the_cpu(data, tmp_path):
    X, b = data
    est = BlendEstimator(random_state=0, **TINY).fit(X, b)
    est.device_ = est.teacher_.device_ = "cuda:0"  # as a model fitted on a GPU says
    est.save(tmp_path / "gpu.safetensors")
    est.device_ = est.teacher_.device_ = "cpu"
    if not torch.cuda.is_available():
        with pytest.warns(UserWarning, match="fitted on device 'cuda:0'.* loaded on the CPU"):
            loaded = load(tmp_path / "gpu.safetensors")
        assert loaded.device_ == loaded.teacher_.device_ == "cpu"
        assert loaded.device == "cpu"  # the parameter is kept as saved
        same(loaded.transform(X), est.transform(X))
        with pytest.raises(ValueError, match="CUDA is not available"):
            load(tmp_path / "gpu.safetensors", device="cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load(tmp_path / "gpu.safetensors", device="cpu")
    assert loaded.device_ == "cpu"
    assert next(loaded.student_.parameters()).device.type == "cpu"
    same(loaded.transform(X), est.transform(X))


def test_writes_are_atomic(data, tmp_path, monkeypatch):
    X, b = data
    path = tmp_path / "model.safetensors"
    path.write_text("previous")
    glm = SmoothingGLM(kern_sd_ms=20, n_heldout=1).fit(X)

    def crash(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("safetensors.numpy.save_file", crash)
    with pytest.raises(OSError, match="No space left"):
        glm.save(path)
    assert path.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == [
        "model.safetensors"]
    monkeypatch.undo()
    glm.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
    header = json.loads(path.read_bytes()[8 : 8 + int.from_bytes(path.read_bytes()[:8],
                                                                  "little")])
    metadata = header["__metadata__"]
    assert metadata["format"] == "sklearn_blend"
    assert metadata["format_version"] == str(persistence.FORMAT_VERSION)
    assert len(metadata["checksum"]) == 64 and json.loads(metadata["content"])["object"]
    assert os.path.getsize(path) < 20_000
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # what a plain open() gives


def _crafted(path, out, edit):
    """A copy of the model file ``path`` at ``out`` whose JSON content is ``edit(content)``,
    with a valid checksum (as anyone can recompute it)."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(path, "np") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    fields = {k: v for k, v in metadata.items() if k != "checksum"}
    fields["content"] = edit(metadata["content"])
    save_file(tensors, out, metadata=dict(fields,
                                          checksum=persistence.files.checksum(fields, tensors)))
    return out


REGRESSOR = "sklearn.linear_model:PoissonRegressor"  # SmoothingGLM's model, by its public name


@pytest.fixture
def glm_file(data, tmp_path):
    path = tmp_path / "glm.safetensors"
    SmoothingGLM(kern_sd_ms=20, n_heldout=1).fit(data[0]).save(path)
    assert REGRESSOR.encode() in path.read_bytes()
    return path


def test_only_allow_listed_classes_are_rebuilt(glm_file, tmp_path):
    """A crafted file (valid checksum) naming any other class is refused; names are looked up
    in the allow-list, never imported."""
    crafted = tmp_path / "crafted.safetensors"
    for name, message in [("os:system", "not on the allow-list"),
                          ("subprocess:Popen", "not on the allow-list"),
                          ("sklearn.utils:Bunch", "not on the allow-list"),
                          ("sklearn.linear_model:NoSuchModel", "has no public estimator "
                                                               "NoSuchModel in sklearn.linear"),
                          ("sklearn.linear_model._ridge:PoissonRegressor", "not on the allow"),
                          ("sklearn_blend:Recordings", "not on the allow-list"),
                          ("sklearn.model_selection:GridSearchCV", "not on the allow-list"),
                          ("sklearn.base:BaseEstimator.__init__", "not on the allow-list")]:
        _crafted(glm_file, crafted, lambda content: content.replace(REGRESSOR, name))
        with pytest.raises(ValueError, match=message):
            load(crafted)
    _crafted(glm_file, crafted, lambda content: content.replace('"t":"ndarray"', '"t":"pickle"',
                                                                1))
    with pytest.raises(ValueError, match="unknown kind of object 'pickle'"):
        load(crafted)
    # files written before public names were stored name the class's own module: still read
    _crafted(glm_file, crafted, lambda content: content.replace(
        REGRESSOR, "sklearn.linear_model._glm.glm:PoissonRegressor"))
    assert type(load(crafted).glms_[0]).__name__ == "PoissonRegressor"


def test_crafted_class_names_import_nothing(glm_file, tmp_path):
    """Loading a file that names scikit-learn's tests, conftest or experimental modules (whose
    import runs code or changes scikit-learn) imports no module at all."""
    import subprocess
    import sys

    names = ["sklearn.conftest:X", "sklearn.tests.test_base:T",
             "sklearn.experimental.enable_iterative_imputer:IterativeImputer",
             "sklearn.experimental.enable_halving_search_cv:HalvingGridSearchCV", "os:system",
             "sklearn_blend.conftest:X"]
    paths = [str(_crafted(glm_file, tmp_path / f"crafted{i}.safetensors",
                          lambda content, name=name: content.replace(REGRESSOR, name)))
             for i, name in enumerate(names)]
    script = """if True:
        import json, sys
        from sklearn_blend import load
        load(sys.argv[1])  # a good file first: every module loading itself needs
        before, refused = set(sys.modules), []
        for path in sys.argv[2:]:
            try:
                load(path)
            except ValueError as error:
                refused.append("not on the allow-list" in str(error))
        print(json.dumps({"refused": refused, "new": sorted(set(sys.modules) - before)}))
    """
    result = subprocess.run([sys.executable, "-c", script, str(glm_file), *paths],
                            capture_output=True, text=True, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"refused": [True] * len(names), "new": []}


def test_a_teacher_cache_folder_is_not_loaded(data, tmp_path):
    """A file cannot point a model at a folder of pickles: loading resets the folder to True."""
    X, b = data
    pipe = make_pipeline(BlendEstimator(random_state=0, **TINY), PerBin(RidgeCV())).fit(X, b)
    pipe[0].set_params(teacher_cache=tmp_path / "cache")  # as a crafted file could say
    save(pipe, tmp_path / "pipe.safetensors")
    with pytest.warns(UserWarning, match=r"sets BlendEstimator.teacher_cache=.*cache'\)? "
                                         r"\(now True\): loading resets .* pickles"):
        loaded = load(tmp_path / "pipe.safetensors")
    assert loaded[0].teacher_cache is True
    same(loaded.predict(X), pipe.predict(X))
    lfp, _ = _lfp_session(np.random.default_rng(0), 8, 6, 4)
    crossmodal = CrossModalEstimator(strategy=None, **SESSION).fit(lfp)
    for cache, reset in [(str(tmp_path / "cache"), True), (False, False), (True, False)]:
        crossmodal.set_params(teacher_cache=cache).save(tmp_path / "model.safetensors")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = load(tmp_path / "model.safetensors")
        assert loaded.teacher_cache is (True if reset else cache)
        assert [str(w.message)[:40] for w in caught] == (
            ["the model file sets CrossModalEstimator."] if reset else [])


def test_a_search_is_refused_and_its_best_estimator_saved(data, tmp_path):
    """A fitted search is not stored (its grid could name a teacher_cache folder for a refit);
    its best_estimator_ is, and a folder cache there is reset as anywhere."""
    from sklearn.model_selection import GridSearchCV

    X, b = data
    folder = str(tmp_path / "cache")
    search = GridSearchCV(
        make_pipeline(BlendEstimator(random_state=0, **TINY), PerBin(RidgeCV())),
        {"blendestimator__teacher_cache": [folder], "blendestimator__alpha": [0.3, 0.7]},
        cv=2).fit(X, b)
    assert "blendestimator__teacher_cache" in search.best_params_
    with pytest.raises(ValueError, match=r"cannot store GridSearchCV = .*a fitted search is "
                                         r"not stored .* save its best_estimator_"):
        save(search, tmp_path / "search.safetensors")
    assert not any(tmp_path.glob("search*"))
    save(search.best_estimator_, tmp_path / "best.safetensors")
    with pytest.warns(UserWarning, match="sets BlendEstimator.teacher_cache="):
        loaded = load(tmp_path / "best.safetensors")
    assert loaded[0].teacher_cache is True
    same(loaded.predict(X), search.predict(X))


def _with_node(node):
    """An edit of a SmoothingGLM file's content: its first parameter becomes ``node``."""
    return lambda content: content.replace('"kern_sd_ms":20', f'"kern_sd_ms":{node}', 1)


def test_memory_bombs_and_deep_nesting_are_refused(glm_file, tmp_path):
    crafted = tmp_path / "crafted.safetensors"
    items = json.dumps([""] * 1000)
    for node, message in [
        ('{"t":"ndarray","id":99,"dtype":"<U100000000","shape":[1],"items":[""]}',
         "items of 400000000 bytes"),
        ('{"t":"ndarray","id":99,"dtype":"|S2000000","shape":[1],"items":[""]}',
         "items of 2000000 bytes"),
        (f'{{"t":"ndarray","id":99,"dtype":"<U262144","shape":[1000],"items":{items}}}',
         "far larger than its text"),
        ('{"t":"ndarray","id":99,"dtype":"(100000,)<f8","shape":[1],"items":[0]}',
         "not on the allow-list"),
        ('{"t":"ndarray","id":99,"dtype":"|V1000000","shape":[1],"items":[0]}',
         "not on the allow-list"),
        ('{"t":"ndarray","id":99,"dtype":"<i4,<f8","shape":[1],"items":[0]}',
         "not on the allow-list"),
        ('{"t":"ndarray","id":99,"dtype":"|O","shape":[5],"tensor":"array2"}',
         "is float64, not object"),
        ('{"t":"ndarray","id":99,"dtype":"<c16","shape":[5],"tensor":"array2"}',
         "is float64, not complex128"),
        ('{"t":"ndarray","id":99,"dtype":"<c16","shape":[5],"tensor":"array2","bytes":true}',
         "not the bytes of a complex128 array"),
        ('{"t":"ndarray","id":99,"dtype":"<U3","shape":[1000000000],"items":["a"]}',
         "without its 1000000000 items"),
        ('{"t":"dtype","v":"(100000,)<f8"}', "not on the allow-list"),
        ('{"t":"npscalar","dtype":"|V8","v":0}', "not on the allow-list"),
    ]:
        _crafted(glm_file, crafted, _with_node(node))
        with pytest.raises(ValueError, match=re.escape(message)):
            load(crafted)
    deep = [("[" * 100_000 + "]" * 100_000, "content is damaged"),  # too deep for JSON
            # deep enough for the decoder, not for JSON
            ('{"t":"tuple","v":[' * 350 + "0" + "]}" * 350, "content is malformed")]
    for node, message in deep:
        _crafted(glm_file, crafted, _with_node(node))
        with pytest.raises(ValueError, match=message):
            load(crafted)
    # shallower nesting and legitimate string arrays still load
    _crafted(glm_file, crafted, _with_node('{"t":"tuple","v":[' * 20 + "0" + "]}" * 20))
    nested = 0
    for _ in range(20):
        nested = (nested,)
    assert load(crafted).kern_sd_ms == nested
    letters = json.dumps(list("abcd"))
    _crafted(glm_file, crafted, _with_node(
        f'{{"t":"ndarray","id":99,"dtype":"<U100","shape":[2,2],"items":{letters}}}'))
    assert load(crafted).kern_sd_ms.tolist() == [["a", "b"], ["c", "d"]]


FORMAT1 = Path(__file__).parent / "data" / "format1"


@pytest.mark.parametrize("name", ["crossmodal_mse", "crossmodal_cosine", "crossmodal_None",
                                  "neurons_plain", "blend_hard", "neds"])
def test_files_of_format_1_load_and_give_their_outputs(name):
    """Files written by sklearn_blend 0.1 (``tests/data/format1``, written by that version)
    load, upgraded (alignment= became strategy=, NeuronEmbedding gained teacher=), and give
    the outputs they gave then."""
    from sklearn_blend.datasets import make_cell_types

    arrays = np.load(FORMAT1 / "inputs_outputs.npz")
    with pytest.warns(persistence.InconsistentVersionWarning, match="0.1.0"):
        model = load(FORMAT1 / f"{name}.safetensors")
    if name.startswith("crossmodal"):
        assert model.student == "lfp"
        assert (model.strategy is None) == name.endswith("None")
        if name.endswith("cosine"):
            assert model.strategy.metric == "cosine"
        out = model.transform(arrays["lfp"])
    elif name == "neurons_plain":
        cells = make_cell_types(n_sessions=2, n_neurons=8, n_frames=32, random_state=0)
        assert model.teacher is None and model.teacher_ is None
        out = model.transform(cells.X)
    elif name == "neds":
        out = model.predict(arrays["X"])
    else:
        out = model.transform(arrays["X"])
    np.testing.assert_allclose(out, arrays[f"out_{name}"], rtol=1e-5, atol=1e-6)


def test_a_distilled_neuron_embedding_of_format_1_asks_for_a_refit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", persistence.InconsistentVersionWarning)
        with pytest.raises(ValueError, match="saved by sklearn_blend 0.1.* refit it"):
            load(FORMAT1 / "neurons_hard.safetensors")


FORMAT2 = Path(__file__).parent / "data" / "format2"


@pytest.mark.parametrize("name", ["neds", "blend_neds_teacher"])
def test_files_of_format_2_load_and_give_their_outputs(name):
    """Files written by sklearn_blend 0.2 (``tests/data/format2``, written by that version)
    load, upgraded (NedsEstimator gained ``monitor``, which such a model was selected with as
    ``"loss"``, and ``input_map``), and give the outputs they gave then."""
    arrays = np.load(FORMAT2 / "inputs_outputs.npz")
    with pytest.warns(persistence.InconsistentVersionWarning, match="0.2.0"):
        model = load(FORMAT2 / f"{name}.safetensors")
    neds = model if name == "neds" else model.teacher_
    assert neds.monitor == "loss" and neds.input_map == "linear"
    out = model.predict(arrays["X"]) if name == "neds" else model.transform(arrays["X"])
    np.testing.assert_allclose(out, arrays[f"out_{name}"], rtol=1e-5, atol=1e-6)


def test_a_file_of_format_4_with_base_lfads_loads_as_the_gru_model(data, tmp_path):
    """Before format 5 ``base="lfads"`` named the deterministic GRU model, ``"gru"`` since:
    such a file (student and teacher) loads as that model, with the inference it had
    (``"masked"``), and gives the outputs it gave."""
    X, b = data
    est = BlendEstimator(base="gru", strategy="hard", random_state=0, **TINY_GRU).fit(X, b)
    path = tmp_path / "model.safetensors"
    est.save(path)

    def before_rename(tree):  # format 4: the GRU model was "lfads", inference "masked"
        for node in (tree["state"], tree["state"]["teacher_"]["state"]):
            assert node["base"] == "gru" and node["inference"] is None
            node["base"], node["inference"] = "lfads", "masked"

    rewrite_model_file(path, before_rename, format_version="4", sklearn_blend_version="0.3.0")
    with pytest.warns(persistence.InconsistentVersionWarning, match="0.3.0"):
        loaded = load(path)
    assert loaded.base == loaded.teacher_.base == "gru" and loaded.inference == "masked"
    assert type(loaded.student_.base).__name__ == "GRUModel"
    same(loaded.transform(X), est.transform(X))
