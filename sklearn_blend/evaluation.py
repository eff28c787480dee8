"""NLB-style evaluation of BLEND and its baselines on one train/test split of trials.

Shared by the command line (``python -m sklearn_blend fit``) and
``benchmarks/nlb_mc_maze_small.py``: fit every method on the training trials only, predict
rates of all neurons for training and test trials from their held-in spikes, and score the test
trials with NLB's metrics (co-bps on held-out neurons, fp-bps on the forward bins, Vel-R2 with
the decoder fit on the training trials' rates).
"""

from __future__ import annotations

import time

import numpy as np

from . import metrics, scoring
from .distill import STRATEGIES, strategy_names
from .estimators.trials import BlendEstimator, BlendTeacher
from .estimators.smoothing import SmoothingGLM

__all__ = [
    "METHODS", "BASELINES", "CONTROLS", "method_names", "evaluate_split", "score_rates",
    "MethodResult", "all_neurons", "split_arrays", "training_seconds", "decoded_velocity",
    "plot_velocity",
]

#: the methods that are not students: NLB's smoothing, the plain model ("ndt", whatever the
#: base) and the teacher (which sees behavior)
BASELINES = ("smoothing", "ndt", "teacher")


def method_names():
    """Every method :func:`evaluate_split` knows: the baselines, then one student per
    registered strategy that compares predictions.

    The strategies are :func:`sklearn_blend.distill.strategy_names`, read now, so strategies
    registered by the user count; latent alignment, the cross-modal strategy, is not one of
    BLEND's.

    Examples
    --------
    >>> from sklearn_blend.evaluation import BASELINES, method_names
    >>> names = method_names()
    >>> names[:3], "hard" in names, set(BASELINES) <= set(names)
    (('smoothing', 'ndt', 'teacher'), True, True)
    """
    return (*BASELINES, *(name for name in strategy_names()
                          if getattr(STRATEGIES[name], "compares", "predictions")
                          == "predictions"))


#: the methods at import time (the baselines and the built-in strategies)
METHODS = method_names()

#: leak controls (not run by default): the hard student (the default before 0.5) trained on
#: destroyed data and decoded like every method, from rates of the real spikes.
#: ``control_behavior``: each training trial gets another training trial's behavior (a
#: permutation); the spikes are real. ``control_time``: teacher and student train on spikes whose
#: bins are permuted within each (trial, neuron) (forward bins too); the behavior is real. Neither
#: may keep a distillation gain.
CONTROLS = ("control_behavior", "control_time")


def _control_data(method, X, b, forward, seed):
    """``(X, b, forward)`` of the training trials, destroyed as control ``method`` says."""
    rng = np.random.default_rng(seed)
    if method == "control_behavior":
        permutation = rng.permutation(len(b))
        while len(b) > 1 and np.any(permutation == np.arange(len(b))):
            permutation = rng.permutation(len(b))  # no trial keeps its own behavior
        return X, b[permutation], forward

    def shuffle_time(counts):
        order = np.argsort(rng.random(counts.shape), axis=1)
        return np.take_along_axis(counts, order, axis=1)

    return shuffle_time(X), b, None if forward is None else shuffle_time(forward)


def all_neurons(heldin, heldout):
    """Held-in and held-out counts side by side (held-out last), or held-in alone.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_blend.evaluation import all_neurons
    >>> heldin, heldout = np.zeros((4, 10, 6)), np.ones((4, 10, 2))
    >>> all_neurons(heldin, heldout).shape, all_neurons(heldin, heldout)[0, 0, -2:]
    ((4, 10, 8), array([1., 1.]))
    >>> all_neurons(heldin, None) is heldin
    True
    """
    if heldout is None or heldout.shape[-1] == 0:
        return heldin
    return np.concatenate([heldin, heldout], axis=-1)


def split_arrays(data):
    """``(X, b, forward)`` of a dataset Bunch: all neurons, behavior, forward bins (or None).

    Examples
    --------
    >>> from sklearn_blend.datasets import load_mc_maze_small
    >>> from sklearn_blend.evaluation import split_arrays
    >>> X, b, forward = split_arrays(load_mc_maze_small())
    >>> X.shape, b.shape, forward.shape
    ((75, 140, 142), (75, 140, 2), (75, 40, 142))
    """
    X = all_neurons(data.spikes, data.get("spikes_heldout"))
    forward = None
    if data.get("spikes_forward") is not None:
        forward = all_neurons(data.spikes_forward, data.get("spikes_heldout_forward"))
    return X, data.get("behavior"), forward


def training_seconds(net):
    """Seconds a fitted net spent training (the sum of its epochs' durations).

    Examples
    --------
    >>> from sklearn_blend import BlendEstimator
    >>> from sklearn_blend.datasets import make_synthetic
    >>> from sklearn_blend.evaluation import training_seconds
    >>> X, b = make_synthetic("simple", n_trials=16, n_time=10, n_neurons=6, random_state=0)
    >>> model = BlendEstimator(strategy=None, hidden_size=8, n_layers=1,
    ...                        max_epochs=2, early_stopping=False, random_state=0).fit(X)
    >>> seconds = training_seconds(model.student_net_)
    >>> len(model.student_net_.history), isinstance(seconds, float), seconds > 0
    (2, True, True)
    """
    return float(sum(net.history[:, "dur"]))


class MethodResult(dict):
    """Scores of one method (a dict) with its fitted model and rates as attributes.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_blend.evaluation import MethodResult
    >>> result = MethodResult(method="ndt", co_bps=0.25, fp_bps=np.nan, vel_r2=0.5)
    >>> result.train_rates = np.ones((4, 10, 8))
    >>> result["method"], result["co_bps"], result.train_rates.shape, sorted(result)
    ('ndt', 0.25, (4, 10, 8), ['co_bps', 'fp_bps', 'method', 'vel_r2'])
    """


def evaluate_split(data, train, test, methods=METHODS, params=None, seed=0,
                   smoothing_params=None, verbose=0):
    """Fit ``methods`` on the ``train`` trials of ``data`` and score them on ``test``.

    Parameters
    ----------
    data : Bunch
        As returned by the loaders: ``spikes`` (held-in), ``spikes_heldout``, ``behavior``,
        ``spikes_forward``, ``spikes_heldout_forward`` (the last four may be missing/None).
    train, test : array of int
        Trial indices.
    methods : sequence of str
        Any of :data:`METHODS` or :data:`CONTROLS`. ``teacher``, the students and the
        controls need behavior.
    params : dict, optional
        Extra :class:`BlendEstimator` parameters for every neural model.
    seed : int
        ``random_state`` of every neural model (students and baseline share it, so their
        comparison is paired; all students share one teacher).
    smoothing_params : dict, optional
        :class:`SmoothingGLM` parameters (NLB's MC_Maze_Small values by default).

    Returns
    -------
    list of MethodResult
        Per method: ``method``, ``co_bps``, ``fp_bps``, ``vel_r2`` (NaN where the data or the
        method do not allow it), ``epochs``, ``seconds`` (training time of that model alone);
        attributes ``model``, ``train_rates``, ``test_rates`` and ``forward_rates`` (the test
        trials' forward bins, all neurons; ``None`` without forward bins or for smoothing).

    Examples
    --------
    The smoothing baseline and a tiny NDT trained for one epoch on synthetic trials with 3
    held-out neurons and no forward bins (so ``fp_bps`` is NaN):

    >>> import numpy as np
    >>> from sklearn.utils import Bunch
    >>> from sklearn_blend.datasets import make_synthetic
    >>> from sklearn_blend.evaluation import evaluate_split
    >>> X, b = make_synthetic("simple", n_trials=24, n_time=20, n_neurons=12, random_state=0)
    >>> data = Bunch(spikes=X[..., :9], spikes_heldout=X[..., 9:], behavior=b, bin_size_ms=20)
    >>> train, test = np.arange(16), np.arange(16, 24)
    >>> tiny = dict(hidden_size=8, n_layers=1, max_epochs=1,
    ...             batch_size=8, early_stopping=False)
    >>> results = evaluate_split(data, train, test, methods=("smoothing", "ndt"), params=tiny)
    >>> [(r["method"], r["epochs"], r.test_rates.shape) for r in results]
    [('smoothing', 0, (8, 20, 12)), ('ndt', 1, (8, 20, 12))]
    >>> all(np.isfinite(r["co_bps"]) and np.isnan(r["fp_bps"]) for r in results)
    True
    """
    known = (*method_names(), *CONTROLS)
    unknown = sorted(set(methods) - set(known))
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {list(known)}.")
    X, b, forward = split_arrays(data)
    n_heldout = 0 if data.get("spikes_heldout") is None else data.spikes_heldout.shape[-1]
    needs_behavior = [m for m in methods if m not in ("smoothing", "ndt")]
    if needs_behavior and b is None:
        raise ValueError(
            f"methods {needs_behavior} need behavior, and this dataset has none; use "
            "'smoothing' and 'ndt' only, or load the behavior."
        )
    forward_bins = 0 if forward is None else forward.shape[1]
    settings = dict(n_heldout=n_heldout, forward_bins=forward_bins, random_state=seed,
                    verbose=verbose, **(params or {}))
    fit_params = {} if forward is None else {"spikes_forward": forward[train]}
    heldin = X[..., : X.shape[-1] - n_heldout]
    results, teacher = [], None
    # students first, so that the teacher row is the teacher they were distilled from
    for method in sorted(methods, key=lambda m: m == "teacher"):
        forward_rates = None
        if method == "smoothing":
            start = time.perf_counter()
            smoothing = {"bin_size_ms": data.get("bin_size_ms") or 5, **(smoothing_params or {})}
            model = SmoothingGLM(n_heldout=n_heldout, **smoothing).fit(X[train])
            seconds, epochs = time.perf_counter() - start, 0
            train_rates, test_rates = model.predict_rates(heldin[train]), model.predict_rates(
                heldin[test])
        elif method == "teacher":
            if teacher is None:
                teacher_params = BlendEstimator(**settings).teacher_params()
                teacher = BlendTeacher(**teacher_params).fit(X[train], b[train], **fit_params)
            model = teacher
            seconds, epochs = training_seconds(model.net_), model.n_iter_
            train_rates = model.predict_rates(heldin[train], b[train])
            test_rates = model.predict_rates(heldin[test], b[test], forward=bool(forward_bins))
        elif method in CONTROLS:
            X_fit, b_fit, forward_fit = _control_data(
                method, X[train], b[train], None if forward is None else forward[train], seed)
            model = BlendEstimator(strategy="hard", **settings)
            model.fit(X_fit, b_fit, **({} if forward_fit is None
                                       else {"spikes_forward": forward_fit}))
            seconds, epochs = training_seconds(model.student_net_), model.n_iter_
            train_rates = model.predict_rates(heldin[train])
            test_rates = model.predict_rates(heldin[test], forward=bool(forward_bins))
        else:
            strategy = None if method == "ndt" else method
            model = BlendEstimator(strategy=strategy, **settings)
            model.fit(X[train], b[train] if b is not None else None, **fit_params)
            teacher = model.teacher_ or teacher
            seconds, epochs = training_seconds(model.student_net_), model.n_iter_
            train_rates = model.predict_rates(heldin[train])
            test_rates = model.predict_rates(heldin[test], forward=bool(forward_bins))
        if method != "smoothing" and forward_bins:
            test_rates, forward_rates = test_rates[:, :-forward_bins], test_rates[:, -forward_bins:]
        result = MethodResult(method=method, **score_rates(data, train, test, train_rates,
                                                           test_rates, forward_rates),
                              epochs=epochs, seconds=seconds)
        result.model, result.train_rates, result.test_rates = model, train_rates, test_rates
        result.forward_rates = forward_rates
        results.append(result)
    return results


def score_rates(data, train, test, train_rates, test_rates, forward_rates=None):
    """NLB's scores of rates of all neurons (held-out last) predicted for the ``train`` and
    ``test`` trials of ``data``: ``{"co_bps", "fp_bps", "vel_r2"}`` on the test trials (NaN
    where the data has no held-out neurons, forward bins or behavior, or ``forward_rates``,
    the test trials' forward bins, is not given); the velocity decoder is fit on the training
    trials' rates.

    Examples
    --------
    Every neuron's mean training rate as the prediction of every bin, on synthetic trials
    with 3 held-out neurons:

    >>> import numpy as np
    >>> from sklearn.utils import Bunch
    >>> from sklearn_blend.datasets import make_synthetic
    >>> from sklearn_blend.evaluation import score_rates
    >>> X, b = make_synthetic("simple", n_trials=24, n_time=20, n_neurons=12, random_state=0)
    >>> data = Bunch(spikes=X[..., :9], spikes_heldout=X[..., 9:], behavior=b)
    >>> train, test = np.arange(16), np.arange(16, 24)
    >>> mean = X[train].mean(axis=(0, 1))
    >>> scores = score_rates(data, train, test, np.broadcast_to(mean, X[train].shape),
    ...                      np.broadcast_to(mean, X[test].shape))
    >>> {name: round(float(value), 3) for name, value in scores.items()}
    {'co_bps': -0.064, 'fp_bps': nan, 'vel_r2': -0.003}
    """
    X, b, forward = split_arrays(data)
    n_heldout = 0 if data.get("spikes_heldout") is None else data.spikes_heldout.shape[-1]
    return dict(
        co_bps=(metrics.co_bps(test_rates[..., -n_heldout:], X[test][..., -n_heldout:])
                if n_heldout else np.nan),
        fp_bps=(metrics.fp_bps(forward_rates, forward[test])
                if forward_rates is not None and forward is not None else np.nan),
        vel_r2=(metrics.vel_r2(train_rates, b[train], test_rates, b[test])
                if b is not None else np.nan),
    )


def decoded_velocity(result, behavior, train, test):
    """Velocity of the test trials decoded from a method's rates (NLB decoder on train rates).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_blend.datasets import make_synthetic
    >>> from sklearn_blend.evaluation import MethodResult, decoded_velocity
    >>> X, b = make_synthetic("simple", n_trials=24, n_time=20, n_neurons=12, random_state=0)
    >>> train, test = np.arange(16), np.arange(16, 24)
    >>> result = MethodResult(method="counts")
    >>> result.train_rates, result.test_rates = X[train], X[test]
    >>> velocity = decoded_velocity(result, b, train, test)
    >>> velocity.shape, bool(np.isfinite(velocity).all())
    ((8, 20, 2), True)
    """
    decoder = scoring.nlb_velocity_decoder().fit(result.train_rates, behavior[train])
    return decoder.predict(result.test_rates)


def plot_velocity(behavior, decoded, bin_size_ms, trials=(0, 1, 2)):
    """Figure like the BLEND paper's Fig. 3: true vs decoded velocity and hand trajectories.

    Parameters
    ----------
    behavior : ndarray (n_test, n_time, 2)
        True velocity of the test trials.
    decoded : dict of str -> ndarray (n_test, n_time, 2)
        Decoded velocity per method label.
    bin_size_ms : float
        To integrate velocity (per second) into position.
    trials : sequence of int
        Test trials whose x/y traces are drawn.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from sklearn_blend.evaluation import plot_velocity
    >>> rng = np.random.default_rng(0)
    >>> behavior = rng.normal(size=(4, 20, 2))
    >>> decoded = {"ndt": behavior + rng.normal(scale=0.1, size=behavior.shape)}
    >>> fig = plot_velocity(behavior, decoded, bin_size_ms=20)
    >>> len(fig.axes), fig.axes[2].get_title()  # x and y traces, then one path per label
    (4, 'hand trajectory: true')
    >>> plt.close(fig)
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(decoded)
    trials = [trial for trial in trials if trial < len(behavior)]
    fig = plt.figure(figsize=(4.0 * (len(labels) + 2), 6.5))
    grid = fig.add_gridspec(2, len(labels) + 2)
    t = np.arange(behavior.shape[1]) * bin_size_ms
    colors = plt.cm.tab10(np.arange(len(trials)) % 10)
    styles = ("--", ":", "-.")
    for row, axis_name in enumerate(("x", "y")):
        ax = fig.add_subplot(grid[row, 0])
        for color, trial in zip(colors, trials):
            ax.plot(t, behavior[trial, :, row], color=color, lw=2.5, alpha=0.45)
            for style, label in zip(styles, labels):
                ax.plot(t, decoded[label][trial, :, row], color=color, ls=style, lw=1.1)
        ax.set_ylabel(f"{axis_name} velocity")
        ax.set_xlabel("time in trial (ms)")
    fig.axes[0].set_title("true (thick); " + "; ".join(
        f"{label} ({style})" for style, label in zip(styles, labels)), fontsize=9)
    dt = bin_size_ms / 1000.0
    paths = {"true": behavior, **decoded}
    cmap = plt.cm.viridis(np.linspace(0, 1, len(behavior)))
    shared = None
    for column, (label, velocity) in enumerate(paths.items(), start=1):
        ax = fig.add_subplot(grid[:, column], sharex=shared, sharey=shared)
        shared = shared or ax
        for color, trajectory in zip(cmap, np.cumsum(velocity, axis=1) * dt):
            ax.plot(trajectory[:, 0], trajectory[:, 1], color=color, lw=0.9)
        ax.set_title(f"hand trajectory: {label}", fontsize=10)
        ax.set_aspect("equal", adjustable="box")
    fig.tight_layout()
    return fig
