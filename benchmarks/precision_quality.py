"""Does ``precision="bfloat16"`` change what BLEND learns? Float32 and bfloat16 side by side.

On real MC_Maze_Small, with the protocol of ``benchmarks/nlb_mc_maze_small.py`` (trial-wise
5-fold cross-validation, NLB'21 metrics on each fold's test trials), every (fold, seed) fits
the plain NDT, the teacher and the hard student twice: once in float32 (the default) and once
with ``precision="bfloat16"`` (autocast in training; rates are always inferred in float32),
from the same seeds, on the same folds. The table gives co-bps, fp-bps and Vel-R2 of each
method in each precision (mean +- sd over seeds of the per-seed mean over folds) and the paired
difference bfloat16 - float32, beside the seed-to-seed spread of float32 itself, the noise the
difference is to be judged against. A last row per model shows why inference stays float32:
the Vel-R2 of the bfloat16-trained model when its rates are also inferred under bfloat16
autocast.

Run ``python benchmarks/precision_quality.py`` (3 seeds x 5 folds; about 35 minutes on 2 cores
with AVX512-BF16, much longer on a CPU without it); it prints and writes
``benchmarks/results/precision_quality.{csv,md}``. ``--quick`` (1 seed, 2 folds, 20 epochs)
checks the script in a few minutes and writes ``precision_quality_quick.*``.
"""

from __future__ import annotations

import argparse
import os
import warnings

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.model_selection import KFold

from common import METRICS, RESULTS, mean_sd, paired_gain
from sklearn_blend import metrics
from sklearn_blend.datasets import load_mc_maze_small
from sklearn_blend.evaluation import evaluate_split, split_arrays

METHODS = ("ndt", "teacher", "hard")
LABELS = {"ndt": "NDT (no behavior)", "teacher": "NDT teacher (sees behavior)",
          "hard": "BLEND NDT hard"}
PRECISIONS = ("float32", "bfloat16")


def run_task(fold, seed, train, test, precision, params, n_threads):
    import torch

    torch.set_num_threads(n_threads)
    warnings.filterwarnings("ignore", module="sklearn")  # ill-conditioned small ridge alphas
    data = load_mc_maze_small()
    X, b, _ = split_arrays(data)
    heldin = X[..., : data.spikes.shape[-1]]
    results = evaluate_split(data, train, test, list(METHODS),
                             params=dict(params, base="ndt", precision=precision), seed=seed)
    rows = []
    for result in results:
        row = dict(result, fold=fold, seed=seed, precision=precision, vel_r2_bf16_rates=np.nan)
        if precision == "bfloat16" and result["method"] != "teacher":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                rates = [result.model.predict_rates(heldin[idx]) for idx in (train, test)]
            row["vel_r2_bf16_rates"] = metrics.vel_r2(rates[0], b[train], rates[1], b[test])
        rows.append(row)
    return rows


def summarize(results):
    """Per method and metric: each precision's mean +- sd over seeds, the paired difference."""
    lines = [
        "| method | metric | float32 | bfloat16 | bfloat16 - float32 (paired) |",
        "|---|---|---|---|---|",
    ]
    keys = ["method", "fold", "seed"]
    for method in METHODS:
        rows = results[results.method == method]
        for metric in METRICS:
            by_precision = {
                p: rows[rows.precision == p].set_index(keys)[metric] for p in PRECISIONS
            }
            seed_means = {p: v.groupby(level="seed").mean().to_numpy()
                          for p, v in by_precision.items()}
            paired = paired_gain(by_precision["bfloat16"] - by_precision["float32"])
            lines.append(f"| {LABELS[method]} | {metric.replace('_', '-')} | "
                         f"{mean_sd(seed_means['float32'])} | "
                         f"{mean_sd(seed_means['bfloat16'])} | {paired} |")
        if method == "teacher":
            continue
        bf16 = rows[rows.precision == "bfloat16"].set_index(keys)
        paired = paired_gain(
            bf16.vel_r2_bf16_rates - rows[rows.precision == "float32"].set_index(keys).vel_r2)
        lines.append(f"| {LABELS[method]} | vel-r2, rates also inferred in bfloat16 | "
                     f"{mean_sd(seed_means['float32'])} | "
                     f"{mean_sd(bf16.vel_r2_bf16_rates.groupby(level='seed').mean())} | "
                     f"{paired} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=2, help="parallel tasks")
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 folds, 20 epochs")
    args = parser.parse_args(argv)
    seeds, n_folds_run, params = args.seeds, args.folds, {}
    if args.quick:
        seeds, n_folds_run, params = seeds[:1], 2, {"max_epochs": 20}
    n_trials = len(load_mc_maze_small().spikes)
    splits = list(KFold(args.folds, shuffle=True, random_state=0).split(np.arange(n_trials)))
    n_threads = max(1, (os.cpu_count() or 1) // args.n_jobs)
    outputs = Parallel(n_jobs=args.n_jobs)(
        delayed(run_task)(fold, seed, train, test, precision, params, n_threads)
        for seed in seeds
        for fold, (train, test) in enumerate(splits[:n_folds_run])
        for precision in PRECISIONS
    )
    results = pd.DataFrame([row for rows in outputs for row in rows])
    command = "python benchmarks/precision_quality.py" + (" --quick" if args.quick else "")
    header = (
        f"Command: `{command}`. MC_Maze_Small, trial-wise {args.folds}-fold CV "
        f"({n_folds_run} folds run), {len(seeds)} seed(s), default BlendEstimator parameters"
        f"{f' with {params}' if params else ''}, the same folds and seeds in both precisions; "
        "mean +- sd over seeds of the per-seed mean over folds."
    )
    markdown = f"{header}\n\n{summarize(results)}\n"
    print(markdown)
    out = RESULTS / ("precision_quality_quick" if args.quick else "precision_quality")
    results.to_csv(out.with_suffix(".csv"), index=False)
    out.with_suffix(".md").write_text(markdown)
    print(f"wrote {out.with_suffix('.csv')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
