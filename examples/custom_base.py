"""
Distil behavior into your own PyTorch model: a small temporal-convolution base
==============================================================================

``BlendEstimator(base=...)`` takes any ``torch.nn.Module`` class (or factory) that follows the
base-model protocol of :mod:`sklearn_blend.models.base`:

* it is built from ``n_inputs`` (held-in neurons), ``n_outputs`` (all neurons, held-out last)
  and ``n_behavior`` (behavior channels per bin: 0 for the student), plus ``base_params``;
* ``forward(spikes, behavior=None)`` returns log-rates ``(batch, time, n_outputs)``, here with
  the per-layer features that ``strategy="feature"`` aligns and the latents that
  ``output="latents"`` returns;
* ``init_output_bias(mean_counts)``, optional, starts the readout at the log mean rates.

The same estimator then trains the teacher (spikes + hand velocity) and the spikes-only student
of this model, on 60 trials of MC_Maze_Small, and scores both against the same model trained
without behavior on the other 15 trials.

Run: ``python examples/custom_base.py`` (prints the table; 3.5 minutes measured on 2
cores with another job running beside it); ``SKLEARN_BLEND_QUICK=1`` runs a two-epoch version.
"""

import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from sklearn_blend import BlendEstimator
from sklearn_blend.datasets import load_mc_maze_small
from sklearn_blend.metrics import co_bps, vel_r2

QUICK = os.environ.get("SKLEARN_BLEND_QUICK") == "1"  # the tests' and docs' short run


class TemporalConvNet(nn.Module):
    """Two non-causal 1-D convolutions over time, then a linear readout to log-rates."""

    def __init__(self, n_inputs, n_outputs, n_behavior, width=64, kernel_size=9, dropout=0.3):
        super().__init__()
        padding = kernel_size // 2
        self.dropout = nn.Dropout(dropout)
        self.conv1 = nn.Conv1d(n_inputs + n_behavior, width, kernel_size, padding=padding)
        self.conv2 = nn.Conv1d(width, width, kernel_size, padding=padding)
        self.readout = nn.Linear(width, n_outputs)

    @torch.no_grad()
    def init_output_bias(self, mean_counts):
        self.readout.bias.copy_(torch.log(torch.as_tensor(mean_counts).clamp_min(1e-4)))

    def forward(self, spikes, behavior=None):
        x = spikes if behavior is None else torch.cat([spikes, behavior], dim=-1)
        h1 = torch.relu(self.conv1(self.dropout(x).transpose(1, 2)))
        h2 = torch.relu(self.conv2(self.dropout(h1)))
        h1, h2 = h1.transpose(1, 2), h2.transpose(1, 2)
        return self.readout(self.dropout(h2)), [h1, h2], h2  # log-rates, features, latents


def main():
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore", module="sklearn")
    data = load_mc_maze_small()
    X = np.concatenate([data.spikes, data.spikes_heldout], axis=-1)
    b, n_heldout = data.behavior, data.spikes_heldout.shape[-1]
    train, test = np.arange(30 if QUICK else 60), np.arange(60, 75)
    heldin = X[test][..., :-n_heldout]
    print(f"{'model':<26} {'co-bps':>7} {'Vel-R2':>7} {'seconds':>8}")
    scores = {}
    for strategy in (None, "hard", "feature"):
        start = time.perf_counter()
        est = BlendEstimator(base=TemporalConvNet, base_params={"width": 64},
                             strategy=strategy, n_heldout=n_heldout, lr=3e-3,
                             max_epochs=2 if QUICK else 300,
                             random_state=0).fit(X[train], b[train])
        rates = est.predict_rates(heldin)
        train_rates = est.predict_rates(X[train][..., :-n_heldout])
        label = "no behavior" if strategy is None else f"BLEND {strategy} student"
        scores[label] = vel_r2(train_rates, b[train], rates, b[test])
        print(f"{label:<26} {co_bps(rates[..., -n_heldout:], X[test][..., -n_heldout:]):7.3f} "
              f"{scores[label]:7.3f} {time.perf_counter() - start:8.0f}")
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(list(scores), list(scores.values()))
    ax.set(ylabel="Vel-R2 (15 held-out trials)", title="a temporal-convolution base")
    fig.tight_layout()
    plt.show()


if __name__ == "__main__":
    main()
