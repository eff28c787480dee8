"""BLEND on real MC_Maze_Small: the plain NDT, the teacher and each distilled student, side by side.

Protocol (leak-free, see README "Results"): trial-wise 5-fold cross-validation over the 75
training trials. In every fold, every model (baseline, teacher, students) is trained on the
fold's 60 training trials only and scored on the 15 test trials that neither it nor its teacher
saw. All methods share folds and seeds; a student and the baseline with the same seed start
from the same student seed, and all students of one (fold, seed) share one teacher.

Metrics on the test trials of each fold:

* ``vel_r2``: NLB velocity decoding: ``GridSearchCV(Ridge(), alpha in logspace(-4, 0, 9))``
  fit per bin on the training trials' rates, R^2 (mean over x, y) on the test trials' rates.
  The teacher's rates are computed with behavior as input, so its ``vel_r2`` is an upper
  reference, not a fair decode.
* ``bps``: masked bits per spike (``BlendEstimator.score``): each bin predicted with its own
  spikes hidden.

Run ``python benchmarks/mc_maze_small_cv.py`` (about 40 min on 2 cores for 3 seeds); it prints
and writes ``benchmarks/results/mc_maze_small_cv.{csv,md}``. ``--quick`` runs 1 seed on 2 folds
with short training, to check the script.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold

from sklearn_blend import BlendEstimator, BlendTeacher, PerBin
from sklearn_blend.datasets import load_mc_maze_small

METHODS = ("baseline", "teacher", "hard", "soft", "feature", "correlation")
NLB_RIDGE_ALPHAS = np.logspace(-4, 0, 9)


def velocity_r2(train_rates, train_behavior, test_rates, test_behavior):
    """NLB's velocity decoding R^2: ridge fit on training-trial rates, scored on test trials."""
    decoder = PerBin(GridSearchCV(Ridge(), {"alpha": NLB_RIDGE_ALPHAS}))
    decoder.fit(train_rates, train_behavior)
    return decoder.score(test_rates, test_behavior)


def run_split(fold, seed, train, test, methods, params, n_threads):
    import torch

    torch.set_num_threads(n_threads)
    data = load_mc_maze_small()
    X, b = data.spikes, data.behavior
    rows = []
    teacher = None
    # students first, so that the teacher row reports the teacher they were distilled from
    for method in sorted(methods, key=lambda m: m == "teacher"):
        strategy = None if method == "baseline" else method
        if method == "teacher":
            if teacher is None:  # no student in this run: train the teacher on its own
                params_t = BlendEstimator(**params).teacher_params()
                teacher = BlendTeacher(**{**params_t, "random_state": seed})
                teacher.fit(X[train], b[train])
            train_rates = teacher.predict_rates(X[train], b[train])
            test_rates = teacher.predict_rates(X[test], b[test])
            bps = teacher.score(X[test], b[test])
            history = teacher.net_.history
        else:
            est = BlendEstimator(strategy=strategy, random_state=seed, **params)
            est.fit(X[train], b[train])
            if est.teacher_ is not None:
                teacher = est.teacher_
            train_rates, test_rates = est.transform(X[train]), est.transform(X[test])
            bps = est.score(X[test])
            history = est.student_net_.history
        rows.append(
            dict(
                method=method,
                fold=fold,
                seed=seed,
                vel_r2=velocity_r2(train_rates, b[train], test_rates, b[test]),
                bps=bps,
                epochs=len(history),
                seconds=sum(history[:, "dur"]),  # this model's own training time
            )
        )
    return rows


def summarize(results):
    """Mean +- sd over seeds of each seed's 5-fold mean; paired gain over the baseline."""
    per_seed = results.groupby(["method", "seed"])[["vel_r2", "bps", "seconds"]].mean()
    table = per_seed.groupby("method").agg(["mean", "std"])
    order = [m for m in METHODS if m in table.index]
    lines = [
        "| method | Vel-R2 | masked bits/spike | Vel-R2 gain over baseline (paired) | wins | training s per model |",
        "|---|---|---|---|---|---|",
    ]
    base = results[results.method == "baseline"].set_index(["fold", "seed"])
    for method in order:
        row = table.loc[method]
        gain, wins = "", ""
        if "baseline" in results.method.values and method not in ("baseline", "teacher"):
            mine = results[results.method == method].set_index(["fold", "seed"])
            diff = (mine.vel_r2 - base.vel_r2).dropna()
            per_seed_gain = diff.groupby(level="seed").mean()
            gain = f"{per_seed_gain.mean():+.3f} +- {per_seed_gain.std():.3f}"
            wins = f"{int((diff > 0).sum())}/{len(diff)}"
        label = "teacher (sees behavior)" if method == "teacher" else method
        lines.append(
            f"| {label} | {row['vel_r2', 'mean']:.3f} +- {row['vel_r2', 'std']:.3f} "
            f"| {row['bps', 'mean']:.3f} +- {row['bps', 'std']:.3f} | {gain} | {wins} "
            f"| {row['seconds', 'mean']:.0f} |"
        )
    n_seeds = results.seed.nunique()
    n_folds = results.fold.nunique()
    lines.append("")
    lines.append(
        f"Mean +- sd over {n_seeds} seeds of the {n_folds}-fold mean; wins = (fold, seed) "
        "pairs where the student's Vel-R2 beats the baseline's."
    )
    return "\n".join(lines)


def parse_params(pairs):
    params = {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                continue
        else:
            value = {"None": None, "True": True, "False": False}.get(value, value)
        params[key] = value
    return params


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="NAME=VALUE",
        help="BlendEstimator parameters for every model, e.g. --set alpha=0.3 mask_ratio=0.5",
    )
    parser.add_argument("--n-jobs", type=int, default=2, help="parallel (fold, seed) tasks")
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 folds, 30 epochs")
    parser.add_argument("--out", default="benchmarks/results/mc_maze_small_cv")
    args = parser.parse_args(argv)

    params = parse_params(args.set)
    seeds, folds_to_run = args.seeds, args.folds
    if args.quick:
        seeds, folds_to_run = seeds[:1], 2
        params.setdefault("max_epochs", 30)
    n_trials = len(load_mc_maze_small().spikes)
    splits = list(KFold(args.folds, shuffle=True, random_state=0).split(np.arange(n_trials)))
    tasks = [
        (fold, seed, train, test)
        for seed in seeds
        for fold, (train, test) in enumerate(splits[:folds_to_run])
    ]
    n_threads = max(1, (os.cpu_count() or 1) // args.n_jobs)
    start = time.perf_counter()
    outputs = Parallel(n_jobs=args.n_jobs)(
        delayed(run_split)(fold, seed, train, test, args.methods, params, n_threads)
        for fold, seed, train, test in tasks
    )
    results = pd.DataFrame([row for rows in outputs for row in rows])
    table = summarize(results)
    header = (
        f"MC_Maze_Small, trial-wise {args.folds}-fold CV (75 trials), parameters "
        f"{params or 'defaults'}; wall time {time.perf_counter() - start:.0f} s"
    )
    print(header)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results.to_csv(out.with_suffix(".csv"), index=False)
    out.with_suffix(".md").write_text(f"{header}\n\n{table}\n")
    print(f"wrote {out.with_suffix('.csv')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
