"""
NEDS: decode behavior from spikes and encode spikes from behavior with one model
================================================================================

``NedsEstimator`` trains one transformer over spike tokens and behavior tokens with
alternating masks (neural, behavioral, within-modality and cross-modal), so the same fitted
model decodes (``predict``: behavior from spikes alone) and encodes (``predict_rates(b=...)``:
spike rates from behavior alone). On simulated reaching data this script fits it on 120 trials
and scores both directions on 40 held-out trials, against ridge on smoothed spikes (decoding)
and each neuron's mean rate (encoding, bits per spike above that null).

Run: ``python examples/neds_encode_decode.py``; ``SKLEARN_BLEND_QUICK=1`` runs a two-epoch
version in seconds (what the documentation build and the tests run).
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from scipy.ndimage import gaussian_filter1d
from sklearn.linear_model import RidgeCV

from sklearn_blend import NedsEstimator, PerBin
from sklearn_blend.datasets import make_synthetic
from sklearn_blend.metrics import bits_per_spike

QUICK = os.environ.get("SKLEARN_BLEND_QUICK") == "1"
X, b = make_synthetic("simple", n_trials=160, n_time=40, n_neurons=40, random_state=0)
train, test = np.arange(120), np.arange(120, 160)

neds = NedsEstimator(hidden_size=32, n_layers=1, n_heads=2, ffn_size=64, lr=3e-3,
                     max_epochs=2 if QUICK else 150, random_state=0)
neds.fit(X[train], b[train])

# decoding: behavior from spikes alone, against ridge on smoothed spikes
decoded = neds.predict(X[test])
ridge = PerBin(RidgeCV(alphas=np.logspace(-2, 3, 11)))
ridge.fit(gaussian_filter1d(X[train], 2, axis=1), b[train])
print(f"decoding R2: NEDS {neds.score(X[test], b[test]):.3f}, ridge on smoothed spikes "
      f"{ridge.score(gaussian_filter1d(X[test], 2, axis=1), b[test]):.3f}")

# encoding: rates from behavior alone, in bits per spike above each neuron's mean rate
rates = neds.predict_rates(b=b[test])
print(f"encoding: {bits_per_spike(rates, X[test]):.3f} bits/spike above the mean rate")

fig, axes = plt.subplots(1, 2, figsize=(9, 3))
axes[0].plot(b[test][0, :, 0], "k", label="true")
axes[0].plot(decoded[0, :, 0], "C1", label="NEDS from spikes")
axes[0].set(title="decoding (trial 0, channel 0)", xlabel="bin")
axes[0].legend()
axes[1].plot(X[test][:, :, :5].mean(0), "k", alpha=0.4)
axes[1].plot(rates[:, :, :5].mean(0), "C0")
axes[1].set(title="encoding: mean rates of 5 neurons", xlabel="bin", ylabel="count per bin")
fig.tight_layout()
plt.show()
