import torch

from sklearn_blend.masking import apply_mask, interleaved_masks, random_timestep_mask


def test_random_mask_hides_whole_bins_at_the_ratio():
    gen = torch.Generator().manual_seed(0)
    mask = random_timestep_mask(400, 100, 0.25, generator=gen)
    assert mask.shape == (400, 100, 1) and mask.dtype == torch.bool
    assert abs(mask.float().mean().item() - 0.25) < 0.01


def test_apply_mask_zeroes_every_neuron_of_masked_bins_only():
    spikes = torch.ones(2, 4, 3)
    mask = torch.tensor([[True, False, False, True], [False] * 4])[..., None]
    out = apply_mask(spikes, mask)
    assert out[0, 0].eq(0).all() and out[0, 3].eq(0).all()
    assert out[0, 1:3].eq(1).all() and out[1].eq(1).all()


def test_interleaved_masks_hide_each_bin_exactly_once():
    masks = interleaved_masks(14, 0.25)
    assert masks.shape == (4, 14)
    assert masks.sum(0).eq(1).all()
    single = interleaved_masks(1, 0.25)
    assert single.shape == (1, 1) and single.all()
