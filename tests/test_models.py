import pytest
import torch

from sklearn_blend.models import NDT, NDTConfig, build_model
from sklearn_blend.models.layers import (SelfAttention, attention, banded_attention_mask,
                                         rotary_codes, rotate)


def make(**overrides):
    config = dict(n_inputs=6, n_outputs=6, n_time=12, hidden_size=8, n_layers=2, ffn_size=16,
                  dropout=0.0)
    config.update(overrides)
    torch.manual_seed(0)
    return NDT(NDTConfig(**config)).eval()


def test_forward_returns_log_rates_latents_and_one_feature_per_layer():
    out = make(n_outputs=9)(torch.rand(3, 12, 6))
    assert out.log_rates.shape == (3, 12, 9)
    assert out.latents.shape == (3, 12, 8)
    assert [f.shape for f in out.features] == [(3, 12, 8)] * 2


def test_shorter_trials_use_the_first_positions():
    model = make()
    assert model(torch.rand(2, 7, 6)).log_rates.shape == (2, 7, 6)


def test_banded_attention_limits_what_each_bin_sees():
    model = make(context_backward=1, context_forward=0, n_layers=1)
    x = torch.rand(1, 12, 6)
    y = x.clone()
    y[0, 8] += 5.0  # change bin 8: with one layer only bins 8 and 9 may move
    a, b = model(x).log_rates, model(y).log_rates
    moved = (a - b).abs().amax(-1)[0] > 0
    assert moved.nonzero().flatten().tolist() == [8, 9]


def test_attention_mask_bounds():
    m = banded_attention_mask(5, 1, 2)
    assert m[2].tolist() == [False, True, True, True, True]
    assert m[0].tolist() == [True, True, True, False, False]
    assert banded_attention_mask(5, None, None) is None


def test_teacher_fuses_behavior_per_bin():
    model = make(n_behavior=2)
    spikes = torch.rand(2, 12, 6)
    behavior = torch.randn(2, 12, 2)
    assert not torch.allclose(model(spikes, behavior).log_rates,
                              model(spikes, behavior + 1).log_rates)


def test_output_bias_starts_at_log_mean_rate():
    model = make(n_layers=0)
    model.init_output_bias(torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.0]))
    expected = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5]))
    assert torch.allclose(model.readout.bias[:5], expected)
    assert torch.isfinite(model.readout.bias).all()  # a silent neuron does not give -inf


def test_registry_rejects_unknown_base():
    with pytest.raises(ValueError, match="base must be one of"):
        build_model("lstm", n_inputs=1, n_outputs=1, n_behavior=0, n_time=1)
    with pytest.raises(TypeError, match="registered name"):
        build_model(3, n_inputs=1, n_outputs=1, n_behavior=0, n_time=1)
    with pytest.raises(ValueError, match="divisible by n_heads"):
        make(hidden_size=9, n_heads=2)


@pytest.mark.parametrize("backward, forward", [(None, None), (8, 4), (0, 3)])
def test_written_out_attention_equals_the_sdpa_kernel(backward, forward):
    torch.manual_seed(0)
    # strided views of one fused tensor, as SelfAttention passes them
    fused = torch.randn(2, 30, 3, 5, dtype=torch.float64, requires_grad=True)
    q, k, v = fused.unbind(2)
    mask = banded_attention_mask(30, backward, forward)
    grad = torch.randn(2, 30, 5, dtype=torch.float64)
    ours = attention(q, k, v, mask)
    kernel = torch.nn.functional.scaled_dot_product_attention(
        q.contiguous(), k.contiguous(), v.contiguous(), attn_mask=mask)
    torch.testing.assert_close(ours, kernel)
    torch.testing.assert_close(torch.autograd.grad(ours, fused, grad),
                               torch.autograd.grad(kernel, fused, grad))


@pytest.mark.parametrize("window", [(None, None), (8, 4)])
def test_self_attention_matches_head_major_sdpa(window):
    """The per-head views compute standard multi-head attention, outputs and gradients."""
    torch.manual_seed(0)
    layer = SelfAttention(12, 3).double()
    x = torch.randn(4, 20, 12, dtype=torch.float64, requires_grad=True)
    mask = banded_attention_mask(20, *window)

    def reference(x):
        q, k, v = layer.qkv(x).split(12, dim=-1)
        q, k, v = (z.view(4, 20, 3, 4).transpose(1, 2) for z in (q, k, v))
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return layer.out(y.transpose(1, 2).reshape(4, 20, 12))

    grad = torch.randn(4, 20, 12, dtype=torch.float64)
    inputs = (x, *layer.parameters())
    ours, expected = layer(x, mask), reference(x)
    torch.testing.assert_close(ours, expected)
    for a, b in zip(torch.autograd.grad(ours, inputs, grad),
                    torch.autograd.grad(expected, inputs, grad)):
        torch.testing.assert_close(a, b)


def test_rotary_scores_depend_on_the_offset_of_the_bins_only():
    """Rotated queries and keys: the score of two tokens is the same at every pair of bins
    with the same offset, and tokens of one bin meet unrotated (offset zero)."""
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 8, dtype=torch.float64), torch.randn(1, 1, 8, dtype=torch.float64)

    def score(bin_q, bin_k):
        rq = rotate(q, rotary_codes(torch.tensor([bin_q]), 8))
        rk = rotate(k, rotary_codes(torch.tensor([bin_k]), 8))
        return float((rq * rk).sum())

    torch.testing.assert_close(score(3, 5), score(10, 12))
    torch.testing.assert_close(score(7, 7), float((q * k).sum()))
    assert abs(score(3, 5) - score(3, 9)) > 1e-3
    # a rotation: lengths are kept
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(rotate(x, rotary_codes(torch.arange(5), 8)).norm(dim=-1),
                               x.norm(dim=-1))
    with pytest.raises(ValueError, match="even head width"):
        rotary_codes(torch.arange(5), 7)
