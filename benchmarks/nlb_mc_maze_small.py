"""BLEND on real MC_Maze_Small, NLB'21 metrics: baselines, teacher and students side by side.

Protocol (leak-free): trial-wise 5-fold cross-validation over the 75 trials that carry behavior,
held-out neurons and forward bins. In every fold every model (smoothing, NDT, teacher,
students) is trained on the fold's 60 training trials only and scored on its 15 test trials,
which neither it nor its teacher saw. All methods share folds and seeds: a student and the NDT
with the same seed start from the same student seed, and all students of one (fold, seed) share
one teacher, so gains are paired. The smoothing baseline is deterministic (computed once per
fold).

Metrics on the test trials (``sklearn_blend.metrics``, equal to ``nlb_tools``'):

* co-bps: held-out neurons' rates (predicted from held-in spikes) against their spikes;
* fp-bps: the 40 bins (200 ms) after the window, all neurons;
* Vel-R2: ridge (alpha in logspace(-4, 0, 9), 5-fold CV) from the rates of all 142 neurons to
  hand velocity, fit on the training trials' rates, R^2 on the test trials. The teacher's rates
  come from behavior as well as spikes: its Vel-R2 is an upper reference, not a fair decode.

Run ``python benchmarks/nlb_mc_maze_small.py`` (3 seeds, about 40 minutes on 2 cores; with
``--base gru`` all six neural methods run on the GRU base, 75 minutes for ``--max-folds 2``;
``--base lfads`` on LFADS, ``--base blend_lfads`` on BLEND's GRU model). It prints
and writes ``benchmarks/results/nlb_mc_maze_small.{csv,md}`` and
``benchmarks/results/nlb_mc_maze_small_velocity.png`` (true and decoded velocity of fold 0's
test trials, NDT vs the best student). ``--quick`` (1 seed, 2 folds, 20 epochs) checks the
script in a few minutes; ``--set NAME=VALUE`` changes BlendEstimator parameters;
``--methods ndt hard control_behavior control_time`` adds the leak controls
(:data:`sklearn_blend.evaluation.CONTROLS`); ``--resummarize`` rewrites a table from its CSV;
``--chosen feature --chosen-on 0 1`` adds, for a strategy chosen as best on folds 0 and 1, its
paired comparison with every spikes-only method on the other folds only (a held-out claim).
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

from common import BASE_LABELS, RESULTS, mean_sd, paired_text, smoothing_per_seed
from sklearn_blend.cli import parse_assignments
from sklearn_blend.datasets import load_mc_maze_small
from sklearn_blend.distill import strategy_names
from sklearn_blend.evaluation import CONTROLS, METHODS, decoded_velocity, evaluate_split
from sklearn_blend.model_selection import paired_differences


def run_split(fold, seed, train, test, methods, params, n_threads, keep_decoded):
    import torch

    torch.set_num_threads(n_threads)
    warnings.filterwarnings("ignore", module="sklearn")  # ill-conditioned small ridge alphas
    data = load_mc_maze_small()
    results = evaluate_split(data, train, test, methods, params=params, seed=seed)
    rows = [dict(result, fold=fold, seed=seed) for result in results]
    decoded = {}
    if keep_decoded:
        for result in results:
            if result["method"] == "ndt" or result["method"] in strategy_names():
                decoded[result["method"]] = decoded_velocity(result, data.behavior, train, test)
    return rows, decoded


def held_out_comparison(results, model, chosen, chosen_on):
    """Lines comparing ``chosen`` (a strategy picked on folds ``chosen_on``) with every other
    spikes-only method and the smoothing baseline on the remaining folds only."""
    if chosen not in set(results.method):
        raise ValueError(f"--chosen {chosen!r} is not a method of this table; it has "
                         f"{sorted(set(results.method))}.")
    folds = sorted(set(results.fold) - set(chosen_on))
    if not chosen_on or not folds:
        raise ValueError(f"--chosen-on must name the folds the choice was made on and leave "
                         f"some of {sorted(set(results.fold))} out, got {list(chosen_on)}.")
    rows = results[results.fold.isin(folds)]
    rows = smoothing_per_seed(rows)
    lines = [f"Held out from the choice: BLEND {model} {chosen} was chosen on folds "
             f"{sorted(chosen_on)}; on folds {folds} only, {chosen} minus each other method "
             "(paired over (fold, seed); smoothing's value of a fold pairs with each seed):", ""]
    for other in [m for m in METHODS if m in set(rows.method) and m not in (chosen, "teacher")]:
        parts = []
        for metric, name in (("co_bps", "co-bps"), ("vel_r2", "Vel-R2")):
            d = paired_differences(rows, chosen, other, metric)
            if d["n"]:
                parts.append(f"{name} {paired_text(d)}")
        label = {"teacher": f"{model} teacher", "ndt": f"{model} (no behavior)",
                 "smoothing": "smoothing"}.get(other, f"BLEND {model} {other}")
        lines.append(f"- {chosen} - {label}: " + "; ".join(parts))
    return lines


def summarize(results, base="ndt", chosen=None, chosen_on=()):
    """Mean +- sd over all (fold, seed) pairs; paired differences with the plain model; with
    ``chosen``, the held-out comparison of :func:`held_out_comparison`."""
    model = BASE_LABELS[base]
    lines = [
        f"| method | folds x seeds | co-bps | fp-bps | Vel-R2 | Vel-R2 vs {model} "
        f"| co-bps vs {model} | epochs | training s per fit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for method in [m for m in (*METHODS, *CONTROLS) if m in results.method.values]:
        rows = results[results.method == method]
        gains = ["", ""]
        if (method in strategy_names() or method in CONTROLS) and "ndt" in results.method.values:
            for k, metric in enumerate(("vel_r2", "co_bps")):
                d = paired_differences(results, method, "ndt", metric)
                gains[k] = (f"{d['mean']:+.3f} +- {d['sd']:.3f} ({d['wins']}/{d['n']} wins, "
                            f"p={d['p_wilcoxon']:.2g})")
        label = {"teacher": f"{model} teacher (sees behavior)",
                 "ndt": f"{model} (no behavior)",
                 "smoothing": "smoothing (NLB baseline)",
                 "control_behavior": f"control: {model} hard, behavior of other trials",
                 "control_time": f"control: {model} hard, spikes shuffled in time",
                 }.get(method, f"BLEND {model} {method}")
        lines.append(
            f"| {label} | {rows.fold.nunique()} x {rows.seed.nunique()} "
            f"| {mean_sd(rows.co_bps)} | {mean_sd(rows.fp_bps)} "
            f"| {mean_sd(rows.vel_r2)} | {gains[0]} | {gains[1]} "
            f"| {rows.epochs.mean():.0f} | {rows.seconds.mean():.0f} |"
        )
    if chosen is not None:
        lines += ["", *held_out_comparison(results, model, chosen, chosen_on)]
    lines += [
        "",
        "Mean +- sd over all (fold, seed) pairs of each method (smoothing is deterministic: "
        f"one value per fold). Differences are paired with the {model} of the same fold and "
        "seed: mean +- sd over the pairs, wins, Wilcoxon signed-rank p. Pairs of one fold "
        "share its training trials across seeds and the folds' training sets overlap, so the "
        "pairs are not independent and the p-values are optimistic.",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--max-folds", type=int, default=None,
                        help="run only the first K of the folds (all by default)")
    parser.add_argument("--fold-ids", type=int, nargs="+", default=None, metavar="K",
                        help="run only these folds (0-based), e.g. the ones an earlier run "
                             "left, with --append")
    parser.add_argument("--append", action="store_true",
                        help="add this run's rows to those in --out's CSV (rows of the same "
                             "method, fold and seed are replaced)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS),
                        choices=(*METHODS, *CONTROLS),
                        help=f"methods to run (default: all but the leak controls {CONTROLS})")
    parser.add_argument("--base", default="ndt", choices=sorted(BASE_LABELS),
                        help="base model of the neural methods (the 'ndt' method is then the "
                             "plain model of that base)")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="BlendEstimator parameters for every neural model")
    parser.add_argument("--n-jobs", type=int, default=2, help="parallel (fold, seed) tasks")
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 folds, 20 epochs")
    parser.add_argument("--reuse", default=None, metavar="CSV",
                        help="add the rows of this earlier run (same folds and seeds) for the "
                             "methods not run now, e.g. the plain model and students that the "
                             "leak controls are compared with")
    parser.add_argument("--chosen", default=None, metavar="STRATEGY",
                        help="a strategy chosen as best on --chosen-on folds: the table adds "
                             "its comparison with every method on the other folds only")
    parser.add_argument("--chosen-on", type=int, nargs="+", default=[], metavar="K")
    parser.add_argument("--resummarize", action="store_true",
                        help="rewrite the markdown table from the CSV that --out names "
                             "(no training; the header line of its old table is kept)")
    parser.add_argument("--out", default=None,
                        help="output path without suffix [benchmarks/results/"
                             "nlb_mc_maze_small, with _<base> for another --base]")
    args = parser.parse_args(argv)

    params = parse_assignments(args.set)
    params["base"] = args.base
    if args.out is None:
        suffix = "" if args.base == "ndt" else f"_{args.base}"
        args.out = str(RESULTS / f"nlb_mc_maze_small{suffix}")
    if args.resummarize:
        out = Path(args.out)
        results = pd.read_csv(out.with_suffix(".csv"))
        header = out.with_suffix(".md").read_text().splitlines()[0]
        table = summarize(results, args.base, args.chosen, args.chosen_on)
        out.with_suffix(".md").write_text(f"{header}\n\n{table}\n")
        print(f"rewrote {out.with_suffix('.md')} from {out.with_suffix('.csv')}")
        return
    seeds, n_folds_run = args.seeds, min(args.folds, args.max_folds or args.folds)
    if args.quick:
        seeds, n_folds_run = seeds[:1], 2
        params.setdefault("max_epochs", 20)
    fold_ids = list(range(n_folds_run)) if args.fold_ids is None else args.fold_ids
    if not set(fold_ids) <= set(range(args.folds)):
        raise SystemExit(f"--fold-ids {fold_ids} must lie in 0..{args.folds - 1}")
    n_trials = len(load_mc_maze_small().spikes)
    splits = list(KFold(args.folds, shuffle=True, random_state=0).split(np.arange(n_trials)))
    tasks = []
    for seed in seeds:
        for fold in fold_ids:
            train, test = splits[fold]
            methods = [m for m in args.methods if m != "smoothing" or seed == seeds[0]]
            tasks.append((fold, seed, train, test, methods))
    n_threads = max(1, (os.cpu_count() or 1) // args.n_jobs)
    start = time.perf_counter()
    outputs = Parallel(n_jobs=args.n_jobs)(
        delayed(run_split)(fold, seed, train, test, methods, params, n_threads,
                           keep_decoded=(fold == 0 and seed == seeds[0] and not args.append))
        for fold, seed, train, test, methods in tasks
    )
    wall = time.perf_counter() - start
    results = pd.DataFrame([row for rows, _ in outputs for row in rows])
    reused = ""
    if args.reuse:
        earlier = pd.read_csv(args.reuse)
        earlier = earlier[~earlier.method.isin(results.method)
                          & earlier.seed.isin(seeds) & earlier.fold.isin(fold_ids)]
        pairs = set(zip(results.fold, results.seed))
        if not pairs <= set(zip(earlier.fold, earlier.seed)):
            raise SystemExit(f"--reuse {args.reuse} lacks some (fold, seed) pairs of this run")
        results = pd.concat([earlier, results], ignore_index=True)
        reused = (f"; rows of {sorted(set(earlier.method))} reused from {args.reuse} (same "
                  "folds, seeds and code path)")
    if args.append:
        earlier = pd.read_csv(Path(args.out).with_suffix(".csv"))
        new = set(zip(results.method, results.fold, results.seed))
        keep = [(m, f, s) not in new for m, f, s in zip(earlier.method, earlier.fold,
                                                         earlier.seed)]
        results = pd.concat([earlier[keep], results], ignore_index=True)
        reused += (f" (this run: folds {fold_ids}, seeds {seeds}; the other rows come from "
                   f"the earlier run(s) in {Path(args.out).name}.csv)")
    table = summarize(results, args.base, args.chosen, args.chosen_on)
    timing = results.groupby("method").seconds.agg(["mean", "sum"])
    timing_lines = ["| method | training s per fit | total training s |", "|---|---|---|"]
    timing_lines += [f"| {m} | {timing.loc[m, 'mean']:.0f} | {timing.loc[m, 'sum']:.0f} |"
                     for m in METHODS if m in timing.index]
    folds_of = results.groupby("method").fold.nunique()
    header = (
        f"MC_Maze_Small (75 trials, 107 held-in + 35 held-out neurons, 40 forward bins), "
        f"trial-wise {args.folds}-fold CV"
        + (f" (first {n_folds_run} folds run)" if folds_of.max() == n_folds_run < args.folds
           and args.fold_ids is None else "")
        + f"{' (quick)' if args.quick else ''}; BlendEstimator "
        f"parameters: {params or 'defaults'}; wall time {wall / 60:.0f} min on "
        f"{os.cpu_count()} cores{reused}."
    )
    print(header, table, "", "Training time per method:", *timing_lines, sep="\n")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results.to_csv(out.with_suffix(".csv"), index=False)
    out.with_suffix(".md").write_text(f"{header}\n\n{table}\n")
    decoded = next((d for _, d in outputs if d), {})
    vel = results[results.method.isin(strategy_names())].groupby("method").vel_r2.mean()
    if len(decoded) and len(vel):
        from sklearn_blend.evaluation import plot_velocity

        best = vel.idxmax()
        test = splits[0][1]
        behavior = load_mc_maze_small().behavior[test]
        model = BASE_LABELS[args.base]
        curves = {model: decoded["ndt"], f"BLEND {model} {best}": decoded[best]}
        figure = plot_velocity(behavior, curves, bin_size_ms=5)
        figure.savefig(f"{out}_velocity.png", dpi=110)
        print(f"wrote {out}_velocity.png (fold 0 test trials, seed {seeds[0]})")
    print(f"wrote {out.with_suffix('.csv')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
