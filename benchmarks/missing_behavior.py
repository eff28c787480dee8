"""How much behavior does BLEND need? Student Vel-R2 as fewer training trials carry behavior.

For each fraction of training trials with behavior (100%, 50%, 20%, 5%, 0%), the behavior of
the other training trials is set to NaN (missing); the teacher trains on every trial with what
is there (:mod:`sklearn_blend.data.behavior`), and the student distils on every trial. At 0% the
teacher sees no behavior at all: the student is then self-distilled, which separates the
effect of distillation itself from the effect of behavior. The plain model without behavior
(``strategy=None``) is the reference. Trials that keep behavior are nested (the 5% are among
the 20%, and so on) and all fractions of one (split, seed) share the student seed, so the curve
is paired.

Velocity is decoded with NLB's ridge decoder, fit on the training trials' rates (and their
true velocity: the decoder is evaluation, not training) and scored by R^2 on test trials.

Two datasets, each with 3 seeds by default:

* ``mc_maze_small``: the bundled real data, 75 trials, 35 held-out neurons, the package's
  default BlendEstimator parameters, trial-wise 5-fold CV (``--folds K`` runs the first K
  folds);
* ``synthetic``: ``make_synthetic(--family, n_trials=160, n_time=40, n_neurons=80)``, 120
  training and 40 test trials per seed, a smaller model (``SYNTHETIC_PARAMS``).

Run ``python benchmarks/missing_behavior.py`` (wall time printed: 20 min on 2 cores with
``--folds 2``; ``--datasets synthetic`` for the synthetic family alone). Writes
``benchmarks/results/missing_behavior.{csv,md}``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.model_selection import KFold

from common import RESULTS, mean_sd
from sklearn_blend.distill import strategy_names

FRACTIONS = (1.0, 0.5, 0.2, 0.05, 0.0)
SYNTHETIC_PARAMS = dict(hidden_size=32, n_layers=1, ffn_size=64, dropout=0.2, max_epochs=150,
                        batch_size=16, lr=3e-3, warmup_steps=5, early_stopping=False)


def _dataset(name, family, seed):
    """``(X, b, n_heldout, splits)`` of a dataset; splits is a list of (train, test)."""
    if name == "mc_maze_small":
        from sklearn_blend.datasets import load_mc_maze_small

        data = load_mc_maze_small()
        X = np.concatenate([data.spikes, data.spikes_heldout], axis=-1)
        splits = list(KFold(5, shuffle=True, random_state=0).split(np.arange(len(X))))
        return X, data.behavior, data.spikes_heldout.shape[-1], splits
    from sklearn_blend.datasets import make_synthetic

    X, b = make_synthetic(family, n_trials=160, n_time=40, n_neurons=80, random_state=seed)
    return X, b, 0, [(np.arange(120), np.arange(120, 160))]


def run_split(name, family, fold, seed, strategy, fractions, params, n_threads):
    import torch

    from sklearn_blend import BlendEstimator
    from sklearn_blend.metrics import vel_r2

    torch.set_num_threads(n_threads)
    warnings.filterwarnings("ignore", module="sklearn")
    X, b, n_heldout, splits = _dataset(name, family, seed)
    train, test = splits[fold]
    settings = dict({"base": "ndt", **params}, n_heldout=n_heldout, random_state=seed)
    heldin = X[..., : X.shape[-1] - n_heldout]
    order = np.random.default_rng(seed).permutation(len(train))  # nested subsets
    rows = []
    for fraction in (None, *fractions):
        start = time.perf_counter()
        if fraction is None:
            model = BlendEstimator(strategy=None, **settings).fit(X[train])
        else:
            behavior = b[train].copy()
            behavior[order[int(round(fraction * len(train))):]] = np.nan
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # 0%: self-distillation warning
                model = BlendEstimator(strategy=strategy, teacher_cache=False, **settings)
                model.fit(X[train], behavior)
        score = vel_r2(model.predict_rates(heldin[train]), b[train],
                       model.predict_rates(heldin[test]), b[test])
        rows.append(dict(dataset=name, fold=fold, seed=seed,
                         fraction=np.nan if fraction is None else fraction,
                         method="no behavior" if fraction is None else strategy,
                         vel_r2=score, seconds=time.perf_counter() - start))
    return rows


def summarize(results, strategy):
    """One row per dataset: Vel-R2 (mean +- sd over seeds of the fold mean) per fraction."""
    lines = []
    for name, frame in results.groupby("dataset", sort=False):
        seeds, folds = frame.seed.nunique(), frame.fold.nunique()
        baseline = frame[frame.method == "no behavior"]
        reference = mean_sd(baseline.groupby("seed").vel_r2.mean(), skipna=False)
        lines += [
            f"**{name}** ({seeds} seeds x {folds} fold(s); no-behavior model: Vel-R2 "
            f"{reference})",
            "",
            "| trials with behavior | student Vel-R2 | gain vs no behavior | wins |",
            "|---|---|---|---|",
        ]
        base = baseline.set_index(["fold", "seed"]).vel_r2
        for fraction in sorted(frame.fraction.dropna().unique(), reverse=True):
            rows = frame[frame.fraction == fraction].set_index(["fold", "seed"]).vel_r2
            gain = (rows - base).dropna()
            sign = "+" if gain.groupby(level="seed").mean().mean() >= 0 else ""
            lines.append(
                f"| {fraction:.0%} | {mean_sd(rows.groupby(level='seed').mean(), skipna=False)} "
                f"| {sign}{mean_sd(gain.groupby(level='seed').mean(), skipna=False)} "
                f"| {int((gain > 0).sum())}/{len(gain)} |"
            )
        lines.append("")
    lines.append(
        f"Student: strategy={strategy!r}. Mean +- sd over seeds of the per-seed mean over "
        "folds; gains are paired with the no-behavior model of the same split and seed; wins "
        "count the (split, seed) pairs where the student beats it."
    )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["mc_maze_small", "synthetic"],
                        choices=["mc_maze_small", "synthetic"])
    parser.add_argument("--family", default="simple",
                        choices=["simple", "hierarchical", "complex"])
    parser.add_argument("--strategy", default="hard",
                        choices=list(strategy_names()))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=5,
                        help="MC_Maze_Small: run the first K of the 5 folds")
    parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--out", default=str(RESULTS / "missing_behavior"))
    args = parser.parse_args(argv)

    tasks = []
    for name in args.datasets:
        folds = range(args.folds) if name == "mc_maze_small" else [0]
        params = {} if name == "mc_maze_small" else SYNTHETIC_PARAMS
        tasks += [(name, fold, seed, params) for seed in args.seeds for fold in folds]
    n_threads = max(1, (os.cpu_count() or 1) // args.n_jobs)
    start = time.perf_counter()
    outputs = Parallel(n_jobs=args.n_jobs)(
        delayed(run_split)(name, args.family, fold, seed, args.strategy, args.fractions,
                           params, n_threads)
        for name, fold, seed, params in tasks
    )
    wall = time.perf_counter() - start
    results = pd.DataFrame([row for rows in outputs for row in rows])
    results["dataset"] = results.dataset.replace(
        {"synthetic": f"synthetic ({args.family})", "mc_maze_small": "MC_Maze_Small"})
    header = (f"Student Vel-R2 against the fraction of training trials with behavior; wall "
              f"time {wall / 60:.0f} min on {os.cpu_count()} cores.")
    table = summarize(results, args.strategy)
    print(header, "", table, sep="\n")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results.to_csv(out.with_suffix(".csv"), index=False)
    out.with_suffix(".md").write_text(f"{header}\n\n{table}\n")
    print(f"wrote {out.with_suffix('.csv')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
