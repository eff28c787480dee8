import pytest
import torch

from sklearn_blend.models.layers import Dropout, keep_mask


def test_keep_mask_keeps_each_entry_with_probability_one_minus_p():
    torch.manual_seed(0)
    for p in (0.1, 0.5, 0.9):
        kept = keep_mask((400, 500), p).double().mean().item()
        assert abs(kept - (1 - p)) < 4 * ((p * (1 - p)) / 200_000) ** 0.5


def test_masks_follow_torch_seeding_and_differ_between_calls():
    torch.manual_seed(3)
    first, second = keep_mask((50, 40), 0.3), keep_mask((50, 40), 0.3)
    torch.manual_seed(3)
    assert torch.equal(keep_mask((50, 40), 0.3), first)
    assert not torch.equal(first, second)


def test_training_mode_zeroes_or_rescales_and_backpropagates_through_the_mask():
    layer = Dropout(0.25)
    x = torch.rand(30, 20) + 1.0
    x.requires_grad_(True)
    y = layer(x)
    kept = y != 0
    assert 0 < kept.float().mean() < 1
    torch.testing.assert_close(y[kept], (x / 0.75)[kept])
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.75)


def test_evaluation_mode_and_zero_probability_are_the_identity():
    x = torch.rand(4, 5)
    assert Dropout(0.5).eval()(x) is x
    assert Dropout(0.0)(x) is x


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_invalid_probability_is_a_value_error(p):
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(p)


@pytest.mark.parametrize("p", ["0.1", None, True])
def test_non_numeric_probability_is_a_type_error(p):
    with pytest.raises(TypeError, match="dropout probability p"):
        Dropout(p)
