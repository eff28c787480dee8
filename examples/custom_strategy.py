"""
Your own distillation strategy: one class and one registration line
===================================================================

A strategy is a ``torch.nn.Module`` whose ``forward(student, teacher)`` takes the two models'
outputs (``predictions`` keyed by modality, ``latents``, per-layer ``features``) and returns a
scalar. It may own parameters (they train with the student) and hyper-parameters (its
constructor's arguments; ``tau`` is filled in from the estimator when the constructor takes
it). Registered under a name, it works in every estimator (``BlendEstimator``,
``NeuronEmbedding``), in ``GridSearchCV`` grids over ``strategy`` and in the command line's
``--methods``; a class or an instance works without registering.

Here: a cosine strategy (one minus the cosine similarity of student and teacher log-rates in
each bin, plus the hard term so rate levels stay anchored), compared with ``"hard"`` and with
the plain model on MC_Maze_Small: fit on 60 trials, NLB's velocity decoder on their rates,
Vel-R2 and co-bps on the other 15, all with the same seed (one teacher, shared through the
teacher cache).

Run: ``python examples/custom_strategy.py`` (prints one line per model; 18 minutes measured on
2 cores with a benchmark running beside it); ``SKLEARN_BLEND_QUICK=1`` runs a two-epoch version.
"""

import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.pipeline import Pipeline

from sklearn_blend import BlendEstimator, register_strategy
from sklearn_blend.datasets import load_mc_maze_small
from sklearn_blend.distill import Hard, shared_predictions
from sklearn_blend.scoring import co_bps_scorer, nlb_velocity_decoder, vel_r2_scorer

QUICK = os.environ.get("SKLEARN_BLEND_QUICK") == "1"  # the tests' and docs' short run


class Cosine(Hard):
    """Hard term plus ``weight * (1 - cosine similarity)`` of the rates of every bin."""

    def __init__(self, weight=1.0):
        super().__init__()
        self.weight = weight

    def forward(self, student, teacher):
        cosine = sum(
            1 - torch.nn.functional.cosine_similarity(s, t, dim=-1).mean()
            for s, t in shared_predictions(student, teacher)
        )
        return super().forward(student, teacher) + self.weight * cosine


register_strategy("cosine", Cosine)


def main():
    warnings.filterwarnings("ignore", module="sklearn.linear_model")  # tiny ridge alphas
    data = load_mc_maze_small()
    X = np.concatenate([data.spikes, data.spikes_heldout], axis=-1)  # held-out neurons last
    b = data.behavior
    train, test = np.arange(30 if QUICK else 60), np.arange(60, 75)
    scores = {}
    for strategy in (None, "hard", "cosine", Cosine(weight=5.0)):
        pipe = Pipeline([
            # the NDT base (fast); without base= it is the default GRU, several times slower
            ("blend", BlendEstimator(base="ndt", strategy=strategy, n_heldout=35,
                                     max_epochs=2 if QUICK else 300, random_state=0)),
            ("decoder", nlb_velocity_decoder()),
        ]).fit(X[train], b[train])
        label = "Cosine(weight=5.0)" if isinstance(strategy, Cosine) else str(strategy)
        scores[label] = vel_r2_scorer(pipe, X[test], b[test])
        print(f"{label:>20}: Vel-R2 {scores[label]:.3f}, "
              f"co-bps {co_bps_scorer(pipe, X[test]):.3f} on the 15 held-out trials")
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(list(scores), list(scores.values()))
    ax.set(ylabel="Vel-R2 (15 held-out trials)", title="strategies, one registered by name")
    fig.tight_layout()
    plt.show()


if __name__ == "__main__":
    main()
