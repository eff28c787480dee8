"""Per-neuron features for cell-type prediction: :class:`NeuronEmbedding` (NeuPRINT + BLEND).

PyTorch stays behind :mod:`sklearn_blend.training.neurons`; this module validates inputs and
parameters, derives seeds, and maps neurons to rows of the learned embedding table.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ..training import core as _training
from ..training import neurons as _neuron_training
from ..training import teacher_cache as _teacher_cache
from ..data.validation import (
    check_in,
    check_number,
    check_teacher_cache,
    check_training_params,
)
from ..distill import build_strategy, check_strategy, strategy_name
from ..modalities import FLUORESCENCE, SPIKES
from ..data.recordings import Recordings
from ..persistence import SaveMixin


class _NeuronTeacher:
    """A NeuPRINT teacher (population inputs plus behavior), fitted through the teacher cache."""

    def __init__(self, **params):
        self.params = params

    def fit(self, samples):
        self.net_ = _neuron_training.train_neuron_model(
            samples, description="NeuPRINT teacher", **self.params
        )
        return self


class NeuronEmbedding(SaveMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                      BaseEstimator):
    """One feature vector per neuron: NeuPRINT embeddings, optionally distilled with BLEND.

    ``fit(X)`` trains NeuPRINT (Mi et al., 2023) on the selected neurons of ``X``: each neuron
    is a sequence, and at every frame the model reads the neuron's own masked activity, its
    learned time-invariant embedding and permutation-invariant population inputs (mean and
    standard deviation over the session's neurons), and predicts the masked activity. With a
    ``strategy`` it first trains a teacher that also reads the behavior (running speed, pupil
    size) among its population inputs, then a student without behavior by
    ``alpha * masked loss + (1 - alpha) * distillation`` (BLEND, Guo et al., 2025).
    ``transform(X)`` returns the student's embedding of each selected neuron,
    ``(n_neurons, embedding_dim)``: learned in ``fit`` for neurons it saw, and for others fitted
    with the dynamics frozen (``embedding_epochs`` epochs), as NeuPRINT does for held-out
    neurons. Neurons are recognised by their activity trace. The teacher reads each behavior
    channel standardised over the frames of the fitted sessions, so any units work; behavior is
    never needed after fitting. The embeddings of the new neurons of one ``transform`` call
    are fitted together, so (like any stochastic fit) a new neuron's embedding varies a little
    with which other new neurons come with it; with an int ``random_state`` the same call gives
    the same result.

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
    teacher_hidden_size : int or None, default=None
        Width of the teacher if it should differ from the student's (``"feature"`` then
        aligns the layers through learned projections).
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
    max_epochs : int, default=100
        Most epochs for the teacher and the student each.
    batch_size : int, default=32
        Samples per optimisation step.
    lr : float, default=1e-3
        Peak AdamW learning rate (linear warm-up, cosine decay); also the rate of
        ``embedding_epochs``.
    weight_decay : float, default=0.0
        AdamW weight decay of teacher and student (never applied to new embeddings).
    warmup_steps : int, default=50
        Steps of learning-rate warm-up.
    early_stopping : bool, default=True
        Stop teacher and student when the masked loss on ``validation_fraction`` of the
        samples (windows and neuron groups) has not improved for ``n_iter_no_change`` epochs.
    validation_fraction : float in (0, 1), default=0.1
    n_iter_no_change : int, default=10
    embedding_epochs : int, default=100
        Epochs to fit the embeddings of neurons not seen in ``fit`` (NeuPRINT: 100).
    teacher_cache : bool, str or joblib.Memory, default=True
        Reuse a teacher trained on the same neurons with the same teacher settings and seed
        (a grid over ``alpha``, ``tau`` or ``strategy`` trains one teacher per fold); see
        :class:`~sklearn_blend.BlendEstimator`. Reuse needs an int ``random_state``: unseeded
        fits group neurons differently every time.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, masks, neuron grouping, dropout, validation split and the fits of new
        embeddings. With an int, results on CPU are reproducible.
    device : {"cpu", "cuda", "cuda:N", "mps", "auto"}, default="cpu"
        PyTorch device of training and prediction: ``"cuda"`` the current GPU, ``"cuda:N"``
        the N-th, ``"mps"`` Apple silicon, ``"auto"`` the best one the machine that fits has
        (CUDA, else MPS, else CPU). Resolved in ``fit`` (``device_``); a device the machine
        lacks raises a ``ValueError``.
    precision : {"float32", "bfloat16"}, default="float32"
        Compute precision of training (teacher, student and the embedding fits of new
        neurons), as in :class:`~sklearn_blend.BlendEstimator`: ``"bfloat16"`` runs the
        models under :func:`torch.autocast`; weights, optimizer state and losses stay
        float32.
    verbose : int, default=0
        0: silent; 1: a progress bar per model; 2: skorch's per-epoch table.
    distributed : {None, "accelerate"}, default=None
        ``"accelerate"`` trains data-parallel over the processes that ``accelerate launch`` or
        ``torchrun`` started (one per GPU or node; Hugging Face accelerate, the ``[accelerate]``
        extra), each running the same script on the same data; run as plain ``python`` it is
        one process. See README, "Scaling out".

    Attributes
    ----------
    embeddings_ : ndarray of shape (n_fitted_neurons, embedding_dim)
        Student embedding of each distinct neuron seen in ``fit``.
    student_net_, teacher_net_ : skorch.NeuralNet
        Fitted nets (``teacher_net_`` is ``None`` without a strategy); ``history`` per epoch.
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

    def __init__(
        self,
        strategy="hard",
        *,
        behavior_inputs=False,
        alpha=0.5,
        tau=2.0,
        loss="mse",
        mask_ratio=0.25,
        embedding_dim=64,
        hidden_size=64,
        n_layers=1,
        n_heads=2,
        ffn_size=128,
        dropout=0.1,
        context_backward=None,
        context_forward=0,
        teacher_hidden_size=None,
        n_window=64,
        group_size=32,
        max_epochs=100,
        batch_size=32,
        lr=1e-3,
        weight_decay=0.0,
        warmup_steps=50,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        embedding_epochs=100,
        teacher_cache=True,
        random_state=None,
        device="cpu",
        precision="float32",
        verbose=0,
        distributed=None,
    ):
        self.strategy = strategy
        self.behavior_inputs = behavior_inputs
        self.alpha = alpha
        self.tau = tau
        self.loss = loss
        self.mask_ratio = mask_ratio
        self.embedding_dim = embedding_dim
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.ffn_size = ffn_size
        self.dropout = dropout
        self.context_backward = context_backward
        self.context_forward = context_forward
        self.teacher_hidden_size = teacher_hidden_size
        self.n_window = n_window
        self.group_size = group_size
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_steps = warmup_steps
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.embedding_epochs = embedding_epochs
        self.teacher_cache = teacher_cache
        self.random_state = random_state
        self.device = device
        self.precision = precision
        self.verbose = verbose
        self.distributed = distributed

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        check_strategy(self.strategy)
        if not isinstance(self.behavior_inputs, (bool, np.bool_)):
            raise TypeError(
                f"behavior_inputs must be True or False, got {self.behavior_inputs!r}."
            )
        if self.behavior_inputs and self.strategy is not None:
            raise ValueError(
                f"behavior_inputs=True is the plain NeuPRINT that reads behavior; a student "
                f"(strategy={self.strategy!r}) never reads it. Use strategy=None with "
                "behavior_inputs=True, or behavior_inputs=False for a student."
            )
        check_number(self.alpha, "alpha", low=0, high=1)
        check_number(self.tau, "tau", low=0, low_open=True)
        check_in(self.loss, "loss", ("mse", "poisson"))
        check_in(self.precision, "precision", tuple(_training.PRECISIONS))
        for name in ("embedding_dim", "hidden_size", "n_layers", "n_heads", "ffn_size",
                     "n_window", "group_size", "embedding_epochs"):
            check_number(getattr(self, name), name, low=1, integer=True)
        widths = {"hidden_size": self.hidden_size}
        if self.teacher_hidden_size is not None:
            check_number(self.teacher_hidden_size, "teacher_hidden_size", low=1, integer=True)
            widths["teacher_hidden_size"] = self.teacher_hidden_size
        for name, width in widths.items():
            if width % self.n_heads:
                raise ValueError(
                    f"{name} ({width}) must be divisible by n_heads ({self.n_heads})."
                )
        check_training_params(self)
        check_teacher_cache(self.teacher_cache)

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
        self._check_params()
        recordings = self._recordings(X, reset=True)
        with_behavior = self.strategy is not None or self.behavior_inputs
        if with_behavior and recordings.behavior is None:
            reader = ("behavior_inputs=True reads behavior" if self.behavior_inputs else
                      f"strategy={self.strategy!r} distils a teacher that reads behavior")
            raise ValueError(
                f"{reader}: give X as Recordings(activity, behavior) with behavior "
                "(n_frames, n_behavior) per session, or use strategy=None"
                + (" and behavior_inputs=False." if self.behavior_inputs else ".")
            )
        self.device_ = _training.resolve_device(self.device)
        keys = recordings.neuron_keys()
        self.neuron_keys_ = list(dict.fromkeys(keys))
        n_distinct = len(set(zip(keys, map(tuple, recordings.neurons))))
        if len(self.neuron_keys_) < n_distinct:
            warnings.warn(
                f"{n_distinct - len(self.neuron_keys_)} selected neuron(s) have the same "
                "activity trace as another (e.g. constant ROIs); neurons are recognised by "
                "their trace, so each such group shares one embedding. Drop them from the "
                "selection if they carry no signal.",
                UserWarning, stacklevel=2,
            )
        self._rows = {key: row for row, key in enumerate(self.neuron_keys_)}
        rows = np.array([self._rows[k] for k in keys], dtype=np.int64)
        rng = check_random_state(self.random_state)
        data_seed, teacher_seed, student_seed, self._embedding_seed = (
            int(s) for s in rng.randint(_training.MAX_SEED, size=4)
        )
        samples = self._samples(recordings, rows, data_seed, with_behavior=with_behavior)
        common = dict(self._model_params(teacher=False),
                      config=_training.training_config(self, self.device_))
        self.n_behavior_in_ = recordings.n_behavior if with_behavior else 0
        self.teacher_net_ = None
        if self.behavior_inputs:  # the teacher itself is the model
            self._behavior_scale = _neuron_training.behavior_scaling(recordings)
            self.student_net_ = self._fit_teacher(samples, common["config"], teacher_seed)
            self.embeddings_ = _neuron_training.embedding_table(self.student_)
            self.n_iter_ = len(self.student_net_.history)
            return self
        if with_behavior:
            self.teacher_net_ = self._fit_teacher(samples, common["config"], teacher_seed)
        self.student_net_ = _neuron_training.train_neuron_model(
            samples, seed=student_seed,
            description=f"{strategy_name(self.strategy)} student" if self.strategy else "NeuPRINT",
            **common, **self._distillation(),
        )
        self.embeddings_ = _neuron_training.embedding_table(self.student_)
        self.n_iter_ = len(self.student_net_.history)
        return self

    def _fit_teacher(self, samples, config, seed):
        common = dict(self._model_params(teacher=True), config=config)
        teacher = _NeuronTeacher(**common, seed=seed)
        params = dict(common, config=dataclasses.replace(common["config"], verbose=0))
        key, cache = _teacher_cache.cache_key(params, self.random_state, self.teacher_cache)
        return _teacher_cache.fitted_teacher(teacher, (samples,), {}, cache,
                                             key_params=key).net_

    def _net_builder(self, attribute, saved):
        """The recipe ``fit`` builds the net in ``attribute`` from: the teacher (reads the
        behavior; also the model itself with ``behavior_inputs=True``) or the student,
        distilled from :attr:`teacher_net_`'s model. :func:`sklearn_blend.load` loads saved
        weights into it (the output bias's start, 1, is replaced by the saved weights)."""
        reads_behavior = attribute == "teacher_net_" or self.behavior_inputs
        return _neuron_training.neuron_model_builder(
            **self._model_params(teacher=reads_behavior),
            n_behavior=self.n_behavior_in_ if reads_behavior else 0, mean_activity=1.0,
            **({} if reads_behavior else self._distillation()))

    def _model_params(self, *, teacher):
        """What the model is built from, as :func:`~sklearn_blend.training.neurons.
        train_neuron_model` takes it (less data, behavior and training settings): the
        teacher's (``teacher=True``, ``teacher_hidden_size`` wide if set) or the student's."""
        architecture = self._architecture()
        if teacher and self.teacher_hidden_size is not None:
            architecture["hidden_size"] = self.teacher_hidden_size
        return dict(architecture=architecture, n_neurons=len(self.neuron_keys_),
                    modality=self._modality(), mask_ratio=self.mask_ratio,
                    precision=self.precision)

    def _distillation(self):
        """The student's distillation from :attr:`teacher_net_`'s model (``teacher``,
        ``strategy``, ``alpha``), none without a teacher."""
        if self.teacher_net_ is None:
            return {}
        return dict(teacher=_training.trained_model(self.teacher_net_),
                    strategy=build_strategy(self.strategy, tau=self.tau), alpha=self.alpha)

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
