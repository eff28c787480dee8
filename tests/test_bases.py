"""Bases: the GRU models, LFADS, the base-model protocol, user bases and the registry."""

import pickle

import numpy as np
import pytest
import torch
from torch import nn

from sklearn_blend import BlendEstimator
from sklearn_blend.models import (
    BASES,
    GRUConfig,
    GRUModel,
    LFADS,
    BaseAdapter,
    LFADSConfig,
    build_model,
    register_base,
)

from .helpers import TINY_GRU, TINY_LFADS, TINY_TRAINING, TinyGRU, assert_same

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


def test_gru_returns_log_rates_factors_and_three_stages():
    torch.manual_seed(0)
    model = GRUModel(GRUConfig(n_inputs=6, n_outputs=9, n_behavior=2, hidden_size=8,
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
                         random_state=0, **dict(TINY_GRU, n_layers=2))
    est.fit(X, b)
    assert est.student_.base.config.n_layers == 2
    assert est.predict_rates(X[..., :6]).shape == (16, 12, 8)
    assert np.isfinite(est.score(X))
    assert est.set_params(output="latents").transform(X).shape == (16, 12, 4)
    if strategy is not None:
        assert est.teacher_.model_.base.config.n_behavior > 0


@pytest.mark.parametrize("strategy", ["hard", "soft", "feature", "correlation", None])
def test_gru_base_runs_every_strategy_with_heldout_and_forward(strategy):
    from sklearn_blend.datasets import make_synthetic

    X, b = make_synthetic("simple", n_trials=16, n_time=12, n_neurons=8, random_state=0)
    X, forward = X[:, :10], X[:, 10:]
    est = BlendEstimator(base="gru", strategy=strategy, n_heldout=2, forward_bins=2,
                         random_state=0, **TINY_GRU)
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
        (dict(base="gru", n_heads=4), "n_heads=4 does not apply to base='gru'"),
        (dict(base=TinyGRU, hidden_size=32), "hidden_size=32 does not apply"),
        (dict(base="gru", base_params={"hidden_size": 8}), "set them directly"),
        (dict(base=TinyGRU, teacher_hidden_size=8), "teacher_hidden_size does not apply"),
        (dict(base="gru", base_params={"n_outputs": 99}), r"may not set \['n_outputs'\]"),
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

    first = BlendEstimator(base=local_factory, strategy="hard", random_state=0,
                           **TINY_TRAINING).fit(X, b)
    again = BlendEstimator(base=local_factory, strategy="hard", random_state=0,
                           **TINY_TRAINING).fit(X, b)
    assert again.teacher_ is first.teacher_


def test_a_redefined_base_does_not_reuse_the_old_teacher(trials):
    X, b = trials
    first = BlendEstimator(base="tiny", strategy="hard", random_state=0, **TINY_TRAINING)
    register_base("tiny", TinyGRU)
    try:
        first.fit(X, b)
        again = BlendEstimator(base="tiny", strategy="hard", random_state=0, **TINY_TRAINING).fit(X, b)
        assert again.teacher_ is first.teacher_  # same code and data: reused
        register_base("tiny", RatesOnly)  # same name, other code
        other = BlendEstimator(base="tiny", strategy="hard", random_state=0, **TINY_TRAINING).fit(X, b)
        assert other.teacher_ is not first.teacher_
        assert isinstance(other.teacher_.model_.base, RatesOnly)
    finally:
        del BASES["tiny"]


def test_registry_maps_names_to_bases(trials):
    X, b = trials
    assert {"ndt", "gru"} <= set(BASES)
    register_base("tiny_gru", TinyGRU)
    try:
        est = BlendEstimator(base="tiny_gru", random_state=0, **TINY_TRAINING).fit(X, b)
        assert isinstance(est.student_, BaseAdapter)
        assert isinstance(est.student_.base, TinyGRU)
    finally:
        del BASES["tiny_gru"]
    model = build_model("gru", n_inputs=3, n_outputs=4, n_behavior=0, n_time=5,
                        options={"hidden_size": 4, "factor_size": 2})
    assert model(torch.zeros(2, 5, 3)).log_rates.shape == (2, 5, 4)


def test_gru_feature_distillation_projects_where_widths_differ(trials):
    X, b = trials
    est = BlendEstimator(base="gru", strategy="feature", teacher_hidden_size=12,
                         random_state=0, **TINY_GRU).fit(X, b)
    projections = est.student_net_.criterion_.strategy.projections
    # encoding and generator widths differ (8 vs 12); the factors (4) match
    assert [None if p is None else tuple(p.weight.shape) for p in projections] == [
        (12, 8), (12, 8), None]


# ---------------------------------------------------------------------------------- LFADS
LFADS_SIZES = dict(hidden_size=8, factor_size=3, ic_encoder_size=6, ci_encoder_size=5,
                   controller_size=4, ic_size=4, co_size=2)


def test_lfads_has_the_variational_stack_of_lfads_torch():
    """An initial-condition posterior from the last states of a bidirectional encoder, a
    controller that infers inputs from lagged per-bin encodings and the previous factors, an
    autonomous generator driven by them, unit-norm factor rows, and penalties in training."""
    from sklearn_blend.models.lfads import ClippedGRUCell

    torch.manual_seed(0)
    model = LFADS(LFADSConfig(n_inputs=6, n_outputs=9, **LFADS_SIZES))
    assert model.ic_posterior.out_features == 2 * 4  # mean and log-variance
    assert isinstance(model.controller, ClippedGRUCell)
    assert model.controller.weight_ih.shape == (3 * 4, 2 * 5 + 3)  # [ci_t, factor_{t-1}]
    assert model.generator.weight_ih.shape == (3 * 8, 2)  # inferred inputs only
    assert not model.generator.bias_hh.requires_grad  # lfads-torch's frozen recurrent bias
    spikes = torch.poisson(torch.full((5, 12, 6), 0.5))
    out = model(spikes)
    assert out.log_rates.shape == (5, 12, 9) and out.latents.shape == (5, 12, 3)
    assert [f.shape[-1] for f in out.features] == [10, 8, 3]
    assert out.penalty.ndim == 0 and out.penalty > 0
    # training samples the posteriors; evaluation reads their means, deterministically
    assert not torch.equal(out.log_rates, model(spikes).log_rates)
    model.eval()
    assert model(spikes).penalty is None
    torch.testing.assert_close(model(spikes).log_rates, model(spikes).log_rates)
    # the factors are the generator states through unit-norm rows
    rows = torch.nn.functional.normalize(model.factors.weight, dim=1)
    torch.testing.assert_close(model(spikes).latents, model(spikes).features[1] @ rows.T)
    # the controller inputs lag the data: their forward half, one bin late, never reads the
    # last bin
    ci = model._controller_inputs(spikes)
    changed = spikes.clone()
    changed[:, -1] += 3
    assert torch.equal(model._controller_inputs(changed)[:, :, :5], ci[:, :, :5])


def test_lfads_penalties_are_its_kl_terms_and_l2_ramped_over_steps():
    from sklearn_blend.models.lfads import kl_autoregressive, kl_normal

    # closed form against torch.distributions
    mean, std = torch.randn(7, 3), torch.rand(7, 3) + 0.1
    prior_mean, prior_logvar = torch.randn(3), torch.log(torch.full((3,), 0.1))
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, std),
        torch.distributions.Normal(prior_mean, prior_logvar.mul(0.5).exp())).sum(-1).mean()
    torch.testing.assert_close(kl_normal(mean, std, prior_mean, prior_logvar), expected)
    # the AR(1) prior's log-density: stationary first bin, then alpha * previous + noise
    sample = torch.randn(2, 5, 1)
    log_tau, log_var = torch.log(torch.tensor([4.0])), torch.log(torch.tensor([0.2]))
    alpha = np.exp(-1 / 4.0)
    log_p = 0.0
    for b in range(2):
        x = sample[b, :, 0].numpy()
        log_p += -0.5 * (x[0] ** 2 / (0.2 / (1 - alpha**2)) + np.log(0.2 / (1 - alpha**2))
                         + np.log(2 * np.pi))
        for t in range(1, 5):
            log_p += -0.5 * ((x[t] - alpha * x[t - 1]) ** 2 / 0.2 + np.log(0.2)
                             + np.log(2 * np.pi))
    q_mean, q_std = torch.zeros_like(sample), torch.ones_like(sample)
    log_q = torch.distributions.Normal(q_mean, q_std).log_prob(sample).sum() / 2
    estimate = kl_autoregressive(q_mean, q_std, sample, log_tau, log_var)
    assert estimate.item() == pytest.approx(log_q.item() - log_p / 2, rel=1e-5)
    # the weights rise over ramp_steps training steps, then stay
    config = LFADSConfig(n_inputs=4, n_outputs=4, ramp_steps=3, kl_ic_scale=0.0,
                         kl_co_scale=0.0, l2_gen_scale=1.0, l2_con_scale=1.0,
                         **LFADS_SIZES)
    model = LFADS(config)
    l2 = model.l2_penalty().item()
    kernels = [model.generator.weight_hh, model.controller.weight_hh]
    assert l2 == pytest.approx(sum(0.5 * k.square().sum().item() for k in kernels)
                               / sum(k.numel() for k in kernels), rel=1e-5)
    penalties = [model(torch.zeros(2, 6, 4)).penalty.item() for _ in range(5)]
    assert penalties == pytest.approx([l2 / 4, l2 / 2, 3 * l2 / 4, l2, l2], rel=1e-5)


def test_lfads_without_a_controller_is_autonomous_and_a_teacher_reads_behavior():
    torch.manual_seed(0)
    autonomous = LFADS(LFADSConfig(n_inputs=5, n_outputs=5, **dict(LFADS_SIZES, co_size=0)))
    assert not autonomous.config.controlled and not hasattr(autonomous, "controller")
    out = autonomous(torch.rand(3, 8, 5))
    assert out.log_rates.shape == (3, 8, 5) and out.penalty > 0
    teacher = LFADS(LFADSConfig(n_inputs=5, n_outputs=7, n_behavior=2, **LFADS_SIZES)).eval()
    spikes, behavior = torch.rand(3, 8, 5), torch.randn(3, 8, 2)
    assert teacher.generator.weight_ih.shape == (3 * 8, 2 + 2)  # inferred + external inputs
    assert not torch.allclose(teacher(spikes, behavior).log_rates,
                              teacher(spikes, behavior + 1).log_rates)


def test_coordinated_dropout_scores_the_dropped_entries():
    from sklearn_blend.training.objective import CoordinatedDropout

    masking = CoordinatedDropout(0.4, n_forward=2)
    spikes = torch.ones(50, 10, 6)
    inputs = {"spikes": spikes}
    targets = {"spikes": torch.ones(50, 10, 8)}  # 2 held-out neurons
    view = masking(inputs, targets, {}, training=True)
    dropped = view.inputs["spikes"] == 0
    assert 0.3 < dropped.float().mean() < 0.5  # entries, not whole bins
    assert not torch.equal(dropped.all(-1), dropped.any(-1))
    # kept entries are scaled up as dropout does
    assert torch.allclose(view.inputs["spikes"][~dropped], torch.tensor(1 / 0.6))
    scored = view.scored["spikes"]
    assert scored.shape == (50, 10, 8)
    assert torch.equal(scored[:, :8, :6], dropped[:, :8])
    assert scored[..., 6:].all() and scored[:, 8:].all()  # held-out neurons, forward bins
    # validation reuses the fixed mask; inference reads the input as it is
    fixed = masking.fixed_mask(inputs, torch.Generator().manual_seed(0))
    again = masking(inputs, targets, {"valid_mask": fixed}, training=False)
    assert torch.equal(again.inputs["spikes"] == 0, fixed)
    assert torch.equal(masking(inputs, {}, {}, training=False).inputs["spikes"], spikes)


@pytest.mark.parametrize("strategy", ["hard", "soft", "feature", "correlation", None])
def test_lfads_base_runs_every_strategy_with_heldout_and_forward(strategy):
    from sklearn_blend.datasets import make_synthetic

    X, b = make_synthetic("simple", n_trials=16, n_time=12, n_neurons=8, random_state=0)
    X, forward = X[:, :10], X[:, 10:]
    est = BlendEstimator(base="lfads", strategy=strategy, n_heldout=2, forward_bins=2,
                         random_state=0, **TINY_LFADS)
    est.fit(X, b[:, :10], spikes_forward=forward)
    assert isinstance(est.student_.base, LFADS) and est.mask_ratio_ == 0.3
    assert est.predict_rates(X[..., :6], forward=True).shape == (16, 12, 8)
    assert np.isfinite(est.score(X))
    assert est.set_params(output="latents").transform(X).shape == (16, 10, 4)
    history = est.student_net_.history
    assert all(np.isfinite(history[:, "train_penalty"]))
    if strategy is not None:
        assert est.teacher_.model_.base.config.n_behavior > 0


def test_lfads_recovers_the_rates_of_a_latent_oscillator():
    """LFADS's published behaviour on simulated dynamics: the rates of Poisson neurons driven
    by a rotating two-dimensional latent, whose phase each trial draws, recovered from the
    spikes of held-out trials far better than by smoothing."""
    from scipy.ndimage import gaussian_filter1d

    rng = np.random.default_rng(0)
    n_trials, n_time, n_neurons = 120, 50, 30
    phase = rng.uniform(0, 2 * np.pi, n_trials)[:, None] + 2 * np.pi / 25 * np.arange(n_time)
    latent = np.stack([np.cos(phase), np.sin(phase)], -1)
    rates = np.exp(np.log(rng.uniform(0.1, 0.4, n_neurons))
                   + latent @ rng.normal(0, 0.8, (2, n_neurons)))
    X = rng.poisson(rates).astype(np.float32)

    def r2(predicted):
        truth = rates[90:]
        return 1 - ((predicted - truth) ** 2).sum() / ((truth - truth.mean((0, 1))) ** 2).sum()

    est = BlendEstimator(base="lfads", strategy=None, max_epochs=40, lr=1e-2, hidden_size=32,
                         base_params=dict(ic_encoder_size=32, ci_encoder_size=16,
                                          controller_size=16, ic_size=16, factor_size=8),
                         random_state=0).fit(X[:90])
    smoothing = r2(gaussian_filter1d(X[90:], 2, axis=1))
    assert smoothing < 0.5 and r2(est.predict_rates(X[90:])) > 0.9
