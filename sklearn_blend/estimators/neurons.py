"""Per-neuron features for cell-type prediction: :class:`NeuronEmbedding` (NeuPRINT + BLEND).

PyTorch stays behind :mod:`sklearn_blend.training.neurons`; this module validates inputs and
parameters, derives seeds, and maps neurons to rows of the learned embedding table.
"""

from __future__ import annotations

import copy
import numbers
import warnings

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..data.recordings import Recordings
from ..data.validation import Flag, Interval, Options
from ..distill import build_strategy, strategy_name
from ..modalities import FLUORESCENCE, SPIKES
from ..training import core as _training
from ..training import neurons as _neuron_training
from .base import Distiller, ModelEstimator, Parameter, depth, parameters, width


class NeuronEmbedding(Distiller, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                      ModelEstimator):
    """One feature vector per neuron: NeuPRINT embeddings, optionally distilled with BLEND.

    ``fit(X)`` trains NeuPRINT (Mi et al., 2023) on the selected neurons of ``X``: each neuron
    is a sequence, and at every frame the model reads the neuron's own masked activity, its
    learned time-invariant embedding and permutation-invariant population inputs (mean and
    standard deviation over the session's neurons), and predicts the masked activity. With a
    ``strategy`` it first trains a teacher that also reads the behavior (running speed, pupil
    size) among its population inputs, then a student without behavior by
    ``alpha * masked loss + (1 - alpha) * distillation`` (BLEND, Guo et al., 2025).
    The teacher follows the protocol of :class:`~sklearn_blend.BlendEstimator`:
    ``teacher=None`` is ``NeuronEmbedding(strategy=None, behavior_inputs=True)`` with this
    estimator's settings, fitted on ``X`` (or reused from ``teacher_cache``), and teaches
    online: its model runs on the student's batches. ``transform(X)`` returns the student's
    embedding of each selected neuron, ``(n_neurons, embedding_dim)``: learned in ``fit`` for
    neurons it saw, and for others fitted with the dynamics frozen (``embedding_epochs``
    epochs), as NeuPRINT does for held-out neurons. Neurons are recognised by their activity
    trace. The teacher reads each behavior channel standardised over the frames of the fitted
    sessions, so any units work; behavior is never needed after fitting. The embeddings of the
    new neurons of one ``transform`` call are fitted together, so (like any stochastic fit) a
    new neuron's embedding varies a little with which other new neurons come with it; with an
    int ``random_state`` the same call gives the same result.

    Put a classifier after it: ``Pipeline([("emb", NeuronEmbedding()), ("clf",
    LogisticRegression())])`` with ``X`` a :class:`~sklearn_blend.Recordings` and ``y`` the
    cell types; cross-validation then splits neurons, and every fold keeps each neuron's whole
    session as context.

    Parameters
    ----------
    strategy : str, Strategy class or instance, or None, default="hard"
        Distillation term (:mod:`sklearn_blend.distill`, the same registry as
        :class:`~sklearn_blend.BlendEstimator`'s) between student and teacher predictions
        ``(window, frame, neuron)``; ``"soft"`` and ``"correlation"`` act over the
        ``group_size`` neurons of a training sample, ``"feature"`` also matches the hidden
        state of every layer. ``None``: plain NeuPRINT, no teacher (and no behavior unless
        ``behavior_inputs``).
    behavior_inputs : bool, default=False
        With ``strategy=None``: NeuPRINT as published, reading the behavior among its
        population inputs (mean and standard deviation of the population, running speed,
        pupil size). It is the teacher a strategy would distil from: with the same settings
        and an int ``random_state`` it is the very same model, shared through
        ``teacher_cache``. Behavior is then needed in ``fit`` and, for neurons not seen in
        ``fit``, in ``transform``. A reference for what the students miss, not a spikes-only
        model.
    alpha : float in [0, 1], default=0.5
        Weight of the student's own masked loss; ``1 - alpha`` weighs distillation.
    tau : float > 0, default=2.0
        Softmax temperature of ``"soft"``.
    loss : {"mse", "poisson"}, default="mse"
        Reconstruction loss on the masked entries: squared error of the activity (NeuPRINT's
        choice for normalised fluorescence) or Poisson NLL of predicted log-rates
        (non-negative activity such as deconvolved events).
    mask_ratio : float in (0, 1), default=0.25
        Probability that an entry (frame of one neuron) is masked; the last frame of every
        window is always masked. Masked entries are set to 0 (80%), to Gaussian noise (10%) or
        left (10%), and all are predicted.
    embedding_dim : int, default=64
        Width of each neuron's embedding: the number of output features.
    hidden_size, n_layers, n_heads, ffn_size : int, default=64, 1, 2, 128
        Transformer width, layers, attention heads and feed-forward width.
    teacher : None, NeuronEmbedding or FrozenEstimator, default=None
        ``None``: ``NeuronEmbedding(strategy=None, behavior_inputs=True)`` with this
        estimator's settings (and ``teacher_hidden_size``), the very model that settings
        would fit on its own (with an int ``random_state``, its seed too). An unfitted one is
        cloned and fitted on ``X`` (seeded from ``random_state`` unless it has its own); a
        fitted one is used as it is and must have been fitted on the same neurons. Either must
        read behavior (``behavior_inputs=True``).
    teacher_hidden_size : int or None, default=None
        Width of the teacher built when ``teacher=None``, if it should differ from the
        student's (``"feature"`` then aligns the layers through learned projections).
    dropout : float in [0, 1), default=0.1
        Dropout on the tokens and residual branches.
    context_backward, context_forward : int or None, default=None, 0
        Attention window in frames before / after each frame; the default is NeuPRINT's
        causal model (each frame sees itself and the whole past of the window).
    n_window : int, default=64
        Frames per training sample; if a session is shorter, every sample of that fit uses
        the shortest session's length.
    group_size : int, default=32
        Neurons of one session per training sample; a batch holds ``batch_size`` samples,
        so ``batch_size * group_size`` sequences.
    embedding_epochs : int, default=100
        Epochs to fit the embeddings of neurons not seen in ``fit`` (NeuPRINT: 100).
    teacher_cache : bool, str or joblib.Memory, default=True
        Reuse a teacher trained on the same neurons with the same teacher settings and seed
        (a grid over ``alpha``, ``tau`` or ``strategy`` trains one teacher per fold); see
        :class:`~sklearn_blend.BlendEstimator`. An int ``random_state`` keys the teacher by
        its seed; unseeded fits share any teacher fitted the same way; a ``RandomState`` is
        never cached.

    Attributes
    ----------
    embeddings_ : ndarray of shape (n_fitted_neurons, embedding_dim)
        Student embedding of each distinct neuron seen in ``fit``.
    student_net_ : skorch.NeuralNet
        The fitted net of the model (the student, or with ``behavior_inputs`` the model that
        reads behavior); ``history`` per epoch.
    teacher_ : NeuronEmbedding or None
        The fitted teacher (``None`` without a strategy).
    teacher_net_ : skorch.NeuralNet or None
        The fitted teacher's net (``teacher_.student_net_``).
    n_iter_ : int
        Epochs the student trained.
    n_features_in_ : int
        Frames per neuron, only when ``fit`` received a 2-D array.
    n_behavior_in_ : int
        Behavior channels the teacher (or, with ``behavior_inputs``, the model) read; 0 when
        no model read behavior.
    device_ : str
        Device the models live on (``device`` resolved).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import cross_val_score
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn_blend import NeuronEmbedding
    >>> from sklearn_blend.datasets import make_cell_types
    >>> data = make_cell_types(n_sessions=2, n_neurons=40, n_frames=300, random_state=0)
    >>> emb = NeuronEmbedding(strategy="hard", embedding_dim=8, hidden_size=16, max_epochs=2,
    ...                       early_stopping=False, embedding_epochs=2, random_state=0)
    >>> emb.fit_transform(data.X).shape
    (80, 8)
    >>> pipe = make_pipeline(emb, LogisticRegression(max_iter=1000))
    >>> scores = cross_val_score(pipe, data.X, data.ei, cv=2)
    """

    _parameters = parameters({
        "strategy": Distiller.PARAMETERS["strategy"],
        "behavior_inputs": Parameter(False, Flag()),
        "alpha": Parameter(0.5, Interval(float, 0, 1)),
        "tau": Parameter(2.0, Interval(float, 0, closed="right")),
        "loss": Parameter("mse", Options("mse", "poisson")),
        "mask_ratio": Parameter(0.25, Interval(float, 0, 1, closed="neither")),
        "embedding_dim": width(64),
        "hidden_size": width(64),
        "n_layers": depth(1),
        "n_heads": width(2),
        "ffn_size": width(128),
        "dropout": Parameter(0.1, Interval(float, 0, 1, closed="left")),
        "context_backward": Parameter(None, Interval(int, 0, none=True)),
        "context_forward": Parameter(0, Interval(int, 0, none=True)),
        "teacher": Parameter(None),
        "teacher_hidden_size": width(None, none=True),
        "n_window": width(64),
        "group_size": width(32),
        "embedding_epochs": Parameter(100, Interval(int, 1)),
        "teacher_cache": Distiller.PARAMETERS["teacher_cache"],
    }, defaults=dict(
        # NeuPRINT's recipe: many short samples per epoch (windows x neuron groups), so fewer
        # epochs, larger batches, a shorter patience and a smaller validation share; no
        # weight decay on the embeddings
        max_epochs=100, batch_size=32, weight_decay=0.0, validation_fraction=0.1,
        n_iter_no_change=10))
    _positional = ("strategy",)
    _seed_names = ("data", "teacher", "student", "embedding")
    _net_attribute = "student_net_"

    # ------------------------------------------------------------------ checks
    @classmethod
    def _upgrade_state(cls, state, version):
        """Format 1 (sklearn_blend 0.1) kept the teacher's net alone (``teacher_net_``), not the
        teacher estimator: a model without a teacher upgrades, a distilled one must be
        refitted."""
        if version < 2 and "teacher_" not in state:
            if state.pop("teacher_net_", None) is not None:
                raise ValueError("this distilled NeuronEmbedding was saved by sklearn_blend 0.1, "
                                 "which kept its teacher's net apart from the teacher; refit it "
                                 "with this version")
            state = {**state, "teacher": None, "teacher_": None}
        return state

    def _check_params(self):
        if self.behavior_inputs and self.strategy is not None:
            raise ValueError(
                f"behavior_inputs=True is the plain NeuPRINT that reads behavior; a student "
                f"(strategy={self.strategy!r}) never reads it. Use strategy=None with "
                "behavior_inputs=True, or behavior_inputs=False for a student."
            )
        self._check_sizes(("teacher_hidden_size", self.teacher_hidden_size))
        self._check_strategy_fits()

    def _recordings(self, X, *, reset):
        """``X`` as :class:`Recordings`; a 2-D array is one session, one row per neuron."""
        if isinstance(X, Recordings):
            if reset:
                self.__dict__.pop("n_features_in_", None)  # only set by a 2-D fit
            if not len(X):
                raise ValueError("X selects no neurons (0 samples); select at least one.")
            recordings = X
        elif isinstance(X, (list, tuple)) and X and all(
            isinstance(a, np.ndarray) and a.ndim == 2 for a in X
        ):
            raise TypeError(
                "X is a list of arrays; wrap the sessions as Recordings(activity, behavior) "
                "so that each row is a neuron: Recordings([a0, a1, ...]), each array "
                "(n_frames, n_neurons)."
            )
        else:
            # a neuron needs two frames; after fit, the frame count is checked against fit's
            array = validate_data(self, X, reset=reset, dtype=np.float32,
                                  ensure_min_features=2 if reset else 1)
            recordings = Recordings(array.T)
        if self.loss == "poisson" and any(
            (a[:, np.unique(recordings.neuron_index[recordings.sessions == s])] < 0).any()
            for s, a in enumerate(recordings.activity) if (recordings.sessions == s).any()
        ):
            raise ValueError(
                "loss='poisson' needs non-negative activity (e.g. deconvolved events); X has "
                "negative values. Use loss='mse' for normalised fluorescence."
            )
        return recordings

    def _modality(self):
        """The activity's modality: continuous (MSE) or counts (Poisson), from ``loss``."""
        return SPIKES if self.loss == "poisson" else FLUORESCENCE

    def _architecture(self):
        return dict(
            embedding_dim=self.embedding_dim, hidden_size=self.hidden_size,
            n_layers=self.n_layers, n_heads=self.n_heads, ffn_size=self.ffn_size,
            dropout=self.dropout, context_backward=self.context_backward,
            context_forward=self.context_forward,
        )

    def _samples(self, recordings, rows, seed, *, with_behavior, behavior_scale=None):
        frames = min(recordings.activity[s].shape[0] for s in np.unique(recordings.sessions))
        return _neuron_training.neuron_samples(
            recordings, rows, n_window=min(self.n_window, frames), group_size=self.group_size,
            seed=seed, with_behavior=with_behavior, behavior_scale=behavior_scale,
        )

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Train NeuPRINT (and, with a strategy, its teacher first) on the neurons of ``X``.

        Parameters
        ----------
        X : Recordings or array-like of shape (n_neurons, n_frames)
            The neurons to train on, with their sessions (and, for a strategy, the behavior)
            as a :class:`~sklearn_blend.Recordings`; a 2-D array is read as one session, one
            row per neuron, without behavior, whose rows are also the population (its mean
            and standard deviation come from the rows given, at ``fit`` and at ``transform``).
        y : ignored
            Cell types are not used to learn the embeddings (they are for the classifier
            after this step in a pipeline).

        Returns
        -------
        self : NeuronEmbedding
        """
        return self._fit(X)

    def _read_fit_data(self, X, y=None):
        recordings = self._recordings(X, reset=True)
        if self._with_behavior() and recordings.behavior is None:
            reader = ("behavior_inputs=True reads behavior" if self.behavior_inputs else
                      f"strategy={self.strategy!r} distils a teacher that reads behavior")
            raise ValueError(
                f"{reader}: give X as Recordings(activity, behavior) with behavior "
                "(n_frames, n_behavior) per session, or use strategy=None"
                + (" and behavior_inputs=False." if self.behavior_inputs else ".")
            )
        keys = recordings.neuron_keys()
        self.neuron_keys_ = list(dict.fromkeys(keys))
        n_distinct = len(set(zip(keys, map(tuple, recordings.neurons))))
        if len(self.neuron_keys_) < n_distinct:
            warnings.warn(
                f"{n_distinct - len(self.neuron_keys_)} selected neuron(s) have the same "
                "activity trace as another (e.g. constant ROIs); neurons are recognised by "
                "their trace, so each such group shares one embedding. Drop them from the "
                "selection if they carry no signal.",
                UserWarning, stacklevel=3,
            )
        self._rows = {key: row for row, key in enumerate(self.neuron_keys_)}
        self.n_behavior_in_ = recordings.n_behavior if self._with_behavior() else 0
        return recordings, np.array([self._rows[k] for k in keys], dtype=np.int64)

    def _with_behavior(self):
        """Whether a model of this fit reads behavior (the teacher, or the model itself)."""
        return self.strategy is not None or self.behavior_inputs

    def _fit_models(self, data, seeds):
        recordings, rows = data
        self._embedding_seed = seeds["embedding"]
        samples = self._samples(recordings, rows, seeds["data"],
                                with_behavior=self._with_behavior())
        self.teacher_ = None
        if self.behavior_inputs:  # NeuPRINT as published: the model reads the behavior
            self._behavior_scale = _neuron_training.behavior_scaling(recordings)
            builder = self._builder(reads_behavior=True,
                                    mean_activity=_neuron_training.mean_activity(samples))
            self.student_net_ = self._train(builder, _neuron_training.sample_data(
                samples, self._modality()), seeds["teacher"], "NeuPRINT with behavior")
        else:
            if self.strategy is not None:
                self.teacher_ = self._fitted_teacher((recordings,), {}, seeds["teacher"])
                self._check_teacher(self.teacher_)
            builder = self._builder(reads_behavior=False,
                                    mean_activity=_neuron_training.mean_activity(samples))
            self.student_net_ = self._train(
                builder, _neuron_training.sample_data(samples, self._modality()),
                seeds["student"],
                f"{strategy_name(self.strategy)} student" if self.strategy else "NeuPRINT")
        self.embeddings_ = _neuron_training.embedding_table(self.student_)
        self.__dict__.pop("_stream_start", None)

    def _draw_seeds(self, names=None):
        # a RandomState is consumed by the draws: the default teacher gets a copy of its state
        # before them, so that it draws the student's own data and teacher seeds
        self._stream_start = (copy.deepcopy(self.random_state)
                              if isinstance(self.random_state, np.random.RandomState) else None)
        return super()._draw_seeds(names)

    # ------------------------------------------------------------------ the teacher
    def _default_teacher(self):
        params = {name: getattr(self, name) for name in self._get_param_names()}
        # the student's own settings (alpha, tau, its teacher) do not shape the teacher, so
        # teachers of students that differ only in them are one in the cache
        defaults = {name: parameter.default for name, parameter in self._parameters.items()}
        params.update({name: defaults[name] for name in ("alpha", "tau", "teacher_cache")},
                      strategy=None, behavior_inputs=True, teacher=None,
                      teacher_hidden_size=None)
        if self.teacher_hidden_size is not None:
            params["hidden_size"] = self.teacher_hidden_size
        # the student's random_state is the teacher's own (a RandomState: its state before
        # the student drew), so that the teacher is the very model that behavior_inputs=True
        # fits with these settings, on the student's samples; unseeded, it is seeded from the
        # student's teacher seed
        stream = self.__dict__.pop("_stream_start", None)
        own = stream if stream is not None else self.random_state
        own_seed = isinstance(own, (numbers.Integral, np.random.RandomState))
        params["random_state"] = own if own_seed else None
        return NeuronEmbedding(**params), own_seed

    def _check_teacher_type(self, teacher):
        reads = getattr(teacher, "behavior_inputs", None)
        reads = getattr(getattr(teacher, "estimator", None), "behavior_inputs", reads)
        if not (hasattr(teacher, "fit") and hasattr(teacher, "get_params")) or not reads:
            raise TypeError(
                "teacher must be None or a NeuronEmbedding that reads behavior "
                "(NeuronEmbedding(strategy=None, behavior_inputs=True): unfitted, fitted, or "
                f"fitted in a sklearn.frozen.FrozenEstimator), got {teacher!r}.")

    def _check_teacher(self, teacher):
        """A fitted teacher must know this fit's neurons, in the same rows."""
        if list(teacher.neuron_keys_) != self.neuron_keys_ or (
                teacher.n_behavior_in_ != self.n_behavior_in_):
            raise ValueError(
                "the fitted teacher was fitted on other neurons or behavior than X: a teacher "
                "embeds the neurons it was fitted on, so fit it on the same Recordings "
                f"(it knows {len(teacher.neuron_keys_)} neurons and {teacher.n_behavior_in_} "
                f"behavior channels; X has {len(self.neuron_keys_)} and "
                f"{self.n_behavior_in_}).")

    @property
    def teacher_net_(self):
        """The fitted teacher's net (``teacher_.student_net_``), ``None`` without one."""
        check_is_fitted(self)
        return None if self.teacher_ is None else self.teacher_.student_net_

    @property
    def model_(self):
        """The fitted PyTorch model under the training core's contract (what a student of this
        model, as its teacher, distils from)."""
        check_is_fitted(self)
        return _training.trained_model(self.student_net_)

    def _net_builder(self, attribute, saved):
        """The recipe ``fit`` builds :attr:`student_net_` from (the model that reads behavior
        with ``behavior_inputs=True``, else the student, distilled from ``teacher_``'s model);
        :func:`sklearn_blend.load` loads saved weights into it (the output bias's start, 1,
        is replaced by the saved weights)."""
        return self._builder(reads_behavior=self.behavior_inputs, mean_activity=1.0)

    def _builder(self, *, reads_behavior, mean_activity):
        """The recipe of the model that reads behavior, or of the student (distilled from
        ``teacher_``'s model when there is one), its readout starting at ``mean_activity``."""
        distillation = {}
        if not reads_behavior and self.teacher_ is not None:
            distillation = dict(teacher=self.teacher_.model_,
                                strategy=build_strategy(self.strategy, tau=self.tau),
                                alpha=self.alpha)
        return _neuron_training.neuron_model_builder(
            **self._model_params(teacher=reads_behavior),
            n_behavior=self.n_behavior_in_ if reads_behavior else 0,
            mean_activity=mean_activity, **distillation)

    def _model_params(self, *, teacher):
        """What the model is built from, as :func:`~sklearn_blend.training.neurons.
        neuron_model_builder` takes it (less behavior and the readout's start): with
        behavior (``teacher=True``, ``teacher_hidden_size`` wide if set) or the student's."""
        architecture = self._architecture()
        if teacher and self.teacher_hidden_size is not None:
            architecture["hidden_size"] = self.teacher_hidden_size
        return dict(architecture=architecture, n_neurons=len(self.neuron_keys_),
                    modality=self._modality(), mask_ratio=self.mask_ratio,
                    precision=self.precision)

    @property
    def student_(self):
        """The fitted PyTorch student (a :class:`~sklearn_blend.models.NeuPRINT`)."""
        check_is_fitted(self)
        return _training.trained_model(self.student_net_).model

    # ------------------------------------------------------------------ transform
    def transform(self, X):
        """Embedding of each neuron of ``X``: learned in ``fit``, or fitted now if new.

        Parameters
        ----------
        X : Recordings or array-like of shape (n_neurons, n_frames)
            Neurons with their sessions; behavior is not needed.

        Returns
        -------
        embeddings : ndarray of shape (n_neurons, embedding_dim)
        """
        check_is_fitted(self)
        recordings = self._recordings(X, reset=False)
        keys = recordings.neuron_keys()
        out = np.empty((len(keys), self.embedding_dim), dtype=np.float32)
        seen = np.array([k in self._rows for k in keys], dtype=bool)
        if seen.any():
            out[seen] = self.embeddings_[[self._rows[k] for k, s in zip(keys, seen) if s]]
        if not seen.all():
            out[~seen] = self._new_embeddings(recordings, keys, seen)
        return out

    def _new_embeddings(self, recordings, keys, seen):
        """Fit embeddings of the unseen neurons with the student's dynamics frozen."""
        unseen = np.flatnonzero(~seen)
        # one sample column per distinct new neuron (its first selection); rows in that order
        first = {}
        for i in unseen:
            first.setdefault(keys[i], i)
        row_of = {key: row for row, key in enumerate(first)}
        subset = recordings[np.array(list(first.values()))]
        rows = np.arange(len(first), dtype=np.int64)
        if self.behavior_inputs and (recordings.behavior is None
                                     or recordings.n_behavior != self.n_behavior_in_):
            raise ValueError(
                f"{int((~seen).sum())} neuron(s) of X were not seen in fit, and their "
                "embeddings are fitted through a model that reads behavior "
                f"(behavior_inputs=True): give X as Recordings(activity, behavior) with "
                f"behavior (n_frames, {self.n_behavior_in_}) per session, as in fit."
            )
        samples = self._samples(subset, rows, self._embedding_seed,
                                with_behavior=self.behavior_inputs,
                                behavior_scale=getattr(self, "_behavior_scale", None))
        config = _training.training_config(
            self, self.device_, max_epochs=self.embedding_epochs, early_stopping=False,
            weight_decay=0.0, warmup_steps=0,
        )
        table = _neuron_training.fit_new_embeddings(
            self.student_, samples, n_neurons=len(first), modality=self._modality(),
            mask_ratio=self.mask_ratio, config=config, seed=self._embedding_seed,
            precision=self.precision,
        )
        return table[[row_of[keys[i]] for i in unseen]]

    @property
    def _n_features_out(self):
        """Output width (for ``get_feature_names_out``); missing until fitted."""
        return self.embeddings_.shape[1]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
