"""scikit-learn estimators: :class:`BlendEstimator` (the distilled student) and its teacher.

Both are :class:`~sklearn_blend.estimators.base.ModelEstimator` s (parameters as data, the
template fit) on the trial bases of :mod:`sklearn_blend.models`; the student follows the
teacher protocol of :class:`~sklearn_blend.estimators.base.Distiller`, with an online teacher.
This module validates the trials and the behavior and turns model outputs into what
scikit-learn users expect.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.base import TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..data.behavior import BehaviorEncoding, read_behavior
from ..data.validation import Interval, Options, check_fitted_shape
from ..distill import build_strategy, strategy_name
from ..modalities import SPIKES
from ..training import core as _training
from .base import Distiller, ModelEstimator, Parameter, depth, parameters, width

#: estimator parameters that shape a base's architecture; a base receives those its registry
#: entry forwards (its own defaults where they are None), and the others must stay None
ARCHITECTURE_PARAMS = ("hidden_size", "n_layers", "n_heads", "ffn_size", "dropout",
                       "context_backward", "context_forward")
#: per-bin width of the learnable embedding of trial-level behavior
TRIAL_BEHAVIOR_WIDTH = 16
#: ``mask_ratio=None`` for students and teachers (and every role on bases without entries in
#: ``PLAIN_DEFAULTS``)
MASK_RATIO = 0.25
#: settings left at ``None`` that the plain model (``BlendEstimator(strategy=None)``) takes on
#: these bases instead of the students' ones: what the nested, equal-budget selection chose most
#: often for it on MC_Maze_Small (docs/benchmarks/mc_maze_small.md, "How the defaults were
#: chosen"); the students' own
#: choice was dropout 0.5 (the base's default) at mask ratio 0.25
PLAIN_DEFAULTS = {"ndt": {"dropout": 0.7, "mask_ratio": 0.5}}


def _check_base(value, name):
    _training.resolve_base(value)


def _check_base_params(value, name):
    if value is not None and not isinstance(value, dict):
        raise TypeError(
            f"base_params must be a dict of keyword arguments for the base, or None; "
            f"got {type(value).__name__}."
        )


def _check_columns(value, name):
    if value is not None and not isinstance(value, (str, numbers.Integral, list, tuple)):
        raise TypeError(
            "categorical_behavior must be None, a column (index or name) or a list of "
            f"them, got {value!r}."
        )


#: the parameters teacher and student share: the base and its architecture, masking, the
#: neurons and bins predicted, inference (then the training parameters of every estimator)
TRIAL_PARAMETERS = {
    "base": Parameter("gru", _check_base),
    "base_params": Parameter(None, _check_base_params),
    "mask_ratio": Parameter(None, Interval(float, 0, 1, closed="neither", none=True)),
    "hidden_size": width(None, none=True),
    "n_layers": depth(None, none=True),
    "n_heads": width(None, none=True),
    "ffn_size": width(None, none=True),
    "dropout": Parameter(None, Interval(float, 0, 1, closed="left", none=True)),
    "context_backward": Parameter(None, Interval(int, 0, none=True)),
    "context_forward": Parameter(None, Interval(int, 0, none=True)),
}
#: after the training parameters
TRIAL_OUTPUTS = {
    "early_stopping_on": Parameter("masked", Options("masked", "heldout")),
    "n_heldout": Parameter(0, Interval(int, 0)),
    "forward_bins": Parameter(0, Interval(int, 0)),
    "inference": Parameter(None, Options(None, "masked", "full")),
}


class _MaskedModelEstimator(ModelEstimator):
    """What teacher and student share: hyper-parameter checks, configs, prediction, tags."""

    _abstract = True
    #: the modality the models read and predict (the everyday signal; BLEND: spike counts)
    signal = SPIKES

    def _role_defaults(self):
        """Values for settings left at ``None`` that depend on the estimator's role (none for
        a teacher; see :data:`PLAIN_DEFAULTS`)."""
        return {}

    @property
    def _mask_ratio(self):
        """``mask_ratio``, or its role's default where it is ``None`` (then the base's own,
        then :data:`MASK_RATIO`)."""
        if self.mask_ratio is not None:
            return self.mask_ratio
        base_default = _training.resolve_base(self.base).defaults.get("mask_ratio", MASK_RATIO)
        return self._role_defaults().get("mask_ratio", base_default)

    @property
    def _inference(self):
        """``inference``, or the base's own where it is ``None``."""
        return self.inference or _training.resolve_base(self.base).inference

    @classmethod
    def _upgrade_state(cls, state, version):
        """Formats 1 to 4 (sklearn_blend 0.1 to 0.3): ``base="lfads"`` named the deterministic
        GRU model that is ``base="gru"`` since, and ``inference`` defaulted to ``"masked"``."""
        if version < 5:
            if state.get("base") == "lfads":
                state = {**state, "base": "gru"}
            if state.get("inference") is None:
                state = {**state, "inference": "masked"}
        return super()._upgrade_state(state, version)

    def _check_params(self):
        entry = _training.resolve_base(self.base)
        for name in ARCHITECTURE_PARAMS:
            if name not in entry.estimator_params and getattr(self, name) is not None:
                raise ValueError(
                    f"{name}={getattr(self, name)!r} does not apply to base={self.base!r}, "
                    f"which takes {list(entry.estimator_params) or 'only base_params'}; "
                    f"leave {name}=None and pass that base's own options as base_params."
                )
        architecture = self._architecture()
        if {"hidden_size", "n_heads"} <= set(architecture) and (
            architecture["hidden_size"] % architecture["n_heads"]
        ):
            raise ValueError(
                f"hidden_size ({architecture['hidden_size']}) must be divisible by n_heads "
                f"({architecture['n_heads']}) for base={self.base!r}."
            )
        if self.base_params is not None:
            reserved = sorted(set(self.base_params) & set(_training.RESERVED_OPTIONS))
            if reserved:
                raise ValueError(
                    f"base_params may not set {reserved}: the estimator sets the shapes "
                    f"{list(_training.RESERVED_OPTIONS)} from the data."
                )
            clash = sorted(set(self.base_params) & set(entry.estimator_params))
            if clash:
                raise ValueError(
                    f"base_params sets {clash}, which are BlendEstimator parameters for "
                    f"base={self.base!r}: set them directly."
                )

    def _architecture(self):
        """The architecture parameters the base receives: those set on the estimator, the
        base's own defaults (:class:`~sklearn_blend.models.base.BaseEntry`) for those left
        at ``None``."""
        entry = _training.resolve_base(self.base)
        options = {name: value for name, value in {**entry.defaults,
                                                   **self._role_defaults()}.items()
                   if name in entry.estimator_params}
        options.update({name: getattr(self, name) for name in entry.estimator_params
                        if getattr(self, name) is not None})
        return options

    def _model_config(self, *, hidden_size=None, encoding=None):
        """Keyword arguments of :func:`sklearn_blend.models.build_model` for this estimator.

        ``hidden_size`` overrides the width (a teacher's own); ``encoding`` (a teacher's
        :class:`~sklearn_blend.data.behavior.BehaviorEncoding`) sets the behavior input:
        per-bin channels, or trial-level ones embedded per bin.
        """
        options = self._architecture()
        if hidden_size is not None:
            options["hidden_size"] = hidden_size
        options.update(self.base_params or {})
        n_behavior, trial_behavior = 0, 0
        if encoding is not None and encoding.per_bin:
            n_behavior = encoding.width
        elif encoding is not None:
            n_behavior, trial_behavior = TRIAL_BEHAVIOR_WIDTH, encoding.width
        return dict(
            base=self.base,
            n_inputs=self.n_features_in_ - self.n_heldout,
            n_outputs=self.n_features_in_,
            n_behavior=n_behavior,
            n_time=self.n_time_in_ + self.forward_bins,
            options=options,
            trial_behavior=trial_behavior,
            modality=self.signal.name,
        )

    def _training_arrays(self, X, spikes_forward):
        """Validate training spikes; return ``(inputs, targets)`` and record the fitted shape.

        Inputs are the held-in neurons with ``forward_bins`` zero bins appended; targets are all
        neurons (held-out last) over the window and the forward bins.
        """
        spikes, _ = self.signal.validate(X)
        n_trials, n_time, n_neurons = spikes.shape
        if self.n_heldout >= n_neurons:
            raise ValueError(
                f"n_heldout={self.n_heldout} must leave at least one held-in neuron: X has "
                f"{n_neurons} neurons (n_trials, n_time, n_neurons), held-out neurons last."
            )
        targets = spikes
        if self.forward_bins:
            if spikes_forward is None:
                raise ValueError(
                    f"forward_bins={self.forward_bins} needs spikes_forward, the counts of "
                    f"the bins after each trial: fit(X, b, spikes_forward=...) with shape "
                    f"({n_trials}, {self.forward_bins}, {n_neurons})."
                )
            forward, _ = self.signal.validate(spikes_forward, name="spikes_forward")
            if forward.shape != (n_trials, self.forward_bins, n_neurons):
                raise ValueError(
                    f"spikes_forward must be (n_trials, forward_bins, n_neurons) = "
                    f"({n_trials}, {self.forward_bins}, {n_neurons}) to match X and "
                    f"forward_bins; got shape {forward.shape}."
                )
            targets = np.concatenate([spikes, forward], axis=1)
        elif spikes_forward is not None:
            raise ValueError(
                "spikes_forward was given but forward_bins=0; set forward_bins to the number "
                "of bins in spikes_forward to predict them."
            )
        self.n_features_in_ = n_neurons
        self.n_time_in_ = n_time
        return self._model_inputs(spikes), targets

    def _model_inputs(self, spikes):
        """Held-in columns of validated spikes, with zero forward bins for full-length trials."""
        inputs = spikes[..., : self.n_features_in_ - self.n_heldout]
        if self.forward_bins and spikes.shape[1] == self.n_time_in_:
            padding = np.zeros((len(inputs), self.forward_bins, inputs.shape[2]), np.float32)
            inputs = np.concatenate([inputs, padding], axis=1)
        return inputs

    def _pad_behavior(self, behavior, n_time):
        """Encoded per-bin behavior, zero over forward bins (trial-level: unchanged)."""
        if behavior is None or behavior.ndim == 2 or behavior.shape[1] == n_time:
            return behavior
        padding = np.zeros((len(behavior), n_time - behavior.shape[1], behavior.shape[2]))
        return np.concatenate([behavior, padding.astype(np.float32)], axis=1)

    def _check_predict_input(self, X):
        """Validated spikes (held-in or all neurons), model inputs and whether X was 2-D."""
        check_is_fitted(self)
        spikes, was_2d = self.signal.validate(X)
        check_fitted_shape(spikes, self)
        return spikes, self._model_inputs(spikes), was_2d

    def _predict_model(self, net, inputs, n_window, behavior=None, *, masked=None):
        """Log-rates and latents of all bins; ``masked`` defaults to ``inference="masked"``."""
        if masked is None:
            masked = self._inference == "masked"
        predictions, latents = _training.predict(
            net, {self.signal.name: inputs,
                  "behavior": self._pad_behavior(behavior, inputs.shape[1])},
            mask_ratio=self.mask_ratio_ if masked else None, n_window=n_window,
        )
        return predictions[self.signal.name], latents

    def _rates(self, net_name, X, behavior_of=None, *, forward=False):
        """Rates ``(n_trials, n_time[+forward_bins], n_neurons)`` and latents of the window,
        from the fitted net in attribute ``net_name``."""
        spikes, inputs, was_2d = self._check_predict_input(X)
        net = getattr(self, net_name)
        n_window = spikes.shape[1]
        if forward and (not self.forward_bins or n_window != self.n_time_in_):
            raise ValueError(
                "forward=True needs a model fitted with forward_bins > 0 and trials of the "
                f"fitted length ({self.n_time_in_} bins); this model has forward_bins="
                f"{self.forward_bins} and X has {n_window} bins."
            )
        behavior = None if behavior_of is None else behavior_of(spikes)
        log_rates, latents = self._predict_model(net, inputs, n_window, behavior)
        with np.errstate(over="ignore"):
            rates = self.signal.to_user(log_rates if forward else log_rates[:, :n_window])
        if not np.isfinite(rates).all():
            raise ValueError(
                "the predicted rates overflow (log-rates above 88) for these inputs; check X "
                "for extreme counts, far above those seen in fit."
            )
        if latents is not None:
            latents = latents[:, :n_window]
        if was_2d:
            return rates[:, 0], None if latents is None else latents[:, 0]
        return rates, latents

    def _score_model(self, net_name, X, behavior_of=None):
        """Co-bps on held-out neurons, or masked bits/spike when there are none."""
        return self.signal.score(*self._scored_rates(net_name, X, behavior_of))

    def _scored_rates(self, net_name, X, behavior_of=None):
        """What :meth:`_score_model` scores: the rates (user units) and the spikes they are
        compared with (the held-out neurons', or every bin's from masked passes)."""
        spikes, inputs, _ = self._check_predict_input(X)
        net = getattr(self, net_name)
        n_window = spikes.shape[1]
        behavior = None if behavior_of is None else behavior_of(spikes)
        if self.n_heldout:
            if spikes.shape[2] != self.n_features_in_:
                raise ValueError(
                    f"score needs the held-out neurons to compute co-bps: X must have all "
                    f"{self.n_features_in_} neurons (held-in, then the {self.n_heldout} "
                    f"held-out), got {spikes.shape[2]}."
                )
            log_rates, _ = self._predict_model(net, inputs, n_window, behavior)
            heldout = slice(self.n_features_in_ - self.n_heldout, None)
            # co-bps: NLB's bits per spike of the held-out neurons
            return (self.signal.to_user(log_rates[:, :n_window, heldout]),
                    spikes[..., heldout])
        log_rates, _ = self._predict_model(net, inputs, n_window, behavior, masked=True)
        return self.signal.to_user(log_rates[:, :n_window]), spikes

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.positive_only = self.signal.non_negative
        tags.target_tags.required = False
        return tags


class BlendTeacher(_MaskedModelEstimator):
    """Teacher of BLEND: masked time-step modelling of spikes with behavior as extra input.

    Behavior is encoded (:class:`~sklearn_blend.data.behavior.BehaviorEncoding`: continuous
    columns standardised with the training mean and standard deviation, categorical ones
    one-hot, missing values as zeros plus "observed" channels) and given to the base model with
    the (masked) spikes of each time bin, per bin or, for trial-level behavior, through a
    learnable per-bin embedding; it is never masked. The teacher
    predicts log-rates of all neurons. :class:`BlendEstimator` trains one of these (or reuses a
    cached one) and distils it into a spikes-only student; use it on its own to measure what
    behavior adds, or give it (fitted or not, of any base or width) as
    ``BlendEstimator(teacher=...)``. Parameters have the meaning they have in
    :class:`BlendEstimator`; ``mask_ratio=None`` and ``dropout=None`` take the students'
    defaults (0.25 and the base's own). Its base is ``"gru"`` by default, as the student's.

    What a student reads of a teacher (its public contract): :attr:`model_` (a PyTorch model
    that reads ``{"spikes", "behavior"}`` and predicts ``{"spikes"}``: the estimator's
    ``signal`` and the behavior),
    :meth:`encode_behavior`, and ``n_features_in_``, ``n_time_in_``, ``n_heldout``,
    ``forward_bins``, ``categorical_behavior``, ``device_``; an unfitted teacher also takes
    ``set_params(n_heldout=..., forward_bins=...)`` and ``fit(X, b, spikes_forward=...,
    behavior_forward=...)``. The model reads the student's masked batch, which also holds the
    bins the student's masking hid (``inputs["hidden"]``; the model of a
    :class:`~sklearn_blend.NedsEstimator` hides them behind its mask token). Its training
    parameters are those below; the others have the meaning they have in
    :class:`BlendEstimator`.

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The fitted net; ``net_.history`` holds the training curves.
    behavior_encoding_ : sklearn_blend.data.behavior.BehaviorEncoding
        How behavior columns become model inputs: form (per-bin or trial-level), means and
        scales of continuous columns, categories of categorical ones, whether missing values
        were seen (``behavior_encoding_.observed_fraction``).
    n_features_in_, n_time_in_, n_behavior_in_ : int
        Neurons, time bins and behavior channels seen in ``fit``.
    n_iter_ : int
        Epochs run.
    mask_ratio_ : float
        The mask ratio used in training and by masked inference.
    device_ : str
        Device the model lives on (``device`` resolved: ``"auto"`` becomes ``"cuda"``,
        ``"mps"`` or ``"cpu"``).

    Examples
    --------
    >>> from sklearn_blend import BlendTeacher
    >>> from sklearn_blend.datasets import make_synthetic
    >>> X, b = make_synthetic("simple", n_trials=16, n_time=10, n_neurons=6, random_state=0)
    >>> teacher = BlendTeacher(hidden_size=8, n_layers=1, max_epochs=2,
    ...                        early_stopping=False, random_state=0).fit(X, b)
    >>> teacher.n_features_in_, teacher.n_time_in_, teacher.n_behavior_in_, teacher.n_iter_
    (6, 10, 2, 2)
    >>> rates = teacher.predict_rates(X, b)
    >>> rates.shape, bool((rates > 0).all())
    ((16, 10, 6), True)
    """

    _parameters = parameters({**TRIAL_PARAMETERS, **{
        name: TRIAL_OUTPUTS[name] for name in ("early_stopping_on", "n_heldout",
                                                "forward_bins", "inference")},
        "categorical_behavior": Parameter(None, _check_columns)})

    def fit(self, X, y, *, spikes_forward=None, behavior_forward=None):
        """Fit the teacher on spikes ``X`` and behavior ``b`` (``fit(X, b)``).

        Parameters
        ----------
        X : array-like of shape (n_trials, n_time, n_neurons)
            Spike counts per bin, the ``n_heldout`` held-out neurons last.
        y : array-like of shape (n_trials, n_time, n_behavior) or (n_trials, n_behavior)
            The behavior ``b`` aligned with ``X`` (second positional argument, where
            scikit-learn puts ``y``): per bin, or one row per trial (an array or a pandas
            DataFrame). NaN marks missing values; see :mod:`sklearn_blend.data.behavior`.
        spikes_forward : array-like of shape (n_trials, forward_bins, n_neurons), optional
            Counts of the bins after each trial; required when ``forward_bins > 0``.
        behavior_forward : array-like of shape (n_trials, forward_bins, n_behavior), optional
            The behavior over the forward bins (per-bin behavior only), read in training as
            BLEND's official teacher reads it; without it the teacher sees zeros there (the
            encoded mean). Predictions never need it.

        Returns
        -------
        self : BlendTeacher
        """
        return self._fit(X, y, spikes_forward=spikes_forward, behavior_forward=behavior_forward)

    def _read_fit_data(self, X, y, spikes_forward=None, behavior_forward=None):
        inputs, targets = self._training_arrays(X, spikes_forward)
        raw = read_behavior(y, targets[:, : self.n_time_in_], name="y (behavior)",
                            categorical=self.categorical_behavior)
        if raw is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None: y "
                "is the behavior b (behavior, (n_trials, n_time, n_behavior) or (n_trials, "
                "n_behavior)) the teacher is trained with."
            )
        if not raw.any_observed:
            warnings.warn(
                "y (behavior) holds no observed value (all NaN): the teacher is a spikes-only "
                "model, and "
                "distilling it is self-distillation without behavior.",
                UserWarning,
                stacklevel=2,
            )
        self.mask_ratio_ = self._mask_ratio
        self.n_behavior_in_ = len(raw.names)
        self.behavior_encoding_ = BehaviorEncoding(raw)
        encoded = self._with_forward(self.behavior_encoding_.transform(raw, "y (behavior)"),
                                     behavior_forward, targets[:, self.n_time_in_ :])
        return _training.pack(
            {self.signal.name: inputs, "behavior": self._pad_behavior(encoded, inputs.shape[1])},
            {self.signal.name: targets},
        )

    def _fit_models(self, data, seeds):
        builder = self._teacher_builder(data[f"targets.{self.signal.name}"].mean(axis=(0, 1)))
        self.net_ = self._train(builder, data, seeds["model"], "teacher")

    def _with_forward(self, encoded, behavior_forward, spikes_forward):
        """Encoded window behavior with the encoded ``behavior_forward`` appended (or as is)."""
        if behavior_forward is None:
            return encoded
        if not self.forward_bins:
            raise ValueError(
                "behavior_forward was given but forward_bins=0; it is the behavior over the "
                "forward bins, (n_trials, forward_bins, n_behavior)."
            )
        if encoded.ndim != 3:
            raise ValueError(
                "behavior_forward needs per-bin behavior (n_trials, n_time, n_behavior); this "
                "behavior is trial-level, which covers the forward bins already."
            )
        expected = (len(encoded), self.forward_bins, self.n_behavior_in_)
        if np.shape(behavior_forward)[:2] != expected[:2]:
            raise ValueError(
                f"behavior_forward must be (n_trials, forward_bins, n_behavior) = {expected}; "
                f"got shape {np.shape(behavior_forward)}."
            )
        raw = read_behavior(behavior_forward, spikes_forward, name="behavior_forward",
                            categorical=self.categorical_behavior)
        return np.concatenate(
            [encoded, self.behavior_encoding_.transform(raw, "behavior_forward")], axis=1)

    def encode_behavior(self, b, X, *, name="b", behavior_forward=None):
        """Behavior ``b`` of trials ``X`` encoded as the teacher model reads it.

        Parameters
        ----------
        b : array-like or DataFrame
            Behavior in the form seen in ``fit``.
        X : array-like of shape (n_trials, n_time, n_neurons)
            The trials' spikes (for shape checks).
        behavior_forward : array-like of shape (n_trials, forward_bins, n_behavior), optional
            Behavior over the forward bins, used there instead of zeros.

        Returns
        -------
        ndarray of shape (n_trials, n_time[+forward_bins], width) or (n_trials, width)
        """
        check_is_fitted(self)
        spikes, _ = self.signal.validate(X)
        n_time = spikes.shape[1] + (self.forward_bins if spikes.shape[1] == self.n_time_in_
                                    else 0)
        encoded = self._encoded_behavior(b, spikes, name)
        if behavior_forward is not None:
            if spikes.shape[1] != self.n_time_in_:
                raise ValueError(
                    f"behavior_forward follows trials of the fitted length ({self.n_time_in_} "
                    f"bins); X has {spikes.shape[1]}."
                )
            n_neurons = spikes.shape[2]
            encoded = self._with_forward(
                encoded, behavior_forward,
                np.zeros((len(spikes), self.forward_bins, n_neurons), np.float32))
        return self._pad_behavior(encoded, n_time)

    def _encoded_behavior(self, b, spikes, name="b"):
        """``b`` read against validated ``spikes``, encoded as in fit (no forward-bin padding)."""
        raw = read_behavior(b, spikes, name=name, categorical=self.categorical_behavior)
        if raw is None:
            raise ValueError(
                f"{name} (behavior with {self.n_behavior_in_} columns, as in fit) is required "
                "by the teacher."
            )
        return self.behavior_encoding_.transform(raw, name)

    @property
    def model_(self):
        """The fitted PyTorch teacher model."""
        check_is_fitted(self)
        return _training.trained_model(self.net_)

    def _net_builder(self, attribute, saved):
        """The recipe ``fit`` builds :attr:`net_` from, for the fitted shapes and behavior
        encoding: :func:`sklearn_blend.load` loads saved weights into it (``saved``, what the
        file says of the fitted objective, is not needed here)."""
        # the readout's start is replaced by the saved weights
        return self._teacher_builder(np.ones(self.n_features_in_))

    def _teacher_builder(self, mean_counts):
        """The recipe of the teacher model and its objective: masked modelling of the spikes
        with the encoded behavior as input, the readout started at ``mean_counts``."""
        return _training.TrialModelBuilder(
            self._model_config(encoding=self.behavior_encoding_),
            self.mask_ratio_,
            mean_counts,
            modalities={self.signal.name: self.signal},
            n_forward=self.forward_bins,
            precision=self.precision,
        )

    def _behavior_for(self, b):
        """A function of validated spikes that checks ``b`` and returns it encoded."""
        return lambda spikes: self._encoded_behavior(b, spikes)

    def predict_rates(self, X, b, *, forward=False):
        """Teacher firing rates (expected counts per bin) from spikes and behavior.

        Parameters
        ----------
        X : array-like of shape (n_trials, n_time, n_neurons)
            All neurons, or only the held-in ones.
        b : array-like of shape (n_trials, n_time, n_behavior)
        forward : bool, default=False
            Append the ``forward_bins`` predicted bins after the window.

        Returns
        -------
        rates : ndarray of shape (n_trials, n_time[+forward_bins], n_neurons)
        """
        return self._rates("net_", X, self._behavior_for(b), forward=forward)[0]

    def score(self, X, y):
        """Co-bps (or masked bits/spike) of the teacher on spikes ``X`` and behavior ``y``
        (``score(X, b)``); see :meth:`BlendEstimator.score`."""
        return self._score_model("net_", X, self._behavior_for(y))

    def _score_pair(self, X, y=None):
        """The rates :meth:`score` compares with spikes, and those spikes."""
        return self._scored_rates("net_", X, self._behavior_for(y))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


class BlendEstimator(Distiller, TransformerMixin, _MaskedModelEstimator):
    """BLEND: a spikes-only model distilled from a teacher that also saw behavior.

    ``fit(X, b)`` (behavior ``b`` in the place of scikit-learn's ``y``) first trains a teacher
    (:class:`BlendTeacher`) by masked time-step modelling on spikes ``X`` plus behavior ``b``,
    freezes it, then trains a fresh student of the same kind on ``X`` alone with
    ``alpha * MTM + (1 - alpha) * distillation``; in every student step the teacher sees the
    same masked spikes as the student. ``transform(X)`` needs spikes only. ``strategy=None``
    trains the student by masked modelling alone: the plain base model without behavior, one
    parameter away from every distilled variant.

    Parameters
    ----------
    base : {"gru", "ndt", "lfads", "blend_lfads"} or callable, default="gru"
        Base model of teacher and student (the default was ``"ndt"`` before version 0.5; on
        MC_Maze_Small the GRU model's students beat tuned smoothing where the NDT's do not, at
        about ten times the NDT's training time: ``benchmarks/choose_defaults.py``):
        ``"ndt"`` (Neural Data Transformer), ``"lfads"``
        (LFADS as lfads-torch defines it: initial-condition and inferred-input posteriors with
        their KL terms, trained with coordinated dropout; :mod:`sklearn_blend.models.lfads`),
        ``"gru"`` (a deterministic GRU model: bidirectional GRU encoder, controller and
        generator GRUs, ``factor_size`` factors, input dropout, a linear readout; not LFADS,
        and ``"lfads"`` before version 0.4),
        ``"blend_lfads"`` (the GRU model BLEND's code calls LFADS, as that code builds it: an
        MLP readout, no input dropout, the teacher's behavior joined by self-attention and a
        second bidirectional GRU; :mod:`sklearn_blend.models.blend_lfads`), another name
        registered with
        :func:`sklearn_blend.models.register_base`, or your own ``torch.nn.Module`` class (or
        factory) following the protocol of :mod:`sklearn_blend.models.base`: built from
        ``n_inputs``, ``n_outputs`` and ``n_behavior`` (0 for the student), its ``forward``
        returns log-rates and optionally per-layer features and latents.
    base_params : dict or None, default=None
        Extra keyword arguments for the base: ``{"factor_size": 32}`` for ``"gru"`` and
        ``"blend_lfads"``; for ``"lfads"`` any field of
        :class:`~sklearn_blend.models.LFADSConfig` but the shapes, ``hidden_size`` and
        ``dropout`` (``{"co_size": 0}``: no inferred inputs; ``{"kl_ic_scale": 1e-4}``); any
        options of a user base. Architecture parameters below that a base does not take (for
        the GRU bases: ``n_heads``, ``ffn_size``, ``context_*``; for LFADS those and
        ``n_layers``; for a user base: all of them) must stay at their defaults.
    strategy : str, Strategy class or instance, or None, default="feature"
        Distillation term (:mod:`sklearn_blend.distill`; the default was ``"hard"`` before
        version 0.5, and ``"feature"`` is the GRU model's best student on MC_Maze_Small):
        ``"hard"``: MSE of log-rates;
        ``"soft"``: temperature softmax KL over neurons; ``"feature"``: MSE of log-rates plus
        per-layer hidden-state MSE (through a learned projection where widths differ);
        ``"correlation"``: MSE of log-rates plus squared Frobenius distance (per entry) of
        per-trial neuron correlation matrices. Any name added with
        :func:`sklearn_blend.register_strategy`, a :class:`~sklearn_blend.distill.Strategy`
        subclass (built with ``tau`` if it takes one) or an instance (deep-copied for every
        fit, keeping its own hyper-parameters) works too. ``None``: no teacher, no
        distillation.
    alpha : float in [0, 1], default=0.7
        Weight of the student's own masked-modelling loss; ``1 - alpha`` weighs distillation.
        0.7 is what nested selection chose most often for the students on MC_Maze_Small
        (``docs/benchmarks/mc_maze_small.md``, "How the defaults were chosen").
    tau : float > 0, default=2.0
        Softmax temperature of the ``"soft"`` strategy.
    mask_ratio : float in (0, 1) or None, default=None
        Probability that a time bin is masked (all its spike counts set to 0) in training;
        for ``base="lfads"``, the coordinated-dropout rate (single entries dropped).
        ``None`` depends on the role, by what nested selection chose most often on
        MC_Maze_Small (``docs/benchmarks/mc_maze_small.md``, "How the defaults were chosen"):
        0.25 for students and teachers, 0.5 for the plain NDT (``strategy=None``,
        ``base="ndt"``; :data:`PLAIN_DEFAULTS`); LFADS's own 0.3 on ``base="lfads"``. Masked
        inference hides bins at the same ratio (``mask_ratio_``), so masked scores (``score`` without held-out neurons) of models
        trained at different ratios are not measured alike; co-bps (held-out neurons, one
        full pass) is.
    hidden_size, n_layers, n_heads, ffn_size, dropout, context_backward, context_forward : \
            default=None
        Architecture of the student (and of the teacher built when ``teacher=None``), for the
        bases that take them; ``None`` keeps the base's own default, so no base runs with
        another base's settings. ``hidden_size`` (int): transformer width (NDT, NeuPRINT) or
        GRU units (the GRU models 64, LFADS's generator 100). ``n_layers`` (int): transformer
        layers (NDT 2, NeuPRINT 1) or layers of the GRU models' bidirectional encoder (2,
        BLEND's 4). ``n_heads``,
        ``ffn_size`` (int): attention heads and feed-forward width (NDT 2 and 256, NeuPRINT 2
        and 128). ``dropout`` (float in [0, 1)): on the input counts and inside the model
        (NDT and the GRU model 0.5, BLEND's GRU model 0.1, LFADS 0.3, NeuPRINT 0.1; the plain
        NDT, ``strategy=None``, 0.7: the nested
        selection's choice for it, as for ``mask_ratio``). ``context_backward``, ``context_forward`` (int):
        attention window in bins before / after each bin (NDT: the whole trial; NeuPRINT:
        causal, ``context_forward=0``); a window as long as the trial is the whole trial.
        A parameter set for a base that does not take it is an error (pass that base's own
        options as ``base_params``). All are tunable by ``GridSearchCV``.
    teacher : None, BlendTeacher, NedsEstimator or FrozenEstimator, default=None
        The teacher distilled into the student. ``None``: a :class:`BlendTeacher` with this
        estimator's settings (and ``teacher_hidden_size``), reused across a search through
        ``teacher_cache``. An unfitted estimator (say ``BlendTeacher(base="gru",
        hidden_size=128)``) is cloned, given this estimator's ``n_heldout`` and
        ``forward_bins`` and a seed derived from ``random_state`` unless it has its own, and
        fitted in ``fit`` (cached likewise); its parameters are tunable as
        ``teacher__hidden_size``. A fitted teacher (pretrained, multi-session) is used as it
        is, never refitted; it must have been fitted on the same neurons, ``n_heldout``,
        ``forward_bins`` and device. With ``strategy=None`` no teacher is used. Note that ``clone`` (and so ``GridSearchCV`` and
        ``cross_val_score``) returns an unfitted copy of a fitted teacher: wrap it in
        ``sklearn.frozen.FrozenEstimator`` to keep it fitted there. Teacher and student may
        differ in base and width: ``"hard"``, ``"soft"`` and ``"correlation"`` compare their
        rates; ``"feature"`` pairs their per-layer features through learned projections and
        raises a ``ValueError`` when the two models return different numbers of layers.
        A :class:`~sklearn_blend.NedsEstimator` (single session) is a teacher too: it reads
        the student's masked spikes with the bins the student hid as its own hidden spike
        tokens, and the behavior as its tokens (``NedsEstimator.encode_behavior``).
        The student reads the teacher only through its public contract: ``model_`` (the
        PyTorch model), ``encode_behavior``, ``n_features_in_``, ``n_time_in_``,
        ``n_heldout``, ``forward_bins`` and ``categorical_behavior``.
    teacher_hidden_size : int or None, default=None
        Width of the teacher built when ``teacher=None``, if it should differ from the
        student's.
    early_stopping_on : {"masked", "heldout"}, default="masked"
        The validation loss early stopping watches: ``"masked"``, the masked Poisson loss
        (masked bins of the held-in neurons, every bin of the held-out ones, the forward
        bins); ``"heldout"``, the Poisson loss of the held-out neurons with every held-in bin
        visible, as co-bps scores them (needs ``n_heldout > 0``). The teacher built from
        these settings stops on the same.
    n_heldout : int, default=0
        The last ``n_heldout`` columns of ``X`` in ``fit`` are held-out neurons, as in NLB
        co-smoothing: never given to the models as input, always predicted (at every bin).
        After fitting, ``X`` may hold all neurons or only the held-in ones; rates cover all.
    forward_bins : int, default=0
        Bins after the window to predict (NLB forward prediction); ``fit`` then needs
        ``spikes_forward`` and ``predict_rates(X, forward=True)`` appends them.
    inference : {"masked", "full"} or None, default=None
        How rates and latents are computed after fitting. ``"masked"``: each time bin from a
        pass in which that bin's spikes are hidden, as in training (``ceil(1 / mask_ratio)``
        passes with interleaved masks), so no bin's rate contains its own spike noise (see
        ``docs/benchmarks/mc_maze_small.md``, "Why the rates jump, and which inference mode",
        for its effect on velocity decoding). ``"full"``: one pass over the whole input, as
        NDT's NLB submissions do. ``None``: the base's own
        (``"full"`` for LFADS, which reads its posterior means; ``"masked"`` for the others).
    output : {"rates", "latents"}, default="rates"
        What :meth:`transform` returns: firing rates in counts per bin, or the latent factors
        of the student (NDT: last hidden layer; LFADS and the GRU models: the factors).
    categorical_behavior : int, str, list of them, or None, default=None
        Columns of the behavior that are categorical (indices, or names for a DataFrame);
        they are one-hot encoded. Columns of a DataFrame with a ``category`` dtype are
        categorical too. Categories are never guessed. See :mod:`sklearn_blend.data.behavior`
        for the behavior forms (per bin, per trial, partly missing).
    teacher_cache : bool, str or joblib.Memory, default=True
        Reuse a teacher fitted on the same data with the same teacher parameters: ``True``
        keeps recent teachers in this process (a grid search over ``alpha``, ``tau`` or
        ``strategy`` trains one teacher per fold), bounded to the 16 most recently used and
        512 MiB of their tensors (:mod:`sklearn_blend.training.teacher_cache`); a directory
        or ``joblib.Memory`` caches on disk, shared by parallel workers; ``False`` always
        trains a new teacher. A fitted ``teacher`` is never cached or refitted.
    Attributes
    ----------
    teacher_ : BlendTeacher or None
        The fitted teacher (``None`` when ``strategy=None``). Shared with other estimators when
        it came from the cache: treat it as read-only.
    student_net_ : skorch.NeuralNet
        The student's fitted net; ``student_net_.history`` has ``train_recon``,
        ``train_distill`` and ``valid_loss`` per epoch.
    n_features_in_, n_time_in_, n_behavior_in_ : int
        Neurons, time bins and behavior channels seen in ``fit``.
    n_iter_ : int
        Epochs the student trained.
    mask_ratio_ : float
        The mask ratio the student trained with (``mask_ratio``, or its role's default) and
        that ``inference="masked"`` hides bins at, whatever ``strategy`` is set to later.
    device_ : str
        Device the models live on (``device`` resolved: ``"auto"`` becomes ``"cuda"``,
        ``"mps"`` or ``"cpu"``).

    See Also
    --------
    BlendTeacher : the teacher on its own.
    PerBin : fit a 2-D estimator (``RidgeCV``, ``LogisticRegression``) on the output per bin.

    References
    ----------
    Guo et al., "BLEND: Behavior-guided Neural Population Dynamics Modeling via Privileged
    Knowledge Distillation", ICLR 2025.

    Examples
    --------
    >>> from sklearn_blend import BlendEstimator
    >>> from sklearn_blend.datasets import make_synthetic
    >>> X, b = make_synthetic("simple", n_trials=40, n_time=20, n_neurons=12, random_state=0)
    >>> est = BlendEstimator(strategy="hard", hidden_size=16, n_layers=1, max_epochs=5,
    ...                      early_stopping=False, random_state=0).fit(X, b)
    >>> est.transform(X).shape
    (40, 20, 12)
    >>> est.teacher_.predict_rates(X, b).shape
    (40, 20, 12)
    """

    _parameters = parameters({
        **TRIAL_PARAMETERS,
        "strategy": Distiller.PARAMETERS["strategy"]._replace(default="feature"),
        "alpha": Parameter(0.7, Interval(float, 0, 1)),
        "tau": Parameter(2.0, Interval(float, 0, closed="right")),
        "teacher": Parameter(None),
        "teacher_hidden_size": width(None, none=True),
        **TRIAL_OUTPUTS,
        "output": Parameter("rates", Options("rates", "latents")),
        "categorical_behavior": Parameter(None, _check_columns),
        "teacher_cache": Distiller.PARAMETERS["teacher_cache"],
    })
    _seed_names = ("teacher", "student")
    _net_attribute = "student_net_"

    def _role_defaults(self):
        if self.strategy is None and isinstance(self.base, str):
            return PLAIN_DEFAULTS.get(self.base, {})
        return {}

    def _check_params(self):
        super()._check_params()
        self._check_strategy_fits()
        if self.teacher_hidden_size is not None:
            if "hidden_size" not in _training.resolve_base(self.base).estimator_params:
                raise ValueError(
                    f"teacher_hidden_size does not apply to base={self.base!r}; give the "
                    "teacher's width through the base's own options."
                )
            if self.teacher is not None:
                raise ValueError(
                    "teacher_hidden_size applies to the teacher built from this estimator's "
                    "settings (teacher=None); with teacher=... set the width on that teacher, "
                    "e.g. teacher=BlendTeacher(hidden_size=128) or teacher__hidden_size in a "
                    "grid search."
                )
        if self.teacher is not None:
            self._check_teacher_type(self.teacher)

    # ------------------------------------------------------------------ the teacher
    def _check_teacher_type(self, teacher):
        if not all(hasattr(teacher, name) for name in ("fit", "get_params", "encode_behavior")):
            raise TypeError(
                "teacher must be None or a BlendTeacher (unfitted: fitted in fit; fitted: used "
                "as is; or one wrapped in sklearn.frozen.FrozenEstimator), got "
                f"{type(teacher).__name__}."
            )

    def _default_teacher(self):
        return BlendTeacher(**self.teacher_params()), False

    def _adapt_teacher(self, teacher):
        """A cloned teacher predicts this student's neurons and bins."""
        return teacher.set_params(n_heldout=self.n_heldout, forward_bins=self.forward_bins)

    def teacher_params(self):
        """Parameters of the :class:`BlendTeacher` this estimator trains when ``teacher=None``
        (before seeding): its own settings, with ``teacher_hidden_size`` as the width."""
        names = BlendTeacher._get_param_names()
        params = {name: getattr(self, name) for name in names}
        if self.teacher_hidden_size is not None:
            params["hidden_size"] = self.teacher_hidden_size
        return params

    def fit(self, X, y=None, *, behavior=None, spikes_forward=None, behavior_forward=None):
        """Train the teacher on spikes ``X`` and behavior, then the spikes-only student on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_trials, n_time, n_neurons)
            Non-negative spike counts per bin, the ``n_heldout`` held-out neurons last. A 2-D
            ``(n_samples, n_neurons)`` array is read as one bin per sample.
        y : array-like of shape (n_trials, n_time, n_behavior), default=None
            The behavior ``b`` aligned with ``X`` (the privileged information), second
            positional argument as ``y`` is in scikit-learn, so that in a ``Pipeline`` the
            behavior also reaches a final decoder. Required unless ``strategy=None``. Also
            accepted: trial-level behavior ``(n_trials, n_behavior)`` (array or DataFrame),
            and NaN for missing values or trials without behavior (the student still
            distils on every trial); see :mod:`sklearn_blend.data.behavior`.
        behavior : array-like of shape (n_trials, n_time, n_behavior), default=None
            Behavior passed by keyword, e.g. through metadata routing when ``y`` is another
            target (``set_fit_request(behavior=True)``). When given, ``y`` is ignored.
            With ``strategy=None`` behavior is not used and neither argument is read.
        spikes_forward : array-like of shape (n_trials, forward_bins, n_neurons), optional
            Counts of all neurons in the ``forward_bins`` bins after each trial, which the
            models learn to predict (NLB forward prediction). Required when
            ``forward_bins > 0``.
        behavior_forward : array-like of shape (n_trials, forward_bins, n_behavior), optional
            Behavior over the forward bins, which the teacher then reads there in training
            (BLEND's official teacher does; otherwise it sees zeros). Training only: neither
            the student nor its predictions use it. Ignored with ``strategy=None``.

        Returns
        -------
        self : BlendEstimator
        """
        return self._fit(X, y, behavior=behavior, spikes_forward=spikes_forward,
                         behavior_forward=behavior_forward)

    def _read_fit_data(self, X, y=None, behavior=None, spikes_forward=None,
                       behavior_forward=None):
        inputs, targets = self._training_arrays(X, spikes_forward)
        window = targets[:, : self.n_time_in_]
        name = "behavior" if behavior is not None else "y (behavior)"
        if self.strategy is None:
            behavior = None  # the plain model never uses behavior
        elif behavior is None:
            behavior = y
        raw = None
        if behavior is not None:  # read once; teacher and encoding take it as read
            categorical = (self.categorical_behavior if self.teacher is None
                           else self.teacher.categorical_behavior)
            raw = read_behavior(behavior, window, name=name, categorical=categorical)
        if self.strategy is not None and raw is None:
            raise ValueError(
                f"strategy={self.strategy!r} distils a teacher that needs behavior: pass it "
                "as fit(X, b) with b of shape (n_trials, n_time, n_behavior), or use "
                "strategy=None."
            )
        self.mask_ratio_ = self._mask_ratio
        self.n_behavior_in_ = 0 if raw is None else len(raw.names)
        return dict(inputs=inputs, targets=targets, raw=raw, name=name,
                    behavior_forward=behavior_forward)

    def _fit_models(self, data, seeds):
        inputs, targets, raw = data["inputs"], data["targets"], data["raw"]
        window = targets[:, : self.n_time_in_]
        behavior = None
        self.teacher_ = None
        if self.strategy is not None:
            fit_params = {"spikes_forward": targets[:, self.n_time_in_ :]
                          if self.forward_bins else None}
            if data["behavior_forward"] is not None:
                fit_params["behavior_forward"] = data["behavior_forward"]
            self.teacher_ = self._fitted_teacher((window, raw), fit_params, seeds["teacher"])
            self._check_teacher(self.teacher_)
            # the behavior, encoded as the teacher's model reads it, zero over forward bins
            # unless behavior_forward gives them
            behavior = self._pad_behavior(
                self.teacher_.encode_behavior(raw, window, name=data["name"],
                                              behavior_forward=data["behavior_forward"]),
                inputs.shape[1])
        builder = self._student_builder(
            None if self.teacher_ is None else self.teacher_.model_, targets.mean(axis=(0, 1)))
        self.student_net_ = self._train(
            builder,
            _training.pack({self.signal.name: inputs, "behavior": behavior},
                           {self.signal.name: targets}),
            seeds["student"],
            (f"{strategy_name(self.strategy)} student" if self.strategy
             else "model (no behavior)"))

    def _check_teacher(self, teacher):
        """The teacher must predict this estimator's neurons and bins from the same inputs."""
        expected = dict(n_features_in_=self.n_features_in_, n_heldout=self.n_heldout,
                        forward_bins=self.forward_bins)
        found = {name: getattr(teacher, name, None) for name in expected}
        if getattr(teacher, "device_", self.device_) != self.device_:
            raise ValueError(
                f"the fitted teacher lives on device {teacher.device_!r} and this student "
                f"trains on {self.device_!r}; fit both on the same device."
            )
        if found != expected or getattr(teacher, "n_time_in_", 0) < self.n_time_in_:
            raise ValueError(
                f"the fitted teacher does not match X: it was fitted with {found} and "
                f"n_time_in_={getattr(teacher, 'n_time_in_', None)}, but this fit has "
                f"{expected} and {self.n_time_in_} bins. A prefit teacher must be fitted on "
                "trials of the same neurons (held-out last), with the same n_heldout and "
                "forward_bins, and at least as many bins."
            )

    def _net_builder(self, attribute, saved):
        """The recipe ``fit`` builds :attr:`student_net_` from (the student of the fitted
        shapes, distilled from ``teacher_``'s model by ``strategy``): :func:`sklearn_blend.load`
        loads saved weights into it, the objective's own ones (feature projections)
        included."""
        teacher_model = None if self.teacher_ is None else self.teacher_.model_
        # the readout's start is replaced by the saved weights
        return self._student_builder(teacher_model, np.ones(self.n_features_in_))

    def _student_builder(self, teacher_model, mean_counts):
        """The recipe of the student (or plain model) and its objective: masked modelling
        of the spikes, distilled from ``teacher_model`` by ``strategy`` when there is one."""
        return _training.TrialModelBuilder(
            self._model_config(),
            self.mask_ratio_,
            mean_counts,
            modalities={self.signal.name: self.signal},
            n_forward=self.forward_bins,
            teacher=teacher_model,
            strategy=None if teacher_model is None else build_strategy(self.strategy,
                                                                       tau=self.tau),
            alpha=self.alpha,
            precision=self.precision,
        )

    @property
    def student_(self):
        """The fitted PyTorch student model."""
        check_is_fitted(self)
        return _training.trained_model(self.student_net_)

    def predict_rates(self, X, *, forward=False):
        """Student firing rates from spikes alone, in expected counts per bin.

        Parameters
        ----------
        X : array-like of shape (n_trials, n_time, n_neurons)
            All neurons, or only the held-in ones (``n_neurons - n_heldout`` columns); the
            held-out columns, if present, are never read.
        forward : bool, default=False
            Append the ``forward_bins`` bins predicted after the window (trials of the fitted
            length only).

        Returns
        -------
        rates : ndarray of shape (n_trials, n_time[+forward_bins], n_neurons)
            Rates of all neurons, held-out ones last; ``(n_samples, n_neurons)`` for 2-D ``X``.
        """
        return self._rates("student_net_", X, forward=forward)[0]

    def transform(self, X):
        """Student rates (``output="rates"``) or latent factors (``output="latents"``).

        Parameters
        ----------
        X : array-like of shape (n_trials, n_time, n_neurons)
            All neurons, or only the held-in ones.

        Returns
        -------
        Xt : ndarray of shape (n_trials, n_time, n_neurons) or (n_trials, n_time, hidden_size)
            Rates of all neurons (held-out last) or latents; 2-D for 2-D ``X``.
        """
        rates, latents = self._rates("student_net_", X)
        if self.output == "rates":
            return rates
        if latents is None:
            raise ValueError(
                f"output='latents', but base {self.base!r} returns no latents from its forward; "
                "return (log_rates, features, latents) from it, or use output='rates'."
            )
        return latents

    def score(self, X, y=None):
        """How well the student predicts spikes it did not see (higher is better).

        With held-out neurons (``n_heldout > 0``): co-smoothing bits per spike, the held-out
        neurons' rates predicted from the held-in columns of ``X`` and scored on its held-out
        columns (NLB's co-bps). Without: masked bits per spike, every time bin predicted from
        a pass in which its spikes were hidden (interleaved masks at ``mask_ratio``), so the
        score measures prediction, not copying. The null model predicts each neuron's mean
        count on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_trials, n_time, n_neurons)
            All neurons, held-out last.
        y : ignored
            Behavior is not needed to score the student; present for scikit-learn's
            ``score(X, y)`` convention.

        Returns
        -------
        score : float
        """
        return self._score_model("student_net_", X)

    def _score_pair(self, X, y=None):
        """The rates :meth:`score` compares with spikes, and those spikes."""
        return self._scored_rates("student_net_", X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # PyTorch computes in float32
        return tags
