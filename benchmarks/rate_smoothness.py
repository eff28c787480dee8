"""Why NDT rates jump from bin to bin, and which inference mode to use (MC_Maze_Small).

Each model is fit once per (fold, seed) and scored with both inference modes (``"masked"``:
interleaved masked passes, each bin predicted while hidden; ``"full"``: one pass over all bins,
as NDT, BLEND and NLB do), for NDT's learned per-bin position embedding and for the fixed
sinusoidal code (``base_params={"position": "sinusoidal"}``). Besides NLB's metrics on the test
trials it reports the roughness of the log-rates, the median over (trial, neuron) of
var(bin-to-bin change) / var(log-rate) (white noise: 2; the smoothing baseline: near 0), and the
share of the bin-to-bin changes that every trial has in common (the mean change over trials),
which a per-bin position embedding produces and spike noise does not.

Run ``python benchmarks/rate_smoothness.py`` (5 folds x 3 seeds, plain NDT and hard student);
it writes ``benchmarks/results/rate_smoothness.{csv,md}``. ``--quick`` checks the script.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from common import fold_arguments, mean_sd, paired_text, run_folds, write_results
from sklearn_blend import metrics
from sklearn_blend.datasets import load_mc_maze_small
from sklearn_blend.evaluation import evaluate_split, split_arrays
from sklearn_blend.model_selection import paired_differences

POSITIONS = ("learned", "sinusoidal")


def roughness(rates):
    """Median over (trial, neuron) of var(diff of log-rate over time) / var(log-rate)."""
    log_rates = np.log(np.maximum(rates, 1e-12))
    change = np.diff(log_rates, axis=1).var(axis=1)
    return float(np.median(change / (log_rates.var(axis=1) + 1e-12)))


def shared_change(rates):
    """Share of the variance of bin-to-bin log-rate changes common to all trials."""
    change = np.diff(np.log(np.maximum(rates, 1e-12)), axis=1)
    return float(change.mean(axis=0).var() / (change.var() + 1e-12))


def run(fold, seed, train, test, methods, params, n_threads):
    import torch

    torch.set_num_threads(n_threads)
    warnings.filterwarnings("ignore", module="sklearn")
    data = load_mc_maze_small()
    X, b, forward = split_arrays(data)
    heldin, n_heldin = X[..., :107], 107
    rows = []
    for position in POSITIONS:
        settings = dict(params, base="ndt", base_params={"position": position})
        results = evaluate_split(data, train, test, methods, params=settings, seed=seed)
        for result in results:
            model = result.model
            for inference in ("masked", "full"):
                if result["method"] == "smoothing":
                    if position != POSITIONS[0] or inference != "masked":
                        continue
                    train_rates, test_rates, fp = result.train_rates, result.test_rates, np.nan
                    inference_label = position_label = "–"
                else:
                    model.set_params(inference=inference)
                    if result["method"] == "teacher":
                        train_rates = model.predict_rates(heldin[train], b[train])
                        full = model.predict_rates(heldin[test], b[test], forward=True)
                    else:
                        train_rates = model.predict_rates(heldin[train])
                        full = model.predict_rates(heldin[test], forward=True)
                    test_rates, fp = full[:, :-40], metrics.fp_bps(full[:, -40:], forward[test])
                    inference_label, position_label = inference, position
                    model.set_params(inference="masked")  # as fitted (it may be cached)
                rows.append(dict(
                    method=result["method"], position=position_label,
                    inference=inference_label, fold=fold, seed=seed,
                    co_bps=metrics.co_bps(test_rates[..., n_heldin:], X[test][..., n_heldin:]),
                    fp_bps=fp,
                    vel_r2=metrics.vel_r2(train_rates, b[train], test_rates, b[test]),
                    roughness=roughness(test_rates[..., :n_heldin]),
                    shared=shared_change(test_rates[..., :n_heldin]),
                    epochs=result["epochs"]))
    return rows


def summarize(results):
    lines = ["| method | position | inference | co-bps | fp-bps | Vel-R2 | roughness | "
             "shared share of changes | epochs |", "|---|---|---|---|---|---|---|---|---|"]
    groups = results.groupby(["method", "position", "inference"], sort=False)
    for (method, position, inference), rows in groups:
        lines.append(f"| {method} | {position} | {inference} | {mean_sd(rows.co_bps)} | "
                     f"{mean_sd(rows.fp_bps)} | {mean_sd(rows.vel_r2)} | "
                     f"{mean_sd(rows.roughness)} | {mean_sd(rows.shared)} | "
                     f"{rows.epochs.mean():.0f} |")
    lines += ["", "Paired differences over (fold, seed), mean +- sd (wins/pairs, Wilcoxon p):",
              ""]
    neural = results[results.method != "smoothing"]
    for method in dict.fromkeys(neural.method):
        rows = neural[neural.method == method]
        for metric in ("co_bps", "fp_bps", "vel_r2", "roughness"):
            texts = []
            for label, a, b, key in (
                ("sinusoidal - learned (masked inference)", "sinusoidal", "learned",
                 "position"),
                ("full - masked inference (sinusoidal)", "full", "masked", "inference"),
            ):
                other = "inference" if key == "position" else "position"
                fixed = "masked" if key == "position" else "sinusoidal"
                subset = rows[rows[other] == fixed].assign(method=rows[key])
                d = paired_differences(subset, a, b, metric)
                texts.append(f"{label}: {paired_text(d)}")
            lines.append(f"- {method}, {metric}: " + "; ".join(texts))
    return "\n".join(lines)


def main(argv=None):
    parser = fold_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]),
                            "rate_smoothness")
    parser.add_argument("--methods", nargs="+", default=["smoothing", "ndt", "hard"])
    args = parser.parse_args(argv)
    results, n_folds, seeds = run_folds(run, args, args.methods)
    params = {"max_epochs": 5} if args.quick else {}
    header = (f"MC_Maze_Small, {n_folds}-fold CV x {len(seeds)} seeds, package defaults"
              f"{' (quick: ' + str(params) + ')' if args.quick else ''}; both inference modes "
              "of the same fitted models.")
    write_results(args.out, header, summarize(results), results)


if __name__ == "__main__":
    main()
