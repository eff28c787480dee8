"""
NLB evaluation and a leaderboard submission on MC_Maze_Small
============================================================

The Neural Latents Benchmark scores a model's firing rates: co-bps (the held-out neurons,
predicted from the held-in ones), fp-bps (the 200 ms after the window) and Vel-R2 (hand
velocity decoded by ridge regression from the rates). ``sklearn_blend.metrics`` computes them
as ``nlb_tools`` does. This script fits a BLEND student on 60 of the 75 bundled MC_Maze_Small
trials, scores it on the other 15 against NLB's smoothing baseline, and writes the rates of
the 100 official test trials as a submission file (when that file is beside the repository:
``shared/data/mc_maze_small/``; DANDI:000140).

Run: ``python examples/nlb_evaluation_and_submission.py``; ``SKLEARN_BLEND_QUICK=1`` runs a
two-epoch version in seconds.
"""

import os
import tempfile
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from sklearn_blend import BlendEstimator, SmoothingGLM
from sklearn_blend.datasets import load_mc_maze_small
from sklearn_blend.metrics import co_bps, fp_bps, vel_r2
from sklearn_blend.nlb import load_mc_maze_small_test, make_submission

QUICK = os.environ.get("SKLEARN_BLEND_QUICK") == "1"
warnings.filterwarnings("ignore", module="sklearn")
data = load_mc_maze_small()
X = np.concatenate([data.spikes, data.spikes_heldout], axis=-1)  # held-out neurons last
forward = np.concatenate([data.spikes_forward, data.spikes_heldout_forward], axis=-1)
b, n_heldout = data.behavior, data.spikes_heldout.shape[-1]
train, test = (np.arange(30) if QUICK else np.arange(60)), np.arange(60, 75)

# the NDT base (fast); without base= and strategy= it is the default GRU feature student,
# several times slower and stronger (docs/benchmarks/mc_maze_small.md)
student = BlendEstimator(base="ndt", strategy="hard", n_heldout=n_heldout, forward_bins=40,
                         max_epochs=2 if QUICK else 300, random_state=0)
student.fit(X[train], b[train], spikes_forward=forward[train])
smoothing = SmoothingGLM(n_heldout=n_heldout).fit(X[train])

heldin_train, heldin_test = data.spikes[train], data.spikes[test]
print(f"{'model':<22} {'co-bps':>7} {'fp-bps':>7} {'Vel-R2':>7}")
for name, model in (("smoothing", smoothing), ("BLEND hard student", student)):
    rates = model.predict_rates(heldin_test)
    train_rates = model.predict_rates(heldin_train)
    cobps = co_bps(rates[..., -n_heldout:], data.spikes_heldout[test])
    fpbps = "–"
    if name != "smoothing":  # smoothing predicts no forward bins
        ahead = model.predict_rates(heldin_test, forward=True)[:, -40:]
        fpbps = f"{fp_bps(ahead, forward[test]):7.3f}"
    r2 = vel_r2(train_rates, b[train], rates, b[test])
    print(f"{name:<22} {cobps:7.3f} {fpbps:>7} {r2:7.3f}")

try:
    official = load_mc_maze_small_test()  # the 100 trials the leaderboard scores
except FileNotFoundError as error:
    print(f"no submission: {error}")
else:
    path = Path(tempfile.mkdtemp()) / "submission.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 75 bundled training trials, not the 100 NLB fits on
        make_submission(student, official.spikes, path, X_train=data.spikes)
    print(f"wrote {path} ({path.stat().st_size // 1024} kB) for {len(official.spikes)} trials")

rates = student.predict_rates(heldin_test)
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(data.spikes_heldout[test][:, :, :3].mean(0), "k", alpha=0.4)
ax.plot(rates[:, :, -n_heldout:][:, :, :3].mean(0))
ax.set(title="held-out neurons: counts (grey) and predicted rates", xlabel="5-ms bin",
       ylabel="count per bin, mean over trials")
fig.tight_layout()
plt.show()
