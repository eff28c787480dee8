"""LFP preprocessing as scikit-learn transformers: filtering, re-referencing, resampling, power.

Both transformers take local field potentials as ``(n_segments, n_samples, n_channels)`` arrays
(trials or fixed-length segments of one recording; continuous values of any sign) sampled at
``sfreq`` Hz. A 2-D array ``(n_samples, n_channels)`` is one continuous recording (a single
segment) and comes back 2-D. Every filter here is zero-phase and runs on each segment on its
own, so each segment has edges: see :class:`LFPPreprocessor` for how they are padded and how long
a segment must be.

:class:`LFPPreprocessor` cleans the signal (common average, line-noise notch, Butterworth
band-pass, resampling, z-scoring with training statistics); :class:`BandPower` turns it into
log band power per window, an alternative representation with one bin per window.
:func:`preprocess_and_cut` preprocesses a continuous recording once and then cuts its trials or
windows, so that only the recording's two ends have filter edges.
"""

from __future__ import annotations

import numbers
from fractions import Fraction

import numpy as np
from scipy import signal
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from .data.validation import check_float32_range, check_in, check_number, reject_sparse
from .persistence import SaveMixin

__all__ = ["BandPower", "LFPPreprocessor", "preprocess_and_cut", "ringing_samples"]

LFP_SHAPE = "(n_segments, n_samples, n_channels)"

#: an impulse response "has rung out" once it stays below this fraction of its peak
RINGING_THRESHOLD = 0.01
#: longest impulse response computed (samples); a filter ringing longer pads this much
_MAX_RINGING = 2 ** 22

DEFAULT_BANDS = ((1, 4), (4, 8), (8, 13), (13, 30), (30, 50))


#: the lowest notch frequency (line noise is 50 or 60 Hz; 16.7 Hz on some railways)
MIN_NOTCH_HZ = 10.0
#: at most this many notch filters (the line frequency and its harmonics below Nyquist)
MAX_NOTCH_HARMONICS = 50


def _check_lfp(X, *, name="X"):
    """Validate LFP; return ``(array, was_2d)`` with ``array`` float64 ``(n, n_samples, n_ch)``.

    A 2-D ``(n_samples, n_channels)`` array is one recording and becomes ``(1, n_samples,
    n_channels)``. Raises ``TypeError`` for sparse input and ``ValueError`` for 1-D or >3-D
    arrays, empty axes, complex values and NaN or inf, each message naming ``name`` and the
    expected shape.
    """
    reject_sparse(X, name, "LFP")
    array = check_array(
        X, dtype=np.float64, ensure_2d=False, allow_nd=True, ensure_all_finite=False,
        input_name=name,
    )
    if array.ndim not in (2, 3):
        raise ValueError(
            f"{name} must be a 3-D array of LFP {LFP_SHAPE} or a 2-D array (n_samples, "
            f"n_channels) holding one recording; got a {array.ndim}-D array of shape "
            f"{array.shape}." + (
                f" Reshape your data: {name}.reshape(-1, 1) if it is one channel (one "
                f"recording), {name}.reshape(1, -1, 1) for one segment." if array.ndim == 1
                else ""
            )
        )
    if not array.flags.writeable:  # scipy's filters need writable input (e.g. a read-only memmap)
        array = array.copy()
    was_2d = array.ndim == 2
    if was_2d:
        array = array[None]
    if 0 in array.shape:
        raise ValueError(
            f"{name} must be a non-empty array of LFP {LFP_SHAPE}; got shape "
            f"{array.shape[1:] if was_2d else array.shape}."
        )
    check_float32_range(array, name, "LFP")
    finite = np.isfinite(array)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        where = tuple(int(i) for i in (bad[1:] if was_2d else bad))
        raise ValueError(
            f"{name} (LFP {LFP_SHAPE}) contains NaN or inf: {int((~finite).sum())} entries, the "
            f"first at index {where}. Filters spread a bad sample over its whole segment: "
            "interpolate the gaps or drop those segments first."
        )
    return array, was_2d


def _check_channels(array, estimator, name):
    if array.shape[2] != estimator.n_features_in_:
        raise ValueError(
            f"{name} has {array.shape[2]} features, but {type(estimator).__name__} is expecting "
            f"{estimator.n_features_in_} features as input (channels, the last axis of "
            f"{LFP_SHAPE})."
        )


def _check_frequency(value, name, nyquist, *, allow_none=True):
    if value is None and allow_none:
        return
    check_number(value, name, low=0, low_open=True)
    if value >= nyquist:
        raise ValueError(
            f"{name}={value!r} Hz must be below the Nyquist frequency sfreq / 2 = {nyquist:g} Hz."
        )


def ringing_samples(sos, *, threshold=RINGING_THRESHOLD):
    """Length, in samples, of the impulse response of the filter ``sos`` until it rings out.

    The impulse response is computed with :func:`scipy.signal.sosfilt`; its first sample (the
    direct term, 1 for a high-pass or a notch) is left out, and the result is the index after
    the last sample whose magnitude exceeds ``threshold`` times the peak of the rest. Zero-phase
    filtering pads each segment with this many samples. A second-order Butterworth high-pass
    at 0.05 Hz rings for 18366 samples at 1000 Hz (18.4 s), at 1 Hz for 919, at 5 Hz for
    185; a low-pass at 50 Hz for 25; an ``iirnotch`` at 60 Hz with Q=30 for 735.

    Parameters
    ----------
    sos : ndarray of shape (n_sections, 6)
        Second-order sections, as from ``scipy.signal.butter(..., output="sos")``.
    threshold : float, default=0.01

    Returns
    -------
    n : int

    Examples
    --------
    >>> from scipy import signal
    >>> from sklearn_blend.lfp import ringing_samples
    >>> ringing_samples(signal.butter(2, 5.0, "highpass", fs=1000.0, output="sos"))
    185
    """
    poles = signal.sos2zpk(sos)[1]
    radius = float(np.max(np.abs(poles))) if len(poles) else 0.0
    if radius >= 1.0:
        length = _MAX_RINGING
    elif radius <= 1e-3:
        length = 64
    else:  # the slowest pole's envelope falls to 1e-6 within this many samples
        length = int(min(_MAX_RINGING, max(64, np.ceil(np.log(1e-6) / np.log(radius)))))
    impulse = np.zeros(length)
    impulse[0] = 1.0
    tail = np.abs(signal.sosfilt(sos, impulse)[1:])
    peak = tail.max()
    if peak == 0:
        return 1
    return int(np.flatnonzero(tail > threshold * peak)[-1]) + 2


def _too_short(n_samples, padlen, label, sfreq, name, advice):
    raise ValueError(
        f"{name} has segments of {n_samples} sample(s) ({n_samples / sfreq:g} s), too short for "
        f"the {label}: zero-phase filtering pads each segment with {padlen} samples "
        f"({padlen / sfreq:g} s, the filter's impulse response until it falls below "
        f"{RINGING_THRESHOLD:g} of its peak) and a segment must be longer than its padding "
        f"(at least {padlen + 1} samples along axis 1 of {LFP_SHAPE}). {advice}"
    )


def _is_constant(var, mean, n):
    """Variances that are zero up to rounding (as scikit-learn's StandardScaler decides)."""
    eps = np.finfo(np.float64).eps
    return var <= n * eps * var + (n * mean * eps) ** 2


class LFPPreprocessor(SaveMixin, TransformerMixin, BaseEstimator):
    """Clean LFP: common average, notch, zero-phase band-pass, resampling and z-scoring.

    The steps, in this order, each optional:

    1. ``common_average``: subtract the mean over channels at every sample.
    2. ``notch``: remove the line frequency and its harmonics below Nyquist, each with
       :func:`scipy.signal.iirnotch` (Q=30) applied forward and backward with
       :func:`scipy.signal.filtfilt`.
    3. ``l_freq``, ``h_freq``: a Butterworth high-pass at ``l_freq``, then a Butterworth
       low-pass at ``h_freq``, each of order ``filter_order`` as second-order sections
       (:func:`scipy.signal.butter` with ``output="sos"``, stable also for a very low
       ``l_freq``), applied zero-phase with :func:`scipy.signal.sosfiltfilt` (so the effective
       order is doubled and the -3 dB points become about -6 dB).
    4. ``target_rate``: :func:`scipy.signal.resample_poly` by the rational factor
       ``Fraction(target_rate / sfreq).limit_denominator(1000)`` (its own anti-aliasing
       filter; ``padtype="line"``). The rate reached is ``sfreq_out_``, which differs from
       ``target_rate`` when the ratio is not a fraction with denominator <= 1000.
    5. ``zscore``: per channel, the mean and standard deviation learned in ``fit`` over every
       segment and sample of the training data after steps 1-4, applied in ``transform`` (other
       data is not re-centred on its own statistics). A constant channel gets scale 1.

    **Edges.** Filtering runs on each segment (trial) on its own, so every segment has two
    edges. Each filter pads both ends with an odd (point-symmetric) extension as long as its
    impulse response rings (:func:`ringing_samples`), and a segment must be longer than that
    padding, or ``fit``/``transform`` raise a ``ValueError`` saying how long it must be
    (``min_samples_`` after fitting). Even so, the first and last ringing-length of each segment
    are less reliable than its middle. The padding grows as ``l_freq`` falls: the default
    0.05 Hz high-pass (order 2) rings for 18.4 s, so it needs segments longer than that; it
    is meant for long recordings (2-D input, or segments of tens of seconds). Better, high-pass
    the continuous recording once and cut trials afterwards; for 1-s trials use ``l_freq`` of
    about 1 Hz or more (rings 0.92 s) or ``l_freq=None``. A 60 Hz notch rings for 0.74 s,
    a 50 Hz one for 0.88 s.

    Parameters
    ----------
    sfreq : float
        Sampling rate of the input, Hz (keyword, required).
    l_freq : float or None, default=0.05
        High-pass edge, Hz; ``None``: no high-pass.
    h_freq : float or None, default=50.0
        Low-pass edge, Hz, below the Nyquist frequency ``sfreq / 2``; ``None``: no low-pass.
    notch : float or None, default=None
        Line frequency (e.g. 50 or 60 Hz; at least :data:`MIN_NOTCH_HZ`), removed with its
        harmonics below ``sfreq / 2`` (the first :data:`MAX_NOTCH_HARMONICS` of them).
    common_average : bool, default=True
        Subtract the mean over channels at every sample; needs at least 2 channels.
    target_rate : float or None, default=100.0
        Resample to this rate, Hz; ``None`` keeps ``sfreq``.
    zscore : bool, default=True
        Standardise each channel with the training mean and standard deviation.
    filter_order : int, default=2
        Order of each Butterworth filter (before the forward-backward doubling).

    Attributes
    ----------
    n_features_in_ : int
        Channels seen in ``fit``.
    sfreq_out_ : float
        Sampling rate of the output, Hz.
    mean_ : ndarray of shape (n_channels,) or None
        Training mean per channel after steps 1-4; ``None`` when ``zscore=False``.
    scale_ : ndarray of shape (n_channels,) or None
        Training standard deviation per channel (1 for a constant channel); ``None`` when
        ``zscore=False``.
    min_samples_ : int
        Shortest segment accepted, in input samples (1 without filters).

    See Also
    --------
    BandPower : log band power per window.

    Notes
    -----
    Input is 3-D ``(n_segments, n_samples, n_channels)`` or 2-D ``(n_samples, n_channels)``, one
    recording, returned 2-D. Output is float32 ``(n_segments, n_samples_out, n_channels)`` with
    ``n_samples_out = ceil(n_samples * up / down)``; computation is in float64.

    Examples
    --------
    Two seconds of 3 channels at 1 kHz: a 10 Hz rhythm on channel 0, 60 Hz line noise shared
    by all channels, and noise.

    >>> import numpy as np
    >>> from sklearn_blend.lfp import LFPPreprocessor
    >>> rng = np.random.default_rng(0)
    >>> t = np.arange(2000) / 1000.0
    >>> X = 0.2 * rng.standard_normal((4, 2000, 3)) + np.sin(2 * np.pi * 60 * t)[:, None]
    >>> X[:, :, 0] += np.sin(2 * np.pi * 10 * t)
    >>> pre = LFPPreprocessor(sfreq=1000.0, l_freq=1.0, h_freq=40.0, notch=60.0)
    >>> Z = pre.fit_transform(X)
    >>> Z.shape, Z.dtype, pre.sfreq_out_, pre.min_samples_
    ((4, 200, 3), dtype('float32'), 100.0, 920)
    >>> np.round(Z.std(axis=(0, 1)), 3)
    array([1., 1., 1.], dtype=float32)
    """

    def __init__(self, *, sfreq, l_freq=0.05, h_freq=50.0, notch=None, common_average=True,
                 target_rate=100.0, zscore=True, filter_order=2):
        self.sfreq = sfreq
        self.l_freq = l_freq
        self.h_freq = h_freq
        self.notch = notch
        self.common_average = common_average
        self.target_rate = target_rate
        self.zscore = zscore
        self.filter_order = filter_order

    # -- fitting ---------------------------------------------------------------------------

    def _validate_params_and_build(self):
        check_number(self.sfreq, "sfreq", low=0, low_open=True)
        nyquist = self.sfreq / 2.0
        _check_frequency(self.l_freq, "l_freq", nyquist)
        _check_frequency(self.h_freq, "h_freq", nyquist)
        if self.l_freq is not None and self.h_freq is not None and self.l_freq >= self.h_freq:
            raise ValueError(
                f"l_freq={self.l_freq!r} Hz must be below h_freq={self.h_freq!r} Hz (the "
                "band-pass keeps l_freq..h_freq); set one of them to None for a high-pass or "
                "a low-pass only."
            )
        _check_frequency(self.notch, "notch", nyquist)
        if self.notch is not None and self.notch < MIN_NOTCH_HZ:
            raise ValueError(
                f"notch={self.notch!r} Hz is not a line frequency (50 or 60 Hz, 16.7 Hz on "
                f"some railways): it must be at least {MIN_NOTCH_HZ:g} Hz.")
        check_in(self.common_average, "common_average", (True, False))
        check_in(self.zscore, "zscore", (True, False))
        if self.target_rate is not None:
            check_number(self.target_rate, "target_rate", low=0, low_open=True)
        check_number(self.filter_order, "filter_order", low=1, integer=True)

        sfreq = float(self.sfreq)
        filters = []  # (label, "sos" or "ba", coefficients, padlen)
        if self.notch is not None:
            harmonic = float(self.notch)
            while harmonic < nyquist and len(filters) < MAX_NOTCH_HARMONICS:
                b, a = signal.iirnotch(harmonic, 30.0, fs=sfreq)
                filters.append((f"{harmonic:g} Hz notch", "ba", (b, a),
                                ringing_samples(signal.tf2sos(b, a))))
                harmonic += float(self.notch)
        for edge, kind in ((self.l_freq, "highpass"), (self.h_freq, "lowpass")):
            if edge is not None:
                sos = signal.butter(int(self.filter_order), float(edge), kind, fs=sfreq,
                                    output="sos")
                label = f"{float(edge):g} Hz {'high' if kind == 'highpass' else 'low'}-pass"
                filters.append((label, "sos", sos, ringing_samples(sos)))
        if self.target_rate is None:
            up = down = 1
        else:
            ratio = Fraction(float(self.target_rate) / sfreq).limit_denominator(1000)
            if ratio == 0:
                raise ValueError(
                    f"target_rate={self.target_rate!r} Hz is too far below sfreq={sfreq:g} Hz "
                    "for a resampling factor with denominator <= 1000; resample in two steps."
                )
            up, down = ratio.numerator, ratio.denominator
        self._filters = filters
        self._resample = (up, down)
        self.sfreq_out_ = sfreq * up / down
        self.min_samples_ = max([padlen + 1 for *_, padlen in filters], default=1)

    def _steps(self, array, name):
        """Steps 1-4 on validated float64 ``(n, n_samples, n_channels)``."""
        if self.common_average:
            if array.shape[2] < 2:
                raise ValueError(
                    f"common_average=True subtracts the mean over channels, which leaves nothing "
                    f"of a single channel: {name} has 1 channel (n_features = 1, the last axis of "
                    f"{LFP_SHAPE}). Pass common_average=False."
                )
            array = array - array.mean(axis=2, keepdims=True)
        n_samples = array.shape[1]
        for label, kind, coefficients, padlen in self._filters:
            if n_samples <= padlen:
                advice = (
                    "Use longer segments (filter the continuous recording before cutting it), a "
                    "higher l_freq, or l_freq=None." if "high-pass" in label else
                    "Use longer segments or leave this filter out."
                )
                _too_short(n_samples, padlen, label, self.sfreq, name, advice)
            # copies: coefficients unpickled as read-only memmaps are refused by scipy's filters
            if kind == "sos":
                array = signal.sosfiltfilt(np.array(coefficients), array, axis=1,
                                           padtype="odd", padlen=padlen)
            else:
                b, a = (np.array(c) for c in coefficients)
                array = signal.filtfilt(b, a, array, axis=1, padtype="odd", padlen=padlen)
        up, down = self._resample
        if (up, down) != (1, 1):
            array = signal.resample_poly(array, up, down, axis=1, padtype="line")
        return array

    def _fit(self, X):
        self._validate_params_and_build()
        array, was_2d = _check_lfp(X, name="X")
        self.n_features_in_ = array.shape[2]
        out = self._steps(array, "X")
        if self.zscore:
            flat = out.reshape(-1, out.shape[2])
            mean = flat.mean(axis=0)
            var = flat.var(axis=0)
            scale = np.sqrt(var)
            scale[_is_constant(var, mean, flat.shape[0])] = 1.0
            self.mean_, self.scale_ = mean, scale
        else:
            self.mean_ = self.scale_ = None
        return out, was_2d

    def fit(self, X, y=None):
        """Validate the parameters and ``X``; learn the z-scoring statistics.

        Parameters
        ----------
        X : array-like of shape (n_segments, n_samples, n_channels) or (n_samples, n_channels)
            LFP at ``sfreq`` Hz; a 2-D array is one recording.
        y : None
            Ignored.

        Returns
        -------
        self : LFPPreprocessor
        """
        self._fit(X)
        return self

    def _finish(self, out, was_2d):
        if self.zscore:
            out = (out - self.mean_) / self.scale_
        out = out.astype(np.float32)
        return out[0] if was_2d else out

    def fit_transform(self, X, y=None):
        """Fit on ``X`` and return it preprocessed (one pass; same as ``fit(X).transform(X)``).

        Parameters
        ----------
        X : array-like of shape (n_segments, n_samples, n_channels) or (n_samples, n_channels)
        y : None
            Ignored.

        Returns
        -------
        X_out : ndarray of float32, shape (n_segments, n_samples_out, n_channels)
            2-D ``(n_samples_out, n_channels)`` for 2-D input.
        """
        return self._finish(*self._fit(X))

    def transform(self, X):
        """Preprocess ``X`` with the fitted settings and training statistics.

        Parameters
        ----------
        X : array-like of shape (n_segments, n_samples, n_channels) or (n_samples, n_channels)
            LFP at ``sfreq`` Hz with the channels of ``fit``; any number of samples of at least
            ``min_samples_``.

        Returns
        -------
        X_out : ndarray of float32, shape (n_segments, n_samples_out, n_channels)
            2-D ``(n_samples_out, n_channels)`` for 2-D input.
        """
        check_is_fitted(self)
        array, was_2d = _check_lfp(X, name="X")
        _check_channels(array, self, "X")
        return self._finish(self._steps(array, "X"), was_2d)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class BandPower(SaveMixin, TransformerMixin, BaseEstimator):
    """Mean power of LFP in frequency bands, per sliding window: one output bin per window.

    Each window of ``window_s`` seconds, starting every ``step_s`` seconds (only windows that
    lie wholly inside the segment; the remainder at the end is dropped), gets a power spectral
    density from :func:`scipy.signal.welch` with a single Hann segment spanning the window
    (``nperseg`` = window length, mean removed; i.e. a Hann-tapered short-time FFT), in
    units of the input squared per Hz. A band ``(low, high)`` averages the density over the
    frequencies ``low <= f < high``, which are spaced ``1 / window_s`` Hz apart; every band
    must hold at least one. With ``log``, the output is ``log10`` of the power, floored at the
    smallest normal float32 (about 1.2e-38) so that a flat channel stays finite.

    Parameters
    ----------
    sfreq : float
        Sampling rate of the input, Hz (keyword, required).
    bands : sequence of (float, float), default=((1, 4), (4, 8), (8, 13), (13, 30), (30, 50))
        Frequency bands in Hz, ``0 <= low < high <= sfreq / 2``.
    window_s : float, default=1.0
        Window length, seconds (``round(window_s * sfreq)`` samples, at least 2).
    step_s : float or None, default=None
        Hop between window starts, seconds; ``None``: ``window_s`` (adjacent windows).
    log : bool, default=True
        Return ``log10`` power.

    Attributes
    ----------
    n_features_in_ : int
        Channels seen in ``fit``.
    n_window_ : int
        Window length in samples.
    n_step_ : int
        Hop in samples.
    freqs_ : ndarray
        Frequencies of the window's spectrum, Hz.

    Notes
    -----
    Input is 3-D ``(n_segments, n_samples, n_channels)`` or 2-D ``(n_samples, n_channels)``, one
    recording, returned 2-D. Output is float32 ``(n_segments, n_windows, n_channels * n_bands)``
    with ``n_windows = 1 + (n_samples - n_window_) // n_step_``; feature ``c * n_bands + k``
    is channel ``c`` in band ``k``. ``fit`` learns nothing from the data: it validates the
    parameters and records the channel count.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_blend.lfp import BandPower
    >>> t = np.arange(4000) / 1000.0
    >>> X = np.stack([np.sin(2 * np.pi * 20 * t), np.sin(2 * np.pi * 6 * t)], axis=-1)[None]
    >>> P = BandPower(sfreq=1000.0, window_s=0.5, log=False).fit_transform(X)
    >>> P.shape
    (1, 8, 10)
    >>> int(np.argmax(P[0, 0, :5])), int(np.argmax(P[0, 0, 5:]))  # 13-30 Hz, then 4-8 Hz
    (3, 1)
    """

    def __init__(self, *, sfreq, bands=DEFAULT_BANDS, window_s=1.0, step_s=None, log=True):
        self.sfreq = sfreq
        self.bands = bands
        self.window_s = window_s
        self.step_s = step_s
        self.log = log

    def _validate_params(self):
        check_number(self.sfreq, "sfreq", low=0, low_open=True)
        check_number(self.window_s, "window_s", low=0, low_open=True)
        if self.step_s is not None:
            check_number(self.step_s, "step_s", low=0, low_open=True)
        check_in(self.log, "log", (True, False))
        sfreq = float(self.sfreq)
        n_window = int(round(self.window_s * sfreq))
        if n_window < 2:
            raise ValueError(
                f"window_s={self.window_s!r} s is {n_window} sample(s) at sfreq={sfreq:g} Hz; a "
                "window needs at least 2 samples."
            )
        step = self.window_s if self.step_s is None else self.step_s
        n_step = int(round(step * sfreq))
        if n_step < 1:
            raise ValueError(
                f"step_s={self.step_s!r} s is less than one sample at sfreq={sfreq:g} Hz."
            )
        freqs = np.fft.rfftfreq(n_window, d=1.0 / sfreq)
        nyquist = sfreq / 2.0
        try:
            bands = [tuple(band) for band in self.bands]
            ok = len(bands) > 0 and all(
                len(band) == 2 and all(isinstance(edge, numbers.Real)
                                       and not isinstance(edge, bool) for edge in band)
                for band in bands
            )
        except TypeError:
            ok = False
        if not ok:
            raise TypeError(
                f"bands must be a non-empty sequence of (low, high) pairs of numbers in Hz, got "
                f"{self.bands!r}."
            )
        masks = []
        for low, high in bands:
            if not (0 <= low < high <= nyquist):
                raise ValueError(
                    f"band ({low!r}, {high!r}) in bands must satisfy 0 <= low < high <= the "
                    f"Nyquist frequency sfreq / 2 = {nyquist:g} Hz."
                )
            mask = (freqs >= low) & (freqs < high)
            if not mask.any():
                raise ValueError(
                    f"band ({low!r}, {high!r}) in bands holds none of the window's frequencies, "
                    f"which are {sfreq / n_window:g} Hz apart (window_s={self.window_s!r} s); use "
                    f"a longer window_s (at least {1.0 / (high - low):g} s) or a wider band."
                )
            masks.append(mask)
        self.n_window_, self.n_step_, self.freqs_ = n_window, n_step, freqs
        self._masks = np.array(masks)

    def fit(self, X, y=None):
        """Validate the parameters and ``X``; record the channel count.

        Parameters
        ----------
        X : array-like of shape (n_segments, n_samples, n_channels) or (n_samples, n_channels)
            LFP at ``sfreq`` Hz; a 2-D array is one recording.
        y : None
            Ignored.

        Returns
        -------
        self : BandPower
        """
        self._validate_params()
        array, _ = _check_lfp(X, name="X")
        self.n_features_in_ = array.shape[2]
        self._check_length(array)
        return self

    def _check_length(self, array):
        if array.shape[1] < self.n_window_:
            raise ValueError(
                f"X has segments of {array.shape[1]} sample(s), shorter than one window of "
                f"{self.n_window_} samples (window_s={self.window_s!r} s at sfreq="
                f"{float(self.sfreq):g} Hz) along axis 1 of {LFP_SHAPE}; use a shorter "
                "window_s or longer segments."
            )

    def transform(self, X):
        """Band power of each window of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_segments, n_samples, n_channels) or (n_samples, n_channels)
            LFP at ``sfreq`` Hz with the channels of ``fit``, at least one window long.

        Returns
        -------
        power : ndarray of float32, shape (n_segments, n_windows, n_channels * n_bands)
            2-D ``(n_windows, n_channels * n_bands)`` for 2-D input.
        """
        check_is_fitted(self)
        array, was_2d = _check_lfp(X, name="X")
        _check_channels(array, self, "X")
        self._check_length(array)
        frames = np.lib.stride_tricks.sliding_window_view(array, self.n_window_, axis=1)
        frames = frames[:, ::self.n_step_]  # (n, n_windows, n_channels, n_window)
        _, density = signal.welch(
            frames, fs=float(self.sfreq), window="hann", nperseg=self.n_window_, noverlap=0,
            detrend="constant", scaling="density", axis=-1,
        )
        counts = self._masks.sum(axis=1)
        power = density @ self._masks.T.astype(np.float64) / counts  # (n, n_win, n_ch, n_bands)
        if self.log:
            power = np.log10(np.maximum(power, np.finfo(np.float32).tiny))
        power = power.reshape(*power.shape[:2], -1).astype(np.float32)
        return power[0] if was_2d else power

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


def _fit_or_transform(preprocessor, X):
    """``(fitted, X preprocessed)``: a fitted preprocessor only transforms; an unfitted one is
    cloned (the argument stays unfitted) and the clone fitted on ``X``."""
    from sklearn.base import clone

    if hasattr(preprocessor, "sfreq_out_"):
        return preprocessor, preprocessor.transform(X)
    fitted = clone(preprocessor)
    return fitted, fitted.fit_transform(X)


def preprocess_and_cut(preprocessor, recording, starts, n_samples):
    """Preprocess a continuous recording, then cut windows out of the result.

    Filtering each trial on its own gives every trial two filter edges (a 1 Hz high-pass rings
    for 0.92 s, about a whole 1-s trial). Filtering the recording once and cutting afterwards
    leaves edges only at the recording's two ends.

    Parameters
    ----------
    preprocessor : LFPPreprocessor
        Fitted: it only transforms. Unfitted: a clone is fitted on the whole ``recording``
        (its z-scoring statistics then come from all of it; use ``zscore=False`` and scale with
        training trials only when that matters).
    recording : array-like of shape (n_samples_total, n_channels)
        The continuous LFP at ``preprocessor.sfreq`` Hz.
    starts : array-like of int (n_windows,)
        Index of each window's first sample in ``recording``.
    n_samples : int
        Window length in samples of ``recording``.

    Returns
    -------
    windows : ndarray of float32, shape (n_windows, n_out, n_channels)
        The preprocessed windows at ``fitted.sfreq_out_`` Hz, ``n_out = floor(n_samples *
        sfreq_out_ / sfreq)`` samples each.
    starts_out : ndarray of int (n_windows,)
        Index of each window's first sample in the preprocessed recording: the first output
        sample at or after ``starts`` (time ``starts_out / sfreq_out_`` from the recording's
        first sample).
    fitted : LFPPreprocessor

    Examples
    --------
    A 20-s recording at 1 kHz, 1-s trials every 2 s, high-passed at 0.5 Hz and resampled to
    100 Hz (the high-pass rings for 1.8 s: too long for 1-s trials filtered one by one):

    >>> import numpy as np
    >>> from sklearn_blend.lfp import LFPPreprocessor, preprocess_and_cut
    >>> recording = np.random.default_rng(0).standard_normal((20000, 4))
    >>> pre = LFPPreprocessor(sfreq=1000.0, l_freq=0.5, h_freq=40.0)
    >>> windows, starts, fitted = preprocess_and_cut(pre, recording, np.arange(10) * 2000,
    ...                                                1000)
    >>> windows.shape, starts[:3].tolist(), fitted.sfreq_out_
    ((10, 100, 4), [0, 200, 400], 100.0)
    """
    if not isinstance(preprocessor, LFPPreprocessor):
        raise TypeError(f"preprocessor must be an LFPPreprocessor, got "
                        f"{type(preprocessor).__name__}.")
    if np.ndim(recording) != 2:
        raise ValueError(f"recording must be one continuous recording (n_samples, n_channels); "
                         f"got an array of shape {np.shape(recording)}.")
    check_number(n_samples, "n_samples", low=1, integer=True)
    starts = np.asarray(starts)
    if starts.ndim != 1 or not np.issubdtype(starts.dtype, np.integer):
        raise TypeError(f"starts must be a 1-D array of sample indices (ints); got "
                        f"{starts.dtype} of shape {starts.shape}.")
    n_total = np.shape(recording)[0]
    outside = (starts < 0) | (starts + n_samples > n_total)
    if outside.any():
        raise ValueError(f"windows {np.flatnonzero(outside)[:10].tolist()} of {n_samples} samples "
                         f"from starts reach outside the recording's {n_total} samples.")
    fitted, out = _fit_or_transform(preprocessor, recording)
    ratio = fitted.sfreq_out_ / float(fitted.sfreq)
    n_out = int(np.floor(round(n_samples * ratio, 6)))
    if n_out < 1:
        raise ValueError(f"n_samples={n_samples} is less than one sample at the output rate "
                         f"{fitted.sfreq_out_:g} Hz.")
    starts_out = np.ceil(np.round(starts * ratio, 6)).astype(int)
    # ceil(s r) + floor(n r) <= ceil((s + n) r) <= len(out): every window fits
    windows = np.stack([out[i:i + n_out] for i in starts_out]) if len(starts) else \
        np.zeros((0, n_out, out.shape[1]), np.float32)
    return windows, starts_out, fitted
