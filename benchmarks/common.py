"""Helpers shared by the benchmark scripts (``from common import ...``).

The scripts run as ``python benchmarks/NAME.py``, which puts this folder on ``sys.path``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: where every benchmark writes its CSV and markdown tables
RESULTS = Path(__file__).resolve().parent / "results"
#: table labels of the plain (no-behavior) model of each base
BASE_LABELS = {"ndt": "NDT", "lfads": "LFADS"}
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


def write_results(out, header, text, results):
    """Print ``header`` and the table ``text``; write ``out.csv`` (the rows) and ``out.md``."""
    print(header, "", text, sep="\n")
    results.to_csv(f"{out}.csv", index=False)
    with open(f"{out}.md", "w") as handle:
        handle.write(f"{header}\n\n{text}\n")
