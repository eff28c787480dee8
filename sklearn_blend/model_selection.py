"""Nested, equal-budget comparison of methods: every one tuned the same way on training data.

A distilled student is only worth its gain over the best spikes-only model a user could have
trained, so the baseline must be tuned as hard as the student. :func:`nested_compare` runs the
protocol for any set of scikit-learn estimators (``BlendEstimator`` pipelines, the smoothing
baseline, user models):

* the outer folds split the trials into training and test trials, the same folds for every
  method and seed;
* inside each outer fold, every method's hyper-parameters are chosen by
  :class:`~sklearn.model_selection.GridSearchCV` over inner folds of the *outer training
  trials only*, the same inner folds for every method; each grid must hold the same number of
  settings (the same budget), unless ``equal_budget=False``;
* the selected setting is refit on all outer training trials and scored on the outer test
  trials, which no selection step saw.

With ``teacher_cache=True`` (the default of ``BlendEstimator``), students of one inner fold
share one teacher when their teacher's settings are fixed (``teacher=BlendTeacher(...)``), so
the teacher is fit once per inner fold, not once per setting.

:func:`paired_differences` then compares two methods over the (fold, seed) pairs they share.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np
from joblib import Parallel, delayed
from scipy import stats
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, ParameterGrid, check_cv
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import _is_arraylike, _num_samples

__all__ = ["nested_compare", "paired_differences", "check_equal_budget", "grid_size"]


def grid_size(param_grid):
    """Number of settings in ``param_grid`` (a dict of lists or a list of such dicts).

    Examples
    --------
    >>> from sklearn_blend.model_selection import grid_size
    >>> grid_size({"alpha": [0.3, 0.5, 0.7], "tau": [1.0, 2.0]})
    6
    >>> grid_size([{"strategy": ["hard"], "alpha": [0.3, 0.7]}, {"strategy": [None]}])
    3
    """
    return len(ParameterGrid(param_grid))


def check_equal_budget(param_grids):
    """The common number of settings of ``{method: param_grid}``; ``ValueError`` if unequal.

    Examples
    --------
    >>> check_equal_budget({"plain": {"lr": [1e-3, 3e-3], "dropout": [0.1, 0.3]},
    ...                     "student": {"alpha": [0.3, 0.7], "dropout": [0.1, 0.3]}})
    4
    """
    if not isinstance(param_grids, Mapping) or not param_grids:
        raise TypeError("param_grids must be a non-empty dict {method name: param_grid}.")
    sizes = {name: grid_size(grid) for name, grid in param_grids.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(
            f"unequal tuning budgets: {sizes} settings per method. Give every method a grid "
            "of the same size (a baseline tuned less than the method it is compared with "
            "makes the comparison unfair), or pass equal_budget=False."
        )
    return next(iter(sizes.values()))


def _seeded(estimator, seed):
    """``estimator`` with every ``random_state`` parameter (nested ones too) set to ``seed``."""
    names = [name for name in estimator.get_params(deep=True)
             if name == "random_state" or name.endswith("__random_state")]
    return clone(estimator).set_params(**dict.fromkeys(names, seed))


def _index(value, indices, n_samples):
    """Rows ``indices`` of a per-sample fit parameter (array, DataFrame or list of
    ``n_samples``); other values pass through."""
    if _is_arraylike(value) and _num_samples(value) == n_samples:
        return _safe_indexing(value, indices)
    return value


def _rows(value, indices):
    return None if value is None else _safe_indexing(value, indices)


def _check_searches(searches):
    if not isinstance(searches, Mapping) or not searches:
        raise TypeError(
            "searches must be a non-empty dict {method name: (estimator, param_grid)}."
        )
    checked = {}
    for name, entry in searches.items():
        if not (isinstance(entry, tuple) and len(entry) == 2):
            raise TypeError(
                f"searches[{name!r}] must be a pair (estimator, param_grid), got "
                f"{type(entry).__name__}."
            )
        estimator, grid = entry
        if not hasattr(estimator, "fit") or not hasattr(estimator, "get_params"):
            raise TypeError(f"searches[{name!r}][0] must be a scikit-learn estimator.")
        grid_size(grid)  # raises on a malformed grid
        checked[name] = (estimator, grid)
    return checked


def _run_fold(searches, X, y, train, test, seed, inner_cv, scoring, refit, params,
              return_estimator, error_score):
    rows = []
    n_samples = _num_samples(X)
    X_train, y_train = _rows(X, train), _rows(y, train)
    X_test, y_test = _rows(X, test), _rows(y, test)
    inner = KFold(inner_cv, shuffle=True, random_state=seed) if isinstance(
        inner_cv, numbers.Integral) else check_cv(inner_cv)
    # the inner folds, drawn once: the same for every method of this (fold, seed)
    inner_splits = list(inner.split(X_train, y_train))
    for name, (estimator, grid) in searches.items():
        fit_params = {key: _index(value, train, n_samples)
                      for key, value in (params or {}).get(name, {}).items()}
        search = GridSearchCV(_seeded(estimator, seed), grid, cv=inner_splits,
                              scoring=scoring, refit=refit, error_score=error_score)
        search.fit(X_train, y_train, **fit_params)
        metric = refit if isinstance(refit, str) else "score"
        row = {
            "method": name,
            "seed": seed,
            "params": search.best_params_,
            f"inner_{metric}": float(search.best_score_),
        }
        scorers = scoring if isinstance(scoring, Mapping) else {"score": scoring}
        for key, scorer in scorers.items():
            row[f"test_{key}"] = float(scorer(search.best_estimator_, X_test, y_test))
        if return_estimator:
            row["estimator"] = search
        rows.append(row)
    return rows


def nested_compare(searches, X, y=None, *, scoring, refit=None, outer_cv=5, inner_cv=3,
                   seeds=(0,), params=None, equal_budget=True, n_jobs=None,
                   return_estimator=False, error_score=np.nan):
    """Compare methods by nested cross-validation with the same tuning budget for each.

    Parameters
    ----------
    searches : dict of str to (estimator, param_grid)
        The methods: an unfitted estimator (or ``Pipeline``) and the grid it is tuned over,
        in :class:`~sklearn.model_selection.GridSearchCV` form.
    X : array-like of shape (n_trials, ...)
        Samples (trials) on the first axis.
    y : array-like of shape (n_trials, ...), optional
        Targets (for BLEND: the behavior, which the teacher and a final decoder read).
    scoring : callable or dict of str to callable
        Scorers ``scorer(estimator, X, y)`` (higher is better), e.g.
        :func:`sklearn_blend.scoring.co_bps_scorer` and
        :func:`~sklearn_blend.scoring.vel_r2_scorer`. Every one is reported on the inner
        folds (``GridSearchCV``'s ``cv_results_``) and on the outer test trials.
    refit : str, optional
        With several scorers, the one that selects the setting (required then; ignored with
        a single scorer, which selects).
    outer_cv : int or cross-validation splitter, default=5
        Outer folds; an int gives ``KFold(outer_cv, shuffle=True, random_state=0)``, the same
        folds for every seed.
    inner_cv : int or cross-validation splitter, default=3
        Inner folds over each outer training set; an int gives ``KFold(inner_cv,
        shuffle=True, random_state=seed)``. The folds are drawn once per (outer fold, seed)
        and given to every method, so all methods are selected on the same inner folds.
    seeds : sequence of int, default=(0,)
        Every ``random_state`` of each estimator (nested ones included) is set to the seed.
    params : dict of str to dict, optional
        Fit parameters per method (``{"blend": {"blend__spikes_forward": forward}}``);
        arrays with one row per sample are indexed with the training trials.
    equal_budget : bool, default=True
        Require grids of equal size (:func:`check_equal_budget`).
    n_jobs : int, optional
        Parallel (outer fold, seed) tasks (joblib); all methods of one task run in one
        process, so students of a task share its cached teachers.
    return_estimator : bool, default=False
        Keep each fitted ``GridSearchCV`` (``best_params_``, ``cv_results_``, the refit
        ``best_estimator_``) in the rows.
    error_score : float or "raise", default=np.nan
        As in ``GridSearchCV``.

    Returns
    -------
    rows : list of dict
        One per (method, outer fold, seed): ``method``, ``fold``, ``seed``, ``params`` (the
        selected setting), ``inner_<refit>`` (its mean inner score), ``test_<scorer>`` for
        every scorer, and ``estimator`` with ``return_estimator``. ``pandas.DataFrame(rows)``
        makes a table.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from sklearn.metrics import get_scorer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3)); y = X @ [1.0, 2.0, 0.0] + rng.normal(size=40)
    >>> rows = nested_compare({"ridge": (Ridge(), {"alpha": [0.1, 10.0]}),
    ...                        "lasso_like": (Ridge(fit_intercept=False),
    ...                                       {"alpha": [1.0, 100.0]})},
    ...                       X, y, scoring=get_scorer("r2"), outer_cv=2, inner_cv=2)
    >>> sorted({row["method"] for row in rows}), len(rows)
    (['lasso_like', 'ridge'], 4)
    """
    searches = _check_searches(searches)
    if equal_budget:
        check_equal_budget({name: grid for name, (_, grid) in searches.items()})
    if isinstance(scoring, Mapping):
        if refit not in scoring:
            raise ValueError(
                f"refit={refit!r} must name one of the scorers {sorted(scoring)} that selects "
                "each method's setting."
            )
    elif not callable(scoring):
        raise TypeError("scoring must be a scorer callable or a dict of them.")
    else:
        refit = True
    seeds = [seeds] if isinstance(seeds, numbers.Integral) else list(seeds)
    if not seeds:
        raise ValueError("seeds must hold at least one seed.")
    if params is not None:
        unknown = sorted(set(params) - set(searches))
        if unknown:
            raise ValueError(f"params names methods {unknown} that are not in searches.")
    outer = (KFold(outer_cv, shuffle=True, random_state=0)
             if isinstance(outer_cv, numbers.Integral) else check_cv(outer_cv))
    splits = list(outer.split(X, y))
    tasks = [(fold, seed, train, test) for seed in seeds
             for fold, (train, test) in enumerate(splits)]
    outputs = Parallel(n_jobs=n_jobs)(
        delayed(_run_fold)(searches, X, y, train, test, seed, inner_cv, scoring, refit,
                           params, return_estimator, error_score)
        for fold, seed, train, test in tasks
    )
    rows = []
    for (fold, _, _, _), fold_rows in zip(tasks, outputs):
        rows += [dict(row, fold=fold) for row in fold_rows]
    return rows


def paired_differences(rows, method, baseline, metric):
    """Paired comparison of ``method`` with ``baseline`` over their shared (fold, seed) pairs.

    Parameters
    ----------
    rows : list of dict or pandas.DataFrame
        Rows with ``method``, ``fold``, ``seed`` and ``metric`` (e.g. from
        :func:`nested_compare`, whose test scores are ``test_<scorer>``).
    method, baseline : str
    metric : str

    Returns
    -------
    dict
        ``mean`` and ``sd`` of the differences, ``n`` pairs, ``wins`` (pairs where ``method``
        is higher), the two-sided paired t-test and Wilcoxon signed-rank p-values
        (``p_ttest``, ``p_wilcoxon``). Pairs of one seed share training trials across folds'
        complements and pairs of one fold share them across seeds, so the pairs are not
        independent and the p-values are optimistic; the sd over pairs and the wins say how
        consistent the difference is.

    Examples
    --------
    >>> rows = [{"method": m, "fold": f, "seed": 0, "score": s}
    ...         for f, (a, b) in enumerate([(0.5, 0.4), (0.6, 0.5), (0.55, 0.5)])
    ...         for m, s in (("student", a), ("plain", b))]
    >>> result = paired_differences(rows, "student", "plain", "score")
    >>> round(result["mean"], 3), result["wins"], result["n"]
    (0.083, 3, 3)
    """
    if hasattr(rows, "to_dict"):
        rows = rows.to_dict("records")
    values = {}
    for row in rows:
        if row["method"] in (method, baseline):
            values.setdefault(row["method"], {})[(row["fold"], row["seed"])] = row[metric]
    for name in (method, baseline):
        if name not in values:
            raise ValueError(f"no rows of method {name!r} with {metric!r}.")
    pairs = sorted(set(values[method]) & set(values[baseline]))
    diff = np.array([values[method][p] - values[baseline][p] for p in pairs], dtype=float)
    diff = diff[np.isfinite(diff)]
    if len(diff) == 0:
        raise ValueError(f"{method!r} and {baseline!r} share no (fold, seed) pair with a "
                         f"finite {metric!r}.")
    result = {"mean": float(diff.mean()), "sd": float(diff.std(ddof=1)) if len(diff) > 1
              else float("nan"), "n": int(len(diff)), "wins": int((diff > 0).sum()),
              "p_ttest": float("nan"), "p_wilcoxon": float("nan")}
    if len(diff) > 1 and np.any(diff != diff[0]):
        result["p_ttest"] = float(stats.ttest_1samp(diff, 0.0).pvalue)
    if np.any(diff != 0):
        result["p_wilcoxon"] = float(stats.wilcoxon(diff).pvalue)
    return result
