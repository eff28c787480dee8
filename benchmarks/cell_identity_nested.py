"""Cell identity with an equal tuning budget: does BLEND help NeuPRINT predict cell types?

Data: ``make_cell_types`` (the settings of ``cell_identity.py``: 4 sessions of 150 neurons and
1600 frames, two mice), all sessions together: 600 neurons, 108 of them inhibitory.

Methods, each giving one feature vector per neuron (``embedding_dim`` 64), and the grid each is
tuned over (two settings each, the same budget):

* ``random``: Gaussian noise features, two draws (chance level);
* ``PCA``: PCA of per-neuron activity statistics (``cell_identity.activity_statistics``),
  8 or 32 components;
* ``NeuPRINT``: :class:`~sklearn_blend.NeuronEmbedding` with ``strategy=None``, dropout 0.1
  or 0.3;
* ``NeuPRINT + behavior``: NeuPRINT with its published inputs (running speed and pupil size
  among the population inputs, ``behavior_inputs=True``), dropout 0.1 or 0.3. It reads the
  privileged signal, so it is a reference for what the students are taught, not a competitor;
  it is also their teacher (the same model, shared through the teacher cache);
* ``NeuPRINT + hard / soft / feature / correlation``: the BLEND students (``alpha=0.5``),
  dropout 0.1 or 0.3 (with the teacher of the same dropout).

Every neural model trains to convergence: up to 100 epochs, early stopping on the masked loss
of a 10% validation split after 10 epochs without improvement (the package defaults), not the
15-epoch cap of ``cell_identity.py``.

Protocol: the embeddings are learned without labels on all neurons (transductive, as in
``cell_identity.py``). The labels are then used only by nested selection
(:func:`sklearn_blend.model_selection.nested_compare`): outer stratified 5-fold over neurons;
inside each outer fold, each method's setting is chosen by the balanced accuracy of the linear
probe (standardise, ``LogisticRegression(class_weight="balanced")``) over stratified 3-fold
inner folds of the outer training neurons (the same inner folds for every method); the probe
is refit on the outer training neurons with that setting and scored on the outer test
neurons. Tasks: EI (all neurons) and subclass (inhibitory neurons, 5 classes), each selected
separately. Seeds: every model seed gives new embeddings; the folds are the same for every
seed, so (fold, seed) pairs are paired across methods.

Run ``python benchmarks/cell_identity_nested.py`` (5 seeds; the header gives the wall time;
2 worker processes of 1 torch thread). Writes ``benchmarks/results/cell_identity_nested.
{csv,md}``; ``--methods`` runs a subset, ``--quick`` (small data and models, 1 seed) checks
the script in about a minute and writes ``cell_identity_nested_quick.*``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import warnings

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin

from cell_identity import DATA, PARAMS, QUICK_DATA, QUICK_PARAMS, activity_statistics
from common import RESULTS, mean_sd, paired_text
from sklearn_blend.distill import strategy_names
from sklearn_blend.model_selection import nested_compare, paired_differences

NEURAL = ("NeuPRINT", "NeuPRINT + behavior", *(f"NeuPRINT + {s}" for s in strategy_names()))
METHODS = ("random", "PCA", *NEURAL)
#: the setting values of each method (two each: the same budget)
GRIDS = {"random": ("draw", [0, 1]), "PCA": ("n_components", [8, 32]),
         **{method: ("dropout", [0.1, 0.3]) for method in NEURAL}}
#: NeuPRINT as in cell_identity.py, but trained to convergence (package defaults)
NESTED_PARAMS = dict(PARAMS, max_epochs=100, n_iter_no_change=10)
QUICK_NESTED_PARAMS = dict(QUICK_PARAMS, max_epochs=6, n_iter_no_change=2)
TASKS = ("EI", "subclass")


class FeatureLookup(TransformerMixin, BaseEstimator):
    """Rows of one of several precomputed feature tables: ``X`` holds neuron indices.

    ``tables`` maps a setting to its ``(n_neurons, n_features)`` table (learned without
    labels); ``key`` picks the setting, so a grid search over ``key`` selects among them.
    """

    def __init__(self, tables=None, key=None):
        self.tables = tables
        self.key = key

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return self.tables[self.key][np.asarray(X, dtype=int).ravel()]


def embeddings(method, value, recordings, seed, params):
    """``(table, epochs)``: the features of ``method`` with its grid value ``value`` for every
    neuron, and the epochs its model trained (0 without one)."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    from sklearn_blend import NeuronEmbedding

    if method == "random":
        rng = np.random.default_rng([seed, value])
        return rng.normal(size=(len(recordings), params["embedding_dim"])), 0
    if method == "PCA":
        stats = StandardScaler().fit_transform(activity_statistics(recordings))
        return PCA(value, random_state=seed).fit_transform(stats), 0
    kind = method.split(" + ")[1] if " + " in method else None
    emb = NeuronEmbedding(None if kind in (None, "behavior") else kind,
                          behavior_inputs=kind == "behavior", random_state=seed,
                          **dict(params, dropout=value))
    return emb.fit_transform(recordings), emb.n_iter_


def run_embeddings(seed, value_index, methods, params, data_params, data_seed):
    """Tables of ``methods`` at grid position ``value_index`` for one seed (one process: the
    behavior model trained first is the students' cached teacher)."""
    import torch

    from sklearn_blend.datasets import make_cell_types

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=UserWarning)
    recordings = make_cell_types(**data_params, random_state=data_seed).X
    order = sorted(methods, key=lambda m: m != "NeuPRINT + behavior")
    out = {}
    for method in order:
        value = GRIDS[method][1][value_index]
        start = time.perf_counter()
        table, epochs = embeddings(method, value, recordings, seed, params)
        out[(method, value)] = dict(table=np.asarray(table, dtype=np.float64), epochs=epochs,
                                    seconds=time.perf_counter() - start)
    return seed, out


def select_and_score(tables, methods, labels, neurons, seed):
    """Nested selection of each method's setting and its outer test scores, as rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import get_scorer
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    searches = {}
    for method in methods:
        name, values = GRIDS[method]
        probe = Pipeline([
            ("features", FeatureLookup({v: tables[(method, v)]["table"] for v in values})),
            ("scale", StandardScaler()),
            ("probe", LogisticRegression(class_weight="balanced", max_iter=5000)),
        ])
        searches[method] = (probe, {"features__key": values})
    return nested_compare(
        searches, neurons[:, None], labels,
        scoring={"balanced_accuracy": get_scorer("balanced_accuracy"),
                 "accuracy": get_scorer("accuracy")},
        refit="balanced_accuracy",
        outer_cv=StratifiedKFold(5, shuffle=True, random_state=0),
        inner_cv=StratifiedKFold(3, shuffle=True, random_state=0), seeds=[seed])


def summarize(results, fits):
    lines = []
    for task in TASKS:
        frame = results[results.task == task]
        if frame.empty:
            continue
        lines += [f"**{task}** (balanced accuracy and top-1 accuracy on the outer test "
                  "neurons; mean +- sd over (fold, seed) pairs)", "",
                  "| method | pairs | balanced accuracy | accuracy | vs NeuPRINT | vs PCA | "
                  "selected (count) |", "|---|---|---|---|---|---|---|"]
        for method in METHODS:
            rows = frame[frame.method == method]
            if rows.empty:
                continue
            cells = []
            for baseline in ("NeuPRINT", "PCA"):
                if method == baseline or baseline not in set(frame.method):
                    cells.append("")
                    continue
                d = paired_differences(frame, method, baseline, "test_balanced_accuracy")
                cells.append(paired_text(d))
            picked = rows.params.map(lambda p: p["features__key"]).value_counts()
            name = GRIDS[method][0]
            chosen = "; ".join(f"{name}={v} ({c})" for v, c in picked.items())
            lines.append(f"| {method} | {len(rows)} | {mean_sd(rows.test_balanced_accuracy)} "
                         f"| {mean_sd(rows.test_accuracy)} | " + " | ".join(cells)
                         + f" | {chosen} |")
        lines.append("")
    epochs = fits[fits.epochs > 0].groupby("method").agg(
        epochs=("epochs", "mean"), max_epochs=("epochs", "max"), seconds=("seconds", "mean"))
    if len(epochs):
        lines += ["Training: " + "; ".join(
            f"{m} {row.epochs:.0f} epochs on average (at most {row.max_epochs:.0f}), "
            f"{row.seconds:.0f} s per fit" for m, row in epochs.iterrows()) + ".", ""]
    lines.append("Differences are paired over the same (outer fold, seed) and give mean +- sd, "
                 "wins/pairs and the Wilcoxon signed-rank p. The folds of one seed share its "
                 "embeddings and the seeds share the folds, so the pairs are not independent "
                 "and the p-values are optimistic.")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    params, data_params = ((QUICK_NESTED_PARAMS, QUICK_DATA) if args.quick
                           else (NESTED_PARAMS, DATA))
    seeds = args.seeds[:1] if args.quick else args.seeds
    methods = [m for m in METHODS if m in args.methods]
    students = [m for m in methods if m.startswith("NeuPRINT + ") and m != "NeuPRINT + behavior"]
    if students and "NeuPRINT + behavior" not in methods:
        methods.append("NeuPRINT + behavior")  # the students' teacher: trained anyway
    out = RESULTS / ("cell_identity_nested" + ("_quick" if args.quick else ""))
    if args.out:
        from pathlib import Path

        out = Path(args.out)
    start = time.perf_counter()
    # one task per (seed, grid position): the students and their teacher share a process
    outputs = Parallel(n_jobs=args.jobs)(
        delayed(run_embeddings)(seed, index, methods, params, data_params, args.data_seed)
        for seed in seeds for index in range(2))
    tables = {}
    for seed, out_tables in outputs:
        tables.setdefault(seed, {}).update(out_tables)
    from sklearn_blend.datasets import make_cell_types

    data = make_cell_types(**data_params, random_state=args.data_seed)
    inhibitory = np.flatnonzero(data.subclass != "")
    rows = []
    for seed in seeds:
        for task, labels, neurons in (("EI", data.ei, np.arange(len(data.ei))),
                                      ("subclass", data.subclass[inhibitory], inhibitory)):
            rows += [dict(row, task=task)
                     for row in select_and_score(tables[seed], methods, labels, neurons, seed)]
    wall = time.perf_counter() - start
    results = pd.DataFrame(rows)
    fits = pd.DataFrame([dict(seed=seed, method=m, value=v, epochs=t["epochs"],
                              seconds=t["seconds"])
                         for seed in seeds for (m, v), t in tables[seed].items()])
    arguments = sys.argv[1:] if argv is None else argv
    command = " ".join(["python benchmarks/cell_identity_nested.py",
                        *map(shlex.quote, arguments)])
    header = (f"Command: `{command}` (data `make_cell_types("
              f"{', '.join(f'{k}={v}' for k, v in data_params.items())}, random_state="
              f"{args.data_seed})`, all sessions: {len(data.ei)} neurons, {len(inhibitory)} "
              f"inhibitory; seeds {seeds}; outer stratified 5-fold, inner stratified 3-fold; "
              f"wall time {wall / 60:.0f} min on {os.cpu_count()} cores).")
    text = summarize(results, fits)
    print(header, "", text, sep="\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    results.assign(params=results.params.map(repr)).to_csv(out.with_suffix(".csv"),
                                                           index=False)
    fits.to_csv(out.with_name(out.name + "_fits.csv"), index=False)
    out.with_suffix(".md").write_text(f"{header}\n\n{text}\n")
    print(f"wrote {out.with_suffix('.csv')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
