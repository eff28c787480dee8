"""One grid search run serially, with joblib's loky processes and on a Dask cluster.

The search: ``GridSearchCV`` over a Pipeline of a small ``BlendEstimator`` (1 layer, width 32,
``max_epochs`` 10, 35 held-out neurons) and NLB's velocity decoder on MC_Maze_Small, the grid
``strategy`` {hard, soft, correlation} x ``alpha`` {0.3, 0.7} x ``tau`` {1, 2} (12 candidates),
the 5 trial-wise folds of the MC_Maze_Small scripts, scored by co-bps (refit) and Vel-R2 (a
measure of the engines' overhead and agreement, so the models are small and the scores are not
meant as results); the
teacher of every fit comes from a fresh on-disk teacher cache (``teacher_cache=<folder>``) per
engine. Engines:

* ``serial``: ``n_jobs=1``;
* ``loky``: ``n_jobs=2`` (joblib's default process backend);
* ``dask``: ``n_jobs=-1`` under ``joblib.parallel_config(backend="dask")`` with a
  ``distributed.LocalCluster`` of 2 single-threaded worker processes on loopback (the same code
  runs on a real cluster: only the ``Client`` changes, see README "Scaling out"), its workers
  started without the nanny's ``MALLOC_TRIM_THRESHOLD_``; and ``dask (default environment)``,
  the same with Dask's default (65536), which slows PyTorch's small CPU allocations.

Every process computes with one thread. Reported per engine: wall time, the largest difference
of any ``cv_results_`` test score from the serial run's (0 when the engines agree), the
candidate picked, and the teacher fits counted (each fit of the teacher class appends a line to
a log): one per fold plus one for the refit on all trials when the shared cache works, since no
grid parameter shapes the teacher. With ``--gpu`` and a CUDA device, one NDT teacher
fit at the paper's size on synthetic MC_Maze-sized data is also timed on the GPU and on this
machine's CPU (skipped without CUDA).

Run ``python benchmarks/scaleout.py`` (writes ``benchmarks/results/scaleout.{csv,md}``);
``--quick`` (2 candidates, 2 folds, 2 epochs) checks the script.
"""

from __future__ import annotations

import os

# one thread per process, as in every worker, so that every engine computes the same sums
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import joblib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402

from common import FIT_LOG, RESULTS, CountedTeacher, write_results  # noqa: E402
from sklearn_blend import BlendEstimator, BlendTeacher, scoring  # noqa: E402
from sklearn_blend.datasets import load_mc_maze_small  # noqa: E402
from sklearn_blend.evaluation import split_arrays  # noqa: E402

N_HELDOUT = 35
GRID = {"model__strategy": ["hard", "soft", "correlation"], "model__alpha": [0.3, 0.7],
        "model__tau": [1.0, 2.0]}
SMALL = dict(base="ndt", hidden_size=32, n_layers=1, n_heads=2, ffn_size=64, max_epochs=10)
N_FOLDS = 5


def search(n_jobs, cache, small, grid, n_folds):
    model = BlendEstimator(teacher=CountedTeacher(n_heldout=N_HELDOUT, random_state=0, **small),
                           n_heldout=N_HELDOUT, teacher_cache=cache, random_state=0, **small)
    pipeline = Pipeline([("model", model), ("decoder", scoring.nlb_velocity_decoder())])
    return GridSearchCV(pipeline, grid, cv=KFold(n_folds, shuffle=True, random_state=0),
                        scoring={"co_bps": scoring.co_bps_scorer,
                                 "vel_r2": scoring.vel_r2_scorer},
                        refit="co_bps", n_jobs=n_jobs, error_score="raise")


def run_engine(engine, X, b, small, grid, n_folds, workdir):
    log = Path(workdir) / f"{engine}_fits.log"
    os.environ[FIT_LOG] = str(log)
    cache = Path(workdir) / f"{engine}_cache"
    start, startup = time.perf_counter(), 0.0
    if engine.startswith("dask"):
        import dask
        from distributed import Client, LocalCluster

        # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536 ("dask (default
        # environment)" keeps it), which slows PyTorch's many small CPU allocations
        trim = None if engine == "dask" else 65536
        dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": trim})
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=None) as cluster, \
                Client(cluster), joblib.parallel_config(backend="dask"):
            startup = time.perf_counter() - start
            fitted = search(-1, str(cache), small, grid, n_folds).fit(X, b)
    else:
        fitted = search(1 if engine == "serial" else 2, str(cache), small, grid,
                        n_folds).fit(X, b)
    seconds = time.perf_counter() - start
    fits = len(log.read_text().splitlines()) if log.exists() else 0
    return fitted, seconds, startup, fits


def gpu_speedup(quick):
    """Seconds of one paper-size NDT teacher fit on CUDA and on the CPU (None without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return None
    from sklearn_blend.datasets import make_synthetic

    X, b = make_synthetic("complex", n_trials=300 if quick else 2869, n_time=140,
                          n_neurons=182, random_state=0)
    paper = dict(base="ndt", n_layers=4, n_heads=2, ffn_size=128, dropout=0.1, batch_size=64,
                 max_epochs=2 if quick else 5, early_stopping=False, n_heldout=45,
                 random_state=0)
    rows = []
    for device in ("cuda", "cpu"):
        start = time.perf_counter()
        BlendTeacher(device=device, **paper).fit(X, b)
        rows.append(dict(engine=f"paper-size NDT teacher fit ({device})",
                         seconds=time.perf_counter() - start))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engines", nargs="+",
                        default=["serial", "loky", "dask", "dask (default environment)"])
    parser.add_argument("--gpu", action="store_true", help="also time one fit on CUDA vs CPU")
    parser.add_argument("--quick", action="store_true", help="2 candidates, 2 folds, 2 epochs")
    parser.add_argument("--out", default=str(RESULTS / "scaleout"))
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", module="sklearn")
    X, b, _ = split_arrays(load_mc_maze_small())
    small = dict(SMALL, max_epochs=2) if args.quick else SMALL
    grid = {"model__strategy": ["hard"], "model__alpha": [0.3, 0.7]} if args.quick else GRID
    n_folds = 2 if args.quick else N_FOLDS
    rows, reference = [], None
    with tempfile.TemporaryDirectory() as workdir:
        for engine in args.engines:
            fitted, seconds, startup, fits = run_engine(engine, X, b, small, grid, n_folds,
                                                        workdir)
            scores = np.column_stack([fitted.cv_results_[f"split{k}_test_{m}"]
                                      for k in range(n_folds) for m in ("co_bps", "vel_r2")])
            reference = scores if reference is None else reference
            rows.append(dict(engine=engine, seconds=seconds, startup_seconds=startup,
                             teacher_fits=fits,
                             max_score_difference=float(np.abs(scores - reference).max()),
                             best=str(fitted.best_params_),
                             best_co_bps=fitted.best_score_))
    rows += gpu_speedup(args.quick) or [] if args.gpu else []
    results = pd.DataFrame(rows)
    n_candidates = int(np.prod([len(v) for v in grid.values()]))
    lines = ["| engine | wall time (s) | of which starting the cluster (s) | teacher fits | "
             "largest score difference from serial | best candidate (co-bps) |",
             "|---|---|---|---|---|---|"]
    for row in results.itertuples():
        if isinstance(getattr(row, "best", None), str):
            lines.append(f"| {row.engine} | {row.seconds:.0f} | {row.startup_seconds:.0f} | "
                         f"{row.teacher_fits:.0f} | "
                         f"{row.max_score_difference:.2g} | {row.best} ({row.best_co_bps:.3f}) |")
        else:
            lines.append(f"| {row.engine} | {row.seconds:.1f} | – | – | – | – |")
    header = (f"GridSearchCV on MC_Maze_Small: {n_candidates} candidates x {n_folds} folds = "
              f"{n_candidates * n_folds} fits of a small BlendEstimator ({small}) per engine, "
              f"one on-disk teacher cache per engine; a {os.cpu_count()}-core machine"
              f"{' (quick)' if args.quick else ''}; command `python benchmarks/scaleout.py"
              f"{' --quick' if args.quick else ''}`.")
    write_results(args.out + ("_quick" if args.quick else ""), header, "\n".join(lines),
                  results)


if __name__ == "__main__":
    main()
