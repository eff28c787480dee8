"""Cross-modal distillation as scikit-learn estimators: spikes are privileged, LFP is everyday.

:class:`MaskedAutoencoder` is a multi-session transformer trained by masked time-step modelling
of one signal (spike counts: the cross-modal teacher; LFP: the LFP-only baseline).
:class:`CrossModalEstimator` trains an LFP model whose latents are also aligned to those a
spike teacher computes from the simultaneously recorded spikes (Erturk, Hashemi, Shanechi);
at inference only LFP is needed. PyTorch stays behind :mod:`sklearn_blend.training.crossmodal`
and the training core; these classes validate arrays and sessions and derive seeds.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..data.trials import SessionTrials, pad_channels
from ..data.validation import (check_in, check_number, check_teacher_cache,
                               check_training_params, is_fitted)
from ..modalities import LFP, SPIKES
from ..models.sessions import SessionConfig
from ..persistence import SaveMixin
from ..training import core as _training
from ..training import teacher_cache as _teacher_cache
from ..training.crossmodal import SessionBuilder
from ..training.objective import pack


class _SessionModel(SaveMixin, TransformerMixin, BaseEstimator):
    """What both estimators share: sessions, scaling, training and latents."""

    def _check_sizes(self):
        check_training_params(self)
        for name in ("hidden_size", "n_layers", "n_heads", "ffn_size"):
            check_number(getattr(self, name), name, low=1, integer=True)
        if self.hidden_size % self.n_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by n_heads "
                             f"({self.n_heads}).")
        check_in(self.precision, "precision", tuple(_training.PRECISIONS))

    # ------------------------------------------------------------------ sessions
    @staticmethod
    def _read(X, modality, name):
        """``(values, slots, keys, n_channels)`` of the sessions with trials in ``X`` (an array
        or :class:`SessionTrials` of ``modality``), values zero-padded to the widest."""
        if isinstance(X, SessionTrials):
            if X.modality.kind != modality.kind:
                raise ValueError(f"{name} holds {X.modality.what}, but {modality.what} are "
                                 f"expected: SessionTrials(..., modality={modality.name.upper()}).")
            if not len(X):
                raise ValueError(f"{name} selects no trials (0 samples).")
            used = sorted(set(X.session.tolist()))
            slot = {s: k for k, s in enumerate(used)}
            values = X.padded()[..., : max(X.n_neurons[s] for s in used)]
            return (values, np.array([slot[s] for s in X.session], dtype=np.int64),
                    [X.keys[s] for s in used], tuple(X.n_neurons[s] for s in used))
        values, _ = modality.validate(X, name=name)
        return values, np.zeros(len(values), np.int64), [0], (values.shape[2],)

    def _known(self, X, name, session=None):
        """Values ``X`` of sessions this model knows, padded and scaled, with each trial's
        slot and whether ``X`` was 2-D.

        An array is read as session ``session`` (default: the only one the model knows, so
        that LFP of another session with the same channel layout is read through the map of
        the session the model was fitted or distilled on)."""
        modality = self._modality()
        was_2d = False
        if isinstance(X, SessionTrials):
            values, slots, keys, widths = self._read(X, modality, name)
            unknown = [k for k in keys if k not in self.sessions_]
            if unknown:
                raise ValueError(f"{name} holds trials of sessions {unknown} that the model has "
                                 f"not seen; it knows {self.sessions_}. Add them first "
                                 "(add_sessions).")
            slot_of = [self.sessions_.index(k) for k in keys]
            for key, width, s in zip(keys, widths, slot_of):
                if width != self.n_channels_[s]:
                    raise ValueError(f"session {key!r} of {name} has {width} channels, but the "
                                     f"model knows it with {self.n_channels_[s]}.")
            slots = np.asarray(slot_of, dtype=np.int64)[slots]
        else:
            values, was_2d = modality.validate(X, name=name)
            if session is None:
                if len(self.sessions_) > 1:
                    raise ValueError(
                        f"the model knows sessions {self.sessions_}: pass {name} as "
                        "SessionTrials, or name the session whose input map reads this array "
                        "with session=<key>.")
                session = self.sessions_[0]
            if session not in self.sessions_:
                raise ValueError(f"session={session!r} is not one of {self.sessions_}.")
            s = self.sessions_.index(session)
            if values.shape[2] != self.n_channels_[s]:
                raise ValueError(
                    f"{name} has {values.shape[2]} features, but {type(self).__name__} is "
                    f"expecting {self.n_channels_[s]} features as input (the channels of "
                    f"session {session!r}): {name} must be (n_trials, n_time <= "
                    f"{self.n_time_in_}, {self.n_channels_[s]}).")
            slots = np.full(len(values), s, np.int64)
        if values.shape[1] > self.n_time_in_:
            raise ValueError(f"{name} has {values.shape[1]} bins; the model was fitted on "
                             f"{self.n_time_in_} ({name} must be (n_trials, n_time <= "
                             f"{self.n_time_in_}, n_channels)).")
        return self._scale(pad_channels(values, max(self.n_channels_)), slots), slots, was_2d

    def _fit_scaling(self, values, slots, sessions):
        """Per-channel mean and sd of each of ``sessions`` (continuous signals; training
        statistics), kept in ``means_`` and ``scales_``; counts are left as they are."""
        n_sessions = len(self.n_channels_)
        self.means_ = list(getattr(self, "means_", []))[:n_sessions]
        self.scales_ = list(getattr(self, "scales_", []))[:n_sessions]
        while len(self.means_) < n_sessions:
            self.means_.append(None), self.scales_.append(None)
        for s in sessions:
            n = self.n_channels_[s]
            own = values[slots == s][..., :n].reshape(-1, n).astype(np.float64)
            if self._modality().kind != "continuous":
                self.means_[s], self.scales_[s] = np.zeros(n), np.ones(n)
                continue
            sd = own.std(axis=0)
            self.means_[s], self.scales_[s] = own.mean(axis=0), np.where(sd > 0, sd, 1.0)

    def _scale(self, values, slots):
        out = np.array(values, dtype=np.float32, copy=True)
        for s in np.unique(slots):
            n = self.n_channels_[s]
            rows = slots == s
            out[rows, :, :n] = (out[rows, :, :n] - self.means_[s]) / self.scales_[s]
        return out

    def _config(self):
        return SessionConfig(n_channels=tuple(self.n_channels_), n_time=self.n_time_in_,
                             modality=self._modality().name, hidden_size=self.hidden_size,
                             n_layers=self.n_layers, n_heads=self.n_heads,
                             ffn_size=self.ffn_size, dropout=self.dropout)

    def _mean_counts(self, values, slots, sessions):
        if self._modality().kind != "counts":
            return None
        return [values[slots == s][..., :n].mean(axis=(0, 1))
                if s in sessions and (slots == s).any() else None
                for s, n in enumerate(self.n_channels_)]

    def _train(self, values, slots, builder_options, seed, description, **overrides):
        modality = self._modality()
        data = {modality.name: values, "session": slots}
        if "teacher_latents" in builder_options:
            data["teacher_latents"] = builder_options.pop("teacher_latents")
        return _training.fit_net(self._builder(**builder_options),
                                 pack(data, {modality.name: values}),
                                 _training.training_config(self, self.device_, **overrides),
                                 seed, description)

    def _net_builder(self, attribute, saved):
        """The recipe of :attr:`net_` (the session transformer of ``config_`` and its masked
        objective, with the latent alignment to the teacher's latents if the saved objective
        had it: ``saved["teacher"]``, ``saved["teacher_width"]``), which
        :func:`sklearn_blend.load` loads saved weights into."""
        return self._builder(teacher_width=saved["teacher_width"] if saved.get("teacher")
                             else None)

    def _builder(self, *, teacher_width=None, **options):
        """The recipe of the session transformer of ``config_`` and its masked objective,
        aligned (``alignment``, weighted by ``alpha``) to teacher latents of ``teacher_width``
        when given; ``options`` are the rest of :class:`SessionBuilder`'s (``mean_counts``,
        ``start``, ``train_only_sessions``)."""
        modality = self._modality()
        if teacher_width is not None:
            options.update(teacher_width=teacher_width, metric=self.alignment, alpha=self.alpha)
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
        self._check_sizes()
        if not isinstance(X, SessionTrials):
            raise TypeError("add_sessions takes X as SessionTrials whose keys name the new "
                            "sessions: SessionTrials([X_new], keys=['new'], modality=...).")
        if max_epochs is not None:
            check_number(max_epochs, "max_epochs", low=1, integer=True)
        values, slots, keys, widths = self._read(X, self._modality(), "X")
        known = [k for k in keys if k in self.sessions_]
        if known:
            raise ValueError(f"X holds trials of sessions {known} that the model knows; "
                             "add_sessions is for new sessions.")
        if values.shape[1] != self.n_time_in_:
            raise ValueError(f"X has {values.shape[1]} bins; the model's trials have "
                             f"{self.n_time_in_}.")
        old = len(self.sessions_)
        previous = _training.trained_model(self.net_)
        self.sessions_ = list(self.sessions_) + keys
        self.n_channels_ = tuple(self.n_channels_) + tuple(widths)
        self.config_ = dataclasses.replace(self.config_, n_channels=self.n_channels_)
        slots = slots + old
        padded = pad_channels(values, max(self.n_channels_))
        self._fit_scaling(padded, slots, range(old, len(self.sessions_)))
        scaled = self._scale(padded, slots)
        new = list(range(old, len(self.sessions_)))
        self.net_ = self._train(
            scaled, slots,
            dict(mean_counts=self._mean_counts(scaled, slots, new), start=previous,
                 train_only_sessions=new),
            int(check_random_state(self.random_state).randint(_training.MAX_SEED)) + 1,
            "new session maps", max_epochs=max_epochs or self.max_epochs)
        self.n_iter_ = len(self.net_.history)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.positive_only = self._modality().non_negative
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


_SIZE_DOC = """    hidden_size, n_layers, n_heads, ffn_size : int, default=64, 2, 2, 128
        Transformer width, depth, heads and feed-forward width.
    dropout : float in [0, 1), default=0.2
        Dropout on the input values, the tokens and the residual branches.
    mask_ratio : float in (0, 1), default=0.25
        Probability that a time bin is hidden (all its channels zeroed) in training.
    max_epochs, batch_size, lr, weight_decay, warmup_steps : default=200, 16, 1e-3, 0.01, 50
        AdamW with linear warm-up and cosine decay.
    early_stopping : bool, default=True
        Stop when the masked loss of ``validation_fraction`` of the trials has not improved
        for ``n_iter_no_change`` epochs; keep the best epoch.
    validation_fraction : float, default=0.2
    n_iter_no_change : int, default=30
    random_state : int, RandomState instance or None, default=None
    device : {"cpu", "cuda", "cuda:N", "mps", "auto"}, default="cpu"
        PyTorch device of training and prediction: ``"cuda"`` the current GPU, ``"cuda:N"``
        the N-th, ``"mps"`` Apple silicon, ``"auto"`` the best one the machine that fits has
        (CUDA, else MPS, else CPU). Resolved in ``fit`` (``device_``); a device the machine
        lacks raises a ``ValueError``.
    precision : {"float32", "bfloat16"}, default="float32"
    verbose : int, default=0
    distributed : {None, "accelerate"}, default=None
        ``"accelerate"`` trains data-parallel over the processes that ``accelerate launch`` or
        ``torchrun`` started (one per GPU or node; Hugging Face accelerate, the ``[accelerate]``
        extra), each running the same script on the same data; run as plain ``python`` it is
        one process. See README, "Scaling out".
"""


class MaskedAutoencoder(_SessionModel):
    __doc__ = """A multi-session transformer trained by masked time-step modelling of one signal.

    One token per time bin; each session has its own input map (its tokenization) and output
    map and a session embedding, the transformer is shared
    (:class:`~sklearn_blend.models.SessionTransformer`). Spike counts are reconstructed with a
    Poisson likelihood, continuous signals (LFP) with a Gaussian one on values z-scored per
    session and channel with training statistics. It is the spike teacher of
    :class:`CrossModalEstimator` (pretrain one on many sessions and pass it as ``teacher``)
    and, on LFP, the LFP-only model.

    Parameters
    ----------
    modality : {"spikes", "lfp"}, default="spikes"
        What ``X`` holds.
""" + _SIZE_DOC + """
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

    def __init__(self, *, modality="spikes", hidden_size=64, n_layers=2, n_heads=2,
                 ffn_size=128, dropout=0.2, mask_ratio=0.25, max_epochs=200, batch_size=16,
                 lr=1e-3, weight_decay=0.01, warmup_steps=50, early_stopping=True,
                 validation_fraction=0.2, n_iter_no_change=30, random_state=None,
                 device="cpu", precision="float32", verbose=0, distributed=None):
        self.modality = modality
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.ffn_size = ffn_size
        self.dropout = dropout
        self.mask_ratio = mask_ratio
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_steps = warmup_steps
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.device = device
        self.precision = precision
        self.verbose = verbose
        self.distributed = distributed

    def _modality(self):
        return SPIKES if self.modality == "spikes" else LFP

    def fit(self, X, y=None):
        """Train on ``X`` (an array of one session, or :class:`SessionTrials`); ``y`` is
        ignored.

        Returns
        -------
        self : MaskedAutoencoder
        """
        check_in(self.modality, "modality", ("spikes", "lfp"))
        self._check_sizes()
        values, slots, self.sessions_, self.n_channels_ = self._read(
            X, self._modality(), "X")
        self.n_time_in_ = values.shape[1]
        if isinstance(X, SessionTrials):
            self.__dict__.pop("n_features_in_", None)
        else:
            self.n_features_in_ = values.shape[2]
        self.__dict__.pop("means_", None), self.__dict__.pop("scales_", None)
        self._fit_scaling(values, slots, range(len(self.sessions_)))
        self.config_ = self._config()
        self.device_ = _training.resolve_device(self.device)
        scaled = self._scale(values, slots)
        seed = int(check_random_state(self.random_state).randint(_training.MAX_SEED))
        self.net_ = self._train(
            scaled, slots,
            dict(mean_counts=self._mean_counts(scaled, slots, range(len(self.sessions_)))),
            seed, f"{self.modality} autoencoder")
        self.n_iter_ = len(self.net_.history)
        return self


class CrossModalEstimator(_SessionModel):
    __doc__ = """Cross-modal distillation (Erturk, Hashemi, Shanechi): an LFP model guided by spikes.

    ``fit(X_lfp, spikes=S)`` trains a :class:`MaskedAutoencoder`-style LFP model (masked
    time-step modelling, Gaussian on z-scored LFP) whose latents per bin are also pulled
    toward the latents of a spike teacher that reads the simultaneously recorded spikes ``S``
    (the privileged modality): the loss is ``alpha * reconstruction + (1 - alpha) *
    alignment``. The teacher's latents are computed once from the whole, unmasked spikes by
    the frozen teacher. At inference only LFP is needed: ``transform(X_lfp)`` gives the
    student's latents per bin, ready for a decoder such as ``PerBin(RidgeCV())``.

    The spikes arrive as metadata: in a ``Pipeline`` or ``GridSearchCV``, enable scikit-learn's
    metadata routing (``sklearn.set_config(enable_metadata_routing=True)``) and request them
    with ``CrossModalEstimator(...).set_fit_request(spikes=True)``; they are split with the
    trials like ``X``.

    Parameters
    ----------
    teacher : None, MaskedAutoencoder or FrozenEstimator, default=None
        ``None``: a spike :class:`MaskedAutoencoder` with this estimator's sizes (and
        ``teacher_hidden_size``) fitted on ``spikes`` in ``fit``; an unfitted estimator is
        cloned, seeded from ``random_state`` unless it has its own, and fitted on ``spikes``;
        a fitted one (say pretrained on many sessions) is used as it is: it reads ``spikes``
        through its own sessions' maps (``SessionTrials`` keys it knows; an array through its
        only session's map, so give it the spikes of the session it was fitted on). Fitted
        teachers are cached as BLEND's are (``teacher_cache``).
    alignment : {"mse", "cosine"} or None, default="mse"
        Distance between student and teacher latents
        (:class:`~sklearn_blend.distill.LatentAlignment`). ``None``: no teacher and no spikes
        needed, the same LFP model alone (the LFP-only baseline).
    alpha : float in [0, 1], default=0.5
        Weight of the reconstruction loss; ``1 - alpha`` weighs the alignment.
    teacher_hidden_size : int, optional
        Width of the teacher built when ``teacher=None`` (default ``hidden_size``). Where the
        teacher's width differs from the student's, a learned projection maps the student's
        latents to the teacher's width for the alignment.
""" + _SIZE_DOC + """    teacher_cache : bool, str, path or joblib.Memory, default=True
        Where fitted teachers are kept for reuse (as in :class:`BlendEstimator`).

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The student's net.
    teacher_ : MaskedAutoencoder or None
        The fitted spike teacher (``None`` with ``alignment=None``).
    sessions_, n_channels_, n_time_in_, means_, scales_, n_iter_, config_, device_
        As in :class:`MaskedAutoencoder`, of the LFP student.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_blend import CrossModalEstimator
    >>> rng = np.random.default_rng(0)
    >>> latent = rng.normal(size=(24, 10, 2))
    >>> spikes = rng.poisson(np.exp(latent @ rng.normal(size=(2, 8)) * 0.5))
    >>> lfp = latent @ rng.normal(size=(2, 5)) + rng.normal(size=(24, 10, 5))
    >>> model = CrossModalEstimator(hidden_size=8, n_layers=1, ffn_size=16, max_epochs=2,
    ...                             random_state=0).fit(lfp, spikes=spikes)
    >>> model.transform(lfp).shape
    (24, 10, 8)
    """

    def __init__(self, *, teacher=None, alignment="mse", alpha=0.5, teacher_hidden_size=None,
                 hidden_size=64, n_layers=2, n_heads=2, ffn_size=128, dropout=0.2,
                 mask_ratio=0.25, max_epochs=200, batch_size=16, lr=1e-3, weight_decay=0.01,
                 warmup_steps=50, early_stopping=True, validation_fraction=0.2,
                 n_iter_no_change=30, teacher_cache=True, random_state=None, device="cpu",
                 precision="float32", verbose=0, distributed=None):
        self.teacher = teacher
        self.alignment = alignment
        self.alpha = alpha
        self.teacher_hidden_size = teacher_hidden_size
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.ffn_size = ffn_size
        self.dropout = dropout
        self.mask_ratio = mask_ratio
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_steps = warmup_steps
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.teacher_cache = teacher_cache
        self.random_state = random_state
        self.device = device
        self.precision = precision
        self.verbose = verbose
        self.distributed = distributed

    @staticmethod
    def _modality():
        return LFP

    def teacher_params(self):
        """Parameters of the spike teacher built when ``teacher=None`` (before seeding)."""
        names = MaskedAutoencoder._get_param_names()
        params = {name: getattr(self, name) for name in names if hasattr(self, name)}
        params["modality"] = "spikes"
        if self.teacher_hidden_size is not None:
            params["hidden_size"] = self.teacher_hidden_size
        return params

    def _check_spikes(self, spikes, X):
        """Validated spikes aligned with the LFP trials ``X``."""
        if isinstance(X, SessionTrials) != isinstance(spikes, SessionTrials):
            raise TypeError("X and spikes must both be arrays (one session) or both "
                            "SessionTrials (several sessions), trial for trial.")
        n_lfp = len(X)
        if isinstance(spikes, SessionTrials):
            if len(spikes) != n_lfp:
                raise ValueError(f"spikes has {len(spikes)} trials and X {n_lfp}: they must be "
                                 "the same trials, in the same order.")
            lfp_keys = [X.keys[s] for s in X.session]
            spike_keys = [spikes.keys[s] for s in spikes.session]
            if lfp_keys != spike_keys:
                raise ValueError("spikes and X must hold the same sessions trial for trial "
                                 "(their keys differ).")
            if spikes.n_time != X.n_time:
                raise ValueError(f"spikes has {spikes.n_time} bins per trial and X "
                                 f"{X.n_time}: both must be binned alike.")
            return spikes
        counts, _ = SPIKES.validate(spikes, name="spikes")
        n_time = np.shape(X)[1] if np.ndim(X) == 3 else 1
        if counts.shape[:2] != (n_lfp, n_time):
            raise ValueError(f"spikes must be (n_trials, n_time, n_neurons) with the trials and "
                             f"bins of X ({n_lfp}, {n_time}); got shape {counts.shape}.")
        return counts

    def _fit_teacher(self, spikes, seed):
        if self.teacher is not None:
            if not isinstance(self.teacher, BaseEstimator) or not hasattr(self.teacher,
                                                                           "transform"):
                raise TypeError("teacher must be None, a MaskedAutoencoder (fitted or not) or "
                                f"a fitted estimator with transform; got {self.teacher!r}.")
            modality = getattr(self.teacher, "modality", "spikes")
            if modality != "spikes":
                raise ValueError(f"the teacher reads {modality!r}; a cross-modal teacher reads "
                                 "spikes: MaskedAutoencoder(modality='spikes').")
        if self.teacher is not None and is_fitted(self.teacher):
            return self.teacher
        if self.teacher is None:
            teacher, own_seed = MaskedAutoencoder(**self.teacher_params()), False
        else:
            _teacher_cache.check_unwrapped(self.teacher)
            teacher = clone(self.teacher)
            if "random_state" not in teacher.get_params(deep=False):
                raise TypeError(f"an unfitted teacher is seeded here and needs a random_state "
                                f"parameter; {type(teacher).__name__} has none (fit it first).")
            own_seed = teacher.random_state is not None
        return _teacher_cache.fit_teacher(teacher, (spikes,), {}, self.teacher_cache,
                                          own_seed=own_seed, random_state=self.random_state,
                                          seed=seed)

    def fit(self, X, y=None, *, spikes=None):
        """Train the LFP student on ``X``, aligned to a spike teacher reading ``spikes``.

        Parameters
        ----------
        X : array-like of shape (n_trials, n_time, n_channels) or SessionTrials
            LFP per bin (any sign; preprocess with :class:`sklearn_blend.lfp.LFPPreprocessor`
            to the bin rate), or several sessions' as ``SessionTrials(..., modality=LFP)``.
        y : ignored
            Present for pipelines (a final decoder's target passes through).
        spikes : array-like of shape (n_trials, n_time, n_neurons) or SessionTrials
            Spike counts recorded with ``X``, trial for trial and bin for bin (the privileged
            modality, training only). Required unless ``alignment=None``.

        Returns
        -------
        self : CrossModalEstimator
        """
        self._check_sizes()
        check_in(self.alignment, "alignment", ("mse", "cosine", None))
        check_number(self.alpha, "alpha", low=0, high=1)
        check_teacher_cache(self.teacher_cache)
        if self.teacher_hidden_size is not None:
            check_number(self.teacher_hidden_size, "teacher_hidden_size", low=1, integer=True)
        values, slots, self.sessions_, self.n_channels_ = self._read(X, LFP, "X")
        self.n_time_in_ = values.shape[1]
        if isinstance(X, SessionTrials):
            self.__dict__.pop("n_features_in_", None)
        else:
            self.n_features_in_ = values.shape[2]
        self.device_ = _training.resolve_device(self.device)
        teacher_seed, student_seed = check_random_state(self.random_state).randint(
            _training.MAX_SEED, size=2)
        options = {}
        self.teacher_ = None
        if self.alignment is not None:
            if spikes is None:
                raise ValueError(
                    f"alignment={self.alignment!r} distils a spike teacher: pass the spikes "
                    "recorded with X as fit(X, spikes=...) (in a Pipeline: enable metadata "
                    "routing and set_fit_request(spikes=True)), or use alignment=None for "
                    "the LFP-only model.")
            spikes = self._check_spikes(spikes, X)
            self.teacher_ = self._fit_teacher(spikes, int(teacher_seed))
            try:
                latents = np.asarray(self.teacher_.transform(spikes), dtype=np.float32)
            except ValueError as error:
                raise ValueError(f"the teacher cannot read spikes: {error}") from error
            if latents.shape[:2] != values.shape[:2]:
                raise ValueError(f"the teacher's latents {latents.shape} do not cover X's "
                                 f"trials and bins {values.shape[:2]}.")
            options = dict(teacher_latents=latents, teacher_width=latents.shape[2])
        self.__dict__.pop("means_", None), self.__dict__.pop("scales_", None)
        self._fit_scaling(values, slots, range(len(self.sessions_)))
        self.config_ = self._config()
        self.net_ = self._train(self._scale(values, slots), slots, options, int(student_seed),
                                "LFP student" if self.teacher_ is not None else "LFP model")
        self.n_iter_ = len(self.net_.history)
        return self


__all__ = ["CrossModalEstimator", "MaskedAutoencoder"]
