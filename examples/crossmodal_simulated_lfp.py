"""
Cross-modal distillation: spikes teach an LFP model, on simulated sessions
==========================================================================

Spikes are the privileged modality (recorded in training only), LFP the everyday one.
``CrossModalEstimator`` trains a masked autoencoder of the spikes (the teacher), then an LFP
model of the same kind whose latents are pulled toward the teacher's latents of the
simultaneously recorded spikes; at inference it reads LFP alone. This script simulates one
session (``make_spikes_lfp``), fits the distilled LFP model and the same LFP model without a
teacher (``strategy=None``), and decodes hand velocity from each one's latents with a per-bin
ridge on held-out trials.

Run: ``python examples/crossmodal_simulated_lfp.py``; ``SKLEARN_BLEND_QUICK=1`` runs a
two-epoch version in seconds.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import RidgeCV

from sklearn_blend import CrossModalEstimator, LFPPreprocessor, PerBin
from sklearn_blend.datasets import make_spikes_lfp

QUICK = os.environ.get("SKLEARN_BLEND_QUICK") == "1"
data = make_spikes_lfp(n_trials=120, n_time=100, n_neurons=40, n_channels=16, random_state=0)
# raw LFP at 1 kHz to the bin rate (100 Hz): reference, notch, low-pass, resample, z-score
# (no high-pass: a 1-s trial is too short for it; filter whole recordings instead)
pre = LFPPreprocessor(sfreq=1000, l_freq=None, notch=60)
train, test = np.arange(90), np.arange(90, 120)
lfp_train = pre.fit_transform(data.lfp[train])
lfp_test = pre.transform(data.lfp[test])
velocity = data.behavior

scores, latents = {}, {}
for name, strategy in (("distilled from spikes", "latent"), ("LFP alone", None)):
    model = CrossModalEstimator(strategy=strategy, hidden_size=32, n_layers=1,
                                max_epochs=2 if QUICK else 60, random_state=0)
    model.fit(lfp_train, privileged=data.spikes[train])
    decoder = PerBin(RidgeCV(alphas=np.logspace(-2, 3, 11)))
    decoder.fit(model.transform(lfp_train), velocity[train])
    latents[name] = model.transform(lfp_test)
    scores[name] = decoder.score(latents[name], velocity[test])
    print(f"{name:>22}: velocity R2 {scores[name]:.3f} on held-out trials (LFP only)")

fig, ax = plt.subplots(figsize=(5, 3))
ax.bar(list(scores), list(scores.values()), color=["C0", "C7"])
ax.set(ylabel="velocity R2 (held-out trials)", title="decoding from LFP latents")
fig.tight_layout()
plt.show()
