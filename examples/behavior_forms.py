"""
Every form of behavior the teacher takes, on one synthetic data set
===================================================================

Behavior is only needed in training, and it rarely comes as a clean per-bin matrix: some
variables are per trial (an interval, a choice), some are categorical (a direction, a task
phase), and tracking drops out. Each block below fits a BLEND student with one form and prints
what the teacher made of it (``teacher_.behavior_encoding_``) and how well velocity decodes
from the student's rates on held-out trials. One seed on small data: differences between rows
are mostly seed noise; ``benchmarks/missing_behavior.py`` compares fractions of missing
behavior over 3 seeds.

Run: ``python examples/behavior_forms.py`` (13 minutes measured on 2 cores with a benchmark
running beside it); ``SKLEARN_BLEND_QUICK=1`` runs a two-epoch version in seconds.
"""

import os
import warnings

import numpy as np
import matplotlib.pyplot as plt
import pandas as pd

from sklearn_blend import BlendEstimator
from sklearn_blend.datasets import make_synthetic
from sklearn_blend.metrics import vel_r2

QUICK = os.environ.get("SKLEARN_BLEND_QUICK") == "1"  # the tests' and docs' short run

warnings.filterwarnings("ignore", module="sklearn")

n_trials = 40 if QUICK else 160
X, velocity = make_synthetic("simple", n_trials=n_trials, n_time=40, n_neurons=80,
                             random_state=0)
train, test = np.arange(n_trials * 3 // 4), np.arange(n_trials * 3 // 4, n_trials)
rng = np.random.default_rng(0)
PARAMS = dict(base="ndt", hidden_size=32, n_layers=1, ffn_size=64, dropout=0.2,
              max_epochs=2 if QUICK else 150, batch_size=16, lr=3e-3, warmup_steps=5, early_stopping=False, random_state=0)

# trial-level variables: the peak speed of the trial (continuous), its dominant direction
# (categorical, as strings) and a task-phase label per bin (categorical, per bin)
peak = np.abs(velocity).max(axis=(1, 2))
direction = np.where(velocity[:, :, 0].mean(axis=1) > 0, "right", "left")
phase = np.broadcast_to(np.arange(40) // 10, (n_trials, 40))[..., None].astype(float)

forms = {
    "per bin, continuous (n, t, 2)": (velocity, {}),
    "per bin + categorical phase (n, t, 3)": (
        np.concatenate([velocity, phase], axis=-1), {"categorical_behavior": [2]}),
    "per trial, array (n, 1)": (peak[:, None], {}),
    "per trial, DataFrame with a category": (
        pd.DataFrame({"direction": pd.Categorical(direction), "peak": peak}), {}),
    "per bin, 50% of trials missing": (
        np.where(rng.random(n_trials)[:, None, None] < 0.5, np.nan, velocity), {}),
    "per bin, 30% of bins missing": (
        np.where(rng.random((n_trials, 40, 1)) < 0.3, np.nan, velocity), {}),
}

scores = {}
plain = BlendEstimator(strategy=None, **PARAMS).fit(X[train])
print(f"{'behavior given to the teacher':<40} {'channels':>8} {'observed':>8} {'Vel-R2':>7}")
plain_score = vel_r2(plain.transform(X[train]), velocity[train], plain.transform(X[test]),
                     velocity[test])
print(f"{'none (plain model)':<40} {'':>8} {'':>8} {plain_score:7.3f}")
scores["none (plain model)"] = plain_score
for label, (b, params) in forms.items():
    b_train = b.iloc[train] if isinstance(b, pd.DataFrame) else b[train]
    est = BlendEstimator(strategy="hard", **params, **PARAMS).fit(X[train], b_train)
    encoding = est.teacher_.behavior_encoding_
    score = vel_r2(est.transform(X[train]), velocity[train], est.transform(X[test]),
                   velocity[test])
    print(f"{label:<40} {encoding.width:>8} {encoding.observed_fraction:>8.0%} {score:7.3f}")
    scores[label] = score

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.barh(list(scores), list(scores.values()))
ax.set(xlabel="Vel-R2 of the student (held-out trials)", title="behavior given to the teacher")
fig.tight_layout()
plt.show()
