"""Simulated two-photon sessions of V1 neurons with transcriptomic labels (the cell-type task).

The BLEND paper's second benchmark predicts each neuron's transcriptomic class (excitatory
``"EC"`` or inhibitory ``"IN"``) and inhibitory subclass (Lamp5, Pvalb, Vip, Sncg, Sst) from its
activity, on the mouse V1 recordings of Bugeon et al. (2022). Their finding, which this
simulator builds in, is that inhibitory subclasses differ mostly in how their activity follows
brain state (running and arousal): cells at one end of the main transcriptomic axis (Vip, Lamp5,
Sncg) fire more during locomotion and arousal, cells at the other end (Pvalb, Sst) are weakly or
mixed-sign modulated and fire relatively more in quiet, synchronised states. Here Pvalb and Sst
cells also follow the shared population fluctuations more closely, and excitatory cells are
moderately and heterogeneously modulated by running and, beyond running, hardly by pupil. The
directions follow Bugeon et al.; every number below is our assumption, chosen so that the
classes overlap: a neuron's label is only partly visible in its activity alone, and best seen
through its relation to behavior.

Notation: frames ``t = 0 .. T - 1`` at ``fr`` Hz. An *AR(1) of time constant tau* is
``x_t = a x_{t-1} + sqrt(1 - a^2) e_t``, ``a = exp(-1 / (tau fr))``, ``e_t ~ N(0, 1)``,
``x_0 = e_0`` (stationary, unit variance). ``smooth_tau`` is the causal exponential filter
``y_t = a y_{t-1} + (1 - a) x_t``, ``y_0 = x_0``; ``z(.)`` z-scores over the session's frames.
``h`` is ``heterogeneity`` (default 1) and ``m`` is ``modulation`` (default 1). All draws come
from one NumPy ``Generator`` seeded from ``random_state``.

Mice and sessions
    Sessions are grouped into mice, ``sessions_per_mouse`` consecutive sessions each. Mouse
    ``j`` has a running propensity ``q_j = exp(N(0, 0.3^2))``.

Behavior (per session; columns ``running_speed``, ``pupil_size``)
    * Run state ``u_t`` in {0, 1}: alternating rest and run bouts with exponential durations of
      mean ``20 s / q_j`` (rest) and ``8 s`` (run), at least one frame each; the session starts
      in a run bout with probability 0.3.
    * Running speed (cm/s): each run bout ``k`` has a speed ``s_k ~ LogNormal(log 15, 0.4^2)``;
      ``v_t = smooth_0.5s(u_t s_k max(0, 1 + 0.3 x_t)) + |N(0, 0.2^2)|`` with ``x`` an AR(1) of
      time constant 1 s (non-negative: bouts of running, and near-zero jitter at rest).
    * Pupil size (relative area, median about 1): arousal ``A_t = smooth_4s(u_{t - L})``, the
      run state delayed by ``L = round(1.5 fr)`` frames (``u_0`` before the start), and
      ``pupil_t = exp(0.25 (0.75 z(A)_t + 0.66 y_t))`` with ``y`` an AR(1) of time constant
      10 s: slow, following running with a lag, plus fluctuations of its own.

Cell types (per session)
    ``ttype`` proportions: ``EC`` ``1 - f_IN`` and each subclass ``f_IN p_c``, with
    ``f_IN = inhibitory_fraction`` (default 0.18) and ``p`` = ``subclass_proportions`` (default
    Pvalb 0.30, Sst 0.25, Lamp5 0.20, Vip 0.17, Sncg 0.08). Excitatory cells are about 80-85%
    of cortical neurons; the subclass shares are our assumption, of the order of the layer 1-3
    inhibitory composition of mouse V1 (Tasic et al., 2018), with Sncg the rarest. Each session
    holds ``n_neurons p`` cells of each type, rounded by largest remainder (ties at random), at
    least one EC and one IN, in random order.

Activity (per session; neuron ``i`` of type ``c``, class constants in the table below)
    * Population latents ``f_t``: 3 independent AR(1) of time constant 3 s. Loadings
      ``w_ik = g_c (delta_k1 + 0.5 h z_ik)``, ``z_ik ~ N(0, 1)``: every cell follows the first
      (shared-gain) factor with its class's coupling ``g_c``, plus its own mix of all three.
    * State modulation: ``b_i^run ~ N(m mu_c^run, (h sd_c^run)^2)``,
      ``b_i^pup ~ N(m mu_c^pup, (h sd_c^pup)^2)``.
    * Private input ``eta_i``: AR(1) of time constant ``tau_i = tau_c exp(0.3 h N(0, 1))``.
    * Drive ``d_i(t) = w_i . f_t + b_i^run z(v)_t + b_i^pup z(log pupil)_t + 0.6 eta_i(t)``.
    * Events ``n_i(t) ~ Poisson(lambda_i(t))``, ``lambda_i(t) = (r_i / fr) exp(d_i(t)) /
      mean_t exp(d_i(t))``: mean rate ``r_i = r_c exp(0.5 h N(0, 1))`` Hz.
    * Calcium ``C_i(t) = gamma_i C_i(t-1) + n_i(t)``, ``gamma_i = exp(-1 / (kappa_i fr))``,
      ``kappa_i = kappa_c exp(0.2 h N(0, 1))`` s, starting at its mean ``r_i / (fr (1 -
      gamma_i))``; fluorescence ``F_i(t) = C_i(t) + noise N(0, 1)`` (``noise`` in units of one
      event's peak, default 0.5); activity ``z(F_i)``, float32.

    ======  =======  =========  =======  =========  ====  =====  =======  ======
    type    mu^run   sd^run     mu^pup   sd^pup     g     tau    kappa    r
    ======  =======  =========  =======  =========  ====  =====  =======  ======
    EC      0.15     0.35       -0.10    0.25       0.50  1.0 s  1.0 s    1.8 Hz
    Pvalb   0.10     0.25       0.05     0.20       1.00  0.5 s  0.7 s    5 Hz
    Sst     0.00     0.40       0.15     0.30       0.80  1.5 s  1.0 s    3 Hz
    Vip     0.55     0.30       0.25     0.25       0.40  1.0 s  1.0 s    2.5 Hz
    Lamp5   0.40     0.30       0.40     0.25       0.40  2.0 s  1.2 s    2 Hz
    Sncg    0.35     0.35       0.55     0.30       0.30  2.0 s  1.2 s    2 Hz
    ======  =======  =========  =======  =========  ====  =====  =======  ======

References
    Bugeon, S., Duffield, J., Dipoppa, M., et al. (2022). A transcriptomic axis predicts state
    modulation of cortical interneurons. Nature 607, 330-338. doi:10.1038/s41586-022-04915-7

    Tasic, B., Yao, Z., Graybuck, L. T., et al. (2018). Shared and distinct transcriptomic cell
    types across neocortical areas. Nature 563, 72-78.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np
from scipy.signal import lfilter
from sklearn.utils import Bunch, check_random_state

from ..data.validation import check_number
from ..data.recordings import Recordings

SUBCLASSES = ("Lamp5", "Pvalb", "Vip", "Sncg", "Sst")
BEHAVIOR_NAMES = ["running_speed", "pupil_size"]
DEFAULT_SUBCLASS_PROPORTIONS = {"Pvalb": 0.30, "Sst": 0.25, "Lamp5": 0.20, "Vip": 0.17,
                                "Sncg": 0.08}
N_FACTORS = 3


class _Class(NamedTuple):
    run: float  # mean running coefficient
    run_sd: float
    pupil: float  # mean pupil coefficient
    pupil_sd: float
    coupling: float  # loading on the shared population factor
    tau: float  # private-input time constant, s
    kappa: float  # calcium decay time constant, s
    rate: float  # mean event rate, Hz


#: the class table of the module docstring
CLASSES = {
    "EC": _Class(0.15, 0.35, -0.10, 0.25, 0.50, 1.0, 1.0, 1.8),
    "Pvalb": _Class(0.10, 0.25, 0.05, 0.20, 1.00, 0.5, 0.7, 5.0),
    "Sst": _Class(0.00, 0.40, 0.15, 0.30, 0.80, 1.5, 1.0, 3.0),
    "Vip": _Class(0.55, 0.30, 0.25, 0.25, 0.40, 1.0, 1.0, 2.5),
    "Lamp5": _Class(0.40, 0.30, 0.40, 0.25, 0.40, 2.0, 1.2, 2.0),
    "Sncg": _Class(0.35, 0.35, 0.55, 0.30, 0.30, 2.0, 1.2, 2.0),
}
TTYPES = tuple(CLASSES)


# --- time series ------------------------------------------------------------------------------

def _decay(tau, frame_rate):
    return np.exp(-1.0 / (np.asarray(tau, dtype=float) * frame_rate))


def _recursive(innovation, coefficient, start):
    """``x_t = c x_{t-1} + innovation_t`` along axis 0, with ``x_{-1} = start``.

    ``coefficient`` and ``start`` are scalars or one value per column.
    """
    if np.ndim(coefficient) == 0:
        initial = np.broadcast_to(coefficient * start, innovation.shape[1:])[None]
        return lfilter([1.0], [1.0, -coefficient], innovation, axis=0, zi=initial)[0]
    out = np.empty_like(innovation)
    state = start
    for t in range(len(innovation)):  # one vectorised step per frame over all columns
        state = coefficient * state + innovation[t]
        out[t] = state
    return out


def _ar1(rng, n_frames, tau, frame_rate, n_columns=None):
    """Stationary unit-variance AR(1) series, one per column (``tau`` scalar or per column)."""
    a = _decay(tau, frame_rate)
    shape = (n_frames,) if n_columns is None else (n_frames, n_columns)
    noise = rng.standard_normal(shape)
    innovation = np.sqrt(1.0 - a**2) * noise
    innovation[0] = noise[0]
    return _recursive(innovation, a, np.zeros(shape[1:]))


def _smooth(x, tau, frame_rate):
    a = float(_decay(tau, frame_rate))
    return _recursive((1.0 - a) * x, a, x[0])


def _zscore(x):
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


# --- behavior ---------------------------------------------------------------------------------

def _run_bouts(rng, n_frames, frame_rate, propensity):
    """Run state (0/1 per frame) and the index of each frame's bout."""
    means = np.array([20.0 / propensity, 8.0]) * frame_rate  # rest, run (frames)
    start = int(rng.uniform() < 0.3)
    lengths = []
    total = 0
    while total < n_frames:
        chunk = 2 * (n_frames // int(means.min() + 1) + 2)
        kinds = (start + np.arange(len(lengths), len(lengths) + chunk)) % 2
        drawn = np.maximum(1, np.round(rng.exponential(means[kinds])).astype(int))
        lengths.extend(drawn.tolist())
        total += int(drawn.sum())
    lengths = np.array(lengths)
    bout = np.repeat(np.arange(len(lengths)), lengths)[:n_frames]
    state = ((start + bout) % 2).astype(float)
    return state, bout


def _behavior(rng, n_frames, frame_rate, propensity):
    state, bout = _run_bouts(rng, n_frames, frame_rate, propensity)
    bout_speed = rng.lognormal(np.log(15.0), 0.4, bout[-1] + 1)
    wobble = np.maximum(0.0, 1.0 + 0.3 * _ar1(rng, n_frames, 1.0, frame_rate))
    speed = _smooth(state * bout_speed[bout] * wobble, 0.5, frame_rate)
    speed += np.abs(rng.normal(0.0, 0.2, n_frames))
    lag = int(np.rint(1.5 * frame_rate))
    delayed = np.concatenate([np.full(min(lag, n_frames), state[0]), state])[:n_frames]
    arousal = _zscore(_smooth(delayed, 4.0, frame_rate))
    own = _ar1(rng, n_frames, 10.0, frame_rate)
    pupil = np.exp(0.25 * (0.75 * arousal + 0.66 * own))
    return np.column_stack([speed, pupil])


# --- cell types -------------------------------------------------------------------------------

def _type_counts(rng, n_neurons, proportions):
    """Largest-remainder counts of each ttype, with at least one EC and one IN."""
    exact = n_neurons * proportions
    counts = np.floor(exact).astype(int)
    remainder = exact - counts
    order = np.lexsort((rng.uniform(size=len(exact)), -remainder))
    counts[order[: n_neurons - counts.sum()]] += 1
    if counts[0] == 0:  # no EC: take one from the largest inhibitory type
        counts[1 + np.argmax(counts[1:])] -= 1
        counts[0] = 1
    if counts[1:].sum() == 0:  # no IN: give one EC to the most frequent subclass
        counts[0] -= 1
        counts[1 + np.argmax(proportions[1:])] = 1
    return counts


def _neuron_parameters(rng, ttype, modulation, heterogeneity):
    table = np.array([CLASSES[t] for t in ttype])  # (n, 8), columns as in _Class
    n, h = len(ttype), heterogeneity
    normal = rng.standard_normal((n, 5))
    loadings = table[:, 4, None] * (
        np.eye(N_FACTORS)[0] + 0.5 * h * rng.standard_normal((n, N_FACTORS))
    )
    return Bunch(
        run=modulation * table[:, 0] + h * table[:, 1] * normal[:, 0],
        pupil=modulation * table[:, 2] + h * table[:, 3] * normal[:, 1],
        loadings=loadings,
        tau=table[:, 5] * np.exp(0.3 * h * normal[:, 2]),
        kappa=table[:, 6] * np.exp(0.2 * h * normal[:, 3]),
        rate=table[:, 7] * np.exp(0.5 * h * normal[:, 4]),
    )


def _activity(rng, behavior, params, frame_rate, noise):
    n_frames, n = len(behavior), len(params.rate)
    factors = _ar1(rng, n_frames, 3.0, frame_rate, N_FACTORS)
    state = _zscore(np.column_stack([behavior[:, 0], np.log(behavior[:, 1])]))
    private = _ar1(rng, n_frames, params.tau, frame_rate, n)
    drive = (
        factors @ params.loadings.T
        + np.outer(state[:, 0], params.run)
        + np.outer(state[:, 1], params.pupil)
        + 0.6 * private
    )
    gain = np.exp(drive - drive.max(axis=0))
    rate = params.rate / frame_rate * gain / gain.mean(axis=0)
    events = rng.poisson(rate).astype(float)
    gamma = _decay(params.kappa, frame_rate)
    calcium = _recursive(events, gamma, gamma * params.rate / frame_rate / (1.0 - gamma))
    fluorescence = calcium + noise * rng.standard_normal((n_frames, n))
    return _zscore(fluorescence).astype(np.float32)


# --- validation -------------------------------------------------------------------------------

def _check_proportions(subclass_proportions):
    if subclass_proportions is None:
        subclass_proportions = DEFAULT_SUBCLASS_PROPORTIONS
    if not isinstance(subclass_proportions, dict):
        raise TypeError(
            f"subclass_proportions must be a dict mapping each of {list(SUBCLASSES)} to a "
            f"non-negative weight, got {type(subclass_proportions).__name__}."
        )
    if set(subclass_proportions) != set(SUBCLASSES):
        raise ValueError(
            f"subclass_proportions must have exactly the keys {sorted(SUBCLASSES)}, got "
            f"{sorted(map(str, subclass_proportions))}."
        )
    for name, value in subclass_proportions.items():
        check_number(value, f"subclass_proportions[{name!r}]", low=0)
    weights = np.array([subclass_proportions[name] for name in TTYPES[1:]], dtype=float)
    if weights.sum() <= 0:
        raise ValueError("subclass_proportions must have a positive sum, got all zeros.")
    return weights / weights.sum()


def _describe(n_sessions, n_neurons, n_frames, frame_rate, proportions):
    shares = ", ".join(f"{t} {p:.3f}" for t, p in zip(TTYPES, proportions))
    return (
        "Simulated cell-type dataset (sklearn_blend.datasets.make_cell_types)\n"
        f"{n_sessions} session(s) x {n_neurons} neurons x {n_frames} frames at "
        f"{frame_rate:g} Hz; expected ttype proportions: {shares}.\n"
        "Fields: X (Recordings: z-scored activity and [running_speed, pupil_size] per "
        "session), ei, subclass, ttype, session, mouse, session_names, behavior_names, "
        "frame_rate.\n\nRecipe:\n" + (__doc__ or "")
    )


# --- public -----------------------------------------------------------------------------------

def make_cell_types(
    n_sessions=4,
    n_neurons=200,
    n_frames=2000,
    *,
    frame_rate=4.3,
    sessions_per_mouse=2,
    inhibitory_fraction=0.18,
    subclass_proportions=None,
    modulation=1.0,
    heterogeneity=1.0,
    noise=0.5,
    random_state=None,
):
    """Simulate calcium-like activity of labelled V1 cell types, modulated by running and pupil.

    A stand-in for the Bugeon et al. (2022) recordings used by the BLEND paper's cell-type
    task: several two-photon sessions of mouse V1 at about 4.3 Hz, with running speed and pupil
    size, and the transcriptomic class and subclass of every neuron. Inhibitory subclasses
    differ mainly in how they follow running and arousal (Vip, Lamp5 and Sncg positively, Pvalb
    and Sst weakly or with mixed sign), as Bugeon et al. found; within-class heterogeneity makes
    the classes overlap. The module docstring gives the recipe in full.

    Parameters
    ----------
    n_sessions : int, default=4
        Number of sessions.
    n_neurons : int, default=200
        Neurons per session (at least 2: every session holds an EC and an IN cell).
    n_frames : int, default=2000
        Frames per session (2000 frames at 4.3 Hz is about 7.8 minutes).
    frame_rate : float, default=4.3
        Imaging rate in Hz; all time constants are in seconds.
    sessions_per_mouse : int, default=2
        Consecutive sessions recorded from the same mouse (mice share a running propensity).
    inhibitory_fraction : float, default=0.18
        Expected fraction of inhibitory neurons, in (0, 1).
    subclass_proportions : dict, optional
        Relative weight of each inhibitory subclass (keys ``"Lamp5"``, ``"Pvalb"``, ``"Vip"``,
        ``"Sncg"``, ``"Sst"``; normalised to sum to 1). Default: Pvalb 0.30, Sst 0.25,
        Lamp5 0.20, Vip 0.17, Sncg 0.08 (our assumption).
    modulation : float, default=1.0
        Scales the class means of the running and pupil coefficients (0: no class-specific
        state modulation, only heterogeneous individual modulation).
    heterogeneity : float, default=1.0
        Scales every within-class spread (modulation, coupling, time constants, rates).
    noise : float, default=0.5
        Standard deviation of the additive fluorescence noise, in units of one event's peak.
    random_state : int, RandomState instance or None, default=None
        Seeds everything.

    Returns
    -------
    data : sklearn.utils.Bunch
        X : :class:`~sklearn_blend.Recordings`
            All neurons, session by session; per session, activity ``(n_frames, n_neurons)``
            z-scored float32 and behavior ``(n_frames, 2)`` (running speed in cm/s, pupil size).
        ei : ndarray of str (n_total_neurons,)
            ``"EC"`` or ``"IN"``.
        subclass : ndarray of str (n_total_neurons,)
            ``"Lamp5"``, ``"Pvalb"``, ``"Vip"``, ``"Sncg"`` or ``"Sst"``; ``""`` for EC cells.
        ttype : ndarray of str (n_total_neurons,)
            ``"EC"`` or the subclass.
        session : ndarray of int (n_total_neurons,)
            Each neuron's session.
        mouse : ndarray of str (n_total_neurons,)
            Each neuron's mouse, ``"M0"``, ``"M1"``, ...
        session_names : list of str
            ``"M0_S0"``, ``"M0_S1"``, ``"M1_S0"``, ...
        behavior_names : list of str
            ``["running_speed", "pupil_size"]``.
        frame_rate : float
            Imaging frames per second.
        DESCR : str
            The sizes, proportions and recipe.

    References
    ----------
    Bugeon, S., et al. (2022). A transcriptomic axis predicts state modulation of cortical
    interneurons. Nature 607, 330-338.

    Examples
    --------
    >>> from sklearn_blend.datasets import make_cell_types
    >>> data = make_cell_types(n_sessions=2, n_neurons=50, n_frames=300, random_state=0)
    >>> len(data.X), data.X.activity[0].shape, data.X.behavior[1].shape
    (100, (300, 50), (300, 2))
    >>> sorted(set(data.ttype.tolist())), data.session_names
    (['EC', 'Lamp5', 'Pvalb', 'Sncg', 'Sst', 'Vip'], ['M0_S0', 'M0_S1'])
    >>> int((data.ttype == "EC").sum()), int((data.ei == "IN").sum())
    (82, 18)
    """
    for name, value, low in (
        ("n_sessions", n_sessions, 1),
        ("n_neurons", n_neurons, 2),
        ("n_frames", n_frames, 2),
        ("sessions_per_mouse", sessions_per_mouse, 1),
    ):
        check_number(value, name, low=low, integer=True)
    check_number(frame_rate, "frame_rate", low=0, low_open=True)
    check_number(inhibitory_fraction, "inhibitory_fraction", low=0, high=1, low_open=True,
                 high_open=True)
    for name, value in (("modulation", modulation), ("heterogeneity", heterogeneity),
                        ("noise", noise)):
        check_number(value, name, low=0)
    subclass_weights = _check_proportions(subclass_proportions)
    if not (random_state is None or isinstance(random_state, (numbers.Integral,
                                                              np.random.RandomState))):
        raise TypeError(
            f"random_state must be None, an int or a numpy RandomState, got "
            f"{type(random_state).__name__}."
        )
    # the fast NumPy Generator (Poisson and normal draws), seeded from random_state
    rng = np.random.default_rng(check_random_state(random_state).randint(2**31, size=4))
    proportions = np.concatenate([[1.0 - inhibitory_fraction],
                                  inhibitory_fraction * subclass_weights])

    n_mice = -(-n_sessions // sessions_per_mouse)
    propensity = np.exp(rng.normal(0.0, 0.3, n_mice))
    activity, behavior, ttypes, session_names, mice = [], [], [], [], []
    for s in range(n_sessions):
        mouse = s // sessions_per_mouse
        b = _behavior(rng, n_frames, frame_rate, propensity[mouse])
        counts = _type_counts(rng, n_neurons, proportions)
        ttype = rng.permutation(np.repeat(np.array(TTYPES), counts))
        params = _neuron_parameters(rng, ttype, modulation, heterogeneity)
        activity.append(_activity(rng, b, params, frame_rate, noise))
        behavior.append(b.astype(np.float32))
        ttypes.append(ttype)
        session_names.append(f"M{mouse}_S{s % sessions_per_mouse}")
        mice.append(np.full(n_neurons, f"M{mouse}"))

    ttype = np.concatenate(ttypes).astype(str)
    is_ec = ttype == "EC"
    return Bunch(
        X=Recordings(activity, behavior),
        ei=np.where(is_ec, "EC", "IN"),
        subclass=np.where(is_ec, "", ttype),
        ttype=ttype,
        session=np.repeat(np.arange(n_sessions), n_neurons),
        mouse=np.concatenate(mice),
        session_names=session_names,
        behavior_names=list(BEHAVIOR_NAMES),
        frame_rate=float(frame_rate),
        DESCR=_describe(n_sessions, n_neurons, n_frames, frame_rate, proportions),
    )
