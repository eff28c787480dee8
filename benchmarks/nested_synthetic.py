"""Which settings nested selection picks on the synthetic families (the other half of the
evidence for the defaults, next to MC_Maze_Small's ``nlb_nested.py``).

Data: ``make_synthetic(family, n_trials=300, n_time=50, n_neurons=60, random_state=0)`` for
each family of ``--families``; 15 neurons, drawn at random with the data seed, are held out
(their columns moved last), as ``synthetic_table4.py`` does. Protocol: the grids of
``nlb_nested.py`` (``GRIDS``: the plain NDT over dropout x mask ratio, the hard student over
dropout x alpha, 4 settings each), ``--outer`` outer folds, 2 inner folds on each outer training
set shared by both methods, selection by the inner co-bps, then refit and scored on the outer
test trials (co-bps, and Vel-R2 of NLB's ridge decoder on the rates); package defaults
otherwise, ``max_epochs`` capped by ``--max-epochs``.

Run ``python benchmarks/nested_synthetic.py`` (writes ``benchmarks/results/nested_synthetic.
{csv,md}`` after each family); ``--quick`` checks the script.
"""

from __future__ import annotations

import argparse
import ast
import os
import time
import warnings

import numpy as np
import pandas as pd

from common import RESULTS, mean_sd, paired_text, write_results
from nlb_nested import GRIDS
from sklearn_blend import BlendEstimator, BlendTeacher, scoring
from sklearn_blend.datasets import make_synthetic
from sklearn_blend.model_selection import nested_compare, paired_differences
from sklearn.pipeline import Pipeline

N_HELDOUT = 15
METHODS = ("ndt", "hard")


def family_data(family, quick):
    X, b = make_synthetic(family, n_trials=80 if quick else 300, n_time=30 if quick else 50,
                          n_neurons=60, random_state=0)
    order = np.random.default_rng(0).permutation(X.shape[2])
    return X[..., order], b


def searches(fixed):
    common = dict({"base": "ndt", **fixed}, n_heldout=N_HELDOUT)
    models = {"ndt": BlendEstimator(strategy=None, **common),
              "hard": BlendEstimator(strategy="hard", teacher=BlendTeacher(**common), **common)}
    return {name: (Pipeline([("model", models[name]),
                             ("decoder", scoring.nlb_velocity_decoder())]), GRIDS[name])
            for name in METHODS}


def summarize(results):
    lines = ["| family | method | (fold, seed) pairs | co-bps | Vel-R2 | selected settings |",
             "|---|---|---|---|---|---|"]
    for (family, method), rows in results.groupby(["family", "method"], sort=False):
        picked = rows.params.map(lambda p: ", ".join(
            f"{k.split('__')[-1]}={v}" for k, v in sorted(ast.literal_eval(p).items())))
        counts = "; ".join(f"{s} ({c})" for s, c in picked.value_counts().items())
        lines.append(f"| {family} | {method} | {len(rows)} | {mean_sd(rows.test_co_bps)} | "
                     f"{mean_sd(rows.test_vel_r2)} | {counts} |")
    lines += ["", "hard - ndt, paired over (fold, seed):", ""]
    for family, rows in results.groupby("family", sort=False):
        for metric in ("test_co_bps", "test_vel_r2"):
            d = paired_differences(rows, "hard", "ndt", metric)
            lines.append(f"- {family}, {metric[5:]}: {paired_text(d)}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", nargs="+", default=["simple", "hierarchical", "complex"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--outer", type=int, default=3)
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="small data, 1 seed, 3 epochs")
    parser.add_argument("--out", default=str(RESULTS / "nested_synthetic"))
    args = parser.parse_args(argv)
    n_threads = max(1, (os.cpu_count() or 1) // args.n_jobs)
    n_threads = int(os.environ.setdefault("OMP_NUM_THREADS", str(n_threads)))
    import torch

    torch.set_num_threads(n_threads)
    warnings.filterwarnings("ignore", module="sklearn")
    seeds = args.seeds[:1] if args.quick else args.seeds
    fixed = {"max_epochs": 3 if args.quick else args.max_epochs}
    parts, start = [], time.perf_counter()
    for family in args.families:
        X, b = family_data(family, args.quick)
        rows = nested_compare(searches(fixed), X, b,
                              scoring={"co_bps": scoring.co_bps_scorer,
                                       "vel_r2": scoring.vel_r2_scorer},
                              refit="co_bps", outer_cv=args.outer, inner_cv=2, seeds=seeds,
                              n_jobs=args.n_jobs, error_score="raise")
        parts.append(pd.DataFrame(rows).assign(family=family))
        results = pd.concat(parts, ignore_index=True)
        results["params"] = results.params.map(repr)
        size = "80 trials x 30 bins" if args.quick else "300 trials x 50 bins"
        header = (f"Synthetic families (make_synthetic, {size} x 60 neurons, "
                  f"{N_HELDOUT} held out), nested selection (outer {args.outer}-fold, inner "
                  f"2-fold, by inner co-bps), seeds {seeds}, grids of nlb_nested.py, "
                  f"max_epochs {fixed['max_epochs']}{' (quick)' if args.quick else ''}; wall "
                  f"time {(time.perf_counter() - start) / 60:.0f} min with n_jobs={args.n_jobs} on a "
                  f"{os.cpu_count()}-core machine; command `python benchmarks/nested_synthetic.py"
                  f" --families {' '.join(args.families)} --n-jobs {args.n_jobs}`.")
        write_results(args.out, header, summarize(results), results)


if __name__ == "__main__":
    main()
