"""Cross-modal distillation as scikit-learn estimators: one modality privileged, another everyday.

:class:`MaskedAutoencoder` is a multi-session transformer trained by masked time-step modelling
of one signal (spike counts: the cross-modal teacher; LFP: the LFP-only baseline).
:class:`CrossModalEstimator` trains a model of the everyday signal (LFP by default) whose
latents are also pulled toward those a teacher computes from the simultaneously recorded
privileged signal (spikes by default; Erturk, Hashemi, Shanechi); at inference only the
everyday signal is needed. Both read their sessions through
:func:`~sklearn_blend.data.trials.read_sessions` and train through the skeleton of
:mod:`.base`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..data.trials import (SessionTrials, fit_session_scaling, pad_channels, read_known_sessions,
                           read_sessions, scale_sessions)
from ..data.validation import Interval, check_number
from ..distill import build_strategy
from ..modalities import MODALITIES, get_modality
from ..models.sessions import SessionConfig
from ..training import core as _training
from ..training.crossmodal import SessionBuilder
from ..training.objective import pack
from .base import Distiller, ModelEstimator, Parameter, depth, parameters, width


def _check_signal(value, name):
    """A modality name of a signal a session model reads (counts or continuous)."""
    try:
        modality = get_modality(value)
    except ValueError:
        raise ValueError(f"{name} must be a modality name, one of {sorted(MODALITIES)}, got "
                         f"{value!r}.") from None
    if modality.kind == "categorical":
        raise ValueError(f"{name}={value!r} holds labels; a session model reads counts or a "
                         f"continuous signal ({sorted(MODALITIES)}).")


#: the architecture of a session transformer (teacher and student alike)
SIZES = {
    "hidden_size": width(64),
    "n_layers": depth(2),
    "n_heads": width(2),
    "ffn_size": width(128),
    "dropout": Parameter(0.2, Interval(float, 0, 1, closed="left")),
    "mask_ratio": Parameter(0.25, Interval(float, 0, 1, closed="neither")),
}
#: shorter schedules and lighter weight decay than BLEND's trial models, as the NEDS-family
#: transformers these follow (official NEDS: weight decay 0.01); early stopping after 30
#: epochs without progress
SESSION_DEFAULTS = dict(max_epochs=200, weight_decay=0.01, n_iter_no_change=30)

_SIZES_DOC = """hidden_size, n_layers, n_heads, ffn_size : int, default=64, 2, 2, 128
    Transformer width, depth, heads and feed-forward width.
dropout : float in [0, 1), default=0.2
    Dropout on the input values, the tokens and the residual branches.
mask_ratio : float in (0, 1), default=0.25
    Probability that a time bin is hidden (all its channels zeroed) in training."""


class _SessionModel(TransformerMixin, ModelEstimator):
    """What both estimators share: sessions, scaling, training and latents."""

    _abstract = True

    def _check_params(self):
        self._check_sizes()

    def _modality(self):
        """The modality of ``X`` (the signal the model reads)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ sessions
    def _known(self, X, name, session=None):
        """Values ``X`` of sessions this model knows, padded and scaled, with each trial's
        slot and whether ``X`` was 2-D (see
        :func:`~sklearn_blend.data.trials.read_known_sessions`)."""
        values, slots, was_2d = read_known_sessions(
            X, self._modality(), self.sessions_, self.n_channels_, self.n_time_in_,
            session=session, name=name, owner=type(self).__name__)
        return self._scale(values, slots), slots, was_2d

    def _fit_scaling(self, values, slots, sessions):
        """Per-channel mean and sd of each of ``sessions`` (training statistics), kept in
        ``means_`` and ``scales_``; counts get zeros and ones."""
        n_sessions = len(self.n_channels_)
        self.means_ = list(getattr(self, "means_", []))[:n_sessions]
        self.scales_ = list(getattr(self, "scales_", []))[:n_sessions]
        while len(self.means_) < n_sessions:
            self.means_.append(None), self.scales_.append(None)
        statistics = fit_session_scaling(values, slots, self.n_channels_, sessions,
                                         self._modality())
        for s, (mean, scale) in statistics.items():
            self.means_[s], self.scales_[s] = mean, scale

    def _scale(self, values, slots):
        return scale_sessions(values, slots, self.n_channels_, self.means_, self.scales_)

    def _read_sessions(self, X):
        """Read training ``X``; set the sessions, their channels and the fitted shapes."""
        values, slots, self.sessions_, self.n_channels_ = read_sessions(X, self._modality())
        self.n_time_in_ = values.shape[1]
        if isinstance(X, SessionTrials):
            self.__dict__.pop("n_features_in_", None)
        else:
            self.n_features_in_ = values.shape[2]
        self.__dict__.pop("means_", None), self.__dict__.pop("scales_", None)
        self._fit_scaling(values, slots, range(len(self.sessions_)))
        self.config_ = self._config()
        return values, slots

    def _config(self):
        return SessionConfig(n_channels=tuple(self.n_channels_), n_time=self.n_time_in_,
                             modality=self._modality().name, hidden_size=self.hidden_size,
                             n_layers=self.n_layers, n_heads=self.n_heads,
                             ffn_size=self.ffn_size, dropout=self.dropout)

    def _mean_counts(self, values, slots, sessions):
        if not self._modality().non_negative:
            return None
        return [values[slots == s][..., :n].mean(axis=(0, 1))
                if s in sessions and (slots == s).any() else None
                for s, n in enumerate(self.n_channels_)]

    def _train_on(self, values, slots, builder_options, seed, description, teacher=None,
                  **overrides):
        """Train the session transformer on scaled ``values`` (an offline ``teacher``'s
        latents travel in the batch)."""
        modality = self._modality()
        data = pack({modality.name: values, "session": slots}, {modality.name: values},
                    teacher=None if teacher is None else {"latents": teacher})
        return self._train(self._builder(**builder_options), data, seed, description,
                           **overrides)

    def _net_builder(self, attribute, saved):
        """The recipe of :attr:`net_` (the session transformer of ``config_`` and its masked
        objective, with the distillation term if the saved objective had a teacher:
        ``saved["teacher"]``, ``saved["teacher_width"]``)."""
        return self._builder(teacher_width=saved["teacher_width"] if saved.get("teacher")
                             else None)

    def _builder(self, *, teacher_width=None, **options):
        """The recipe of the session transformer of ``config_`` and its masked objective,
        distilled (``strategy``, weighted by ``alpha``) from offline teacher latents of
        ``teacher_width`` when given; ``options`` are the rest of :class:`SessionBuilder`'s
        (``mean_counts``, ``start``, ``train_only_sessions``)."""
        modality = self._modality()
        if teacher_width is not None:
            options.update(teacher_width=teacher_width, strategy=build_strategy(self.strategy),
                           alpha=self.alpha, distill_warmup=self.distill_warmup_steps)
        return SessionBuilder(self.config_, {modality.name: modality}, self.mask_ratio,
                              precision=self.precision, **options)

    # ------------------------------------------------------------------ public
    def transform(self, X, *, session=None):
        """Latents per bin, ``(n_trials, n_time, hidden_size)``, from one pass over ``X``
        (a 2-D ``X`` ``(n_samples, n_channels)``, one bin per sample, gives
        ``(n_samples, hidden_size)``).

        Parameters
        ----------
        X : array-like of shape (n_trials, n_time, n_channels) or SessionTrials
            The signal of sessions the model knows. An array is read through the input map of
            ``session`` (default: the only session the model knows, also for another
            session's recording with the same channel layout).
        session : hashable, optional
            Key of the session whose input map reads an array ``X``.
        """
        check_is_fitted(self)
        values, slots, was_2d = self._known(X, "X", session)
        _, latents = _training.predict(self.net_, {self._modality().name: values,
                                                   "session": slots})
        return latents[:, 0] if was_2d else latents

    def add_sessions(self, X, *, max_epochs=None):
        """Learn input and output maps for new sessions under the frozen shared model.

        Sessions of ``X`` (a :class:`SessionTrials` with new keys) get fresh maps and session
        embeddings, trained by masked modelling of their own signal while everything the
        known sessions share stays as fitted (a new channel layout). Known sessions' maps do
        not change.

        Parameters
        ----------
        X : SessionTrials
            Trials of the new sessions (trials of known sessions are an error).
        max_epochs : int, optional
            Most epochs (default: ``max_epochs``).

        Returns
        -------
        self
        """
        check_is_fitted(self)
        self._validate_params()
        if not isinstance(X, SessionTrials):
            raise TypeError("add_sessions takes X as SessionTrials whose keys name the new "
                            "sessions: SessionTrials([X_new], keys=['new'], modality=...).")
        if max_epochs is not None:
            check_number(max_epochs, "max_epochs", low=1, integer=True)
        values, slots, keys, widths = read_sessions(X, self._modality())
        known = [k for k in keys if k in self.sessions_]
        if known:
            raise ValueError(f"X holds trials of sessions {known} that the model knows; "
                             "add_sessions is for new sessions.")
        if values.shape[1] != self.n_time_in_:
            raise ValueError(f"X has {values.shape[1]} bins; the model's trials have "
                             f"{self.n_time_in_}.")
        old = len(self.sessions_)
        previous = _training.trained_model(self.net_)
        with self._atomic():  # a failed or interrupted fit leaves the model as it was
            self.sessions_ = list(self.sessions_) + keys
            self.n_channels_ = tuple(self.n_channels_) + tuple(widths)
            self.config_ = dataclasses.replace(self.config_, n_channels=self.n_channels_)
            slots = slots + old
            padded = pad_channels(values, max(self.n_channels_))
            self._fit_scaling(padded, slots, range(old, len(self.sessions_)))
            scaled = self._scale(padded, slots)
            new = list(range(old, len(self.sessions_)))
            self.net_ = self._train_on(
                scaled, slots,
                dict(mean_counts=self._mean_counts(scaled, slots, new), start=previous,
                     train_only_sessions=new),
                self._draw_seeds(("model",))["model"] + 1,
                "new session maps", max_epochs=max_epochs or self.max_epochs)
            self.n_iter_ = len(self.net_.history)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.positive_only = self._modality().non_negative
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class MaskedAutoencoder(_SessionModel):
    __doc__ = """A multi-session transformer trained by masked time-step modelling of one signal.

    One token per time bin; each session has its own input map (its tokenization) and output
    map and a session embedding, the transformer is shared
    (:class:`~sklearn_blend.models.SessionTransformer`). Counts (spikes) are reconstructed
    with a Poisson likelihood, continuous signals (LFP, fluorescence) with a Gaussian one on
    values z-scored per session and channel with training statistics. It is the teacher of
    :class:`CrossModalEstimator` (pretrain one on many sessions and pass it as ``teacher``)
    and, on the everyday signal, the model without distillation.

    Parameters
    ----------
    modality : str, default="spikes"
        What ``X`` holds: a name in :data:`sklearn_blend.modalities.MODALITIES` of counts
        (``"spikes"``) or of a continuous signal (``"lfp"``, ``"fluorescence"``).
""" + "\n".join("    " + line for line in _SIZES_DOC.splitlines()) + """

    Attributes
    ----------
    net_ : skorch.NeuralNet
    config_ : SessionConfig
    sessions_ : list
        Keys of the sessions the model knows (``[0]`` after a fit on an array).
    n_channels_ : tuple of int
        Channels (neurons) of each session.
    n_time_in_ : int
        Bins of the training trials.
    device_ : str
        Device the model lives on (``device`` resolved).
    means_, scales_ : list of ndarray
        Per-session channel statistics (continuous signals; zeros and ones for counts).
    n_iter_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_blend import MaskedAutoencoder
    >>> X = np.random.default_rng(0).poisson(2.0, size=(20, 12, 6))
    >>> model = MaskedAutoencoder(hidden_size=8, n_layers=1, ffn_size=16, max_epochs=2,
    ...                           random_state=0).fit(X)
    >>> model.transform(X).shape
    (20, 12, 8)
    """

    _parameters = parameters({"modality": Parameter("spikes", _check_signal), **SIZES},
                             defaults=SESSION_DEFAULTS)

    def _modality(self):
        return get_modality(self.modality)

    def fit(self, X, y=None):
        """Train on ``X`` (an array of one session, or :class:`SessionTrials`); ``y`` is
        ignored.

        Returns
        -------
        self : MaskedAutoencoder
        """
        return self._fit(X)

    def _read_fit_data(self, X, y=None):
        return self._read_sessions(X)

    def _fit_models(self, data, seeds):
        values, slots = data
        scaled = self._scale(values, slots)
        self.net_ = self._train_on(
            scaled, slots,
            dict(mean_counts=self._mean_counts(scaled, slots, range(len(self.sessions_)))),
            seeds["model"], f"{self.modality} autoencoder")


class CrossModalEstimator(Distiller, _SessionModel):
    __doc__ = """Cross-modal distillation (Erturk, Hashemi, Shanechi): an everyday signal's model
    guided by a teacher of a privileged one.

    ``fit(X, privileged=S)`` trains a :class:`MaskedAutoencoder`-style model of ``X``
    (``student``: LFP by default; masked time-step modelling, Gaussian on z-scored values for
    a continuous signal, Poisson for counts) whose latents per bin are also pulled toward the
    latents of a teacher that reads the simultaneously recorded signal ``S`` (``teacher``:
    spikes by default), the privileged modality: the loss is ``alpha * reconstruction +
    (1 - alpha) * distillation``. The teacher teaches offline: its latents are computed once,
    from the whole, unmasked ``S``, by the frozen teacher. At inference only ``X`` is needed:
    ``transform(X)`` gives the student's latents per bin, ready for a decoder such as
    ``PerBin(RidgeCV())``. ``CrossModalEstimator(student="fluorescence", teacher="spikes")``
    distils spikes into calcium imaging, ``student="spikes"`` spikes of another area.

    The privileged signal arrives as metadata: in a ``Pipeline`` or ``GridSearchCV``, enable
    scikit-learn's metadata routing (``sklearn.set_config(enable_metadata_routing=True)``)
    and request it with ``CrossModalEstimator(...).set_fit_request(privileged=True)``; it is
    split with the trials like ``X``.

    Parameters
    ----------
    student : str, default="lfp"
        What ``X`` holds: a name in :data:`sklearn_blend.modalities.MODALITIES` of a
        continuous signal (``"lfp"``, ``"fluorescence"``) or of counts (``"spikes"``).
    teacher : None, str, MaskedAutoencoder or FrozenEstimator, default=None
        ``None`` or a modality name (``"spikes"``, the default when ``None``): a
        :class:`MaskedAutoencoder` of that modality with this estimator's sizes (and
        ``teacher_hidden_size``), fitted on ``privileged`` in ``fit``; an unfitted estimator
        is cloned, seeded from ``random_state`` unless it has its own, and fitted on
        ``privileged``; a fitted one (say pretrained on many sessions) is used as it is: it
        reads ``privileged`` through its own sessions' maps (``SessionTrials`` keys it knows;
        an array through its only session's map, so give it the recording of the session it
        was fitted on). Fitted teachers are cached as BLEND's are (``teacher_cache``).
    strategy : str, Strategy class or instance, torch.nn.Module or None, default="latent"
        Distillation term between student and teacher latents: ``"latent"``
        (:class:`~sklearn_blend.distill.LatentAlignment`, mean squared error; through a learned
        projection when the widths differ), ``LatentAlignment(metric="cosine")``, any name
        registered with :func:`sklearn_blend.register_strategy` or a module whose
        ``forward(student, teacher)`` returns the term. ``None``: no teacher and no privileged
        signal needed, the same model alone (the baseline without distillation).
    alpha : float in [0, 1], default=0.5
        Weight of the reconstruction loss; ``1 - alpha`` weighs the distillation.
    distill_warmup_steps : int, default=0
        Training steps over which the distillation's weight rises linearly from 0 to
        ``1 - alpha``: the student first learns to reconstruct its own signal. Where the
        teacher's latents are hard to predict from the student's signal, distilling from the
        first step can stall the reconstruction at chance until early stopping ends the fit
        (``benchmarks/crossmodal_real.py`` measures it on a real recording).
    teacher_hidden_size : int, optional
        Width of the teacher built when ``teacher`` is ``None`` or a name (default
        ``hidden_size``).
""" + "\n".join("    " + line for line in _SIZES_DOC.splitlines()) + """
    teacher_cache : bool, str, path or joblib.Memory, default=True
        Where fitted teachers are kept for reuse (as in :class:`BlendEstimator`).

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The student's net.
    teacher_ : MaskedAutoencoder or None
        The fitted teacher (``None`` with ``strategy=None``).
    sessions_, n_channels_, n_time_in_, means_, scales_, n_iter_, config_, device_
        As in :class:`MaskedAutoencoder`, of the student.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_blend import CrossModalEstimator
    >>> rng = np.random.default_rng(0)
    >>> latent = rng.normal(size=(24, 10, 2))
    >>> spikes = rng.poisson(np.exp(latent @ rng.normal(size=(2, 8)) * 0.5))
    >>> lfp = latent @ rng.normal(size=(2, 5)) + rng.normal(size=(24, 10, 5))
    >>> model = CrossModalEstimator(hidden_size=8, n_layers=1, ffn_size=16, max_epochs=2,
    ...                             random_state=0).fit(lfp, privileged=spikes)
    >>> model.transform(lfp).shape
    (24, 10, 8)
    """

    _parameters = parameters({
        "student": Parameter("lfp", _check_signal),
        "teacher": Parameter(None),
        "strategy": Distiller.PARAMETERS["strategy"]._replace(default="latent"),
        "alpha": Parameter(0.5, Interval(float, 0, 1)),
        "distill_warmup_steps": Parameter(0, Interval(int, 0)),
        "teacher_hidden_size": width(None, none=True),
        **SIZES,
        "teacher_cache": Distiller.PARAMETERS["teacher_cache"],
    }, defaults=SESSION_DEFAULTS)
    _seed_names = ("teacher", "student")

    def _modality(self):
        return get_modality(self.student)

    @classmethod
    def _upgrade_state(cls, state, version):
        """Format 1 (sklearn_blend 0.1): ``alignment`` ("mse", "cosine" or None) was the
        strategy, the student read LFP, and ``fit`` took the spikes as ``spikes=``. Formats 1
        and 2: latent alignment compared the latents without a head where the widths matched
        (``LatentAlignment(head=None)``). Formats 1 to 3: it compared them uncentred
        (``LatentAlignment(centre=False)``), from the first step (``distill_warmup_steps=0``)."""
        if version < 2 and "alignment" in state:
            alignment = state.pop("alignment")
            strategies = {"mse": "latent", None: None,
                          "cosine": {"t": "strategy", "cls": "sklearn_blend:LatentAlignment",
                                     "params": {"t": "dict", "s": {"metric": "cosine"}}}}
            if alignment not in ("mse", "cosine", None):
                raise ValueError(f"alignment={alignment!r} is no alignment of format 1")
            state = {"student": "lfp", "strategy": strategies[alignment], **state}
            request = state.get("_metadata_request")
            if type(request) is dict and type(request.get("requests")) is dict:
                fit = request["requests"].get("fit")
                if type(fit) is dict and type(fit.get("s")) is dict and "spikes" in fit["s"]:
                    fit["s"]["privileged"] = fit["s"].pop("spikes")
        if version < 4:
            old = {"centre": False} if version == 3 else {"head": None, "centre": False}
            state = dict(state, strategy=cls._old_alignment(state.get("strategy"), old))
            state.setdefault("distill_warmup_steps", 0)
        return state

    @staticmethod
    def _old_alignment(node, old):
        """A strategy node of an older format: latent alignment given the ``old`` values of the
        parameters the node does not set (the alignment of that format)."""
        latent = "sklearn_blend:LatentAlignment"
        if node == "latent" or (type(node) is dict and node.get("t") == "registered_strategy"
                                and node.get("cls") == latent):
            return {"t": "strategy", "cls": latent,
                    "params": {"t": "dict", "s": {"metric": "mse", **old}}}
        if (type(node) is dict and node.get("t") == "strategy" and node.get("cls") == latent
                and type(node.get("params")) is dict and type(node["params"].get("s")) is dict):
            node = dict(node, params=dict(node["params"], s={**old, **node["params"]["s"]}))
        return node

    def _teacher_modality(self):
        """The modality the teacher reads."""
        if self.teacher is None or isinstance(self.teacher, str):
            return get_modality(self.teacher or "spikes")
        return get_modality(getattr(self.teacher, "modality", "spikes"))

    _compares = "latents"

    def _check_params(self):
        super()._check_params()
        self._check_strategy_fits()
        if isinstance(self.teacher, str):
            _check_signal(self.teacher, "teacher")

    # ------------------------------------------------------------------ the teacher
    def teacher_params(self):
        """Parameters of the teacher built when ``teacher`` is ``None`` or a name (before
        seeding)."""
        names = MaskedAutoencoder._get_param_names()
        params = {name: getattr(self, name) for name in names if hasattr(self, name)}
        params["modality"] = self._teacher_modality().name
        if self.teacher_hidden_size is not None:
            params["hidden_size"] = self.teacher_hidden_size
        return params

    def _default_teacher(self):
        return MaskedAutoencoder(**self.teacher_params()), False

    def _check_teacher_type(self, teacher):
        if isinstance(teacher, str):
            return
        if not isinstance(teacher, BaseEstimator) or not hasattr(teacher, "transform"):
            raise TypeError("teacher must be None, a modality name, a MaskedAutoencoder "
                            f"(fitted or not) or a fitted estimator with transform; got "
                            f"{teacher!r}.")

    def _check_privileged(self, privileged, X):
        """Validated privileged signal, trial for trial and bin for bin with ``X``."""
        if isinstance(X, SessionTrials) != isinstance(privileged, SessionTrials):
            raise TypeError("X and privileged must both be arrays (one session) or both "
                            "SessionTrials (several sessions), trial for trial.")
        n_trials = len(X)
        if isinstance(privileged, SessionTrials):
            if len(privileged) != n_trials:
                raise ValueError(f"privileged has {len(privileged)} trials and X {n_trials}: "
                                 "they must be the same trials, in the same order.")
            keys = [X.keys[s] for s in X.session]
            if keys != [privileged.keys[s] for s in privileged.session]:
                raise ValueError("privileged and X must hold the same sessions trial for trial "
                                 "(their keys differ).")
            if privileged.n_time != X.n_time:
                raise ValueError(f"privileged has {privileged.n_time} bins per trial and X "
                                 f"{X.n_time}: both must be binned alike.")
            return privileged
        modality = self._teacher_modality()
        values, _ = modality.validate(privileged, name="privileged")
        n_time = np.shape(X)[1] if np.ndim(X) == 3 else 1
        if values.shape[:2] != (n_trials, n_time):
            raise ValueError(f"privileged must be (n_trials, n_time, n_channels) of "
                             f"{modality.what} with the trials and bins of X ({n_trials}, "
                             f"{n_time}); got shape {values.shape}.")
        return values

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, *, privileged=None):
        """Train the student on ``X``, distilled from a teacher reading ``privileged``.

        Parameters
        ----------
        X : array-like of shape (n_trials, n_time, n_channels) or SessionTrials
            The everyday signal per bin (LFP: any sign; preprocess it with
            :class:`sklearn_blend.lfp.LFPPreprocessor` to the bin rate), or several sessions'
            as ``SessionTrials(..., modality=LFP)``.
        y : ignored
            Present for pipelines (a final decoder's target passes through).
        privileged : array-like of shape (n_trials, n_time, n_channels) or SessionTrials
            The privileged signal recorded with ``X`` (spike counts by default), trial for
            trial and bin for bin; training only. Required unless ``strategy=None``.

        Returns
        -------
        self : CrossModalEstimator
        """
        return self._fit(X, y, privileged=privileged)

    def _read_fit_data(self, X, y=None, privileged=None):
        values, slots = self._read_sessions(X)
        if self.strategy is not None:
            if privileged is None:
                raise ValueError(
                    f"strategy={self.strategy!r} distils a teacher of "
                    f"{self._teacher_modality().what}: pass the signal recorded with X as "
                    "fit(X, privileged=...) (in a Pipeline: enable metadata routing and "
                    "set_fit_request(privileged=True)), or use strategy=None for the model "
                    "without distillation.")
            privileged = self._check_privileged(privileged, X)
        return values, slots, privileged

    def _fit_models(self, data, seeds):
        values, slots, privileged = data
        self.teacher_ = latents = None
        if self.strategy is not None:
            self.teacher_ = self._fitted_teacher((privileged,), {}, seeds["teacher"])
            try:
                latents = np.asarray(self.teacher_.transform(privileged), dtype=np.float32)
            except ValueError as error:
                raise ValueError(f"the teacher cannot read privileged: {error}") from error
            if latents.shape[:2] != values.shape[:2]:
                raise ValueError(f"the teacher's latents {latents.shape} do not cover X's "
                                 f"trials and bins {values.shape[:2]}.")
        self.net_ = self._train_on(
            self._scale(values, slots), slots,
            {} if latents is None else {"teacher_width": latents.shape[2]},
            seeds["student"],
            f"{self.student} student" if latents is not None else f"{self.student} model",
            teacher=latents)


__all__ = ["CrossModalEstimator", "MaskedAutoencoder"]
