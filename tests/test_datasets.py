import numpy as np
import pytest

from sklearn_blend.datasets import load_mc_maze_small, make_synthetic


def test_mc_maze_small_is_bundled_with_its_citation():
    data = load_mc_maze_small()
    assert data.spikes.shape == (75, 140, 107)
    assert data.spikes_heldout.shape == (75, 140, 35)
    assert data.behavior.shape == (75, 140, 2)
    assert data.spikes_forward.shape == (75, 40, 107)
    assert data.spikes_heldout_forward.shape == (75, 40, 35)
    assert data.bin_size_ms == 5
    assert data.spikes.dtype == np.float32
    assert "CC-BY-4.0" in data.DESCR and "dandiset/000140" in data.DESCR
    counts = data.spikes
    assert counts.min() == 0 and np.all(counts == np.round(counts))
    assert 1.0 < counts.mean() / 0.005 < 10.0  # about 4.4 Hz


@pytest.mark.parametrize("kind", ["simple", "hierarchical", "complex"])
def test_synthetic_families_have_the_requested_shapes_and_are_seeded(kind):
    X, b = make_synthetic(kind, n_trials=20, n_time=40, n_neurons=15, n_behavior=3,
                          random_state=0)
    assert X.shape == (20, 40, 15) and b.shape == (20, 40, 3)
    assert X.dtype == np.float32 and np.all(X >= 0) and np.all(X == np.round(X))
    X2, b2 = make_synthetic(kind, n_trials=20, n_time=40, n_neurons=15, n_behavior=3,
                            random_state=0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(b, b2)


def test_default_size_is_the_papers():
    X, b = make_synthetic("simple", n_trials=3, random_state=0)
    assert X.shape == (3, 140, 182) and b.shape == (3, 140, 2)


def _smoothness(x):
    """Lag-1 autocorrelation of the trial-averaged counts of each neuron, averaged."""
    mean = x.mean(axis=0)
    a, b = mean[:-1] - mean[:-1].mean(0), mean[1:] - mean[1:].mean(0)
    return np.mean((a * b).sum(0) / np.sqrt((a**2).sum(0) * (b**2).sum(0)))


def test_hierarchical_groups_integrate_behavior_over_longer_windows():
    X, b = make_synthetic("hierarchical", n_trials=400, n_time=60, n_neurons=90, random_state=0)
    fast, slow = X[..., :30], X[..., 60:]
    # slow neurons lag behavior: their counts follow behavior of several bins earlier
    def lagged_fit(counts, lag):
        from sklearn.linear_model import LinearRegression

        beh = b[:, : 60 - lag].reshape(-1, 2)
        y = counts[:, lag:].reshape(-1, counts.shape[-1])
        return LinearRegression().fit(beh, np.log1p(y)).score(beh, np.log1p(y))

    assert lagged_fit(fast, 0) > lagged_fit(fast, 5)
    assert lagged_fit(slow, 5) > lagged_fit(slow, 0)


def test_complex_assemblies_are_correlated_within_not_across():
    X, b = make_synthetic("complex", n_trials=300, n_time=40, n_neurons=50, random_state=0)
    residual = X - X.mean(axis=0)  # remove the trial-average response
    corr = np.corrcoef(residual.reshape(-1, 50).T)
    groups = np.repeat(np.arange(5), 10)
    same = groups[:, None] == groups[None, :]
    off_diagonal = ~np.eye(50, dtype=bool)
    assert corr[same & off_diagonal].mean() > corr[~same].mean() + 0.02


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="kind must be one of"):
        make_synthetic("linear")
    with pytest.raises(ValueError, match="n_neurons"):
        make_synthetic("complex", n_neurons=3)
    with pytest.raises(TypeError, match="n_trials"):
        make_synthetic("simple", n_trials=2.5)
