"""
Tune BLEND's alpha and tau with GridSearchCV in a velocity-decoding pipeline
============================================================================

The distilled student feeds NLB's velocity decoder (per-bin ridge) inside one scikit-learn
Pipeline; GridSearchCV splits trials (never bins), scores every candidate with both Vel-R2 and
co-bps, and refits the best one on all training trials. The teacher depends on neither alpha
nor tau, so it is trained once per fold and reused by every candidate (``teacher_cache``).

Run: ``python examples/grid_search_alpha_tau.py`` (8.5 minutes measured on 2 cores
with other jobs running beside it); ``SKLEARN_BLEND_QUICK=1`` runs a two-epoch version.
"""

import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline

from sklearn_blend import BlendEstimator, BlendTeacher
from sklearn_blend.datasets import load_mc_maze_small
from sklearn_blend.scoring import co_bps_scorer, nlb_velocity_decoder, vel_r2_scorer

QUICK = os.environ.get("SKLEARN_BLEND_QUICK") == "1"  # the tests' and docs' short run

warnings.filterwarnings("ignore", module="sklearn.linear_model")  # tiny ridge alphas

data = load_mc_maze_small()
X = np.concatenate([data.spikes, data.spikes_heldout], axis=-1)  # held-out neurons last
b = data.behavior
train, test = np.arange(30 if QUICK else 60), np.arange(60, 75)

teacher_fits = []
fit_teacher = BlendTeacher.fit
BlendTeacher.fit = lambda self, *a, **k: teacher_fits.append(1) or fit_teacher(self, *a, **k)

pipe = Pipeline([
    # the NDT base (fast); without base= it is the default GRU, several times slower
    ("blend", BlendEstimator(base="ndt", strategy="soft", n_heldout=35,
                             max_epochs=2 if QUICK else 300, random_state=0)),
    ("decoder", nlb_velocity_decoder()),
])
search = GridSearchCV(
    pipe,
    {"blend__alpha": [0.3, 0.7], "blend__tau": [1.0] if QUICK else [1.0, 4.0]},
    cv=KFold(2 if QUICK else 3, shuffle=True, random_state=0),
    scoring={"vel_r2": vel_r2_scorer, "co_bps": co_bps_scorer},
    refit="vel_r2",
)
start = time.perf_counter()
search.fit(X[train], b[train])
print(f"{len(search.cv_results_['params'])} candidates x {search.n_splits_} folds in "
      f"{time.perf_counter() - start:.0f} s; teachers trained: {len(teacher_fits)} "
      "(one per fold plus the refit)")
columns = ["param_blend__alpha", "param_blend__tau", "mean_test_vel_r2", "mean_test_co_bps"]
print(pd.DataFrame(search.cv_results_)[columns].round(3).to_string(index=False))
print("best:", search.best_params_)
table = pd.DataFrame(search.cv_results_).pivot_table(
    index="param_blend__alpha", columns="param_blend__tau", values="mean_test_vel_r2")
fig, ax = plt.subplots(figsize=(4, 3))
image = ax.imshow(table.to_numpy(), cmap="viridis")
ax.set(xticks=range(len(table.columns)), xticklabels=table.columns, xlabel="tau",
       yticks=range(len(table.index)), yticklabels=table.index, ylabel="alpha",
       title="cross-validated Vel-R2")
fig.colorbar(image)
fig.tight_layout()
plt.show()
print(f"held-out trials: Vel-R2 {vel_r2_scorer(search.best_estimator_, X[test], b[test]):.3f}, "
      f"co-bps {co_bps_scorer(search.best_estimator_, X[test]):.3f}")
