"""NEDS on MC_Maze_Small by nested selection, with the tuning budget of the NDT and the BLEND
students (``nlb_nested.py``): multi-task, decoding-only and encoding-only NEDS.

Protocol (:func:`sklearn_blend.model_selection.nested_compare`, as ``nlb_nested.py``): the same
5 outer folds of MC_Maze_Small's 75 trials (60 training, 15 test) and, per seed, the same
``--inner`` inner folds of each outer training set. Inside each outer fold every NEDS chooses
one of the 4 settings of ``GRID`` (dropout as the package default 0.2 / 0.1 or as the official
recipe 0.4 / 0.2 on the residual branches / tokens, times the input maps: one linear map or the
official ``n -> 2n -> softsign -> hidden``) by its mean inner score on its own task, the way
its authors select (``SELECT``: the multi-task model by the mean of decoding R2 and NEDS's
per-neuron encoding bits/spike, the single-task ones by their task), then refits on the 60
trials and is scored on the 15 test trials. Every fit keeps its weights by the task metrics of
validation trials drawn from its own training trials (``monitor="task"``). The 4 settings
equal the 4 of every ``nlb_nested.py`` method (``check_equal_budget``).

Test scores: decoding R2 of ``predict`` (velocity from spikes alone, pooled over bins and
trials, averaged over x and y), co-bps and fp-bps of ``predict_rates`` (held-out neurons from
held-in spikes), and encoding bits/spike of all 142 neurons from velocity alone
(``predict_rates(b=b)``; NLB's pooled form and NEDS's per-neuron one).

Run ``python benchmarks/neds_nested.py`` (3 seeds x 5 folds; each (seed, fold) is appended to
``benchmarks/results/neds_nested.csv`` when it finishes, so ``--seeds 1 --folds 3 4 --append``
continues a stopped run, and a (method, fold, seed) row already there is refused).
``--quick`` checks the script (1 seed, 1 fold, 2 settings, 5 epochs).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd

from common import RESULTS, mean_sd, paired_text, read_runs
from neds_mc_maze_small import FORWARD_BINS, N_HELDOUT, NEDS_PARAMS, decoding_r2
from sklearn_blend import NedsEstimator, metrics, scoring
from sklearn_blend.datasets import load_mc_maze_small
from sklearn_blend.evaluation import split_arrays
from sklearn_blend.model_selection import check_equal_budget, nested_compare, \
    paired_differences

#: the 4 settings every NEDS chooses from (the budget of each nlb_nested.py method)
GRID = [{"dropout": [0.2], "embedding_dropout": [0.1], "input_map": ["linear", "softsign"]},
        {"dropout": [0.4], "embedding_dropout": [0.2], "input_map": ["linear", "softsign"]}]
#: the NEDS rows: their masking and the inner score that selects their setting
METHODS = {"neds": ({}, "task"),
           "neds_decoding": ({"scheme_probs": {"decoding": 1.0}}, "decoding"),
           "neds_encoding": ({"scheme_probs": {"encoding": 1.0}}, "encoding")}
LABELS = {"neds": "NEDS (multi-task)", "neds_decoding": "NEDS, decoding only",
          "neds_encoding": "NEDS, encoding only"}
ROW_KEY = ["method", "fold", "seed"]


def decoding_scorer(estimator, X, y):
    """Decoding R2 of ``predict`` (held-in spikes in, velocity out)."""
    return decoding_r2(y, estimator.predict(X[..., : X.shape[-1] - N_HELDOUT]))


def encoding_scorer(estimator, X, y):
    """NEDS's per-neuron encoding bits/spike of all neurons from behavior alone."""
    return scoring.encoding_bps_per_neuron_scorer(estimator, X, y)


def task_scorer(estimator, X, y):
    """The multi-task model's score: the mean of the two above."""
    return (decoding_scorer(estimator, X, y) + encoding_scorer(estimator, X, y)) / 2


SCORERS = {"decoding": decoding_scorer, "encoding": encoding_scorer, "task": task_scorer}


def grid(quick):
    return [{"input_map": ["linear", "softsign"]}] if quick else GRID


def test_row(model, X, b, forward, test):
    """The outer test scores of a refit NEDS."""
    n_in = X.shape[-1] - N_HELDOUT
    heldin = X[test][..., :n_in]
    rates = model.predict_rates(heldin, forward=True)
    encoded = model.predict_rates(b=b[test])
    return dict(vel_r2=decoding_r2(b[test], model.predict(heldin)),
                co_bps=metrics.co_bps(rates[:, :-FORWARD_BINS, n_in:], X[test][..., n_in:]),
                fp_bps=metrics.fp_bps(rates[:, -FORWARD_BINS:], forward[test]),
                enc_bps=metrics.bits_per_spike(encoded, X[test]),
                enc_bps_neuron=metrics.bits_per_spike_per_neuron(encoded, X[test]),
                epochs=model.n_iter_)


def run(seed, fold, splits, methods, inner, params, quick):
    """The rows of ``methods`` on one (seed, outer fold)."""
    data = load_mc_maze_small()
    X, b, forward = split_arrays(data)
    train, test = splits[fold]
    rows = []
    for name in methods:
        extra, select = METHODS[name]
        model = NedsEstimator(n_heldout=N_HELDOUT, forward_bins=FORWARD_BINS, monitor="task",
                              **dict(NEDS_PARAMS, **extra, **params))
        start = time.perf_counter()
        result, = nested_compare(
            {name: (model, grid(quick))}, X, b, scoring=SCORERS, refit=select,
            outer_cv=[(train, test)], inner_cv=inner, seeds=[seed],
            params={name: {"spikes_forward": forward}}, return_estimator=True,
            error_score="raise")
        search = result["estimator"]
        rows.append(dict(method=name, fold=fold, seed=seed, selected_by=select,
                         params=repr(search.best_params_),
                         inner_score=search.best_score_,
                         seconds=time.perf_counter() - start,
                         **test_row(search.best_estimator_, X, b, forward, test)))
    return rows


def summarize(results):
    lines = ["| method | (fold, seed) pairs | decoding R2 | co-bps | fp-bps | encoding "
             "bits/spike (pooled) | encoding bits/spike (per neuron) | epochs |",
             "|---|---|---|---|---|---|---|---|"]
    for method, label in LABELS.items():
        rows = results[results.method == method]
        if rows.empty:
            continue
        lines.append(f"| {label} | {len(rows)} | " + " | ".join(
            mean_sd(rows[c]) for c in ("vel_r2", "co_bps", "fp_bps", "enc_bps",
                                       "enc_bps_neuron")) + f" | {rows.epochs.mean():.0f} |")
    lines += ["", "Multi-task minus single-task, paired over (fold, seed) (mean +- sd, wins/pairs, "
              "Wilcoxon p; optimistic, the pairs share training trials):", ""]
    present = set(results.method)
    for baseline, metric, what in (("neds_decoding", "vel_r2", "decoding R2"),
                                   ("neds_encoding", "enc_bps", "encoding bits/spike"),
                                   ("neds_encoding", "enc_bps_neuron",
                                    "encoding bits/spike per neuron")):
        if {"neds", baseline} <= present:
            d = paired_differences(results, "neds", baseline, metric)
            lines.append(f"- {what}: {LABELS['neds']} - {LABELS[baseline]}: "
                         f"{paired_text(d)}")
    lines += ["", "Selected settings (count over folds and seeds):", ""]
    for method, rows in results.groupby("method", sort=False):
        counts = rows.params.value_counts()
        lines.append(f"- {LABELS[method]}: " + "; ".join(f"{setting} ({count})"
                                                          for setting, count in counts.items()))
    return "\n".join(lines)


def merge(paths, out, inner):
    """Write ``out``'s table from the rows of the CSVs ``paths`` (a (method, fold, seed) row
    given twice is refused)."""
    results = read_runs(paths, ROW_KEY)
    header = (describe(results, inner, False)
              + f"{results.seconds.sum() / 3600:.1f} h of fitting on one core each (runs side by "
              f"side on {os.cpu_count()} cores); command `python benchmarks/neds_nested.py`, run "
              "per seed (`--seeds S --out ...`) and combined with `--merge "
              + " ".join(os.path.basename(str(p)) for p in paths) + "`.")
    write(out, header, results)
    return results


def describe(results, inner, quick):
    """The start of a table's header: the protocol and the pairs per method."""
    pairs = results.groupby("method").apply(len).to_dict()
    fixed = {key: value for key, value in NEDS_PARAMS.items() if key != "input_map"}
    return (f"MC_Maze_Small, NEDS ({fixed}, monitor='task') by nested selection: outer "
            f"5-fold, inner {inner}-fold, 4 settings each ({GRID}), selected by the inner task "
            f"score{' (quick)' if quick else ''}; (fold, seed) pairs per method {pairs}; ")


def write(out, header, results):
    """Print ``header`` and the summary; write ``out.csv`` and ``out.md``."""
    text = summarize(results)
    print(header, "", text, sep="\n", flush=True)
    results.to_csv(f"{out}.csv", index=False)
    with open(f"{out}.md", "w") as handle:
        handle.write(f"{header}\n\n{text}\n")


def main(argv=None):
    from sklearn.model_selection import KFold

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--inner", type=int, default=2, help="inner folds (as nlb_nested.py)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--append", action="store_true",
                        help="add this run's rows to those already in --out's CSV")
    parser.add_argument("--out", default=str(RESULTS / "neds_nested"))
    parser.add_argument("--merge", nargs="+", metavar="CSV",
                        help="only combine the rows of runs written to other --out files (say "
                             "one per seed, run side by side) into --out's table")
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out, args.inner)
    from nlb_nested import GRIDS

    check_equal_budget({**GRIDS, "neds": GRID})
    warnings.filterwarnings("ignore", module="sklearn")
    splits = list(KFold(5, shuffle=True, random_state=0).split(np.arange(75)))
    seeds, folds, params = args.seeds, args.folds, {}
    if args.quick:
        seeds, folds, params = seeds[:1], folds[:1], dict(max_epochs=5)
    results = pd.read_csv(f"{args.out}.csv") if args.append else pd.DataFrame()
    start = time.perf_counter()
    for seed in seeds:
        for fold in folds:
            done = results.set_index(ROW_KEY).index if len(results) else []
            methods = [m for m in args.methods if (m, fold, seed) not in done]
            if len(methods) < len(args.methods):
                raise SystemExit(f"--append: rows of fold {fold}, seed {seed} are already in "
                                 f"{args.out}.csv; leave that (seed, fold) out")
            rows = run(seed, fold, splits, methods, args.inner, params, args.quick)
            results = pd.concat([results, pd.DataFrame(rows)], ignore_index=True)
            header = (describe(results, args.inner, args.quick)
                      + f"wall time of this run {(time.perf_counter() - start) / 60:.0f} min on "
                      f"{os.cpu_count()} cores; command `python benchmarks/neds_nested.py` "
                      "(continued with `--seeds S --folds F ... --append`).")
            write(args.out, header, results)


if __name__ == "__main__":
    main()
