"""Helpers shared by the benchmark scripts (``from common import ...``).

The scripts run as ``python benchmarks/NAME.py``, which puts this folder on ``sys.path``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sklearn_blend import BlendTeacher

#: where every benchmark writes its CSV and markdown tables
RESULTS = Path(__file__).resolve().parent / "results"
#: table labels of the plain (no-behavior) model of each base
BASE_LABELS = {"ndt": "NDT", "gru": "GRU", "lfads": "LFADS", "blend_lfads": "BLEND-LFADS"}
#: NLB'21 metrics of the MC_Maze_Small scripts, in table order
METRICS = ("co_bps", "fp_bps", "vel_r2")


def mean_sd(values, skipna=True):
    """``'mean +- sd'`` (sample sd) of ``values`` to 3 decimals; one value alone, no sd.

    Parameters
    ----------
    values : array-like of float
    skipna : bool, default=True
        Ignore NaN, and give ``'–'`` when every value is NaN (or there is none). With
        ``False`` NaN propagates (prints ``nan``), as the cell-identity and missing-behavior
        tables always did.

    Returns
    -------
    str
    """
    values = np.asarray(values, dtype=float)
    if skipna:
        if np.all(np.isnan(values)):
            return "–"
        mean, sd = np.nanmean, np.nanstd
    else:
        mean, sd = np.mean, np.std
    if len(values) < 2:
        return f"{mean(values):.3f}"
    return f"{mean(values):.3f} +- {sd(values, ddof=1):.3f}"


def paired_gain(diff):
    """Mean +- sd over seeds of the per-seed mean of paired differences, signed (``+`` unless
    negative or ``'–'``).

    Parameters
    ----------
    diff : Series
        Differences indexed by a MultiIndex with a ``seed`` level; NaN are dropped.

    Returns
    -------
    str
    """
    text = mean_sd(diff.dropna().groupby(level="seed").mean().to_numpy())
    return text if text == "–" or text.startswith("-") else "+" + text


def paired_text(d):
    """``'+0.012 +- 0.034 (9/15, p=0.041)'``: a :func:`sklearn_blend.model_selection.
    paired_differences` result as the tables print it (mean +- sd of the differences,
    wins/pairs, Wilcoxon p)."""
    return (f"{d['mean']:+.3f} +- {d['sd']:.3f} ({d['wins']}/{d['n']}, "
            f"p={d['p_wilcoxon']:.2g})")


def smoothing_per_seed(rows):
    """``rows`` with the smoothing baseline's rows repeated for every seed of the other
    methods: smoothing is deterministic (one row per fold), so its value of a fold pairs with
    every seed of that fold in :func:`sklearn_blend.model_selection.paired_differences`."""
    import pandas as pd

    smoothing = rows[rows.method == "smoothing"]
    seeds = sorted(set(rows[rows.method != "smoothing"].seed))
    return pd.concat([rows[rows.method != "smoothing"]]
                     + [smoothing.assign(seed=seed) for seed in seeds], ignore_index=True)


def save_figure(fig, ax, path, ylabel):
    """Label ``ax``'s y axis, add a frameless legend, write ``fig`` to ``path`` and close it."""
    import matplotlib.pyplot as plt

    ax.set_ylabel(ylabel)
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(out, header, text, results):
    """Print ``header`` and the table ``text``; write ``out.csv`` (the rows) and ``out.md``."""
    print(header, "", text, sep="\n")
    results.to_csv(f"{out}.csv", index=False)
    with open(f"{out}.md", "w") as handle:
        handle.write(f"{header}\n\n{text}\n")


def read_runs(paths, key):
    """The rows of the CSVs ``paths`` (runs of one script, say one per seed) in one frame; a
    row whose ``key`` columns are in more than one file stops the script."""
    import pandas as pd

    results = pd.concat([pd.read_csv(path) for path in paths], ignore_index=True)
    repeated = results[results.duplicated(key, keep=False)]
    if len(repeated):
        raise SystemExit(f"--merge: rows {repeated[key].drop_duplicates().values.tolist()} "
                         "are in more than one file")
    return results


def fold_arguments(parser, out):
    """Add the options of the fold-by-fold MC_Maze_Small scripts: ``--seeds``, ``--n-jobs``,
    ``--quick`` and ``--out`` (default ``benchmarks/results/<out>``)."""
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true",
                        help="1 seed, 2 folds, 5 epochs: checks the script")
    parser.add_argument("--out", default=str(RESULTS / out))
    return parser


def run_folds(run, args, *extra):
    """Call ``run(fold, seed, train, test, *extra, params, n_threads)`` for every (fold, seed)
    of MC_Maze_Small's 5 trial-wise folds (``KFold(5, shuffle=True, random_state=0)``, the
    folds of every MC_Maze_Small script) in ``args.n_jobs`` processes, and gather the rows.

    Returns
    -------
    results : DataFrame
        Every row ``run`` returned.
    n_folds, seeds : int, list of int
        What ran (``--quick``: 2 folds, 1 seed, ``params = {"max_epochs": 5}``).
    """
    import os

    import pandas as pd
    from joblib import Parallel, delayed
    from sklearn.model_selection import KFold

    params, seeds = {}, args.seeds
    splits = list(KFold(5, shuffle=True, random_state=0).split(np.arange(75)))
    if args.quick:
        params, seeds, splits = dict(max_epochs=5), seeds[:1], splits[:2]
    # the cores shared out among the processes; OMP_NUM_THREADS, when set, caps it (several
    # scripts run side by side must not each take every core: threads that share a core slow
    # down many times over)
    n_threads = max(1, (os.cpu_count() or 1) // args.n_jobs)
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        n_threads = min(n_threads, max(1, int(os.environ["OMP_NUM_THREADS"])))
    outputs = Parallel(n_jobs=args.n_jobs)(
        delayed(run)(fold, seed, train, test, *extra, params, n_threads)
        for seed in seeds for fold, (train, test) in enumerate(splits))
    return pd.DataFrame([row for rows in outputs for row in rows]), len(splits), seeds


#: environment variable naming the file :class:`CountedTeacher` appends to (parallel workers
#: inherit it)
FIT_LOG = "SCALEOUT_TEACHER_FITS"


class CountedTeacher(BlendTeacher):
    """A BlendTeacher that appends a line to the file ``$SCALEOUT_TEACHER_FITS`` per fit, so
    that a search counts its teacher fits across processes (``scaleout.py``). It lives here,
    importable by worker processes, because cached teachers are pickled by reference."""

    def fit(self, X, y=None, **kwargs):
        with open(os.environ[FIT_LOG], "a") as log:
            log.write(f"{os.getpid()}\n")
        return super().fit(X, y, **kwargs)
