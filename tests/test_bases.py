"""Bases: LFADS, the base-model protocol, user bases and the registry."""

import pickle

import numpy as np
import pytest
import torch
from torch import nn

from sklearn_blend import BlendEstimator
from sklearn_blend.models import (
    BASES,
    LFADS,
    BaseAdapter,
    LFADSConfig,
    build_model,
    register_base,
)

from .helpers import TINY_LFADS, TINY_TRAINING, TinyGRU, assert_same

pytestmark = pytest.mark.filterwarnings("ignore:early stopping needs")

class RatesOnly(nn.Module):
    """The least a base can be: log-rates from a linear map, nothing else."""

    def __init__(self, n_inputs, n_outputs, n_behavior):
        super().__init__()
        self.linear = nn.Linear(n_inputs + n_behavior, n_outputs)

    def forward(self, spikes, behavior=None):
        x = spikes if behavior is None else torch.cat([spikes, behavior], dim=-1)
        return self.linear(x)


def tiny_gru_factory(n_inputs, n_outputs, n_behavior, n_time, width=6):
    assert n_time == 10  # n_time is passed to builders that accept it
    return TinyGRU(n_inputs, n_outputs, n_behavior, width)


def test_lfads_returns_log_rates_factors_and_three_stages():
    torch.manual_seed(0)
    model = LFADS(LFADSConfig(n_inputs=6, n_outputs=9, n_behavior=2, hidden_size=8,
                              factor_size=3)).eval()
    spikes, behavior = torch.rand(4, 12, 6), torch.randn(4, 12, 2)
    out = model(spikes, behavior)
    assert out.log_rates.shape == (4, 12, 9) and out.latents.shape == (4, 12, 3)
    assert [f.shape[-1] for f in out.features] == [8, 8, 3]
    # the teacher's behavior joins the encoding: it changes the rates
    assert not torch.allclose(out.log_rates, model(spikes, behavior + 1).log_rates)


def test_blend_lfads_is_the_official_stack():
    """BLEND's "LFADS" as its code builds it: no input dropout, an MLP readout, and a teacher
    that scales counts and behavior, joins their encodings by self-attention and encodes them
    again with a two-layer bidirectional GRU."""
    from torch import nn

    from sklearn_blend.models import BlendLFADS, BlendLFADSConfig

    torch.manual_seed(0)
    student = BlendLFADS(BlendLFADSConfig(n_inputs=6, n_outputs=9, hidden_size=8,
                                          factor_size=3, n_layers=2, dropout=0.3))
    assert student.encoder.rnn.num_layers == 2 and student.encoder.rnn.bidirectional
    assert not hasattr(student, "attention") and not hasattr(student, "input_dropout")
    assert [type(m) for m in student.readout] == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    # no dropout on the input counts: a one-layer encoder is deterministic in training, the
    # factors are not
    spikes = torch.rand(4, 12, 6)
    one_layer = BlendLFADS(BlendLFADSConfig(n_inputs=6, n_outputs=9, hidden_size=8,
                                            factor_size=3, n_layers=1, dropout=0.3)).train()
    first, second = one_layer(spikes), one_layer(spikes)
    torch.testing.assert_close(first.features[0], second.features[0])
    assert not torch.allclose(first.latents, second.latents)
    student.eval()
    out = student(spikes)
    assert out.log_rates.shape == (4, 12, 9) and out.latents.shape == (4, 12, 3)
    assert [f.shape[-1] for f in out.features] == [8, 8, 3]
    student.init_output_bias(np.full(9, 0.5))
    torch.testing.assert_close(student.readout[-1].bias, torch.full((9,), float(np.log(0.5))))
    teacher = BlendLFADS(BlendLFADSConfig(n_inputs=6, n_outputs=9, n_behavior=2,
                                          hidden_size=8, factor_size=3, n_layers=2)).eval()
    assert teacher.attention.num_heads == 1 and teacher.attention.embed_dim == 10
    assert teacher.mixed_encoder.rnn.num_layers == 2
    assert teacher.behavior_encoder.rnn.hidden_size == 2
    behavior = torch.randn(4, 12, 2)
    rates = teacher(spikes, behavior).log_rates
    assert rates.shape == (4, 12, 9)
    assert not torch.allclose(rates, teacher(spikes, behavior + 1).log_rates)


@pytest.mark.parametrize("strategy", ["hard", "feature", None])
def test_blend_lfads_base_trains_as_plain_model_teacher_and_student(strategy):
    from sklearn_blend.datasets import make_synthetic

    X, b = make_synthetic("simple", n_trials=16, n_time=12, n_neurons=8, random_state=0)
    est = BlendEstimator(base="blend_lfads", strategy=strategy, n_heldout=2,
                         random_state=0, **dict(TINY_LFADS, n_layers=2))
    est.fit(X, b)
    assert est.student_.base.config.n_layers == 2
    assert est.predict_rates(X[..., :6]).shape == (16, 12, 8)
    assert np.isfinite(est.score(X))
    assert est.set_params(output="latents").transform(X).shape == (16, 12, 4)
    if strategy is not None:
        assert est.teacher_.model_.base.config.n_behavior > 0


@pytest.mark.parametrize("strategy", ["hard", "soft", "feature", "correlation", None])
def test_lfads_base_runs_every_strategy_with_heldout_and_forward(strategy):
    from sklearn_blend.datasets import make_synthetic

    X, b = make_synthetic("simple", n_trials=16, n_time=12, n_neurons=8, random_state=0)
    X, forward = X[:, :10], X[:, 10:]
    est = BlendEstimator(base="lfads", strategy=strategy, n_heldout=2, forward_bins=2,
                         random_state=0, **TINY_LFADS)
    est.fit(X, b[:, :10], spikes_forward=forward)
    assert est.predict_rates(X[..., :6], forward=True).shape == (16, 12, 8)
    assert np.isfinite(est.score(X))
    assert est.set_params(output="latents").transform(X).shape == (16, 10, 4)


@pytest.mark.parametrize("base", [TinyGRU, tiny_gru_factory])
@pytest.mark.parametrize("strategy", ["hard", "soft", "feature", "correlation", None])
def test_user_base_runs_every_strategy(trials, base, strategy):
    X, b = trials
    est = BlendEstimator(base=base, strategy=strategy, random_state=0, **TINY_TRAINING)
    rates = est.fit(X, b).transform(X)
    assert rates.shape == X.shape and np.all(np.isfinite(rates))
    assert est.set_params(output="latents").transform(X).shape == (24, 10, 6)
    if strategy == "feature":  # feature widths match, so no projection is needed
        assert list(est.student_net_.criterion_.strategy.projections) == [None, None]


def test_user_base_options_and_feature_projections(trials):
    X, b = trials
    est = BlendEstimator(base=TinyGRU, strategy="feature", base_params={"width": 5},
                         random_state=0, **TINY_TRAINING).fit(X, b)
    assert est.set_params(output="latents").transform(X).shape == (24, 10, 5)
    # a user base is pickled by reference, and reloads with identical output
    restored = pickle.loads(pickle.dumps(est))
    assert_same(restored.transform(X), est.transform(X))


def test_same_seed_same_user_base_gives_identical_results(trials):
    X, b = trials
    runs = [BlendEstimator(base=TinyGRU, strategy="correlation", random_state=3,
                           **TINY_TRAINING).fit(X, b).transform(X) for _ in range(2)]
    assert_same(*runs)


def test_a_base_without_features_or_latents_says_what_is_missing(trials):
    X, b = trials
    est = BlendEstimator(base=RatesOnly, strategy="hard", random_state=0, **TINY_TRAINING)
    assert est.fit(X, b).transform(X).shape == X.shape  # rates are enough for "hard"
    with pytest.raises(ValueError, match="returns no latents"):
        est.set_params(output="latents").transform(X)
    with pytest.raises(ValueError, match="strategy='feature' aligns the layers"):
        BlendEstimator(base=RatesOnly, strategy="feature", **TINY_TRAINING).fit(X, b)


def test_protocol_violations_are_clear_errors(trials):
    X, b = trials

    class WrongShape(RatesOnly):
        def forward(self, spikes, behavior=None):
            return super().forward(spikes, behavior)[..., :-1]

    with pytest.raises(ValueError, match=r"returned log-rates of shape .* expected"):
        BlendEstimator(base=WrongShape, **TINY_TRAINING).fit(X, b)
    with pytest.raises(TypeError, match="must build a torch.nn.Module"):
        BlendEstimator(base=lambda **kwargs: "not a module", **TINY_TRAINING,
                       teacher_cache=False).fit(X, b)
    with pytest.raises(TypeError, match="could not build base"):
        BlendEstimator(base=TinyGRU, base_params={"depth": 2}, **TINY_TRAINING).fit(X, b)
    with pytest.raises(TypeError, match="base must be a registered name"):
        BlendEstimator(base=3, **TINY_TRAINING).fit(X, b)

    class LatentsAsFeatures(RatesOnly):  # (log_rates, latents): features must be a list
        def forward(self, spikes, behavior=None):
            log_rates = super().forward(spikes, behavior)
            return log_rates, log_rates

    with pytest.raises(TypeError, match="returned features of type Tensor"):
        BlendEstimator(base=LatentsAsFeatures, **TINY_TRAINING).fit(X, b)

    class FlatLatents(RatesOnly):
        def forward(self, spikes, behavior=None):
            log_rates = super().forward(spikes, behavior)
            return log_rates, [], log_rates.mean(1)

    with pytest.raises(ValueError, match=r"latents of shape \(8, 6\); expected \(batch, time"):
        BlendEstimator(base=FlatLatents, **TINY_TRAINING).fit(X, b)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(base="lfads", n_heads=4), "n_heads=4 does not apply to base='lfads'"),
        (dict(base=TinyGRU, hidden_size=32), "hidden_size=32 does not apply"),
        (dict(base="lfads", base_params={"hidden_size": 8}), "set them directly"),
        (dict(base=TinyGRU, teacher_hidden_size=8), "teacher_hidden_size does not apply"),
        (dict(base="lfads", base_params={"n_outputs": 99}), r"may not set \['n_outputs'\]"),
    ],
)
def test_parameters_a_base_does_not_take_are_rejected(trials, params, match):
    X, b = trials
    with pytest.raises(ValueError, match=match):
        BlendEstimator(**params, **TINY_TRAINING).fit(X, b)


def test_a_base_defined_inside_a_function_is_cached_by_its_code(trials):
    X, b = trials

    def local_factory(n_inputs, n_outputs, n_behavior):
        return RatesOnly(n_inputs, n_outputs, n_behavior)

    first = BlendEstimator(base=local_factory, random_state=0, **TINY_TRAINING).fit(X, b)
    again = BlendEstimator(base=local_factory, random_state=0, **TINY_TRAINING).fit(X, b)
    assert again.teacher_ is first.teacher_


def test_a_redefined_base_does_not_reuse_the_old_teacher(trials):
    X, b = trials
    first = BlendEstimator(base="tiny", random_state=0, **TINY_TRAINING)
    register_base("tiny", TinyGRU)
    try:
        first.fit(X, b)
        again = BlendEstimator(base="tiny", random_state=0, **TINY_TRAINING).fit(X, b)
        assert again.teacher_ is first.teacher_  # same code and data: reused
        register_base("tiny", RatesOnly)  # same name, other code
        other = BlendEstimator(base="tiny", random_state=0, **TINY_TRAINING).fit(X, b)
        assert other.teacher_ is not first.teacher_
        assert isinstance(other.teacher_.model_.base, RatesOnly)
    finally:
        del BASES["tiny"]


def test_registry_maps_names_to_bases(trials):
    X, b = trials
    assert {"ndt", "lfads"} <= set(BASES)
    register_base("tiny_gru", TinyGRU)
    try:
        est = BlendEstimator(base="tiny_gru", random_state=0, **TINY_TRAINING).fit(X, b)
        assert isinstance(est.student_, BaseAdapter)
        assert isinstance(est.student_.base, TinyGRU)
    finally:
        del BASES["tiny_gru"]
    model = build_model("lfads", n_inputs=3, n_outputs=4, n_behavior=0, n_time=5,
                        options={"hidden_size": 4, "factor_size": 2})
    assert model(torch.zeros(2, 5, 3)).log_rates.shape == (2, 5, 4)


def test_lfads_feature_distillation_projects_where_widths_differ(trials):
    X, b = trials
    est = BlendEstimator(base="lfads", strategy="feature", teacher_hidden_size=12,
                         random_state=0, **TINY_LFADS).fit(X, b)
    projections = est.student_net_.criterion_.strategy.projections
    # encoding and generator widths differ (8 vs 12); the factors (4) match
    assert [None if p is None else tuple(p.weight.shape) for p in projections] == [
        (12, 8), (12, 8), None]
