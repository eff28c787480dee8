"""Does the teacher's behavior over the forward bins help forward prediction (fp-bps)?

BLEND's official teacher reads the real behavior over the forward-prediction bins in training;
without ``behavior_forward`` ours reads zeros there. MC_Maze_Small's files carry no behavior
after the window, so this runs on the "hierarchical" synthetic family (behavior drives the
spikes through causal moving averages, so behavior in the forward bins explains forward spikes):
``make_synthetic`` trials of ``n_time + forward_bins`` bins, the last ``forward_bins`` used as
forward bins, the last ``n_heldout`` neurons held out.

Per (fold, seed), on the same folds and seeds: the teacher and the hard student trained without
and with ``behavior_forward``; scored on the test trials (co-bps, fp-bps; the teacher reads zeros
in the forward bins at test time, as it must without future behavior). Differences are paired.

Run ``python benchmarks/forward_behavior.py`` (3 folds x 3 seeds); it writes
``benchmarks/results/forward_behavior.{csv,md}``. ``--quick`` checks the script in seconds.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.model_selection import KFold

from common import RESULTS, mean_sd, write_results
from sklearn_blend import BlendEstimator, metrics
from sklearn_blend.datasets import make_synthetic
from sklearn_blend.model_selection import paired_differences

SIZES = dict(n_trials=200, n_time=50, forward_bins=10, n_neurons=40, n_heldout=10)


def run(fold, seed, train, test, sizes, params, n_threads):
    import torch

    torch.set_num_threads(n_threads)
    T, F, H = sizes["n_time"], sizes["forward_bins"], sizes["n_heldout"]
    X_all, b_all = make_synthetic("hierarchical", n_trials=sizes["n_trials"], n_time=T + F,
                                  n_neurons=sizes["n_neurons"], random_state=0)
    X, forward, b, b_forward = X_all[:, :T], X_all[:, T:], b_all[:, :T], b_all[:, T:]
    heldin = X[..., :-H]
    rows = []
    for condition, extra in (("zeros", {}), ("behavior_forward", {
            "behavior_forward": b_forward[train]})):
        model = BlendEstimator(base="ndt", strategy="hard", n_heldout=H, forward_bins=F, random_state=seed,
                               **params)
        model.fit(X[train], b[train], spikes_forward=forward[train], **extra)
        rates = model.predict_rates(heldin[test], forward=True)
        teacher_rates = model.teacher_.predict_rates(heldin[test], b[test], forward=True)
        for method, r in (("student", rates), ("teacher", teacher_rates)):
            rows.append(dict(method=method, condition=condition, fold=fold, seed=seed,
                             co_bps=metrics.co_bps(r[:, :T, -H:], X[test][..., -H:]),
                             fp_bps=metrics.fp_bps(r[:, T:], forward[test])))
    return rows


def summarize(results):
    lines = ["| model | fp-bps, zeros | fp-bps, behavior_forward | fp-bps difference | "
             "co-bps, zeros | co-bps, behavior_forward |", "|---|---|---|---|---|---|"]
    for method in ("teacher", "student"):
        rows = results[results.method == method]
        paired = rows.assign(method=rows.condition)
        d = paired_differences(paired, "behavior_forward", "zeros", "fp_bps")
        cells = [mean_sd(rows[rows.condition == c][m]) for m in ("fp_bps",)
                 for c in ("zeros", "behavior_forward")]
        co = [mean_sd(rows[rows.condition == c].co_bps) for c in ("zeros", "behavior_forward")]
        lines.append(f"| {method} | {cells[0]} | {cells[1]} | {d['mean']:+.3f} +- {d['sd']:.3f} "
                     f"({d['wins']}/{d['n']} higher, p={d['p_wilcoxon']:.2g}) | {co[0]} | "
                     f"{co[1]} |")
    lines += ["", "Mean +- sd over (fold, seed) pairs; the difference is paired over them "
              "(Wilcoxon p, optimistic: the pairs share training trials)."]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(RESULTS / "forward_behavior"))
    args = parser.parse_args(argv)
    sizes, params, seeds = dict(SIZES), {}, args.seeds
    if args.quick:
        sizes.update(n_trials=30, n_time=12, forward_bins=4, n_neurons=10, n_heldout=3)
        params = dict(max_epochs=3, hidden_size=8, n_layers=1, ffn_size=16)
        seeds = seeds[:1]
    splits = list(KFold(args.folds, shuffle=True, random_state=0).split(
        np.arange(sizes["n_trials"])))
    n_threads = max(1, (os.cpu_count() or 1) // args.n_jobs)
    outputs = Parallel(n_jobs=args.n_jobs)(
        delayed(run)(fold, seed, train, test, sizes, params, n_threads)
        for seed in seeds for fold, (train, test) in enumerate(splits))
    results = pd.DataFrame([row for rows in outputs for row in rows])
    header = (f"Forward behavior for the teacher: synthetic 'hierarchical' ({sizes}), "
              f"{args.folds}-fold CV x {len(seeds)} seeds, hard student, NDT defaults"
              f"{' (quick)' if args.quick else ''}.")
    write_results(args.out, header, summarize(results), results)


if __name__ == "__main__":
    main()
