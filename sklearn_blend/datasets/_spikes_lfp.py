"""Simulated simultaneous spikes, LFP and hand velocity of a reaching task.

No reachable dataset records multichannel spikes, LFP and behavior on the same trials, so this
simulator makes one, to benchmark cross-modal distillation (a spike teacher, an LFP student).
Its recipe, in full. Notation: bins of ``dt = bin_size_ms / 1000`` s, bin ``i`` covering
``[i dt, (i + 1) dt)``; LFP samples at ``fs = lfp_rate`` Hz, ``q = fs dt`` per bin; ``T = n_time
dt`` the trial duration. *AR(1) of time constant tau*: ``x_i = a x_{i-1} + sqrt(1 - a^2) e_i``,
``a = exp(-dt / tau)``, ``x_0 = e_0``, ``e_i ~ N(0, 1)`` (stationary, unit variance). A *spatial
profile* over ``C`` channels (a linear probe) is a ``N(0, 1)`` vector smoothed by a Gaussian of
s.d. ``max(1, C / 8)`` channels and scaled to unit root mean square. All draws come from one
NumPy ``Generator`` seeded from ``random_state``, in this order: the task, then each session.

Task (drawn once; every session records it)
    Three rotational planes ``k = 1, 2, 3`` of frequency ``f_k`` ~ U(0.8, 1.2), U(1.4, 2.0),
    U(2.2, 3.0) Hz and damping time constant ``tau_k ~ U(0.2, 0.35)`` s, input matrices
    ``B_k`` (2 x 2, entries ``N(0, 1)``) and a velocity readout ``W`` (2 x 6, ``N(0, 1/6)``).
    ``B_k`` is rescaled so that plane ``k``'s noise-free response has unit root-mean-square
    norm, and ``W`` so that the noise-free velocity has unit root-mean-square speed, both over
    the eight reach directions with onset 0.1 s, for 1 s at 1 ms steps.

Trials (per session, its own)
    Condition ``c ~ U{0, ..., 7}``; direction ``theta = 2 pi c / 8 + N(0, 0.15^2)``; gain
    ``g = exp(N(0, 0.15^2))``; movement onset ``o ~ U(0.15, 0.35) T``.

    * Rotational latents, 2-D per plane, zero before the input:
      ``x_k(i) = D_k x_k(i-1) + u(i) g B_k [cos theta, sin theta]``, with ``D_k =
      exp(-dt / tau_k) R(2 pi f_k dt)`` (``R`` a rotation) and ``u(i)`` the mass in bin ``i``
      of a Gaussian input pulse of unit area, mean ``o + 0.1`` s and s.d. 0.05 s.
    * Condition-independent latent: ``ci(t) = a s exp(1 - s)``, ``s = max(t - o, 0) / 0.15 s``,
      ``a = exp(N(0, 0.1^2))`` (the large untuned response at movement onset).
    * Latents ``z = [x_1, x_2, x_3, ci]`` (7 columns) plus 0.3 times an AR(1) of time constant
      50 ms in each column (smooth trial-to-trial variability, which behavior inherits).
    * Behavior: hand velocity ``v = W z[:6]`` (2-D, arbitrary units, speed of order 1).

Spikes (per session: its own neurons)
    Neuron ``j``: baseline ``r_j`` log-uniform on [2, 30] Hz, loadings ``L_j ~ N(0, 0.7^2 / 7)``
    on the 7 latents. Rate ``lambda_j = 200 tanh(r_j exp(L_j . z) / 200)`` Hz (saturating at
    200 Hz); counts ``~ Poisson(lambda_j dt)`` per bin.

LFP (per session: its own channels, its own mixing)
    * Drive at the bin rate, channel ``m``: ``1.0 a_m ci + 0.5 b_m p + 0.25 sum_k c_km z_k``
      (``k = 1..6``), with ``p`` the session's population rate (sum of ``lambda_j``) z-scored
      over the session, and ``a``, ``b``, ``c_k`` spatial profiles (the six ``c_k``
      orthonormalised when there are at least six channels). The direction-tuned part is weak
      next to the condition-independent potential and the population rate.
    * The drive is linearly interpolated to ``fs`` and low-passed by a causal 4th-order
      Butterworth filter at ``min(4, 0.4 fs)`` Hz (like the slow "local motor potential"):
      fast detail is lost and the LFP lags the spikes.
    * Noise, scaled by ``lfp_noise``, the sum of

      - pink (1/f power, no DC) noise of s.d. 0.5, half of its variance shared (two pink
        sources, each with a spatial profile) and half private to each channel;
      - a drift of 0.25 times (a per-trial offset, a random walk over the session's trials of
        s.d. 1 at the last trial, plus a slope ``N(0, 1)`` per trial times a ramp from -0.5 to
        0.5 across the trial), half shared and half private likewise;
      - line noise ``A_m sin(2 pi line_freq t + phi + delta_m) + 0.3 A_m sin(4 pi line_freq t +
        2 phi + psi)`` (the harmonic only below ``fs / 2``), ``A_m ~ U(0.5, 1.5)``,
        ``phi ~ U(0, 2 pi)`` per trial, ``delta_m ~ N(0, 0.1^2)``, ``psi ~ U(0, 2 pi)`` per
        session.
    * ``LFP = 40 uV (signal + lfp_noise noise)``, float32.

Harder LFP (each off by default; the defaults give the recipe above, draw for draw)
    * ``lfp_lag_ms`` (``L``): the spike-related drive (``ci``, ``p``, ``z_k``) reaches the LFP
      ``L`` ms late (shifted by ``round(L / bin_size_ms)`` bins, the first bin repeated).
    * ``tuned_weight``: the weight of the direction-tuned latents in the drive (0.25 above).
    * ``private_latents`` (``P``): ``P`` latents of the LFP alone, which the spikes do not
      carry: AR(1) series of time constant 0.2 s, weight 1.0 each through their own spatial
      profiles, added to the drive before the low-pass (competing with what the spikes share).
    * ``coupling="band_power"``: the tuned latents reach the LFP only through the power of a
      20 Hz (beta) rhythm, not linearly: after the low-pass, ``0.5 sum_m e(t) sin(2 pi 20 t +
      phi_m)`` with envelope ``e = exp(0.5 (u . z_{1..6}) / |u|)`` (``u ~ N(0, 1)``, one per
      session) normalised to unit mean over the session, through a spatial profile. The
      linear ``0.25 sum_k c_km z_k`` term is then left out.
    * ``array_drift`` (``d``): every session records the same probe; every spatial profile of
      a later session is ``sqrt(1 - d^2) P_1 + d P_s`` at unit root mean square, with ``P_1``
      the profile drawn at the same place in the first session and ``P_s`` the session's own
      draw (drawn as without the option, so the other draws are unchanged).
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import butter, sosfilt, sosfilt_zi
from scipy.special import ndtr
from sklearn.utils import Bunch, check_random_state

from ..data.validation import check_number

N_PLANES = 3
N_LATENTS = 2 * N_PLANES + 1  # three rotational planes and the condition-independent latent
N_CONDITIONS = 8
FREQUENCY_RANGES = ((0.8, 1.2), (1.4, 2.0), (2.2, 3.0))  # Hz, one range per plane
DAMPING_RANGE = (0.2, 0.35)  # s
PULSE_DELAY, PULSE_SD = 0.1, 0.05  # s, input pulse after onset
CI_TAU = 0.15  # s
ONSET_RANGE = (0.15, 0.35)  # fraction of the trial
ANGLE_SD, GAIN_SD, CI_GAIN_SD = 0.15, 0.15, 0.1
LATENT_NOISE_SD, LATENT_NOISE_TAU = 0.3, 0.05  # -, s
RATE_RANGE = (2.0, 30.0)  # Hz
LOADING_SD = 0.7
MAX_RATE = 200.0  # Hz
LFP_WEIGHTS = {"ci": 1.0, "population": 0.5, "tuned": 0.25}
LFP_CUTOFF = 4.0  # Hz
PINK_SD, DRIFT_SD, SHARED = 0.5, 0.25, 0.5
HARMONIC = 0.3
LFP_SCALE_UV = 40.0
PRIVATE_TAU, PRIVATE_WEIGHT = 0.2, 1.0  # s, -: the LFP's own latents (private_latents)
BETA_HZ, BETA_WEIGHT = 20.0, 0.5  # the rhythm of coupling="band_power"


# --- task and latents -------------------------------------------------------------------------

def _rotations(task, dt, onset, theta, gain, n_time):
    """Rotational latents ``(n, n_time, 6)`` of trials with the given onsets (s) and directions."""
    n = len(theta)
    edges = np.arange(n_time + 1) * dt
    centre = onset + PULSE_DELAY
    cdf = ndtr((edges[None, :] - centre[:, None]) / PULSE_SD)
    pulse = np.diff(cdf, axis=1)  # mass of the unit-area pulse in each bin
    direction = np.stack([np.cos(theta), np.sin(theta)], -1) * gain[:, None]
    drive = np.einsum("kij,nj->nki", task["inputs"], direction)  # (n, planes, 2)
    decay = np.exp(-dt / task["tau"])
    angle = 2 * np.pi * task["frequency"] * dt
    cos, sin = np.cos(angle) * decay, np.sin(angle) * decay
    state = np.zeros((n, N_PLANES, 2))
    out = np.empty((n, n_time, N_PLANES, 2))
    for i in range(n_time):
        state = np.stack([cos * state[..., 0] - sin * state[..., 1],
                          sin * state[..., 0] + cos * state[..., 1]], -1)
        state = state + pulse[:, i, None, None] * drive
        out[:, i] = state
    return out.reshape(n, n_time, 2 * N_PLANES)


def _task(rng):
    """The shared dynamics and velocity readout, normalised on the noise-free reference."""
    task = {
        "frequency": np.array([rng.uniform(low, high) for low, high in FREQUENCY_RANGES]),
        "tau": rng.uniform(*DAMPING_RANGE, N_PLANES),
        "inputs": rng.standard_normal((N_PLANES, 2, 2)),
    }
    readout = rng.standard_normal((2, 2 * N_PLANES)) / np.sqrt(2 * N_PLANES)
    theta = 2 * np.pi * np.arange(N_CONDITIONS) / N_CONDITIONS
    reference = dict(dt=0.001, onset=np.full(N_CONDITIONS, 0.1), theta=theta,
                     gain=np.ones(N_CONDITIONS), n_time=1000)
    response = _rotations(task, **reference).reshape(-1, N_PLANES, 2)
    task["inputs"] /= np.sqrt((response**2).sum(-1).mean(0))[:, None, None]
    velocity = _rotations(task, **reference) @ readout.T
    task["readout"] = readout / np.sqrt((velocity**2).sum(-1).mean())
    return task


def _ar1(rng, shape, tau, dt):
    """Stationary unit-variance AR(1) series along axis 1."""
    a = np.exp(-dt / tau)
    innovation = rng.standard_normal(shape)
    out = np.empty(shape)
    out[:, 0] = innovation[:, 0]
    scale = np.sqrt(1 - a * a)
    for i in range(1, shape[1]):
        out[:, i] = a * out[:, i - 1] + scale * innovation[:, i]
    return out


def _trials(rng, task, n_trials, n_time, dt):
    """Conditions, latents ``(n_trials, n_time, 7)`` and velocity ``(n_trials, n_time, 2)``."""
    condition = rng.integers(N_CONDITIONS, size=n_trials)
    theta = 2 * np.pi * condition / N_CONDITIONS + ANGLE_SD * rng.standard_normal(n_trials)
    gain = np.exp(GAIN_SD * rng.standard_normal(n_trials))
    onset = rng.uniform(*ONSET_RANGE, n_trials) * n_time * dt
    rotational = _rotations(task, dt, onset, theta, gain, n_time)
    s = np.clip((np.arange(n_time) * dt - onset[:, None]) / CI_TAU, 0, None)
    ci = np.exp(CI_GAIN_SD * rng.standard_normal((n_trials, 1))) * s * np.exp(1 - s)
    latents = np.concatenate([rotational, ci[..., None]], -1)
    latents += LATENT_NOISE_SD * _ar1(rng, latents.shape, LATENT_NOISE_TAU, dt)
    behavior = latents[..., : 2 * N_PLANES] @ task["readout"].T
    return condition, latents, behavior


# --- one session's recordings -----------------------------------------------------------------

def _unit_rms(x):
    rms = np.sqrt((x**2).mean(1, keepdims=True))
    return x / np.where(rms > 0, rms, 1.0)


def _profiles(rng, n_profiles, n_channels, *, orthogonal=False, array=None):
    """Smooth spatial profiles ``(n_profiles, n_channels)`` of unit root mean square.

    ``array`` (an :class:`_Array`, or ``None`` for a session of its own channels) makes them
    the profiles of a probe that earlier sessions recorded with, drifted; the draws are the
    same either way."""
    raw = rng.standard_normal((n_profiles, n_channels))
    smooth = gaussian_filter1d(raw, max(1.0, n_channels / 8), axis=1, mode="nearest")
    if orthogonal and n_profiles <= n_channels:
        smooth = np.linalg.qr(smooth.T)[0].T
    smooth = _unit_rms(smooth)
    return smooth if array is None else array.place(smooth)


class _Array:
    """One probe recorded in every session (``array_drift``): the first session's spatial
    profiles, in the order they are drawn, and each later session's as
    ``sqrt(1 - d^2) first + d own`` (``d`` the drift), at unit root mean square."""

    def __init__(self, drift):
        self.drift, self.first, self.position = drift, [], 0

    def next_session(self):
        self.position = 0

    def place(self, own):
        if self.position == len(self.first):  # the first session: the probe's profiles
            self.first.append(own)
        first = self.first[self.position]
        self.position += 1
        return _unit_rms(np.sqrt(1 - self.drift**2) * first + self.drift * own)


def _pink(rng, n_trials, n_samples, n_series):
    """1/f-power noise ``(n_trials, n_samples, n_series)``, no DC, unit variance overall."""
    frequency = np.fft.rfftfreq(n_samples)
    amplitude = np.zeros_like(frequency)
    amplitude[1:] = frequency[1:] ** -0.5
    shape = (n_trials, len(frequency), n_series)
    spectrum = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) \
        * amplitude[None, :, None]
    noise = np.fft.irfft(spectrum, n=n_samples, axis=1)
    sd = noise.std()
    return noise / sd if sd > 0 else noise


def _shared_and_private(rng, shared_sources, private, n_channels, array=None):
    """``SHARED`` of the variance from sources with spatial profiles, the rest private."""
    profiles = _profiles(rng, shared_sources.shape[-1], n_channels, array=array)
    shared = shared_sources @ profiles / np.sqrt(shared_sources.shape[-1])
    return np.sqrt(SHARED) * shared + np.sqrt(1 - SHARED) * private


def _upsample(x, q):
    """Linear interpolation along axis 1 from bin centres to the ``q`` samples of each bin."""
    if q == 1:
        return x
    n_time = x.shape[1]
    position = (np.arange(n_time * q) + 0.5) / q - 0.5
    left = np.clip(np.floor(position).astype(int), 0, n_time - 1)
    right = np.minimum(left + 1, n_time - 1)
    weight = np.clip(position - left, 0, 1)[None, :, None]
    return x[:, left] * (1 - weight) + x[:, right] * weight


def _spikes(rng, latents, n_neurons, dt):
    rate = np.exp(rng.uniform(*np.log(RATE_RANGE), n_neurons))
    loadings = rng.normal(0.0, LOADING_SD / np.sqrt(N_LATENTS), (N_LATENTS, n_neurons))
    hz = MAX_RATE * np.tanh(rate * np.exp(latents @ loadings) / MAX_RATE)
    return rng.poisson(hz * dt).astype(np.float32), hz


def _lfp(rng, latents, hz, n_channels, q, lfp_rate, line_freq, lfp_noise, harder, array):
    n_trials, n_time, _ = latents.shape
    population = hz.sum(-1)
    population = (population - population.mean()) / max(population.std(), 1e-12)
    tuned_weight = harder["tuned_weight"]
    if harder["coupling"] == "band_power":
        tuned_weight = 0.0
    drive = (
        LFP_WEIGHTS["ci"] * latents[..., -1:] * _profiles(rng, 1, n_channels, array=array)
        + LFP_WEIGHTS["population"] * population[..., None]
        * _profiles(rng, 1, n_channels, array=array)
        + tuned_weight * latents[..., :-1]
        @ _profiles(rng, 2 * N_PLANES, n_channels, orthogonal=True, array=array)
    )
    lag = harder["lag_bins"]
    drive = _delayed(drive, lag)  # the spike-related drive arrives late
    if harder["private_latents"]:  # what the LFP carries and the spikes do not
        private = _ar1(rng, (n_trials, n_time, harder["private_latents"]), PRIVATE_TAU,
                       harder["dt"])
        drive = drive + PRIVATE_WEIGHT * private @ _profiles(
            rng, harder["private_latents"], n_channels, array=array)
    signal = _upsample(drive, q)
    sos = butter(4, min(LFP_CUTOFF, 0.4 * lfp_rate), fs=lfp_rate, output="sos")
    initial = sosfilt_zi(sos)[:, None, :, None] * signal[None, :, :1, :]  # start at rest
    signal = sosfilt(sos, signal, axis=1, zi=initial)[0]
    if harder["coupling"] == "band_power":
        signal = signal + _band_power_coupling(rng, latents, n_channels, q, lfp_rate, lag,
                                               array)

    n_samples = n_time * q
    time = np.arange(n_samples) / lfp_rate
    pink = _shared_and_private(rng, _pink(rng, n_trials, n_samples, 2),
                               _pink(rng, n_trials, n_samples, n_channels), n_channels, array)
    walk = np.cumsum(rng.standard_normal((n_trials, 2 + n_channels)), axis=0) / np.sqrt(n_trials)
    slope = rng.standard_normal((n_trials, 2 + n_channels))
    ramp = (time / max(time[-1], 1.0 / lfp_rate) - 0.5)[None, :, None]
    drift = (_shared_and_private(rng, walk[:, :2], walk[:, 2:], n_channels, array)[:, None, :]
             + _shared_and_private(rng, slope[:, :2], slope[:, 2:], n_channels,
                                   array)[:, None, :]
             * ramp)
    noise = PINK_SD * pink + DRIFT_SD * drift
    if line_freq is not None:
        amplitude = rng.uniform(0.5, 1.5, n_channels)
        phase = rng.uniform(0, 2 * np.pi, (n_trials, 1, 1))
        offset = 0.1 * rng.standard_normal(n_channels)
        harmonic_phase = rng.uniform(0, 2 * np.pi)
        cycles = 2 * np.pi * line_freq * time[None, :, None]
        line = amplitude * np.sin(cycles + phase + offset)
        if 2 * line_freq < lfp_rate / 2:
            line += HARMONIC * amplitude * np.sin(2 * cycles + 2 * phase + harmonic_phase)
        noise += line
    return (LFP_SCALE_UV * (signal + lfp_noise * noise)).astype(np.float32)


def _delayed(x, lag):
    """``x`` shifted ``lag`` steps later along axis 1, its first step repeated in front."""
    if not lag:
        return x
    n_time = x.shape[1]
    return np.concatenate([np.repeat(x[:, :1], min(lag, n_time), axis=1),
                           x[:, : max(n_time - lag, 0)]], axis=1)


def _band_power_coupling(rng, latents, n_channels, q, lfp_rate, lag, array):
    """The tuned latents as the power of a beta rhythm: ``(n_trials, n_samples, n_channels)``."""
    n_trials, n_time, _ = latents.shape
    direction = rng.standard_normal(2 * N_PLANES)
    projection = _delayed(latents[..., :-1] @ direction / np.linalg.norm(direction), lag)
    envelope = np.exp(0.5 * projection)
    envelope = _upsample((envelope / envelope.mean())[..., None], q)  # (n, samples, 1)
    time = np.arange(n_time * q) / lfp_rate
    phase = rng.uniform(0, 2 * np.pi, (n_trials, 1, 1))
    frequency = min(BETA_HZ, 0.4 * lfp_rate)
    rhythm = np.sin(2 * np.pi * frequency * time[None, :, None] + phase)
    return BETA_WEIGHT * envelope * rhythm * _profiles(rng, 1, n_channels, array=array)


# --- public -----------------------------------------------------------------------------------

def _per_session(value, name, n_sessions):
    values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value] * n_sessions
    if len(values) != n_sessions:
        raise ValueError(f"{name} lists {len(values)} values for n_sessions={n_sessions}; "
                         "give one per session (or one int for all).")
    for v in values:
        check_number(v, name, low=1, integer=True)
    return [int(v) for v in values]


def _describe(n_trials, n_time, n_neurons, n_channels, bin_size_ms, lfp_rate, q, line_freq,
              lfp_noise, harder):
    line = "none" if line_freq is None else f"{line_freq:g} Hz"
    settings = (f"lag {harder['lag_bins']} bins, tuned weight {harder['tuned_weight']:g}, "
                f"private latents {harder['private_latents']}, coupling {harder['coupling']}, "
                + ("each session its own channels" if harder["array_drift"] is None
                   else f"one probe, drift {harder['array_drift']:g}"))
    return (
        "Simulated spikes, LFP and hand velocity (sklearn_blend.datasets.make_spikes_lfp)\n"
        f"{len(n_trials)} session(s); trials {n_trials}; {n_time} bins of {bin_size_ms:g} ms; "
        f"neurons {n_neurons}; LFP channels {n_channels} at {lfp_rate:g} Hz ({q} samples "
        f"per bin); line noise {line}; lfp_noise {lfp_noise:g}; {settings}.\n"
        "Fields: lfp (uV), spikes (counts per bin), behavior (2-D hand velocity), session, "
        "condition (reach direction 0-7), latents, lfp_rate, bin_size_ms.\n\nRecipe:\n"
        + (__doc__ or "")
    )


def make_spikes_lfp(n_sessions=1, *, n_trials=200, n_time=100, n_neurons=60, n_channels=32,
                    bin_size_ms=10, lfp_rate=1000, line_freq=60.0, lfp_noise=1.0,
                    lfp_lag_ms=0.0, tuned_weight=0.25, private_latents=0, coupling="linear",
                    array_drift=None, random_state=None):
    """Simulate simultaneously recorded spikes, LFP and hand velocity of a reaching task.

    Every session records the same task (shared latent dynamics and velocity readout) with its
    own trials, its own neurons (own rates and loadings) and its own LFP channels (own spatial
    mixing). Spikes are Poisson counts of log-linear functions of the latents; the LFP is a
    spatial mixing of a slow, low-passed version of the population activity, dominated by
    condition-independent components, plus pink noise, drift and line noise, so it carries
    less information about behavior than the spikes (see Notes). The recipe in full is the
    module docstring of ``sklearn_blend.datasets._spikes_lfp``, also in ``DESCR``.

    Parameters
    ----------
    n_sessions : int, default=1
        Sessions of the task.
    n_trials : int or list of int, default=200
        Trials per session (one int for all sessions, or one per session).
    n_time : int, default=100
        Bins per trial (1 s at the default bin size).
    n_neurons : int or list of int, default=60
        Neurons per session (one int for all sessions, or one per session).
    n_channels : int or list of int, default=32
        LFP channels per session (one int for all sessions, or one per session).
    bin_size_ms : float, default=10
        Bin width of spikes, behavior and latents, in ms.
    lfp_rate : float, default=1000
        LFP sampling rate in Hz, a multiple of the bin rate ``1000 / bin_size_ms``: each trial
        has ``n_time * bin_size_ms * lfp_rate / 1000`` LFP samples.
    line_freq : float or None, default=60.0
        Line-noise frequency in Hz (50 in Europe), below ``lfp_rate / 2``; its harmonic is
        added where it too is below ``lfp_rate / 2``. ``None``: no line noise.
    lfp_noise : float, default=1.0
        Scale of the LFP's pink noise, drift and line noise (0: the noise-free LFP). Larger
        values widen the gap between the behavior information of spikes and of LFP.
    lfp_lag_ms : float, default=0.0
        Delay (ms, rounded to bins) of the spike-related drive of the LFP, on top of the
        low-pass filter's own lag.
    tuned_weight : float, default=0.25
        Weight of the direction-tuned latents in the LFP drive (smaller: a weaker spike-LFP
        relation about behavior).
    private_latents : int, default=0
        Latents of the LFP alone (slow AR(1) series, weight 1.0 each), which the spikes do not
        carry: a spike teacher cannot explain that part of the LFP.
    coupling : {"linear", "band_power"}, default="linear"
        How the tuned latents reach the LFP: linearly (low-passed with the rest), or only
        through the power envelope of a 20 Hz rhythm (a non-linear coupling that a linear read
        of the raw LFP cannot see, and band power can).
    array_drift : float in [0, 1] or None, default=None
        ``None``: every session records its own channels (own spatial mixing). A number: every
        session records the same probe (give every session the same ``n_channels``), as
        chronic recordings over days do, each later session's spatial profiles being
        ``sqrt(1 - d^2)`` times the first session's plus ``d`` times its own (0: the same
        channels every day). A model fitted on one session can then read another as if it
        were that one (zero-shot).
    random_state : int, RandomState instance or None, default=None
        Seeds everything.

    Returns
    -------
    data : sklearn.utils.Bunch
        lfp : ndarray of shape (n_trials, n_samples, n_channels), float32, or SessionTrials
            LFP in microvolts, ``n_samples = n_time * bin_size_ms * lfp_rate / 1000``. With
            several sessions a :class:`~sklearn_blend.SessionTrials` of modality
            :data:`~sklearn_blend.modalities.LFP` (keys ``0 .. n_sessions - 1``).
        spikes : ndarray of shape (n_trials, n_time, n_neurons), float32, or SessionTrials
            Spike counts per bin; with several sessions a
            :class:`~sklearn_blend.SessionTrials` (keys ``0 .. n_sessions - 1``).
        behavior : ndarray of shape (n_total_trials, n_time, 2), float32
            Hand velocity (arbitrary units), every session's trials in the order of ``lfp``
            and ``spikes``.
        session : ndarray of int (n_total_trials,)
            Session of each trial.
        condition : ndarray of int (n_total_trials,)
            Reach direction of each trial, ``0 .. 7`` (``2 pi c / 8``).
        latents : ndarray of shape (n_total_trials, n_time, 7), float32
            The true latents at the bin rate: three rotational planes (columns 0-5, which the
            velocity reads) and the condition-independent latent (column 6).
        lfp_rate : float
            LFP samples per second (``lfp_rate``).
        bin_size_ms : float
            Bin width of spikes and behavior (``bin_size_ms``).
        DESCR : str
            Sizes, fields and the recipe.

    Notes
    -----
    **Behavior information of spikes and LFP at the defaults** (``python
    benchmarks/spikes_lfp_information.py``; scikit-learn 1.9.1, SciPy 1.17.1, NumPy 2.4.6). For ``random_state`` 0, 1 and 2, velocity was decoded
    per bin by ``RidgeCV(alphas=np.logspace(-3, 3, 13))`` fitted on the (bin, trial) rows of
    trials 0-149 and scored (``r2_score``, uniform average over the two velocity components)
    on trials 150-199, from (a) spikes smoothed by a Gaussian of s.d. 25 ms
    (``scipy.ndimage.gaussian_filter1d`` along time, ``sigma=2.5`` bins) and (b) LFP low-passed
    at 50 Hz (4th-order Butterworth, ``scipy.signal.sosfiltfilt``) and resampled to the bin
    rate (``scipy.signal.resample_poly(lfp, 1, 10, axis=1)``); both z-scored per feature with
    the training trials' mean and s.d. Test R2 (``python benchmarks/spikes_lfp_information.py``
    writes this table):

    ==============  ======  ======  ======  =====
    random_state    0       1       2       mean
    ==============  ======  ======  ======  =====
    spikes          0.691   0.703   0.682   0.692
    LFP             0.350   0.345   0.208   0.301
    LFP, noiseless  0.584   0.454   0.388   0.476
    ==============  ======  ======  ======  =====

    The last row is ``lfp_noise=0``: the slow, mostly untuned LFP signal alone already carries
    less than the spikes; the noise removes more. ``RidgeCV()`` on the seven true latents, same
    split, scores R2 = 1.000 for each seed (velocity is their linear readout), so the spikes'
    shortfall is their Poisson noise.

    Examples
    --------
    >>> from sklearn_blend.datasets import make_spikes_lfp
    >>> data = make_spikes_lfp(n_trials=20, n_time=50, n_neurons=30, n_channels=8,
    ...                        random_state=0)
    >>> data.spikes.shape, data.lfp.shape, data.behavior.shape, data.latents.shape
    ((20, 50, 30), (20, 500, 8), (20, 50, 2), (20, 50, 7))
    >>> data = make_spikes_lfp(2, n_trials=[10, 15], n_time=50, n_neurons=[20, 30],
    ...                        n_channels=[8, 16], random_state=0)
    >>> len(data.spikes), data.spikes.n_neurons, data.lfp.n_neurons, data.behavior.shape
    (25, (20, 30), (8, 16), (25, 50, 2))
    >>> data.lfp[[0, 24]].session.tolist(), data.session[[0, 24]].tolist()
    ([0, 1], [0, 1])
    """
    check_number(n_sessions, "n_sessions", low=1, integer=True)
    trials = _per_session(n_trials, "n_trials", n_sessions)
    neurons = _per_session(n_neurons, "n_neurons", n_sessions)
    channels = _per_session(n_channels, "n_channels", n_sessions)
    check_number(n_time, "n_time", low=1, integer=True)
    check_number(bin_size_ms, "bin_size_ms", low=0, low_open=True)
    check_number(lfp_rate, "lfp_rate", low=0, low_open=True)
    bin_rate = 1000.0 / bin_size_ms
    ratio = lfp_rate / bin_rate
    q = int(round(ratio))
    if q < 1 or abs(ratio - q) > 1e-9 * max(ratio, 1.0):
        raise ValueError(
            f"lfp_rate must be a multiple of the bin rate 1000 / bin_size_ms = {bin_rate:g} Hz "
            f"(a whole number of LFP samples per bin); got lfp_rate={lfp_rate!r}, "
            f"{ratio:g} samples per bin."
        )
    if line_freq is not None:
        check_number(line_freq, "line_freq")
        if not 0 < line_freq < lfp_rate / 2:
            raise ValueError(
                f"line_freq must be in (0, lfp_rate / 2) = (0, {lfp_rate / 2:g}) Hz, below the "
                f"LFP's Nyquist frequency (or None for no line noise); got {line_freq!r}."
            )
    check_number(lfp_noise, "lfp_noise", low=0)
    check_number(lfp_lag_ms, "lfp_lag_ms", low=0)
    check_number(tuned_weight, "tuned_weight", low=0)
    check_number(private_latents, "private_latents", low=0, integer=True)
    if coupling not in ("linear", "band_power"):
        raise ValueError(f"coupling must be 'linear' or 'band_power', got {coupling!r}.")
    array = None
    if array_drift is not None:
        check_number(array_drift, "array_drift", low=0, high=1)
        if len(set(channels)) > 1:
            raise ValueError(f"array_drift={array_drift!r} records one probe in every session, "
                             f"so every session needs the same n_channels; got {channels}.")
        array = _Array(float(array_drift))
    if not (random_state is None
            or isinstance(random_state, (numbers.Integral, np.random.RandomState))):
        raise TypeError(f"random_state must be None, an int or a numpy RandomState, got "
                        f"{type(random_state).__name__}.")
    # the fast NumPy Generator, seeded from random_state
    rng = np.random.default_rng(check_random_state(random_state).randint(2**31, size=4))

    dt = bin_size_ms / 1000.0
    harder = dict(tuned_weight=float(tuned_weight), coupling=coupling, dt=dt,
                  lag_bins=int(round(lfp_lag_ms / bin_size_ms)),
                  private_latents=int(private_latents),
                  array_drift=None if array is None else array.drift)
    task = _task(rng)
    sessions = []
    for n, n_neu, n_chan in zip(trials, neurons, channels):
        condition, latents, behavior = _trials(rng, task, n, n_time, dt)
        spikes, hz = _spikes(rng, latents, n_neu, dt)
        if array is not None:
            array.next_session()
        lfp = _lfp(rng, latents, hz, n_chan, q, lfp_rate, line_freq, lfp_noise, harder, array)
        sessions.append((spikes, lfp, behavior, condition, latents))
    spikes, lfp, behavior, condition, latents = (list(field) for field in zip(*sessions))
    if n_sessions == 1:
        spikes, lfp = spikes[0], lfp[0]
    else:
        from ..data.trials import SessionTrials
        from ..modalities import LFP

        keys = list(range(n_sessions))
        spikes = SessionTrials(spikes, keys=keys)
        lfp = SessionTrials(lfp, keys=keys, modality=LFP)
    return Bunch(
        lfp=lfp,
        spikes=spikes,
        behavior=np.concatenate(behavior).astype(np.float32),
        session=np.repeat(np.arange(n_sessions), trials),
        condition=np.concatenate(condition),
        latents=np.concatenate(latents).astype(np.float32),
        lfp_rate=float(lfp_rate),
        bin_size_ms=float(bin_size_ms),
        DESCR=_describe(trials, n_time, neurons, channels, bin_size_ms, lfp_rate, q, line_freq,
                        lfp_noise, harder),
    )
