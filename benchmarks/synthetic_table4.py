"""BLEND's synthetic study (paper Table 4, appendix A.9) next to the paper's numbers.

Data: the three families of appendix A.9 (``make_synthetic``: "simple", "hierarchical",
"complex"; recipes in ``sklearn_blend/datasets/_synthetic.py``) at the paper's size, 2,869
trials x 140 bins x 182 neurons x 2 behavior channels. Each family is drawn once from the data
seed (``--data-seed``, 0 by default), so every base, method and model seed sees the same trials.

Splits. The paper says only that the data "are systematically divided into train/eval splits
and held-in/held-out neurons" (appendix A.9, the paragraph under Table 4), with no sizes. Its
sizes are MC_Maze's, so we follow NLB'21's MC_Maze layout: 45 of the 182 neurons are held out
(137 held-in), and 574 of the 2,869 trials (one fifth, MC_Maze's test-split share) are
evaluation trials; the other 2,295 train the models. Each model holds out
``validation_fraction`` of its training trials for early stopping; the evaluation trials are
never seen in training (BLEND's own scripts stop early on the split they score). Held-out
neurons and evaluation trials are drawn at random with the data seed rather than taken from
the end, because the families order neurons by group (timescale groups, assemblies) and the
last 45 would all come from one or two groups. Other sizes (``--quick``) keep the fractions
45/182 and 574/2,869.

Methods, per base (NDT and the deterministic GRU model, ``base="gru"``): the plain model trained without
behavior, the teacher (sees behavior: an upper reference, not a fair decode), and the four
BLEND students (hard, soft, feature, correlation), all through
:func:`sklearn_blend.evaluation.evaluate_split`. A student and the plain model of one (family,
base, seed) share the model seed and the students share one teacher, so differences are
paired. Metrics on the evaluation trials: Vel-R2 (NLB's ridge decoder from the rates of all
neurons, fit on the training trials' rates; the decoded "velocity" is the generated behavior)
and co-bps (held-out neurons). Table 4 reports Vel-R2 only, and the paper gives no model
sizes, epochs, seeds or spread for this study.

Training defaults (``PARAMS``): a 2-layer NDT (width 64, FFN 256) and a GRU model with 64-unit
GRUs (2 encoder layers), dropout 0.2, batch 64, lr 3e-3, at most 20 epochs with early stopping
(10% validation trials, patience 10): 33 optimizer steps per epoch, at most 660 per model
(``shared/reference/cpu_performance.md``, sections 4-5, finds 300-1,000 steps enough).
``--set NAME=VALUE`` overrides BlendEstimator parameters for every base.

Run ``python benchmarks/synthetic_table4.py`` (3 families x 2 bases x 3 seeds = 18 tasks, each
fitting the plain model, the teacher and 4 students; 2 worker processes of 1 torch thread).
Run time, an estimate from 2-epoch runs of the full-size defaults (1 torch thread, the other
core busy with another job): an NDT epoch takes about 10 s (teacher or plain model) and 12.5 s
(student, which also runs the frozen teacher), a GRU student epoch 25 s (teacher and plain
model about 20 s, assuming the same teacher-forward share); each fitted model then needs about
1 min to infer the rates of all 2,869 trials and fit the ridge decoder. At 20 epochs per model
an NDT task takes about 30 min and a GRU task about 55 min, 13 core-hours in all: about
6.5 hours of wall time with ``--jobs 2`` (less if early stopping ends models sooner).

Every finished (family, base, seed) task is appended to ``benchmarks/results/
synthetic_table4.csv`` at once; running the same command again skips what is there (an
interrupted run resumes, a finished one only rebuilds the table), and ``--fresh`` starts over.
The CSV stores each row's settings and command; resuming with other settings stops with an
error. The tables (Vel-R2 beside the paper's values, the gap between our best student and the
paper's best per family, co-bps, epochs and training time) are printed and written to
``benchmarks/results/synthetic_table4.md``, which ``benchmarks/update_readme.py`` copies into
README. ``--quick`` (300 trials x 40 bins x 60 neurons, 2 seeds, 1-layer width-32 models, 20
epochs, no early stopping) checks the whole pipeline: measured 5.6-5.9 min with ``--jobs 1``
on the same shared machine (about half that with ``--jobs 2``, an estimate). It writes
``synthetic_table4_quick.*`` and never touches the full results. ``--report`` only rebuilds
the tables from the CSV, e.g. of an interrupted run (the table then says how many seeds each
family has).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.utils import Bunch

from common import BASE_LABELS, RESULTS, mean_sd
from sklearn_blend.cli import parse_assignments
from sklearn_blend.datasets import make_synthetic
from sklearn_blend.datasets._synthetic import KINDS
from sklearn_blend.evaluation import METHODS as ALL_METHODS
from sklearn_blend.distill import strategy_names
from sklearn_blend.evaluation import evaluate_split

#: methods of this study: the plain model, the teacher and the students (no smoothing baseline)
METHODS = tuple(method for method in ALL_METHODS if method != "smoothing")
#: make_synthetic sizes: the paper's (appendix A.9, MC_Maze-sized) and the reduced --quick ones
SIZES = {
    "full": dict(n_trials=2869, n_time=140, n_neurons=182, n_behavior=2),
    "quick": dict(n_trials=300, n_time=40, n_neurons=60, n_behavior=2),
}
#: NLB MC_Maze layout: 45 of 182 neurons held out, 574 of 2,869 trials for evaluation
HELDOUT_FRACTION = 45 / 182
EVAL_FRACTION = 574 / 2869
#: BlendEstimator parameters per mode and base (``--set`` overrides them for every base)
_TRAINING = dict(batch_size=64, lr=3e-3, warmup_steps=50, weight_decay=0.1, dropout=0.2,
                 max_epochs=20, early_stopping=True, validation_fraction=0.1,
                 n_iter_no_change=10)
_QUICK_TRAINING = dict(_TRAINING, max_epochs=20, early_stopping=False, warmup_steps=10)
PARAMS = {
    "full": {
        "ndt": dict(_TRAINING, base="ndt", hidden_size=64, n_layers=2, n_heads=2, ffn_size=256),
        "gru": dict(_TRAINING, base="gru", hidden_size=64, n_layers=2),
    },
    "quick": {
        "ndt": dict(_QUICK_TRAINING, base="ndt", hidden_size=32, n_layers=1, n_heads=2, ffn_size=64),
        "gru": dict(_QUICK_TRAINING, base="gru", hidden_size=32, n_layers=1),
    },
}
#: the paper's Table 4 (Vel-R2); rows it does not report show "–". Its LFADS rows were made
#: with the GRU model its code calls LFADS (``base="blend_lfads"``)
PAPER_TABLE4 = {
    ("blend_lfads", "hard"): dict(simple=0.985, hierarchical=0.976, complex=0.182),
    ("ndt", "hard"): dict(simple=0.934, hierarchical=0.926, complex=0.147),
    ("ndt", "soft"): dict(simple=0.927, hierarchical=0.932, complex=0.146),
    ("ndt", "feature"): dict(simple=0.926, hierarchical=0.940, complex=0.139),
    ("ndt", "correlation"): dict(simple=0.935, hierarchical=0.944, complex=0.180),
}
#: CSV columns, in order
COLUMNS = ("family", "base", "seed", "method", "vel_r2", "co_bps", "epochs", "seconds",
           "task_seconds", "settings", "command")


def make_dataset(family, sizes, data_seed):
    """One family's data and its split, all drawn from ``data_seed``.

    Parameters
    ----------
    family : {"simple", "hierarchical", "complex"}
    sizes : dict
        ``make_synthetic`` sizes (``n_trials``, ``n_time``, ``n_neurons``, ``n_behavior``).
    data_seed : int
        Seeds the data, the held-out neurons and the evaluation trials.

    Returns
    -------
    data : Bunch
        ``spikes`` (held-in), ``spikes_heldout`` and ``behavior``, as ``evaluate_split`` reads.
    train, test : ndarray of int
        Training and evaluation trials.
    """
    X, b = make_synthetic(family, random_state=data_seed, **sizes)
    rng = np.random.default_rng(data_seed)
    n_heldout = round(HELDOUT_FRACTION * X.shape[-1])
    n_eval = round(EVAL_FRACTION * len(X))
    neurons, trials = rng.permutation(X.shape[-1]), rng.permutation(len(X))
    heldin, heldout = np.sort(neurons[n_heldout:]), np.sort(neurons[:n_heldout])
    data = Bunch(spikes=X[..., heldin], spikes_heldout=X[..., heldout], behavior=b)
    return data, np.sort(trials[n_eval:]), np.sort(trials[:n_eval])


def run_task(family, base, seed, methods, sizes, params, data_seed, n_threads):
    """Fit and score ``methods`` of one (family, base, seed); one dict per method."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n_threads)
    warnings.filterwarnings("ignore", module="sklearn")  # ill-conditioned small ridge alphas
    start = time.perf_counter()
    with threadpool_limits(n_threads):  # the ridge decoder's BLAS too, not only torch
        data, train, test = make_dataset(family, sizes, data_seed)
        results = evaluate_split(data, train, test, methods, params=params, seed=seed)
    task_seconds = time.perf_counter() - start
    return [dict(family=family, base=base, seed=seed, method=result["method"],
                 vel_r2=result["vel_r2"], co_bps=result["co_bps"], epochs=result["epochs"],
                 seconds=result["seconds"], task_seconds=task_seconds)
            for result in results]


def settings_key(sizes, params, data_seed):
    """The settings a result row depends on, as a canonical JSON string (stored per row)."""
    return json.dumps(dict(sizes=sizes, data_seed=data_seed, params=params), sort_keys=True)


def load_done(path, settings):
    """Rows of an earlier run at ``path`` (empty if none), checked against ``settings``.

    Parameters
    ----------
    path : Path
        The results CSV.
    settings : dict of str -> str
        Settings string per base of this run.

    Returns
    -------
    DataFrame
    """
    if not path.exists():
        return pd.DataFrame(columns=list(COLUMNS))
    done = pd.read_csv(path)
    sample = json.loads(next(iter(settings.values())))
    for base, key in done[["base", "settings"]].drop_duplicates().itertuples(index=False):
        earlier = json.loads(key)
        # a base of this run must match exactly; other bases must share the data at least
        if (key != settings[base] if base in settings else
                (earlier["sizes"], earlier["data_seed"]) != (sample["sizes"],
                                                           sample["data_seed"])):
            raise SystemExit(
                f"{path} holds {base} rows made with other settings ({key}); rerun with "
                "--fresh, or choose another --out."
            )
    return done


def method_label(base, method):
    """Table label: 'NDT (no behavior)', 'NDT teacher (sees behavior)', 'NDT-Hard', ..."""
    model = BASE_LABELS[base]
    if method == "ndt":
        return f"{model} (no behavior)"
    if method == "teacher":
        return f"{model} teacher (sees behavior)"
    return f"{model}-{method.capitalize()}"


def _cell(frame, family, metric):
    """Mean +- sd over seeds of ``metric`` for one family, or '–' without rows."""
    values = frame.loc[frame.family == family, metric]
    return mean_sd(values) if len(values) else "–"


def summarize(results):
    """Markdown tables: Vel-R2 beside the paper's Table 4, the gap, co-bps and cost.

    Parameters
    ----------
    results : DataFrame
        One row per (family, base, seed, method), columns as :data:`COLUMNS`.

    Returns
    -------
    str
    """
    families = [family for family in KINDS if family in results.family.values]
    rows = [(base, method) for base in BASE_LABELS for method in METHODS
            if ((results.base == base) & (results.method == method)).any()]
    header = "| method | " + " | ".join(f"{family} | paper" for family in families) + " |"
    lines = [header, "|---" * (1 + 2 * len(families)) + "|"]
    for base, method in rows:
        frame = results[(results.base == base) & (results.method == method)]
        paper = PAPER_TABLE4.get((base, method), {})
        cells = [f"{_cell(frame, family, 'vel_r2')} | "
                 + (f"{paper[family]:.3f}" if family in paper else "–") for family in families]
        lines.append(f"| {method_label(base, method)} | " + " | ".join(cells) + " |")

    students = results[results.method.isin(strategy_names())]
    means = students.groupby(["family", "base", "method"]).vel_r2.mean()
    best_cells, gap_cells = [], []
    for family in families:
        paper_best = max(PAPER_TABLE4, key=lambda row: PAPER_TABLE4[row][family])
        paper_value = PAPER_TABLE4[paper_best][family]
        paper_text = f"{paper_value:.3f} ({method_label(*paper_best)})"
        if family not in means.index.get_level_values("family"):
            best_cells.append(f"– | {paper_text}")
            gap_cells.append("– | ")
            continue
        (base, method), ours = means.loc[family].idxmax(), means.loc[family].max()
        best_cells.append(f"{ours:.3f} ({method_label(base, method)}) | {paper_text}")
        gap_cells.append(f"{ours - paper_value:+.3f} | ")
    seeds_run = results.groupby(["family", "base"]).seed.nunique()
    seed_cells = [", ".join(f"{label} {seeds_run[family][base]}"
                            for base, label in BASE_LABELS.items() if base in seeds_run[family])
                  for family in families]
    lines.append("| model seeds run | " + " | ".join(f"{cell} | " for cell in seed_cells) + " |")
    lines.append("| best student | " + " | ".join(best_cells) + " |")
    lines.append("| gap: our best - paper's best | " + " | ".join(gap_cells) + " |")

    lines += ["", "| method | " + " | ".join(f"co-bps {family}" for family in families)
              + " | epochs | training s per fit |",
              "|---" * (3 + len(families)) + "|"]
    for base, method in rows:
        frame = results[(results.base == base) & (results.method == method)]
        cells = [_cell(frame, family, "co_bps") for family in families]
        lines.append(f"| {method_label(base, method)} | " + " | ".join(cells)
                     + f" | {frame.epochs.mean():.0f} | {frame.seconds.mean():.0f} |")
    seeds = results.groupby(["family", "base", "method"]).seed.nunique()
    n_seeds = (f"{seeds.min()}" if seeds.min() == seeds.max()
               else f"{seeds.min()}-{seeds.max()}")
    lines += [
        "",
        f"Vel-R2 and co-bps on the evaluation trials, mean +- sd over {n_seeds} model seeds "
        "(one data draw per family). Paper: Table 4 of Guo et al. (ICLR 2025), Vel-R2 only, "
        "no spread given; '–' where it reports no value. The best student is the one with the "
        "highest mean Vel-R2 over the bases and strategies run; the gap is its mean "
        "minus the paper's best value for the family. Epochs and training time are means over "
        "all families and seeds (the teacher's are its own training, the students' exclude "
        "the teacher).",
    ]
    return "\n".join(lines)


def _duration(seconds):
    """'12.3 min' below 100 minutes, else '4.5 h'."""
    minutes = seconds / 60
    return f"{minutes:.1f} min" if minutes < 100 else f"{minutes / 60:.1f} h"


def describe(results, sizes, wall, n_jobs, n_threads, n_new):
    """The header of the table: data, splits, commands, settings and run time."""
    n_heldout = round(HELDOUT_FRACTION * sizes["n_neurons"])
    n_eval = round(EVAL_FRACTION * sizes["n_trials"])
    settings = {}
    for base, key in results.groupby("base").settings.first().items():
        params = json.loads(key)["params"]
        settings[BASE_LABELS[base]] = {k: v for k, v in params.items() if k != "base"}
    data_seed = json.loads(results.settings.iloc[0])["data_seed"]
    commands = list(dict.fromkeys(results.command))
    runs = results.groupby(["family", "base", "seed", "task_seconds"]).size().reset_index()
    lines = [
        f"Synthetic families of the BLEND paper's appendix A.9: {sizes['n_trials']} trials x "
        f"{sizes['n_time']} bins x {sizes['n_neurons']} neurons "
        f"({sizes['n_neurons'] - n_heldout} held-in + {n_heldout} held-out) x "
        f"{sizes['n_behavior']} behavior channels, data seed {data_seed}; "
        f"{sizes['n_trials'] - n_eval} training and {n_eval} evaluation trials.",
        "",
        "Produced by `" + "`, then `".join(commands) + "`.",
        "",
        "BlendEstimator parameters: "
        + "; ".join(f"{model} {params}" for model, params in settings.items()) + ".",
        "",
        f"Compute: {_duration(runs.task_seconds.sum())} summed over {len(runs)} "
        "(family, base, seed) task runs"
        + (f"; the last invocation ran {n_new} of them in {_duration(wall)} wall time with "
           f"--jobs {n_jobs} ({n_threads} torch thread(s) each) on {os.cpu_count()} cores."
           if n_new else "."),
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--bases", nargs="+", default=list(BASE_LABELS),
                        choices=list(BASE_LABELS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", type=int, default=None, metavar="N",
                        help="model seeds 0 .. N-1 [3; 2 with --quick]")
    parser.add_argument("--first-seed", type=int, default=0, metavar="K",
                        help="skip model seeds below K, e.g. to share the seeds of one family "
                             "between processes or machines [0]")
    parser.add_argument("--data-seed", type=int, default=0,
                        help="seed of the data, held-out neurons and evaluation trials [0]")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="BlendEstimator parameters for every base, over PARAMS")
    parser.add_argument("--jobs", type=int, default=2,
                        help="parallel worker processes, 1 torch thread each [2]")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the single process when --jobs 1 [1]")
    parser.add_argument("--quick", action="store_true",
                        help="300 trials x 40 bins x 60 neurons, small models, 20 epochs, "
                             "2 seeds; writes synthetic_table4_quick.*")
    parser.add_argument("--fresh", action="store_true",
                        help="discard the CSV of earlier runs instead of resuming from it")
    parser.add_argument("--report", action="store_true",
                        help="only rebuild the tables from the CSV (e.g. of an interrupted "
                             "run), training nothing")
    parser.add_argument("--out", default=None,
                        help="output path without suffix [benchmarks/results/synthetic_table4, "
                             "with _quick for --quick]")
    args = parser.parse_args(argv)
    if args.jobs > 1 and args.threads > 1:
        parser.error("--threads > 1 only with --jobs 1: parallel workers use 1 torch thread")

    mode = "quick" if args.quick else "full"
    sizes = SIZES[mode]
    n_seeds = args.seeds if args.seeds is not None else (2 if args.quick else 3)
    overrides = parse_assignments(args.set)
    params = {base: dict(PARAMS[mode][base], **overrides) for base in args.bases}
    settings = {base: settings_key(sizes, params[base], args.data_seed) for base in args.bases}
    out = Path(args.out or RESULTS / f"synthetic_table4{'_quick' if args.quick else ''}")
    csv = out.with_suffix(".csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.fresh and csv.exists():
        csv.unlink()
    done = load_done(csv, settings)
    command = "python benchmarks/synthetic_table4.py " + shlex.join(
        sys.argv[1:] if argv is None else argv)

    tasks = []
    for family in args.families:
        for base in args.bases:
            for seed in range(args.first_seed, n_seeds):
                mine = done[(done.family == family) & (done.base == base) & (done.seed == seed)]
                todo = [m for m in args.methods if m not in set(mine.method)]
                if todo and not args.report:
                    tasks.append((family, base, seed, todo))
    print(f"{len(tasks)} task(s) to run, {len(done)} row(s) already in {csv}", flush=True)
    n_threads = 1 if args.jobs > 1 else args.threads
    start = time.perf_counter()
    outputs = Parallel(n_jobs=args.jobs, return_as="generator_unordered")(
        delayed(run_task)(family, base, seed, methods, sizes, params[base], args.data_seed,
                          n_threads)
        for family, base, seed, methods in tasks
    )
    for rows in outputs:
        frame = pd.DataFrame(rows).assign(settings=settings[rows[0]["base"]], command=command)
        frame[list(COLUMNS)].to_csv(csv, mode="a", header=not csv.exists(), index=False)
        first = rows[0]
        scores = ", ".join(f"{row['method']} {row['vel_r2']:.3f}" for row in rows)
        print(f"done {first['family']} {first['base']} seed {first['seed']} in "
              f"{first['task_seconds'] / 60:.1f} min: Vel-R2 {scores}", flush=True)
    wall = time.perf_counter() - start

    if not csv.exists():
        raise SystemExit("no results to report: no task was asked for")
    results = pd.read_csv(csv)
    header = describe(results, sizes, wall, args.jobs, n_threads, len(tasks))
    text = f"{header}\n\n{summarize(results)}\n"
    print("", text, sep="\n")
    out.with_suffix(".md").write_text(text)
    print(f"wrote {csv} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
