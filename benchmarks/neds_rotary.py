"""NEDS decoding with and without rotary position codes, on one synthetic session.

Data: the fifth session (45 neurons, 200 trials of 30 bins) of the synthetic family of the
sessions part of ``neds_mc_maze_small.py`` (``make_synthetic("hierarchical", n_sessions=5)``);
per seed, 50 of its trials drawn at random are the test trials and the other 150 train. Models:
the NEDS of that script (``NEDS_PARAMS``, ``max_epochs`` 150) with ``rotary=True`` (the default)
and ``rotary=False``, each with the default masking schemes and with ``scheme_probs`` all on
``decoding``; and the ridge on smoothed spikes of that script as a linear reference. Score:
decoding R2 on the test trials (mean over the 2 behavior channels) and on the training trials
(how much a model memorises).

Run ``python benchmarks/neds_rotary.py`` (writes ``benchmarks/results/neds_rotary.{csv,md}``,
about 3 minutes on one core).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd

from common import RESULTS, mean_sd, write_results
from neds_mc_maze_small import NEDS_PARAMS, _ridge_r2
from sklearn_blend import NedsEstimator
from sklearn_blend.datasets import make_synthetic

SCHEMES = {"all schemes": None, "decoding only": {"decoding": 1.0}}


def run(seed, max_epochs):
    X, b = make_synthetic("hierarchical", n_trials=200, n_time=30,
                          n_neurons=[40, 60, 50, 70, 45], n_behavior=2, random_state=0,
                          n_sessions=5)
    rows = np.random.default_rng(seed).permutation(np.flatnonzero(np.asarray(X.session) == 4))
    test, train = rows[:50], rows[50:]
    out = [dict(seed=seed, model="ridge on smoothed spikes", test_r2=_ridge_r2(X, b, train, test))]
    params = dict(NEDS_PARAMS, behavior_groups=None, max_epochs=max_epochs)
    for rotary in (True, False):
        for label, probs in SCHEMES.items():
            start = time.perf_counter()
            model = NedsEstimator(rotary=rotary, scheme_probs=probs, random_state=seed,
                                  **params).fit(X[train], b[train])
            out.append(dict(seed=seed, model=f"NEDS, {label}, rotary={rotary}",
                            test_r2=model.score(X[test], b[test]),
                            train_r2=model.score(X[train], b[train]), epochs=model.n_iter_,
                            seconds=time.perf_counter() - start))
    return out


def summarize(results):
    lines = ["| model | test R2 | training R2 | epochs |", "|---|---|---|---|"]
    for model, rows in results.groupby("model", sort=False):
        epochs = rows.get("epochs", pd.Series(dtype=float)).dropna()
        lines.append(f"| {model} | {mean_sd(rows.test_r2)} | "
                     f"{mean_sd(rows.get('train_r2', pd.Series(dtype=float)))} | "
                     + (f"{epochs.mean():.0f} |" if len(epochs) else "– |"))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-epochs", type=int, default=150)
    parser.add_argument("--out", default=str(RESULTS / "neds_rotary"))
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    warnings.filterwarnings("ignore", module="sklearn")
    start = time.perf_counter()
    results = pd.DataFrame([row for seed in args.seeds for row in run(seed, args.max_epochs)])
    header = (f"NEDS with and without rotary position codes: decoding R2 on the fifth synthetic "
              f"session (150 training, 50 test trials), seeds {args.seeds}, mean +- sd over "
              f"seeds; wall time {(time.perf_counter() - start) / 60:.0f} min; command "
              "`python benchmarks/neds_rotary.py`.")
    write_results(args.out, header, summarize(results), results)


if __name__ == "__main__":
    main()
