"""Cell identity from activity (BLEND's second benchmark): EI and inhibitory subclass accuracy.

Data: ``make_cell_types`` (recipe in ``sklearn_blend/datasets/_cell_types.py``; the real
Bugeon et al. 2022 data cannot be downloaded here), drawn once from ``--data-seed``. Two
settings: ``single session`` (session 0 alone) and ``all sessions`` (every session, several
mice), like the paper's single- and multi-animal settings.

Methods, each giving one feature vector per neuron:

* ``random``: Gaussian noise features (chance level);
* ``PCA``: PCA (``embedding_dim`` components) of alignment-free statistics of each neuron's
  activity: its autocorrelation at lags 1-20 frames and its cross-correlation with the
  population mean at lags -20..20 (raw traces of different sessions are not aligned in time);
* ``NeuPRINT``: :class:`~sklearn_blend.NeuronEmbedding` with ``strategy=None``;
* ``NeuPRINT + hard / soft / feature / correlation``: the BLEND students, whose teacher also
  read running speed and pupil size. The four share one teacher and the model seed with
  ``NeuPRINT``, so differences are paired.

Protocol (``--protocol``):

* ``transductive`` (default): each method learns the features of *all* neurons of the setting
  without labels (NeuPRINT and BLEND are self-supervised), then a classifier is
  cross-validated over neurons (stratified 5-fold, seeded);
* ``inductive``: per fold, the embedding is fitted on the training neurons only and the test
  neurons' embeddings are fitted with the dynamics frozen (``transform`` of unseen neurons),
  the full ``Pipeline`` route; about 5 times the cost.

Classifier: standardise, then ``LogisticRegression(class_weight="balanced")``. Tasks: EI
(every neuron, 'EC' vs 'IN') and subclass (inhibitory neurons, 5 classes). Metrics: top-1
accuracy (the paper's) and balanced accuracy (imbalance makes accuracy of a majority guess
high for EI). Three model seeds by default; tables give mean +- sd over seeds of the CV mean.

Run ``python benchmarks/cell_identity.py`` (2 worker processes of 1 torch thread; 30 min
measured on 2 cores; the table header gives each run's wall time). Writes
``benchmarks/results/cell_identity.{csv,md}``; ``--set NAME=VALUE`` overrides a
:class:`~sklearn_blend.NeuronEmbedding` parameter (with ``--out`` to keep the default results);
``--quick`` (small data and models, 2 seeds; 4 min measured with ``--jobs 1`` beside another
job) writes ``cell_identity_quick.*``. ``benchmarks/update_readme.py`` copies the table to README.
"""

from __future__ import annotations

import argparse
import ast
import os
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from common import RESULTS, mean_sd
from sklearn_blend.distill import strategy_names

METHODS = ("random", "PCA", "NeuPRINT", *(f"NeuPRINT + {s}" for s in strategy_names()))
SETTINGS = ("single session", "all sessions")
#: NeuPRINT with the paper's embedding (64), depth (1 layer) and heads (2), a narrower
#: transformer (32) and a training budget that fits 2 cores
PARAMS = dict(embedding_dim=64, hidden_size=32, n_layers=1, n_heads=2, ffn_size=64,
              dropout=0.1, n_window=64, group_size=32, batch_size=32, lr=3e-3,
              max_epochs=15, early_stopping=True, validation_fraction=0.1,
              n_iter_no_change=5, warmup_steps=10, embedding_epochs=15)
DATA = dict(n_sessions=4, n_neurons=150, n_frames=1600)
QUICK_PARAMS = dict(PARAMS, embedding_dim=16, max_epochs=4, embedding_epochs=4, n_window=32,
                    group_size=16)
QUICK_DATA = dict(n_sessions=2, n_neurons=80, n_frames=600)
N_LAGS = 20


def activity_statistics(recordings, n_lags=N_LAGS):
    """Per selected neuron: autocorrelation (lags 1..n) and cross-correlation with the
    population mean (lags -n..n), ``(n_neurons, 3 n + 1)``."""
    rows = []
    for session, column in recordings.neurons:
        activity = recordings.activity[session]
        x = activity[:, column] - activity[:, column].mean()
        mean = activity.mean(axis=1)
        p = mean - mean.mean()
        norm = np.sqrt((x @ x) * (p @ p)) + 1e-12
        auto = [np.dot(x[:-k], x[k:]) / (x @ x + 1e-12) for k in range(1, n_lags + 1)]
        cross = [np.dot(x[max(k, 0):len(x) + min(k, 0)], p[max(-k, 0):len(p) - max(k, 0)])
                 / norm for k in range(-n_lags, n_lags + 1)]
        rows.append(auto + cross)
    return np.asarray(rows)


def features(method, recordings, seed, params, train=None):
    """Features of every neuron of ``recordings``; with ``train`` (indices), the embedding is
    learned on those neurons only (inductive protocol)."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    from sklearn_blend import NeuronEmbedding

    dim = params["embedding_dim"]
    if method == "random":
        return np.random.default_rng(seed).normal(size=(len(recordings), dim))
    if method == "PCA":
        stats = StandardScaler().fit_transform(activity_statistics(recordings))
        fit_rows = stats if train is None else stats[train]
        return PCA(min(dim, stats.shape[1]), random_state=seed).fit(fit_rows).transform(stats)
    strategy = None if method == "NeuPRINT" else method.split(" + ")[1]
    emb = NeuronEmbedding(strategy, random_state=seed, **params)
    emb.fit(recordings if train is None else recordings[train])
    return emb.transform(recordings)


def classify(Z, labels, folds):
    """Mean accuracy and balanced accuracy over ``folds`` of a linear probe on ``Z``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    accuracy, balanced = [], []
    for train, test in folds:
        probe = make_pipeline(StandardScaler(),
                              LogisticRegression(class_weight="balanced", max_iter=5000))
        predicted = probe.fit(Z[train], labels[train]).predict(Z[test])
        accuracy.append(accuracy_score(labels[test], predicted))
        balanced.append(balanced_accuracy_score(labels[test], predicted))
    return float(np.mean(accuracy)), float(np.mean(balanced))


def _setting(data, setting):
    if setting == "single session":
        keep = data.session == 0
        return data.X[keep], data.ei[keep], data.subclass[keep]
    return data.X, data.ei, data.subclass


def run_task(setting, seed, methods, params, data_params, data_seed, protocol, n_threads):
    import torch
    from sklearn.model_selection import StratifiedKFold

    from sklearn_blend.datasets import make_cell_types

    torch.set_num_threads(n_threads)
    warnings.filterwarnings("ignore", category=UserWarning)
    data = make_cell_types(**data_params, random_state=data_seed)
    recordings, ei, subclass = _setting(data, setting)
    # one split of all neurons, stratified by type (EC or subclass), serves both tasks
    ttype = np.where(subclass != "", subclass, ei)
    folds = list(StratifiedKFold(5, shuffle=True, random_state=seed).split(ttype, ttype))
    inhibitory = np.flatnonzero(subclass != "")
    position = np.full(len(ttype), -1)
    position[inhibitory] = np.arange(len(inhibitory))
    sub_folds = [(position[np.intersect1d(tr, inhibitory)], position[np.intersect1d(te,
                  inhibitory)]) for tr, te in folds]
    rows = []
    for method in methods:
        start = time.perf_counter()
        if protocol == "transductive" or method == "random":
            Z = features(method, recordings, seed, params)
            scores = {"EI": classify(Z, ei, folds),
                      "subclass": classify(Z[inhibitory], subclass[inhibitory], sub_folds)}
        else:
            per_fold = {"EI": [], "subclass": []}
            for k, (train, test) in enumerate(folds):
                Z = features(method, recordings, seed, params, train=train)
                per_fold["EI"].append(classify(Z, ei, [folds[k]]))
                per_fold["subclass"].append(
                    classify(Z[inhibitory], subclass[inhibitory], [sub_folds[k]]))
            scores = {task: tuple(np.mean(v, axis=0)) for task, v in per_fold.items()}
        seconds = time.perf_counter() - start
        for task, (accuracy, balanced) in scores.items():
            rows.append(dict(setting=setting, seed=seed, method=method, task=task,
                             accuracy=accuracy, balanced_accuracy=balanced, seconds=seconds,
                             n_neurons=len(ttype), n_inhibitory=len(inhibitory)))
    return rows


def summarize(results):
    """Markdown tables: one row per method, one column per (setting, task), and the gaps."""
    lines = []
    for metric, title in (("accuracy", "Top-1 accuracy"),
                          ("balanced_accuracy", "Balanced accuracy")):
        columns = [(s, t) for s in SETTINGS for t in ("EI", "subclass")
                   if ((results.setting == s) & (results.task == t)).any()]
        lines += [f"**{title}** (mean +- sd over {results.seed.nunique()} seeds)", "",
                  "| method | " + " | ".join(f"{s}: {t}" for s, t in columns) + " |",
                  "|---|" + "---|" * len(columns)]
        for method in METHODS:
            cells = []
            for setting, task in columns:
                values = results[(results.method == method) & (results.setting == setting)
                                 & (results.task == task)][metric]
                cells.append(mean_sd(values, skipna=False) if len(values) else "")
            if any(cells):
                lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["**Best distilled student minus NeuPRINT** (balanced accuracy, paired by seed; "
              "wins = seeds where the student is higher)", "",
              "| setting | task | best student | gain | wins |", "|---|---|---|---|---|"]
    for setting in SETTINGS:
        for task in ("EI", "subclass"):
            frame = results[(results.setting == setting) & (results.task == task)]
            base = frame[frame.method == "NeuPRINT"].set_index("seed").balanced_accuracy
            if base.empty:
                continue
            gains = {}
            for strategy in strategy_names():
                student = frame[frame.method == f"NeuPRINT + {strategy}"]
                if len(student):
                    gains[strategy] = student.set_index("seed").balanced_accuracy - base
            if not gains:
                continue
            best = max(gains, key=lambda s: gains[s].mean())
            gain = gains[best].dropna()
            sign = "+" if gain.mean() >= 0 else ""
            lines.append(f"| {setting} | {task} | {best} | {sign}{mean_sd(gain, skipna=False)} | "
                         f"{int((gain > 0).sum())}/{len(gain)} |")
    counts = results.drop_duplicates("setting").set_index("setting")
    sizes = ", ".join(f"{s}: {counts.n_neurons[s]} neurons ({counts.n_inhibitory[s]} "
                      f"inhibitory)" for s in counts.index)
    lines += ["", f"Neurons per setting: {sizes}. Picking the best student per row after "
              "seeing the results favours the students; the per-strategy rows above are the "
              "unbiased comparison."]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--protocol", default="transductive",
                        choices=["transductive", "inductive"])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="override NeuronEmbedding parameters, e.g. max_epochs=45")
    parser.add_argument("--quick", action="store_true",
                        help="small data and models, 2 seeds: checks the pipeline in minutes")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    params, data_params = (QUICK_PARAMS, QUICK_DATA) if args.quick else (PARAMS, DATA)
    overrides = {name: ast.literal_eval(value)
                 for name, value in (item.split("=", 1) for item in args.set)}
    params = dict(params, **overrides)
    seeds = args.seeds or ([0, 1] if args.quick else [0, 1, 2])
    name = "cell_identity" + ("_quick" if args.quick else "") + (
        "_inductive" if args.protocol == "inductive" else "")
    out = Path(args.out) if args.out else RESULTS / name
    n_threads = max(1, (os.cpu_count() or 1) // args.jobs)
    start = time.perf_counter()
    outputs = Parallel(n_jobs=args.jobs)(
        delayed(run_task)(setting, seed, args.methods, params, data_params, args.data_seed,
                          args.protocol, n_threads)
        for setting in args.settings for seed in seeds
    )
    wall = time.perf_counter() - start
    results = pd.DataFrame([row for rows in outputs for row in rows])
    arguments = sys.argv[1:] if argv is None else argv
    command = " ".join(["python benchmarks/cell_identity.py", *map(shlex.quote, arguments)])
    header = (f"Command: `{command}` ({args.protocol} protocol; data "
              f"`make_cell_types({', '.join(f'{k}={v}' for k, v in data_params.items())}, "
              f"random_state={args.data_seed})`; wall time {wall / 60:.0f} min on "
              f"{os.cpu_count()} cores).")
    table = summarize(results)
    print(header, "", table, sep="\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    results.to_csv(out.with_suffix(".csv"), index=False)
    out.with_suffix(".md").write_text(f"{header}\n\n{table}\n")
    print(f"wrote {out.with_suffix('.csv')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
