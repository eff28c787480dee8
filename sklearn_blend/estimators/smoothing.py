"""The Neural Latents Benchmark's spike-smoothing baseline as a scikit-learn estimator."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import signal
from scipy.signal import windows
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import PoissonRegressor
from sklearn.utils.validation import check_is_fitted

from ..data.validation import check_number
from ..modalities import SPIKES
from ..metrics import co_bps
from ..persistence import SaveMixin


class SmoothingGLM(SaveMixin, TransformerMixin, BaseEstimator):
    """Gaussian-smoothed spikes, plus a Poisson GLM per held-out neuron (NLB's baseline).

    Held-in rates are the spike counts convolved over time with a normalised Gaussian window
    (standard deviation ``kern_sd_ms``, length six standard deviations, "same" borders).
    Each held-out neuron's rate is a Poisson regression on the log of the smoothed held-in
    counts (plus ``log_offset``) with L2 penalty ``alpha``, as in ``nlb_tools``'
    ``examples/baselines/smoothing``. For MC_Maze_Small NLB uses ``kern_sd_ms=60,
    alpha=0.1``; the smoothing baseline makes no forward predictions.

    Parameters
    ----------
    kern_sd_ms : float, default=60
    bin_size_ms : float, default=5
    alpha : float, default=0.1
    n_heldout : int, default=0
        The last ``n_heldout`` columns of ``X`` in ``fit`` are held-out neurons.
    log_offset : float, default=1e-4
    max_iter : int, default=500
        Iterations per GLM; a GLM that does not converge is refitted with 5 times more, up to
        10000, as the NLB script does.

    Attributes
    ----------
    glms_ : list of PoissonRegressor
        One fitted GLM per held-out neuron.
    n_features_in_ : int
        Neurons (held-in + held-out) seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_blend.estimators.smoothing import SmoothingGLM
    >>> X = np.random.default_rng(0).poisson(0.5, size=(8, 40, 6)).astype(float)
    >>> model = SmoothingGLM(kern_sd_ms=20, n_heldout=2).fit(X)
    >>> model.predict_rates(X[..., :4]).shape
    (8, 40, 6)
    """

    def __init__(self, *, kern_sd_ms=60, bin_size_ms=5, alpha=0.1, n_heldout=0,
                 log_offset=1e-4, max_iter=500):
        self.kern_sd_ms = kern_sd_ms
        self.bin_size_ms = bin_size_ms
        self.alpha = alpha
        self.n_heldout = n_heldout
        self.log_offset = log_offset
        self.max_iter = max_iter

    def _window(self):
        std = int(self.kern_sd_ms / self.bin_size_ms)
        window = windows.gaussian(int(6 * self.kern_sd_ms / self.bin_size_ms), std, sym=True)
        return window / window.sum()

    def smooth(self, spikes):
        """Convolve every trial and neuron of ``spikes`` ``(n, t, neurons)`` over time.

        "Same" borders as ``np.convolve(x, window, "same")`` (zeros beyond the trial), and
        always as many bins as the trial, also when the window is longer than the trial.
        """
        window = self._window()
        return signal.convolve(spikes, window[None, :, None], mode="same", method="direct")

    def _features(self, heldin):
        smoothed = self.smooth(heldin)
        return smoothed, np.log(smoothed.reshape(-1, smoothed.shape[-1]) + self.log_offset)

    def fit(self, X, y=None):
        """Fit one Poisson GLM per held-out neuron (the last ``n_heldout`` columns of ``X``)."""
        check_number(self.kern_sd_ms, "kern_sd_ms", low=self.bin_size_ms)
        check_number(self.n_heldout, "n_heldout", low=0, integer=True)
        spikes, _ = SPIKES.validate(X)
        if self.n_heldout >= spikes.shape[2]:
            raise ValueError(
                f"n_heldout={self.n_heldout} leaves no held-in neurons in X with "
                f"{spikes.shape[2]} neurons."
            )
        self.n_features_in_ = spikes.shape[2]
        n_heldin = self.n_features_in_ - self.n_heldout
        _, features = self._features(spikes[..., :n_heldin])
        targets = spikes[..., n_heldin:].reshape(len(features), self.n_heldout)
        self.glms_ = []
        for neuron in range(self.n_heldout):
            max_iter = self.max_iter
            while True:
                glm = PoissonRegressor(alpha=self.alpha, max_iter=max_iter)
                converged = max_iter >= 10000
                with warnings.catch_warnings():
                    if not converged:  # a refit with more iterations follows
                        warnings.simplefilter("ignore", ConvergenceWarning)
                    glm.fit(features, targets[:, neuron])
                if glm.n_iter_ < max_iter or converged:
                    break
                max_iter *= 5
            self.glms_.append(glm)
        return self

    def predict_rates(self, X):
        """Rates of all neurons ``(n_trials, n_time, n_neurons)`` from held-in (or all) spikes."""
        check_is_fitted(self)
        spikes, _ = SPIKES.validate(X)
        n_heldin = self.n_features_in_ - self.n_heldout
        if spikes.shape[2] not in (n_heldin, self.n_features_in_):
            raise ValueError(
                f"X has {spikes.shape[2]} features, but SmoothingGLM is expecting "
                f"{self.n_features_in_} features as input (or the {n_heldin} held-in ones)."
            )
        smoothed, features = self._features(spikes[..., :n_heldin])
        heldout = [np.clip(glm.predict(features), 1e-9, 1e20) for glm in self.glms_]
        heldout = np.stack(heldout, axis=-1) if heldout else features[:, :0]
        heldout = heldout.reshape(*smoothed.shape[:2], self.n_heldout)
        return np.concatenate([smoothed, heldout], axis=-1)

    def transform(self, X):
        """Same as :meth:`predict_rates`."""
        return self.predict_rates(X)

    def score(self, X, y=None):
        """Co-smoothing bits per spike on the held-out columns of ``X``."""
        rates = self.predict_rates(X)
        n_heldin = self.n_features_in_ - self.n_heldout
        return co_bps(rates[..., n_heldin:], np.asarray(X)[..., n_heldin:])
