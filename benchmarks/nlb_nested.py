"""MC_Maze_Small, nested selection with an equal budget: is the student better than the best
spikes-only model tuned the same way?

Protocol (:func:`sklearn_blend.model_selection.nested_compare`): the same 5 outer folds as
``nlb_mc_maze_small.py`` (60 training, 15 test trials). Inside each outer fold every method
chooses its setting by grid search over inner folds (``--inner`` folds of the 60 training trials,
the same inner folds for every method of a seed), selected by the inner co-bps (``--select``),
then refits on the 60 trials and is scored on the 15 test trials. Every method's grid has the
same number of settings (``GRIDS``): the plain NDT is tuned over dropout x mask ratio, each
student over dropout x alpha, the smoothing baseline over kernel width x GLM penalty. The
students' teacher has fixed settings, so one teacher per inner fold (and one per outer fold)
serves every setting and both students. Each (method, fold, seed) row records the selected
setting. Vel-R2 uses the NLB ridge decoder fit on the training trials' rates.

Run ``python benchmarks/nlb_nested.py`` (3 seeds, about 50 minutes per seed on 2 cores for
the four methods; it writes ``benchmarks/results/nlb_nested.{csv,md}`` after every seed, so a
stopped run keeps the seeds it finished, and ``--seeds 1 2 --append`` adds seeds later). ``--quick`` (1 seed, 2 outer folds, 2 settings, 15 epochs) checks the script.
``--set NAME=VALUE`` changes the fixed settings of every neural model; ``--resummarize``
rewrites a table from its CSV.
"""

from __future__ import annotations

import argparse
import ast
import os
import time
import warnings

import numpy as np
import pandas as pd

from common import RESULTS, mean_sd, paired_text
from sklearn_blend import BlendEstimator, BlendTeacher, metrics, scoring
from sklearn_blend.cli import parse_assignments
from sklearn_blend.datasets import load_mc_maze_small
from sklearn_blend.estimators.smoothing import SmoothingGLM
from sklearn_blend.evaluation import split_arrays
from sklearn_blend.model_selection import check_equal_budget, nested_compare, \
    paired_differences
from sklearn.pipeline import Pipeline

#: the tuning grid of every method: the same number of settings each
GRIDS = {
    "smoothing": {"model__kern_sd_ms": [40, 60], "model__alpha": [0.01, 0.1]},
    "ndt": {"model__dropout": [0.5, 0.7], "model__mask_ratio": [0.25, 0.5]},
    "hard": {"model__dropout": [0.5, 0.7], "model__alpha": [0.3, 0.7]},
    "correlation": {"model__dropout": [0.5, 0.7], "model__alpha": [0.3, 0.7]},
}
LABELS = {"smoothing": "smoothing (NLB baseline)", "ndt": "NDT (no behavior)",
          "teacher": "NDT teacher (sees behavior)", "hard": "BLEND NDT hard",
          "correlation": "BLEND NDT correlation",
          "default_plain": "GRU (no behavior): BlendEstimator(strategy=None), not tuned",
          "default": "BlendEstimator() (GRU, feature), not tuned"}
#: methods at the package defaults, brought in by ``--defaults-from`` from a fixed-settings run
#: of ``nlb_mc_maze_small.py`` (its method name -> ours)
DEFAULT_ROWS = {"ndt": "default_plain", "feature": "default"}
#: the folds the default strategy was chosen on (``nlb_mc_maze_small.py --chosen feature
#: --chosen-on 0 1``): the held-out comparison of the defaults uses the other folds only
CHOSEN_ON = (0, 1)


def _value(text):
    return ast.literal_eval(text) if isinstance(text, str) and text[:1] in "{[(" else text


def searches(fixed, methods, quick):
    n_heldout, forward_bins = 35, 40
    common = dict({"base": "ndt", **fixed}, n_heldout=n_heldout, forward_bins=forward_bins)
    teacher = BlendTeacher(**common)
    models = {
        "smoothing": SmoothingGLM(n_heldout=n_heldout),
        "ndt": BlendEstimator(strategy=None, **common),
        "hard": BlendEstimator(strategy="hard", teacher=teacher, **common),
        "correlation": BlendEstimator(strategy="correlation", teacher=teacher, **common),
    }
    result = {}
    for name in methods:
        grid = dict(GRIDS[name])
        if quick:  # two settings: the first key's values only
            first = next(iter(grid))
            grid = {key: (values if key == first else values[:1])
                    for key, values in grid.items()}
        result[name] = (Pipeline([("model", models[name]),
                                  ("decoder", scoring.nlb_velocity_decoder())]), grid)
    return result


def outer_rows(rows, data, splits):
    """Test scores of each refit pipeline: co-bps, fp-bps, Vel-R2, and its teacher's."""
    X, b, forward = split_arrays(data)
    heldin = X[..., :107]
    out = []
    for row in rows:
        train, test = splits[row["fold"]]
        pipe = row.pop("estimator").best_estimator_
        model = pipe.named_steps["model"]
        entry = {k: v for k, v in row.items() if not k.startswith(("test_", "inner_"))}
        entry.update(co_bps=row["test_co_bps"], vel_r2=row["test_vel_r2"],
                     inner_co_bps=row["inner_co_bps"], fp_bps=np.nan,
                     epochs=getattr(model, "n_iter_", 0))
        if isinstance(model, BlendEstimator):
            rates = model.predict_rates(heldin[test], forward=True)
            entry["fp_bps"] = metrics.fp_bps(rates[:, -40:], forward[test])
        out.append(entry)
        if isinstance(model, BlendEstimator) and model.teacher_ is not None and not any(
                r["method"] == "teacher" and r["fold"] == row["fold"]
                and r["seed"] == row["seed"] for r in out):
            teacher = model.teacher_
            train_rates = teacher.predict_rates(heldin[train], b[train])
            rates = teacher.predict_rates(heldin[test], b[test], forward=True)
            out.append(dict(method="teacher", fold=row["fold"], seed=row["seed"],
                            params={}, epochs=teacher.n_iter_,
                            co_bps=metrics.co_bps(rates[:, :-40, 107:], X[test][..., 107:]),
                            fp_bps=metrics.fp_bps(rates[:, -40:], forward[test]),
                            vel_r2=metrics.vel_r2(train_rates, b[train], rates[:, :-40],
                                                  b[test])))
    return out


def with_default_rows(table, header, paths):
    """``table`` with the rows of :data:`DEFAULT_ROWS` taken from the fixed-settings CSVs
    ``paths`` (a later file's row of a (method, fold, seed) wins; earlier such rows of the table
    are replaced), and ``header`` saying where they came from."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    fixed = pd.concat([pd.read_csv(path) for path in paths], ignore_index=True)
    fixed = fixed[fixed.method.isin(list(DEFAULT_ROWS))].drop_duplicates(
        ["method", "fold", "seed"], keep="last")
    if fixed.empty:
        raise SystemExit(f"--defaults-from: {paths} have no rows of {sorted(DEFAULT_ROWS)}")
    pairs = set(zip(table.fold, table.seed))
    missing = sorted(set(zip(fixed.fold, fixed.seed)) - pairs)
    if missing:
        raise SystemExit(f"--defaults-from: (fold, seed) pairs {missing} of {paths} are not "
                         "in the nested table")
    rows = fixed.assign(method=fixed.method.map(DEFAULT_ROWS), params=[{}] * len(fixed),
                        inner_co_bps=np.nan)[["method", "fold", "seed", "params", "co_bps",
                                              "fp_bps", "vel_r2", "epochs", "inner_co_bps"]]
    table = pd.concat([table[~table.method.isin(list(DEFAULT_ROWS.values()))], rows],
                      ignore_index=True)
    note = (f" Rows {sorted(DEFAULT_ROWS.values())}: the package defaults, not tuned (no "
            "inner selection), from `python benchmarks/nlb_mc_maze_small.py --base gru` on the "
            "same outer folds and seeds ("
            + ", ".join(f"`benchmarks/results/{os.path.basename(p)}`" for p in paths)
            + "; a later file's row wins), brought in with `--resummarize --defaults-from`.")
    return table, header.split(" Rows ['default'")[0] + note


def one_teacher_row(results):
    """Rows with one teacher per (fold, seed): a method appended later trains the same teacher
    again (same settings and seed, bit-identical scores), which must not count twice."""
    return results.drop_duplicates(subset=["method", "fold", "seed"], keep="first")


def summarize(results):
    lines = ["| method | (fold, seed) pairs | co-bps | fp-bps | Vel-R2 | co-bps vs NDT | "
             "Vel-R2 vs NDT | co-bps vs smoothing | Vel-R2 vs smoothing |",
             "|---|---|---|---|---|---|---|---|---|"]
    order = [m for m in ("smoothing", "ndt", "teacher", "hard", "correlation",
                         "default_plain", "default") if m in set(results.method)]
    for method in order:
        rows = results[results.method == method]
        cells = []
        for baseline, metric in (("ndt", "co_bps"), ("ndt", "vel_r2"),
                                 ("smoothing", "co_bps"), ("smoothing", "vel_r2")):
            if method in (baseline, "teacher") or baseline not in set(results.method):
                cells.append("")
                continue
            d = paired_differences(results, method, baseline, metric)
            cells.append(paired_text(d))
        lines.append(f"| {LABELS[method]} | {len(rows)} | {mean_sd(rows.co_bps)} | "
                     f"{mean_sd(rows.fp_bps)} | "
                     f"{mean_sd(rows.vel_r2)} | " + " | ".join(cells) + " |")
    if "default" in set(results.method):
        held_out = results[~results.fold.isin(CHOSEN_ON)]
        folds = sorted(set(held_out.fold))
        lines += ["", f"Held out from the choice of the defaults (folds {folds}; the feature "
                  f"strategy was chosen on folds {list(CHOSEN_ON)}):", ""]
        for other in [m for m in ("smoothing", "ndt", "hard", "correlation", "default_plain")
                      if m in set(held_out.method)]:
            parts = [f"{name} {paired_text(paired_differences(held_out, 'default', other, m))}"
                     for m, name in (("co_bps", "co-bps"), ("vel_r2", "Vel-R2"))]
            lines.append(f"- {LABELS['default']} - {LABELS[other]}: " + "; ".join(parts))
    lines += ["", "Mean +- sd over all (outer fold, seed) pairs. Differences are paired over "
              "the same (fold, seed): mean +- sd, wins/pairs, Wilcoxon signed-rank p. Pairs "
              "of one seed share training trials across folds and pairs of one fold share "
              "them across seeds, so the p-values are optimistic.", "",
              "Selected settings (count over folds and seeds):", ""]
    for method in order:
        if method == "teacher":
            continue
        picked = results[results.method == method].params.map(
            lambda p: ", ".join(f"{k.split('__')[-1]}={v}" for k, v in sorted(p.items()))
            or "package defaults")
        counts = picked.value_counts()
        lines.append(f"- {LABELS[method]}: " + "; ".join(
            f"{setting} ({count})" for setting, count in counts.items()))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--inner", type=int, default=2, help="inner folds")
    parser.add_argument("--methods", nargs="+", default=list(GRIDS), choices=list(GRIDS))
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--append", action="store_true",
                        help="add this run's rows to those already in --out's CSV (same "
                             "protocol: e.g. more seeds, or methods run for fewer seeds)")
    parser.add_argument("--out", default=str(RESULTS / "nlb_nested"))
    parser.add_argument("--resummarize", action="store_true",
                        help="rewrite --out's markdown table from its CSV (no training; the "
                             "header line of the old table is kept)")
    parser.add_argument("--defaults-from", nargs="+", default=None, metavar="CSV",
                        help="with --resummarize: add (or replace) the rows of the package "
                             "defaults, not tuned, from fixed-settings runs of "
                             "nlb_mc_maze_small.py on the same folds and seeds (their plain "
                             "model and feature student; a later file's row of a (method, "
                             "fold, seed) wins)")
    args = parser.parse_args(argv)
    if args.defaults_from and not args.resummarize:
        parser.error("--defaults-from goes with --resummarize")
    if args.resummarize:
        table = one_teacher_row(pd.read_csv(f"{args.out}.csv"))
        table["params"] = table.params.map(ast.literal_eval)
        with open(f"{args.out}.md") as handle:
            header = handle.readline().rstrip("\n")
        if args.defaults_from:
            table, header = with_default_rows(table, header, args.defaults_from)
            table.assign(params=table.params.map(repr)).to_csv(f"{args.out}.csv", index=False)
        with open(f"{args.out}.md", "w") as handle:
            handle.write(f"{header}\n\n{summarize(table)}\n")
        print(f"rewrote {args.out}.md from {args.out}.csv")
        return
    fixed = {k: _value(v) for k, v in parse_assignments(args.set).items()}
    seeds, n_outer = args.seeds, 5
    if args.quick:
        seeds = seeds[:1]
        fixed.setdefault("max_epochs", 15)
    warnings.filterwarnings("ignore", module="sklearn")
    check_equal_budget(GRIDS)
    data = load_mc_maze_small()
    X, b, forward = split_arrays(data)
    from sklearn.model_selection import KFold

    outer = KFold(n_outer, shuffle=True, random_state=0)
    splits = list(outer.split(np.arange(len(X))))
    if args.quick:
        splits = splits[:2]
    plan = searches(fixed, args.methods, args.quick)
    params = {name: {"model__spikes_forward": forward} for name in plan if name != "smoothing"}
    n_threads = max(1, (os.cpu_count() or 1) // args.n_jobs)
    os.environ.setdefault("OMP_NUM_THREADS", str(n_threads))
    import torch

    torch.set_num_threads(n_threads)
    results, start = [], time.perf_counter()
    if args.append:
        earlier = pd.read_csv(f"{args.out}.csv")
        earlier["params"] = earlier.params.map(ast.literal_eval)
        results = earlier.to_dict("records")
    for seed in seeds:
        rows = nested_compare(
            plan, X, b, scoring={"co_bps": scoring.co_bps_scorer,
                                 "vel_r2": scoring.vel_r2_scorer},
            refit="co_bps", outer_cv=[(tr, te) for tr, te in splits], inner_cv=args.inner,
            seeds=[seed], params=params, n_jobs=args.n_jobs, return_estimator=True,
            error_score="raise")
        results += outer_rows(rows, data, splits)
        table = one_teacher_row(pd.DataFrame(results))
        results = table.to_dict("records")
        wall = (time.perf_counter() - start) / 60
        seeds_of = table.groupby("method").seed.unique()
        header = (f"MC_Maze_Small, nested selection (outer 5-fold{' (2 run)' if args.quick else ''}"
                  f", inner {args.inner}-fold on the outer training trials, selected by inner "
                  "co-bps); seeds: " + "; ".join(
                      f"{m} {sorted(int(x) for x in seeds_of[m])}" for m in seeds_of.index)
                  + "; grids: "
                  + "; ".join(f"{m}: " + " x ".join(f"{k.split('__')[-1]} {v}"
                                                    for k, v in GRIDS[m].items())
                              for m in GRIDS if m in seeds_of.index)
                  + f"; NDT base; fixed settings: {fixed or 'package defaults'}; wall time "
                  f"{wall:.0f} min on {os.cpu_count()} cores"
                  + (" (this run; earlier rows appended to)" if args.append else "") + ".")
        text = summarize(table)
        print(header, "", text, sep="\n", flush=True)
        table.assign(params=table.params.map(repr)).to_csv(f"{args.out}.csv", index=False)
        with open(f"{args.out}.md", "w") as handle:
            handle.write(f"{header}\n\n{text}\n")
    print(f"wrote {args.out}.csv and {args.out}.md")


if __name__ == "__main__":
    main()
