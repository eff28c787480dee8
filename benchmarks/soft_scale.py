"""Soft distillation at our scale and at the official one (MC_Maze_Small).

``Soft(reduction="bin")`` (ours) averages the KL divergence over (trial, bin), the scale of the
masked reconstruction loss; ``Soft(reduction="trial")`` sums it over the bins of a trial, as
BLEND's official code does (``batchmean`` over trials), so that at the same ``alpha``
distillation weighs ``n_time`` (180 here) times more. Both students of a (fold, seed) share the
teacher and the seed; differences are paired.

Run ``python benchmarks/soft_scale.py`` (5 folds x 3 seeds); it writes
``benchmarks/results/soft_scale.{csv,md}``. ``--quick`` checks the script.
"""

from __future__ import annotations

import argparse
import warnings

from common import fold_arguments, mean_sd, paired_text, run_folds, write_results
from sklearn_blend import BlendEstimator, metrics
from sklearn_blend.datasets import load_mc_maze_small
from sklearn_blend.distill import Soft
from sklearn_blend.evaluation import split_arrays
from sklearn_blend.model_selection import paired_differences

#: the students' alpha of this study (the package default when it ran), fixed so that a rerun
#: compares the same thing whatever the default is
ALPHA = 0.5


def run(fold, seed, train, test, params, n_threads):
    import torch

    torch.set_num_threads(n_threads)
    warnings.filterwarnings("ignore", module="sklearn")
    X, b, forward = split_arrays(load_mc_maze_small())
    heldin = X[..., :107]
    rows = []
    for reduction in ("bin", "trial"):
        model = BlendEstimator(base="ndt", strategy=Soft(reduction=reduction), alpha=ALPHA, n_heldout=35,
                               forward_bins=40, random_state=seed, **params)
        model.fit(X[train], b[train], spikes_forward=forward[train])
        rates = model.predict_rates(heldin[test], forward=True)
        rows.append(dict(
            method=reduction, fold=fold, seed=seed, epochs=model.n_iter_,
            co_bps=metrics.co_bps(rates[:, :-40, 107:], X[test][..., 107:]),
            fp_bps=metrics.fp_bps(rates[:, -40:], forward[test]),
            vel_r2=metrics.vel_r2(model.predict_rates(heldin[train]), b[train],
                                  rates[:, :-40], b[test])))
    return rows


def summarize(results):
    lines = ["| soft reduction | co-bps | fp-bps | Vel-R2 | epochs |", "|---|---|---|---|---|"]
    for method in ("bin", "trial"):
        rows = results[results.method == method]
        lines.append(f"| {method} | {mean_sd(rows.co_bps)} | {mean_sd(rows.fp_bps)} | "
                     f"{mean_sd(rows.vel_r2)} | {rows.epochs.mean():.0f} |")
    lines += ["", "trial - bin, paired over (fold, seed): " + "; ".join(
        f"{metric} {paired_text(d)}"
        for metric in ("co_bps", "fp_bps", "vel_r2")
        for d in [paired_differences(results, "trial", "bin", metric)])]
    return "\n".join(lines)


def main(argv=None):
    parser = fold_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]),
                            "soft_scale")
    args = parser.parse_args(argv)
    results, n_folds, seeds = run_folds(run, args)
    header = (f"MC_Maze_Small, soft students (tau=2, alpha={ALPHA}, NDT defaults), "
              f"{n_folds}-fold CV x {len(seeds)} seeds{' (quick)' if args.quick else ''}.")
    write_results(args.out, header, summarize(results), results)


if __name__ == "__main__":
    main()
