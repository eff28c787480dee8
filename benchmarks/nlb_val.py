"""MC_Maze_Small, NLB's validation phase imitated on the 75 bundled 'train' trials, scored by
``nlb_tools`` itself: does the default ``BlendEstimator()`` beat what a user runs first?

NLB'21 lets a team fit on its 'train' trials and score on 25 'val' trials before the test phase.
The 25 'val' trials of MC_Maze_Small are not bundled (``../shared/data/mc_maze_small/
PROVENANCE.md``), so this script makes 3 validation phases out of the 75 'train' trials: the
trial-wise ``KFold(3, shuffle=True, random_state=0)``, 50 trials to fit on and 25 to score, as
NLB's own val phase does. Each model is fitted on the 50 trials only, predicts rates of all 142
neurons for the 50 and the 25 from held-in spikes (and the 40 forward bins of the 25), and the
rates go, as a submission dict, to ``nlb_tools.evaluation.evaluate`` with the 25 trials'
held-out spikes, forward spikes and behavior as its target (co-bps, vel R2 from NLB's ridge on
the 50 trials' rates, fp-bps). Our own metrics are computed too and must agree (to 1e-5).

Methods (3 splits x ``--seeds``, the same seeds for every neural model):

* ``smoothing``: NLB's spike smoothing + Poisson GLM, tuned on the 50 training trials by
  2-fold inner co-bps over ``nlb_nested.GRIDS["smoothing"]`` (kernel width x GLM penalty);
* ``gru``, ``gru_teacher``, ``default``: ``BlendEstimator(strategy=None)`` (the plain model of
  the default base), the teacher, and ``BlendEstimator()`` itself: every setting at the
  package default (GRU base, feature distillation);
* ``ndt``, ``ndt_hard``: the plain NDT and the NDT hard student, the defaults before
  version 0.5, for comparison.

Run ``python benchmarks/nlb_val.py`` (about 45 minutes on 2 cores; needs ``nlb-tools``, which
the README's test command installs); it writes ``benchmarks/results/nlb_val.{csv,md}``.
``--quick`` (2 splits, 1 seed, 5 epochs) checks the script; ``--resummarize`` rewrites the
table from the CSV.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.model_selection import GridSearchCV, KFold

from common import fold_arguments, mean_sd, paired_text, write_results
from nlb_nested import GRIDS
from sklearn_blend import BlendEstimator
from sklearn_blend.datasets import load_mc_maze_small
from sklearn_blend.estimators.smoothing import SmoothingGLM
from sklearn_blend.evaluation import evaluate_split, split_arrays

N_HELDIN = 107
LABELS = {
    "smoothing": "smoothing (NLB baseline, tuned on the 50 trials)",
    "gru": "GRU (no behavior): BlendEstimator(strategy=None)",
    "gru_teacher": "GRU teacher (sees behavior)",
    "default": "BlendEstimator() (GRU, feature)",
    "ndt": "NDT (no behavior)",
    "ndt_hard": "BLEND NDT hard (the default before 0.5)",
}
#: (method, baseline) pairs the table compares
COMPARISONS = (("default", "smoothing"), ("default", "gru"), ("default", "ndt_hard"),
               ("gru", "smoothing"), ("ndt_hard", "smoothing"))
#: the nlb_tools result keys and our column names
NLB_KEYS = {"co-bps": "co_bps", "vel R2": "vel_r2", "fp-bps": "fp_bps"}


def tuned_smoothing(X_train, n_heldout):
    """SmoothingGLM settings chosen by 2-fold inner co-bps on the training trials."""
    grid = {key.removeprefix("model__"): values for key, values in GRIDS["smoothing"].items()}
    search = GridSearchCV(SmoothingGLM(n_heldout=n_heldout), grid,
                          cv=KFold(2, shuffle=True, random_state=0)).fit(X_train)
    return search.best_params_


def nlb_scores(data, train, test, result):
    """``nlb_tools.evaluation.evaluate`` of one method's rates as an NLB submission."""
    from nlb_tools.evaluation import evaluate

    X, b, forward = split_arrays(data)
    target = {"eval_spikes_heldout": X[test][..., N_HELDIN:], "train_behavior": b[train],
              "eval_behavior": b[test]}
    user = {"train_rates_heldin": result.train_rates[..., :N_HELDIN],
            "train_rates_heldout": result.train_rates[..., N_HELDIN:],
            "eval_rates_heldin": result.test_rates[..., :N_HELDIN],
            "eval_rates_heldout": result.test_rates[..., N_HELDIN:]}
    if result.forward_rates is not None:
        target.update(eval_spikes_heldin_forward=forward[test][..., :N_HELDIN],
                      eval_spikes_heldout_forward=forward[test][..., N_HELDIN:])
        user.update(eval_rates_heldin_forward=result.forward_rates[..., :N_HELDIN],
                    eval_rates_heldout_forward=result.forward_rates[..., N_HELDIN:])
    # MC_Maze_Small is a scaling dataset: its scores come as "[100] co-bps" and so on
    (scores,) = evaluate({"mc_maze_small": target}, {"mc_maze_small": user})
    scores = scores["mc_maze_scaling_split"]
    return {ours: float(scores.get(f"[100] {key}", np.nan)) for key, ours in NLB_KEYS.items()}


def run_split(fold, seed, train, test, params, n_threads):
    import torch

    torch.set_num_threads(n_threads)
    warnings.filterwarnings("ignore", module="sklearn")  # ill-conditioned small ridge alphas
    data = load_mc_maze_small()
    X, _, _ = split_arrays(data)
    n_heldout = data.spikes_heldout.shape[-1]
    start = time.perf_counter()
    smoothing = tuned_smoothing(X[train], n_heldout)
    tuning_seconds = time.perf_counter() - start
    runs = (  # (label of each evaluate_split method, its params)
        ({"smoothing": "smoothing"}, params, smoothing),
        ({"ndt": "gru", "teacher": "gru_teacher", "feature": "default"}, params, None),
        ({"ndt": "ndt", "hard": "ndt_hard"}, dict(params, base="ndt"), None),
    )
    rows = []
    for labels, run_params, smoothing_params in runs:
        results = evaluate_split(data, train, test, tuple(labels), params=run_params,
                                 seed=seed, smoothing_params=smoothing_params)
        for result in results:
            theirs = nlb_scores(data, train, test, result)
            for metric, value in theirs.items():
                ours = result[metric]
                if not (np.isnan(ours) and np.isnan(value)) and abs(ours - value) > 1e-5:
                    raise RuntimeError(f"{labels[result['method']]} {metric}: nlb_tools "
                                       f"{value}, ours {ours}")
            rows.append(dict(method=labels[result["method"]], fold=fold, seed=seed, **theirs,
                             epochs=result["epochs"],
                             seconds=result["seconds"] + (tuning_seconds if result["method"]
                                                          == "smoothing" else 0.0),
                             setting=str(smoothing or "") if result["method"] == "smoothing"
                             else ""))
    return rows


def summarize(results):
    lines = ["| method | splits x seeds | co-bps | fp-bps | vel R2 | epochs | s per fit |",
             "|---|---|---|---|---|---|---|"]
    for method, label in LABELS.items():
        rows = results[results.method == method]
        if len(rows):
            lines.append(f"| {label} | {rows.fold.nunique()} x {rows.seed.nunique()} "
                         f"| {mean_sd(rows.co_bps)} | {mean_sd(rows.fp_bps)} "
                         f"| {mean_sd(rows.vel_r2)} | {rows.epochs.mean():.0f} "
                         f"| {rows.seconds.mean():.0f} |")
    from sklearn_blend.model_selection import paired_differences

    lines += ["", "Paired differences over the same (split, seed) (mean +- sd, wins/pairs, "
              "Wilcoxon p):", ""]
    for method, baseline in COMPARISONS:
        if {method, baseline} <= set(results.method):
            parts = [f"{name} {paired_text(paired_differences(results, method, baseline, m))}"
                     for m, name in (("co_bps", "co-bps"), ("vel_r2", "vel R2"))]
            lines.append(f"- {LABELS[method]} - {LABELS[baseline]}: " + "; ".join(parts))
    chosen = results[results.method == "smoothing"].setting.value_counts()
    lines += ["", "Smoothing settings chosen (count over splits and seeds): "
              + "; ".join(f"{setting} ({count})" for setting, count in chosen.items()), "",
              "The 25 scored trials of a split took no part in fitting or in any choice made on "
              "that split; the package defaults were chosen on 5-fold cross-validation of the "
              "same 75 trials (docs/benchmarks/mc_maze_small.md, \"How the defaults were "
              "chosen\"), so this is a check of the defaults in NLB's own scoring, not a "
              "held-out claim on new trials. The splits' training sets overlap and pairs of one "
              "split share its trials across seeds, so the p-values are optimistic."]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resummarize", action="store_true",
                        help="rewrite the table from the CSV without fitting")
    args = fold_arguments(parser, "nlb_val").parse_args(argv)
    if args.resummarize:
        results = pd.read_csv(f"{args.out}.csv", keep_default_na=False,
                              na_values=["", "nan"])
        with open(f"{args.out}.md") as handle:
            header = handle.read().split("\n\n", 1)[0]
        write_results(args.out, header, summarize(results), results)
        return results
    defaults = BlendEstimator().get_params()
    assert (defaults["base"], defaults["strategy"]) == ("gru", "feature"), defaults
    params, seeds = {}, args.seeds
    splits = list(KFold(3, shuffle=True, random_state=0).split(np.arange(75)))
    if args.quick:
        params, seeds, splits = dict(max_epochs=5), seeds[:1], splits[:2]
    n_threads = max(1, (os.cpu_count() or 1) // args.n_jobs)
    start = time.perf_counter()
    outputs = Parallel(n_jobs=args.n_jobs)(
        delayed(run_split)(fold, seed, train, test, params, n_threads)
        for seed in seeds for fold, (train, test) in enumerate(splits))
    results = pd.DataFrame([row for rows in outputs for row in rows])
    header = (f"MC_Maze_Small, NLB's validation phase imitated on the 75 bundled 'train' trials "
              f"(3 splits of 50 fit / 25 scored, KFold(3, shuffle=True, random_state=0)), scored "
              f"by nlb_tools.evaluation.evaluate; seeds {seeds}; package defaults"
              f"{' (quick: ' + str(params) + ')' if params else ''}; wall time "
              f"{(time.perf_counter() - start) / 60:.0f} min on {os.cpu_count()} cores. "
              "`python benchmarks/nlb_val.py`.")
    write_results(args.out, header, summarize(results), results)
    return results


if __name__ == "__main__":
    main()
