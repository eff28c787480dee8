"""Property tests of the pure loss functions (hypothesis)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sklearn_blend import losses

settings.register_profile("blend", deadline=None, max_examples=60)
settings.load_profile("blend")

finite = st.floats(-5, 5, allow_nan=False, width=32)
shapes = st.tuples(st.integers(1, 3), st.integers(2, 6), st.integers(2, 5))


@st.composite
def pair(draw):
    shape = draw(shapes)
    s = draw(arrays(np.float32, shape, elements=finite))
    t = draw(arrays(np.float32, shape, elements=finite))
    return torch.tensor(s, dtype=torch.float64), torch.tensor(t, dtype=torch.float64)


def layer_lists(s, t):
    return [s, s * 2], [t, t * 2]


def all_distillations(s, t, tau=2.0):
    fs, ft = layer_lists(s, t)
    return {
        "hard": losses.hard_distillation(s, t),
        "soft": losses.soft_distillation(s, t, tau),
        "feature": losses.feature_distillation(fs, ft),
        "correlation": losses.correlation_distillation(s, t),
    }


@given(pair(), st.floats(0.1, 10))
def test_distillation_losses_are_non_negative(st_pair, tau):
    s, t = st_pair
    for name, value in all_distillations(s, t, tau).items():
        assert value.item() >= -1e-12, name


@given(pair(), st.floats(0.1, 10))
def test_distillation_losses_vanish_when_student_equals_teacher(st_pair, tau):
    s, _ = st_pair
    for name, value in all_distillations(s, s.clone(), tau).items():
        assert value.item() == pytest.approx(0.0, abs=1e-10), name


@given(pair(), st.floats(0.1, 10), st.integers(0, 2**31 - 1))
def test_soft_ignores_a_constant_per_trial_and_bin(st_pair, tau, seed):
    s, t = st_pair
    gen = torch.Generator().manual_seed(seed)
    shift_s = torch.randn(*s.shape[:2], 1, generator=gen, dtype=s.dtype) * 10
    shift_t = torch.randn(*t.shape[:2], 1, generator=gen, dtype=t.dtype) * 10
    before = losses.soft_distillation(s, t, tau)
    after = losses.soft_distillation(s + shift_s, t + shift_t, tau)
    assert after.item() == pytest.approx(before.item(), rel=1e-6, abs=1e-9)


@given(pair(), st.integers(0, 2**31 - 1))
def test_correlation_ignores_positive_per_neuron_affine_rescaling(st_pair, seed):
    s, t = st_pair
    # constant neurons have no correlation to preserve (covered by
    # test_correlation_of_a_constant_neuron_is_zero_not_nan); a ramp over time keeps every
    # neuron varying without filtering examples out (hypothesis often draws constant arrays)
    s = s + torch.linspace(0.0, 1.0, s.shape[1], dtype=s.dtype)[None, :, None]
    gen = torch.Generator().manual_seed(seed)
    n = s.shape[-1]
    scale = torch.exp(torch.randn(n, generator=gen, dtype=s.dtype))  # positive
    offset = torch.randn(n, generator=gen, dtype=s.dtype) * 3
    before = losses.correlation_distillation(s, t)
    after = losses.correlation_distillation(s * scale + offset, t)
    assert after.item() == pytest.approx(before.item(), rel=1e-6, abs=1e-8)


@given(st.floats(1e-3, 50), st.floats(-3, 3).filter(lambda d: abs(d) > 1e-3))
def test_poisson_loss_is_minimised_by_the_true_rate(rate, delta):
    # the loss is linear in the counts, so counts == rate gives the expected loss under Poisson
    counts = torch.tensor([rate], dtype=torch.float64)
    at_truth = losses.masked_poisson_loss(torch.log(counts), counts)
    off = losses.masked_poisson_loss(torch.log(counts) + delta, counts)
    assert at_truth.item() < off.item()


def test_poisson_loss_gradient_vanishes_at_the_true_rate():
    counts = torch.tensor([[[0.3, 2.0, 7.5]]], dtype=torch.float64)
    log_rates = torch.log(counts).requires_grad_()
    losses.masked_poisson_loss(log_rates, counts).backward()
    np.testing.assert_allclose(log_rates.grad.numpy(), 0.0, atol=1e-12)


def test_masked_poisson_loss_only_counts_masked_bins():
    log_rates = torch.zeros(1, 2, 3)
    counts = torch.tensor([[[1.0, 1, 1], [5.0, 5, 5]]])
    mask = torch.tensor([[[True], [False]]])
    assert losses.masked_poisson_loss(log_rates, counts, mask).item() == pytest.approx(1.0)


@pytest.mark.parametrize("outputs", ["zeros", "constant"])
def test_losses_and_gradients_are_finite_on_degenerate_input(outputs):
    spikes = torch.zeros(2, 5, 4)  # all-zero spikes
    fill = 0.0 if outputs == "zeros" else 1.7
    s = torch.full((2, 5, 4), fill, requires_grad=True)
    t = torch.full((2, 5, 4), fill)
    nothing = torch.zeros(2, 5, 1, dtype=torch.bool)
    terms = [
        losses.masked_poisson_loss(s, spikes),
        losses.masked_poisson_loss(s, spikes, nothing),  # no bin masked
        *all_distillations(s, t).values(),
        losses.hard_distillation(s, t, nothing),
    ]
    for term in terms:
        assert torch.isfinite(term)
        (grad,) = torch.autograd.grad(term, s, allow_unused=True, retain_graph=True)
        assert grad is None or torch.isfinite(grad).all()


def test_correlation_of_a_constant_neuron_is_zero_not_nan():
    x = torch.randn(1, 20, 3)
    x[..., 1] = 4.0
    c = losses.correlation_matrix(x)
    assert torch.isfinite(c).all()
    assert torch.all(c[0, 1] == 0) and torch.all(c[0, :, 1] == 0)
    assert c[0, 0, 0].item() == pytest.approx(1.0, abs=1e-6)


def test_correlation_matches_numpy_corrcoef():
    x = torch.randn(2, 30, 4, dtype=torch.float64)
    c = losses.correlation_matrix(x)
    for trial in range(2):
        np.testing.assert_allclose(c[trial].numpy(), np.corrcoef(x[trial].numpy().T), atol=1e-10)


def test_correlation_distillation_is_squared_frobenius_per_entry_averaged_over_trials():
    s, t = torch.randn(3, 25, 4, dtype=torch.float64), torch.randn(3, 25, 4, dtype=torch.float64)
    expected = np.mean(
        [np.sum((np.corrcoef(s[i].T) - np.corrcoef(t[i].T)) ** 2) / 4**2 for i in range(3)]
    )
    assert losses.correlation_distillation(s, t).item() == pytest.approx(expected, rel=1e-9)


def test_soft_distillation_matches_the_definition():
    s, t, tau = torch.randn(2, 3, 5), torch.randn(2, 3, 5), 2.0
    p = torch.softmax(t / tau, -1)
    q = torch.softmax(s / tau, -1)
    kl = (p * (p.log() - q.log())).sum(-1).mean()
    assert losses.soft_distillation(s, t, tau).item() == pytest.approx(tau**2 * kl.item(), rel=1e-5)


def test_feature_distillation_projects_student_layers_of_another_width():
    student = [torch.randn(2, 4, 8), torch.randn(2, 4, 8)]
    teacher = [torch.randn(2, 4, 12), torch.randn(2, 4, 12)]
    projections = [torch.nn.Linear(8, 12), torch.nn.Linear(8, 12)]
    value = losses.feature_distillation(student, teacher, projections)
    expected = sum(((p(s) - t) ** 2).mean() for p, s, t in zip(projections, student, teacher))
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match="projection"):
        losses.feature_distillation(student, teacher)
    with pytest.raises(ValueError, match="as many student layers"):
        losses.feature_distillation(student[:1], teacher)
