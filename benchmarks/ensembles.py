"""Seed ensembles on real MC_Maze_Small: what averaging the rates of k fits adds, at what cost.

Protocol: the folds of ``nlb_mc_maze_small.py`` (5-fold cross-validation over the 75 trials
with behavior: 60 training, 15 test trials, held-out neurons and the 40 forward bins). In every
(fold, seed) and for each method (the plain model, ``BlendEstimator(strategy=None)``, and the
hard student, ``strategy="hard"``, at the package defaults) one
``SeedEnsemble(BlendEstimator(...), n_members=K)`` is fit on the training trials; its members
are seeded ``100 * seed, 100 * seed + 1, ...``. The ensemble of the first k members (k in
``--k``, the rates of all neurons averaged, forward bins included) is scored on the test trials
with NLB's metrics (co-bps, fp-bps, Vel-R2 with the decoder fit on the training trials'
averaged rates); k = 1 is the lone model, so every gain is paired with it. Cost: the training
seconds of the k members (one core each) and k times the prediction passes.

Run ``python benchmarks/ensembles.py`` (writes ``benchmarks/results/ensembles.{csv,md}``);
``--seeds``/``--folds`` run a part (combine parts with ``--merge``); ``--quick`` checks the
script (1 fold, 1 seed, 2 members, 5 epochs).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd

from common import RESULTS, mean_sd, paired_text, read_runs, write_results
from sklearn_blend import BlendEstimator, SeedEnsemble
from sklearn_blend.datasets import load_mc_maze_small
from sklearn_blend.evaluation import score_rates, split_arrays, training_seconds
from sklearn_blend.model_selection import paired_differences

METHODS = {"plain": None, "hard": "hard"}
METRICS = ("co_bps", "fp_bps", "vel_r2")


def run(fold, seed, n_members, ks, quick):
    import torch
    from sklearn.model_selection import KFold

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", module="sklearn")
    data = load_mc_maze_small()
    X, b, forward = split_arrays(data)
    n_heldout = data.spikes_heldout.shape[-1]
    train, test = list(KFold(5, shuffle=True, random_state=0).split(X))[fold]
    heldin = X[..., : X.shape[-1] - n_heldout]
    forward_bins = forward.shape[1]
    rows = []
    for method, strategy in METHODS.items():
        model = BlendEstimator(base="ndt", strategy=strategy, n_heldout=n_heldout, forward_bins=forward_bins,
                               **({"max_epochs": 5} if quick else {}))
        ensemble = SeedEnsemble(model, n_members=n_members, random_state=100 * seed)
        ensemble.fit(X[train], b[train], spikes_forward=forward[train])
        members = ensemble.estimators_
        train_rates = [m.predict_rates(heldin[train]) for m in members]
        test_rates = [m.predict_rates(heldin[test], forward=True) for m in members]
        seconds = [training_seconds(m.student_net_)
                   + (0.0 if m.teacher_ is None else training_seconds(m.teacher_.net_))
                   for m in members]
        for k in ks:
            rates = np.mean(test_rates[:k], axis=0)
            scores = score_rates(data, train, test, np.mean(train_rates[:k], axis=0),
                                 rates[:, :-forward_bins], rates[:, -forward_bins:])
            rows.append(dict(method=f"{method}, k={k}", base_method=method, k=k, fold=fold,
                             seed=seed, seconds=sum(seconds[:k]), **scores))
    print(f"fold {fold} seed {seed} done", flush=True)
    return rows


def summarize(results):
    lines = ["| method | co-bps | fp-bps | Vel-R2 | training s (one core) | pairs |",
             "|---|---|---|---|---|---|"]
    for method, rows in results.groupby("method", sort=False):
        lines.append(f"| {method} | {mean_sd(rows.co_bps)} | {mean_sd(rows.fp_bps)} | "
                     f"{mean_sd(rows.vel_r2)} | {rows.seconds.mean():.0f} | {len(rows)} |")
    lines += ["", "Ensemble minus the lone model (k = 1) of the same (fold, seed) (mean +- sd, "
              "wins/pairs, Wilcoxon p):", ""]
    for base in METHODS:
        for k in sorted(set(results.k) - {1}):
            for metric in METRICS:
                d = paired_differences(results, f"{base}, k={k}", f"{base}, k=1", metric)
                if d["n"]:
                    lines.append(f"- {base}, k={k} - k=1, {metric}: {paired_text(d)}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--k", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(RESULTS / "ensembles"))
    parser.add_argument("--merge", nargs="+", metavar="CSV",
                        help="only combine the rows of runs into --out's table")
    args = parser.parse_args(argv)
    if args.merge:
        results = read_runs(args.merge, ["method", "fold", "seed"])
        header = ("MC_Maze_Small, seed ensembles at the package defaults, runs merged: `--merge "
                  + " ".join(os.path.basename(p) for p in args.merge) + "`.")
        return write_results(args.out, header, summarize(results), results)
    from joblib import Parallel, delayed

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    members, ks = (2, [1, 2]) if args.quick else (args.members, args.k)
    if max(ks) > members or min(ks) < 1:
        raise SystemExit(f"--k {ks} must lie in 1..--members {members}")
    folds, seeds = (args.folds[:1], args.seeds[:1]) if args.quick else (args.folds, args.seeds)
    start = time.perf_counter()
    outputs = Parallel(n_jobs=args.n_jobs)(delayed(run)(fold, seed, members, ks, args.quick)
                                           for fold in folds for seed in seeds)
    results = pd.DataFrame([row for rows in outputs for row in rows])
    header = (f"MC_Maze_Small, seed ensembles of {members} members at the package defaults "
              f"(plain model and hard student), folds {folds} x seeds {seeds}"
              f"{' (quick)' if args.quick else ''}; wall time "
              f"{(time.perf_counter() - start) / 60:.0f} min on {os.cpu_count()} cores; command "
              "`python benchmarks/ensembles.py`.")
    write_results(args.out, header, summarize(results), results)


if __name__ == "__main__":
    main()
