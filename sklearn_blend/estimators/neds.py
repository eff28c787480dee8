"""NEDS as a scikit-learn estimator: :class:`NedsEstimator` encodes and decodes with one model.

PyTorch stays behind :mod:`sklearn_blend.training.neds` and the training core; this module
validates inputs and parameters, encodes the behavior into NEDS's token streams (and back into
the user's units), and builds the token masks of each kind of prediction.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np
from sklearn.base import TransformerMixin
from sklearn.utils._available_if import available_if
from sklearn.utils.validation import check_is_fitted

from ..data.behavior import BehaviorEncoding, read_behavior
from ..data.trials import SessionTrials, read_known_sessions, read_sessions
from ..data.validation import Flag, Interval, Options, check_number
from ..masking import SCHEMES, interleaved_masks
from ..modalities import BEHAVIOR, LABELS, SPIKES
from ..models.neds import NedsConfig
from ..persistence import registry
from ..training import core as _training
from ..training.neds import NedsBuilder, NedsTeacherModel, TaskMetrics, neds_modalities
from ..training.objective import pack
from .base import ModelEstimator, Parameter, depth, parameters, width


@registry.register("object", "sklearn_blend:NedsRoles")
class _Roles:
    """Where each behavior column goes: a per-bin continuous stream, the per-trial continuous
    stream, or a per-trial categorical stream, and how it is encoded."""

    def __init__(self, raw, encoding, trial_columns, groups):
        self.per_bin = raw.per_bin
        self.names = list(raw.names)
        self.categorical = sorted(raw.categorical)
        self.trial = sorted(trial_columns) if raw.per_bin else list(range(len(raw.names)))
        self.bin = [j for j in range(len(raw.names)) if j not in self.trial]
        self.trial_continuous = [j for j in self.trial if j not in raw.categorical]
        self.labels = [j for j in self.trial if j in raw.categorical]
        self.encoding = encoding
        self.groups = groups


def _per_trial(values, observed, column, name):
    """One value per trial of a per-bin column declared per-trial (constant within trials)."""
    first = np.argmax(observed, axis=1)
    rows = np.arange(len(values))
    value = values[rows, first]
    has = observed.any(axis=1)
    for i in np.flatnonzero(has):
        seen = values[i][observed[i]]
        if any(v != value[i] for v in seen.tolist()):
            raise ValueError(
                f"{name} column {column} is declared per-trial (trial_behavior) but changes "
                f"within trial {i}; a per-trial variable holds one value per trial (repeat it "
                "over the bins, NaN where missing)."
            )
    return value, has


class NedsEstimator(TransformerMixin, ModelEstimator):
    """NEDS (Zhang et al., ICML 2025): one model that encodes and decodes.

    ``fit(X, b)`` trains a transformer over spike tokens and behavior tokens (one per stream
    per time bin, see :mod:`sklearn_blend.models.neds`) by multi-task masking: each training
    trial draws one of five schemes (``encoding``: all spikes hidden; ``decoding``: all behavior
    hidden; ``self_spike`` / ``self_behavior``: bins of one modality hidden with probability
    ``mask_ratio``, drawn per behavior stream; ``cross_modal``: the same bins hidden in every
    stream), and the model predicts the hidden tokens: Poisson NLL on spike counts, MSE on
    continuous behavior (standardised with training statistics), cross-entropy on categorical
    variables, each averaged over its hidden entries and summed with ``modality_weights``.
    Every trial gets its own mask; hidden tokens are replaced by a learned mask token. (The
    authors' paper-era code shared the first sample's mask across the batch and zeroed hidden
    inputs; this is the intended per-sample masking, as in their later fix.) Behavior that is
    missing (NaN bins or trials, a missing label) is always hidden and never a target, so
    partly labelled trials train.

    After fitting, ``predict(X)`` decodes behavior from spikes alone (in the units and layout
    of ``b``), ``predict_rates(b=b)`` encodes spikes from behavior alone, ``predict_rates(X)``
    (or with both) gives rates from spikes, ``transform(X)`` the latent spike tokens per bin.
    A single-session model is also a BLEND teacher: ``BlendEstimator(teacher=NedsEstimator(...))``
    distils it into a spikes-only student (:meth:`encode_behavior` and :attr:`model_` are the
    teacher contract; the student's hidden bins become hidden spike tokens).

    Parameters
    ----------
    behavior_groups : list of list of int, optional
        Per-bin continuous columns of ``b`` that form one token stream each group (say
        ``[[0, 1]]`` for hand velocity x and y). Default: one stream per column, as NEDS.
    categorical_behavior : list of int or str, optional
        Columns of ``b`` holding class labels (by index, or by name for a DataFrame); they must
        be per-trial variables. A pandas ``category`` column is categorical too.
    trial_behavior : list of int, optional
        Columns of a per-bin ``b`` ``(n_trials, n_time, k)`` that hold one value per trial
        (repeated over the bins): they become per-trial streams. A 2-D ``b``
        ``(n_trials, k)`` (or a DataFrame) is per-trial throughout.
    scheme_probs : dict of str to float, optional
        Probability of each masking scheme (keys from ``"encoding"``, ``"decoding"``,
        ``"self_spike"``, ``"self_behavior"``, ``"cross_modal"``; omitted ones get 0;
        normalised). Default: uniform over the five.
    mask_ratio : float in (0, 1), default=0.3
        Probability that a bin is hidden in the temporal schemes.
    modality_weights : dict of str to float, optional
        Weight of each loss (keys ``"spikes"``, ``"behavior"``, ``"trial"``, ``"labels"``);
        default 1 each.
    hidden_size, n_layers, n_heads, ffn_size : int, default=128, 4, 4, 256
    dropout : float in [0, 1), default=0.2
        Dropout on the residual branches.
    embedding_dropout : float in [0, 1), default=0.1
        Dropout on the tokens.
    rotary : bool, default=True
        Rotary position codes inside attention (queries and keys rotated by their token's time
        bin, as in the official code), on top of the learned position embedding; needs an even
        ``hidden_size / n_heads``. Without them a behavior token has to find its bin's spike
        token through the learned positions alone: on a synthetic session a small NEDS then
        decoded held-out trials at R2 about 0, against 0.355 (all schemes) and 0.404
        (decoding only) with them (``python benchmarks/neds_rotary.py``, 3 seeds).
    input_map : {"softsign", "linear"}, default="softsign"
        How a session's spikes and each behavior group become tokens: the official code's
        ``n -> 2n -> softsign -> hidden`` (:class:`~sklearn_blend.models.layers.SoftsignMap`),
        or one linear map. The default is the setting the multi-task NEDS chose most often by
        nested selection on MC_Maze_Small (``benchmarks/neds_nested.py``); models saved before
        it was an option load with ``"linear"``.
    monitor : {"task", "decoding", "encoding", "loss"}, default="task"
        What early stopping watches and selects the kept weights by, on the validation trials
        (drawn from the training trials, ``validation_fraction``), as the authors' trainer:
        ``"decoding"``, the decoding score of a pass with every behavior token hidden (R2 of
        continuous behavior, balanced accuracy of labels, averaged over variables);
        ``"encoding"``, NEDS's per-neuron bits per spike of a pass with every spike token
        hidden; ``"task"``, the mean of the tasks the masking trains (decoding when
        ``scheme_probs`` gives ``"decoding"`` weight, encoding when it gives ``"encoding"``
        weight; both otherwise); ``"loss"``, the summed masked loss of one random scheme per
        validation trial (held-out neurons and forward bins included). With a task metric the
        epochs of the learning-rate warm-up (``warmup_steps``) are not selected and do not
        count toward the patience. Each epoch's metrics are in ``net_.history``
        (``valid_decoding``, ``valid_encoding``, ``valid_task``).
    patience_steps : int or None, default=None
        Patience of early stopping in optimisation steps, as the official trainer counts it
        (the epochs it spans, rounded up, replace ``n_iter_no_change``): the same patience
        whatever the number of training trials and ``batch_size``. ``None``: the patience is
        ``n_iter_no_change`` epochs.
    n_heldout : int, default=0
        The last ``n_heldout`` neurons of every session (NLB's held-out neurons) are predicted
        but never read: the spike tokens carry the other neurons, and the spike loss scores the
        held-out ones in every bin. ``X`` at prediction may hold all neurons or the held-in
        ones only.
    forward_bins : int, default=0
        Bins after each trial whose counts the model learns to predict (NLB forward
        prediction; ``fit`` then needs ``spikes_forward``). Their spike tokens are always
        hidden; the behavior there is missing unless ``behavior_forward`` gives it.
        Predictions append them to every trial, as in training; ``predict_rates(...,
        forward=True)`` returns them. Single-session data only.
    Attributes
    ----------
    net_ : skorch.NeuralNet
        The fitted net; ``net_.history`` has every loss per epoch.
    config_ : NedsConfig
        The model's shapes.
    n_iter_ : int
        Epochs trained.
    sessions_ : list
        Keys of the sessions the model knows (``[0]`` after a fit on an array).
    n_neurons_ : tuple of int
        Neurons of each session.
    n_features_in_, n_time_in_ : int
        Neurons and bins of the training trials (``n_features_in_`` only for a fit on an
        array).
    classes_ : list of ndarray
        Labels of each categorical column, in column order.
    device_ : str
        Device the model lives on (``device`` resolved).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_blend import NedsEstimator
    >>> rng = np.random.default_rng(0)
    >>> b = rng.normal(size=(20, 10, 2))
    >>> X = rng.poisson(np.exp(b @ rng.normal(size=(2, 5)) * 0.5))
    >>> neds = NedsEstimator(hidden_size=16, n_layers=1, n_heads=2, ffn_size=32,
    ...                      max_epochs=2, random_state=0).fit(X, b)
    >>> neds.predict(X).shape, neds.predict_rates(b=b).shape
    ((20, 10, 2), (20, 10, 5))
    """

    _parameters = parameters({
        "behavior_groups": Parameter(None),
        "categorical_behavior": Parameter(None),
        "trial_behavior": Parameter(None),
        "scheme_probs": Parameter(None),
        "mask_ratio": Parameter(0.3, Interval(float, 0, 1, closed="neither")),
        "modality_weights": Parameter(None),
        "hidden_size": width(128),
        "n_layers": depth(4),
        "n_heads": width(4),
        "ffn_size": width(256),
        "dropout": Parameter(0.2, Interval(float, 0, 1, closed="left")),
        "embedding_dropout": Parameter(0.1, Interval(float, 0, 1, closed="left")),
        "rotary": Parameter(True, Flag()),
        "input_map": Parameter("softsign", Options("softsign", "linear")),
        "monitor": Parameter("task", Options("task", "decoding", "encoding", "loss")),
        "patience_steps": Parameter(None, Interval(int, 1, none=True)),
        "n_heldout": Parameter(0, Interval(int, 0)),
        "forward_bins": Parameter(0, Interval(int, 0)),
    }, defaults=dict(
        # the official NEDS recipe's weight decay; patience for small CPU runs
        weight_decay=0.01, n_iter_no_change=30))
    _seed_names = ("model", "finetune")

    @classmethod
    def _upgrade_state(cls, state, version):
        """Formats 1 and 2 (sklearn_blend 0.1, 0.2): no ``monitor`` (those models were
        selected on the masked validation loss, ``"loss"``) and no ``input_map``
        (``"linear"``, in the parameters and in the fitted ``config_``). Formats 1 to 4: no
        ``patience_steps`` (``None``)."""
        if version < 3:
            state = {"monitor": "loss", "input_map": "linear", **state}
            config = state.get("config_")
            fields = config.get("fields") if type(config) is dict else None
            if type(fields) is dict and type(fields.get("s")) is dict:
                fields["s"].setdefault("input_map", "linear")
        if version < 5:
            state = {"patience_steps": None, **state}
        return state

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        self._check_sizes()
        if self.rotary and (self.hidden_size // self.n_heads) % 2:
            raise ValueError(f"rotary=True needs an even head width, but hidden_size / n_heads "
                             f"= {self.hidden_size} / {self.n_heads} is odd; change either or "
                             "set rotary=False.")
        self._scheme_probs(), self._modality_weights()

    def _scheme_probs(self):
        if self.scheme_probs is None:
            return [1.0 / len(SCHEMES)] * len(SCHEMES)
        if not isinstance(self.scheme_probs, dict):
            raise TypeError(f"scheme_probs must be a dict {{scheme: probability}} over "
                            f"{list(SCHEMES)}, got {type(self.scheme_probs).__name__}.")
        unknown = sorted(set(self.scheme_probs) - set(SCHEMES))
        if unknown:
            raise ValueError(f"scheme_probs names unknown schemes {unknown}; choose from "
                             f"{list(SCHEMES)}.")
        probs = [self.scheme_probs.get(name, 0.0) for name in SCHEMES]
        for name, p in zip(SCHEMES, probs):
            check_number(p, f"scheme_probs[{name!r}]", low=0)
        if sum(probs) <= 0:
            raise ValueError("scheme_probs must give some scheme a positive probability.")
        return [p / sum(probs) for p in probs]

    def _modality_weights(self):
        if self.modality_weights is not None and not isinstance(self.modality_weights, dict):
            raise TypeError(f"modality_weights must be a dict {{modality: weight}}, got "
                            f"{type(self.modality_weights).__name__}.")
        weights = dict(self.modality_weights or {})
        unknown = sorted(set(weights) - {"spikes", "behavior", "trial", "labels"})
        if unknown:
            raise ValueError(f"modality_weights names {unknown}; the keys are 'spikes', "
                             "'behavior', 'trial' and 'labels'.")
        for name, value in weights.items():
            check_number(value, f"modality_weights[{name!r}]", low=0)
        return weights

    def _roles(self, raw, encoding):
        trial = set()
        if raw.per_bin and self.trial_behavior is not None:
            for j in np.atleast_1d(self.trial_behavior).tolist():
                if not isinstance(j, numbers.Integral) or not 0 <= j < len(raw.names):
                    raise ValueError(f"trial_behavior names column {j!r}; b has columns "
                                     f"0..{len(raw.names) - 1}.")
                trial.add(int(j))
        per_bin_categorical = sorted(set(raw.categorical) - trial) if raw.per_bin else []
        if per_bin_categorical:
            raise ValueError(
                f"categorical columns {per_bin_categorical} of b vary per bin; NEDS models "
                "categorical variables per trial: list them in trial_behavior (one value per "
                "trial, repeated over the bins), or pass them as continuous columns."
            )
        bin_columns = [j for j in range(len(raw.names)) if j not in trial] if raw.per_bin \
            else []
        if self.behavior_groups is None:
            groups = [[j] for j in bin_columns]
        else:
            groups = [list(np.atleast_1d(g).tolist()) for g in self.behavior_groups]
            listed = [j for g in groups for j in g]
            if sorted(listed) != bin_columns:
                raise ValueError(
                    f"behavior_groups {self.behavior_groups!r} must list every per-bin "
                    f"continuous column of b exactly once: {bin_columns}."
                )
        # group columns as positions in the per-bin continuous array
        position = {j: k for k, j in enumerate(bin_columns)}
        return _Roles(raw, encoding, trial, [[position[j] for j in g] for g in groups])

    # ------------------------------------------------------------------ encoding
    def _encode(self, raw, n_trials, n_time, name="b"):
        """``{behavior, trial, labels}`` model arrays (NaN / -1 where missing)."""
        roles = self.roles_
        if raw is None:
            behavior = np.full((n_trials, n_time, len(roles.bin)), np.nan, np.float32)
            trial = np.full((n_trials, len(roles.trial_continuous)), np.nan, np.float32)
            labels = np.full((n_trials, len(roles.labels)), -1, np.int64)
            return dict(behavior=behavior, trial=trial, labels=labels)
        roles.encoding.check_compatible(raw, name)
        encoding = roles.encoding
        behavior = np.stack(
            [np.where(raw.observed[j], (raw.columns[j] - encoding.mean[j]) / encoding.scale[j],
                      np.nan) for j in roles.bin], axis=-1
        ) if roles.bin else np.zeros((n_trials, n_time, 0))
        trial, labels = [], []
        for j in roles.trial:
            values, observed = raw.columns[j], raw.observed[j]
            if raw.per_bin:
                values, observed = _per_trial(values, observed, raw.names[j], name)
            if j in roles.labels:
                labels.append(encoding.codes(j, values, observed, name))
            else:
                values = np.asarray(values, dtype=np.float64)
                trial.append(np.where(observed, (values - encoding.mean[j])
                                      / encoding.scale[j], np.nan))
        return dict(
            behavior=np.asarray(behavior, dtype=np.float32),
            trial=(np.stack(trial, -1) if trial else np.zeros((n_trials, 0))).astype(
                np.float32),
            labels=(np.asarray(labels).T if labels else np.zeros((n_trials, 0))).astype(
                np.int64),
        )

    def _inputs(self, spikes, slots, encoded, token_mask):
        inputs = {"spikes": spikes, "session": slots, "token_mask": token_mask}
        for name in ("behavior", "trial", "labels"):
            if encoded[name].shape[-1]:
                inputs[name] = encoded[name]
        return inputs

    # ------------------------------------------------------------------ spikes
    def _spikes(self, X, *, sessions=None):
        """``(counts, slots)`` of ``X`` (an array or :class:`SessionTrials` of sessions the
        model knows, or of ``sessions``: ``(keys, n_neurons)``), zero past each session's
        neurons."""
        keys, widths = (self.sessions_, self.n_neurons_) if sessions is None else sessions
        counts, slots, _ = read_known_sessions(
            X, SPIKES, keys, widths, self.n_time_in_, n_heldout=self.n_heldout,
            owner="NedsEstimator", add_with="finetune")
        return counts, slots

    def _training_data(self, spikes, slots, raw, *, spikes_forward=None,
                       behavior_forward=None):
        """The flat batch dict of a fit."""
        encoded = self._with_forward(self._encode(raw, *spikes.shape[:2]), behavior_forward)
        inputs = self._inputs(self._extend(spikes), slots, encoded, None)  # pack drops None
        targets = {"spikes": spikes if spikes_forward is None
                   else np.concatenate([spikes, spikes_forward], axis=1)}
        for name in ("behavior", "trial"):
            if name in inputs:
                targets[name] = encoded[name]
        for v in range(len(self.classes_)):
            targets[f"label{v}"] = encoded["labels"][:, v]
        return pack(inputs, targets)

    def _extend(self, spikes):
        """``spikes`` with ``forward_bins`` zero bins appended (their tokens are hidden)."""
        if not self.forward_bins:
            return spikes
        zeros = np.zeros((len(spikes), self.forward_bins, spikes.shape[2]), np.float32)
        return np.concatenate([spikes, zeros], axis=1)

    def _with_forward(self, encoded, behavior_forward=None):
        """Encoded behavior with the forward bins appended: ``behavior_forward`` encoded as in
        fit, or missing (NaN) without it."""
        if not self.forward_bins:
            if behavior_forward is not None:
                raise ValueError("behavior_forward was given but forward_bins=0; it is the "
                                 "behavior over the forward bins, (n_trials, forward_bins, "
                                 "n_behavior).")
            return encoded
        behavior = encoded["behavior"]
        n_trials = len(behavior)
        if behavior_forward is None:
            extra = np.full((n_trials, self.forward_bins, behavior.shape[2]), np.nan,
                            np.float32)
        else:
            expected = (n_trials, self.forward_bins, len(self.roles_.names))
            if not self.roles_.per_bin or np.shape(behavior_forward)[:2] != expected[:2]:
                raise ValueError(
                    f"behavior_forward must be per-bin behavior (n_trials, forward_bins, "
                    f"n_behavior) = {expected} in the layout of b; got shape "
                    f"{np.shape(behavior_forward)}."
                )
            raw = read_behavior(behavior_forward,
                                np.zeros((n_trials, self.forward_bins, 1), np.float32),
                                name="behavior_forward",
                                categorical=self.categorical_behavior)
            extra = self._encode(raw, n_trials, self.forward_bins,
                                 name="behavior_forward")["behavior"]
        return dict(encoded, behavior=np.concatenate([behavior, extra], axis=1))

    def _check_forward(self, X, spikes, spikes_forward):
        """Validated ``spikes_forward`` ``(n_trials, forward_bins, n_neurons)`` or None."""
        if not self.forward_bins:
            if spikes_forward is not None:
                raise ValueError("spikes_forward was given but forward_bins=0; set "
                                 "forward_bins to the number of bins in spikes_forward.")
            return None
        if isinstance(X, SessionTrials):
            raise ValueError("forward_bins > 0 needs single-session X (an array).")
        expected = (len(spikes), self.forward_bins, spikes.shape[2])
        if spikes_forward is None:
            raise ValueError(f"forward_bins={self.forward_bins} needs spikes_forward, the "
                             f"counts of the bins after each trial, of shape {expected}.")
        forward, _ = SPIKES.validate(spikes_forward, name="spikes_forward")
        if forward.shape != expected:
            raise ValueError(f"spikes_forward must be (n_trials, forward_bins, n_neurons) = "
                             f"{expected}; got shape {forward.shape}.")
        return forward

    @staticmethod
    def _mean_counts(spikes, slots, n_neurons, sessions):
        """Mean count per bin of each of ``sessions``' neurons (None for the others)."""
        means = []
        for s, n in enumerate(n_neurons):
            rows = slots == s
            means.append(spikes[rows, :, :n].mean(axis=(0, 1))
                         if s in sessions and rows.any() else None)
        return means

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, *, spikes_forward=None, behavior_forward=None):
        """Train NEDS on spikes ``X`` and behavior ``y`` (``b``, in scikit-learn's ``y`` place).

        Parameters
        ----------
        X : array-like of shape (n_trials, n_time, n_neurons) or SessionTrials
            Spike counts per bin (held-out neurons last); trials of several sessions as
            :class:`SessionTrials`.
        y : array-like of shape (n_trials, n_time, n_behavior) or (n_trials, n_behavior)
            Behavior ``b``: per-bin (continuous columns, plus per-trial ones listed in
            ``trial_behavior``) or per-trial (an array or a DataFrame); NaN where missing.
        spikes_forward : array-like of shape (n_trials, forward_bins, n_neurons), optional
            Counts of the bins after each trial (required when ``forward_bins > 0``).
        behavior_forward : array-like of shape (n_trials, forward_bins, n_behavior), optional
            Per-bin behavior over the forward bins (training only; missing without it).

        Returns
        -------
        self : NedsEstimator
        """
        return self._fit(X, y, spikes_forward=spikes_forward, behavior_forward=behavior_forward)

    def _read_fit_data(self, X, y, spikes_forward=None, behavior_forward=None):
        spikes, slots, keys, n_neurons = read_sessions(X, SPIKES)
        if y is None:
            raise ValueError(
                "NedsEstimator requires y to be passed, but the target y is None: NEDS models "
                "spikes and behavior together, fit(X, b) with behavior b (n_trials, n_time, "
                "n_behavior) or (n_trials, n_behavior)."
            )
        if self.n_heldout >= min(n_neurons):
            raise ValueError(
                f"n_heldout={self.n_heldout} must leave at least one held-in neuron in every "
                f"session: X has {min(n_neurons)} neurons (n_trials, n_time, n_neurons), "
                "held-out neurons last."
            )
        forward = self._check_forward(X, spikes, spikes_forward)
        b = y
        raw = read_behavior(b, spikes, name="b", categorical=self.categorical_behavior)
        if not raw.any_observed:
            raise ValueError("b holds no observed value (all NaN).")
        encoding = BehaviorEncoding(raw)
        self.roles_ = self._roles(raw, encoding)
        self.classes_ = [np.asarray(encoding.categories[j]) for j in self.roles_.labels]
        self.sessions_, self.n_neurons_ = keys, tuple(n_neurons)
        if isinstance(X, SessionTrials):
            self.__dict__.pop("n_features_in_", None)
        else:
            self.n_features_in_ = n_neurons[0]
        self.n_time_in_ = spikes.shape[1]
        self.config_ = NedsConfig(
            n_neurons=self.n_neurons_, n_time=spikes.shape[1] + self.forward_bins,
            n_heldout=self.n_heldout,
            behavior_groups=tuple(tuple(g) for g in self.roles_.groups),
            n_trial=len(self.roles_.trial_continuous),
            n_classes=tuple(len(c) for c in self.classes_),
            hidden_size=self.hidden_size, n_layers=self.n_layers, n_heads=self.n_heads,
            ffn_size=self.ffn_size, dropout=self.dropout,
            embedding_dropout=self.embedding_dropout, rotary=self.rotary,
            input_map=self.input_map,
        )
        return self._training_data(spikes, slots, raw, spikes_forward=forward,
                                   behavior_forward=behavior_forward), slots

    def _fit_models(self, data, seeds):
        data, slots = data
        self._seeds = [seeds["model"], seeds["finetune"]]  # fine-tuning takes the second
        builder = self._builder(self._scheme_probs(), self._modality_weights(),
                                self._mean_counts(data["targets.spikes"], slots,
                                                  self.n_neurons_, range(len(self.sessions_))))
        self.net_ = self._train(builder, data, seeds["model"], "NEDS",
                                stop_on=self._selection())

    def _tasks(self):
        """The task metrics ``monitor`` selects on (empty for ``"loss"``)."""
        if self.monitor == "loss":
            return ()
        if self.monitor != "task":
            return (self.monitor,)
        probs = dict(zip(SCHEMES, self._scheme_probs()))
        tasks = tuple(task for task in ("decoding", "encoding") if probs[task] > 0)
        return tasks or ("decoding", "encoding")

    def _selection(self):
        """What early stopping watches: the masked validation loss, or NEDS's task metrics."""
        tasks = self._tasks()
        return TaskMetrics(self.config_, tasks, n_forward=self.forward_bins) if tasks \
            else "masked"

    def finetune(self, X, b, *, max_epochs=None):
        """Continue training on trials ``X`` (``SessionTrials``), adding their new sessions.

        Sessions of ``X`` that the model does not know get fresh input and output maps and a
        fresh session embedding (their readout started at their neurons' mean counts); the
        rest of the model starts from the fitted weights and trains on ``X`` and ``b`` with
        the same objective. The maps and embedding of known sessions without trials in ``X``
        are frozen, so the model keeps serving them as before (the shared layers do change).
        Behavior is encoded as in ``fit`` (same columns, training statistics of ``fit``).

        Parameters
        ----------
        X : SessionTrials
            Trials to train on; a new session is named by a new key (wrap one array as
            ``SessionTrials([X_new], keys=["new"])``).
        b : array-like
            Behavior of those trials, in the layout of ``fit``.
        max_epochs : int, optional
            Most epochs of fine-tuning (default: ``max_epochs``).

        Returns
        -------
        self : NedsEstimator
        """
        check_is_fitted(self)
        self._validate_params()
        if not isinstance(X, SessionTrials):
            raise TypeError(
                "finetune takes X as SessionTrials, whose keys name the sessions (new keys add "
                "sessions): wrap one session as SessionTrials([X], keys=['new'])."
            )
        if max_epochs is not None:
            check_number(max_epochs, "max_epochs", low=1, integer=True)
        if self.forward_bins:
            raise ValueError("finetune adds sessions, and forward_bins > 0 is for "
                             "single-session models; refit with forward_bins=0.")
        used = sorted(set(X.session.tolist()))
        new = [X.keys[s] for s in used if X.keys[s] not in self.sessions_]
        for s in used:  # training needs every neuron: held-out ones are targets
            key = X.keys[s]
            expected = (self.n_neurons_[self.sessions_.index(key)] if key in self.sessions_
                        else self.n_heldout + 1)
            if (X.n_neurons[s] != expected if key in self.sessions_
                    else X.n_neurons[s] < expected):
                raise ValueError(
                    f"session {key!r} of X has {X.n_neurons[s]} neurons; fine-tuning needs "
                    + (f"all {expected} the model knows it with (held-out ones last)."
                       if key in self.sessions_ else
                       f"more than n_heldout={self.n_heldout} (held-out neurons last).")
                )
        keys = list(self.sessions_) + new
        n_neurons = self.n_neurons_ + tuple(X.n_neurons[X.keys.index(k)] for k in new)
        previous = _training.trained_model(self.net_).model
        old_sessions = len(self.sessions_)
        with self._atomic():  # a failed or interrupted fine-tuning leaves the model as it was
            self.sessions_, self.n_neurons_ = keys, n_neurons
            self.config_ = dataclasses.replace(self.config_, n_neurons=n_neurons)
            spikes, slots = self._spikes(X)
            raw = read_behavior(b, spikes, name="b", categorical=self.categorical_behavior)
            data = self._training_data(spikes, slots, raw)
            present = set(slots.tolist())
            builder = self._builder(
                self._scheme_probs(), self._modality_weights(),
                self._mean_counts(spikes, slots, n_neurons, range(old_sessions, len(keys))),
                start=previous,
                frozen_sessions=[s for s in range(old_sessions) if s not in present],
            )
            self.net_ = self._train(builder, data, int(self._seeds[1]), "NEDS (fine-tuning)",
                                    max_epochs=max_epochs or self.max_epochs,
                                    stop_on=self._selection())
            self.n_iter_ = len(self.net_.history)
        return self

    def _net_builder(self, attribute, saved):
        """The recipe ``fit`` builds :attr:`net_` from (a NEDS of ``config_`` and its
        multi-task objective): :func:`sklearn_blend.load` loads saved weights into it."""
        # no readout starts: the saved weights replace them
        return self._builder(self._scheme_probs(), self._modality_weights(),
                             [None] * len(self.config_.n_neurons))

    def _builder(self, scheme_probs, weights, mean_counts, **options):
        """The recipe of the NEDS of ``config_`` and its multi-task objective (the modality
        ``weights`` spread over its loss terms), each session's readout started at its
        ``mean_counts``; ``options`` are those of fine-tuning (``start``,
        ``frozen_sessions``)."""
        loss_weights = {}
        for name in neds_modalities(self.config_):
            key = "labels" if name.startswith("label") else name
            if key in weights:
                loss_weights[name] = weights[key]
        if not any(loss_weights.get(name, 1.0) > 0 for name in neds_modalities(self.config_)):
            raise ValueError(
                f"modality_weights={self.modality_weights!r} weighs every loss of this model "
                f"({sorted(neds_modalities(self.config_))}) 0, so nothing would train; give "
                "one a positive weight.")
        return NedsBuilder(self.config_, scheme_probs, self.mask_ratio, mean_counts,
                           weights=loss_weights, precision=self.precision,
                           n_forward=self.forward_bins, **options)

    # ------------------------------------------------------------------ prediction
    def _encoded_b(self, b, spikes):
        raw = None if b is None else read_behavior(b, spikes, name="b",
                                                   categorical=self.categorical_behavior)
        return self._encode(raw, *spikes.shape[:2])

    def _run(self, spikes, slots, encoded, token_mask):
        """Predictions and latents of one pass; ``spikes`` and ``encoded`` cover the trials'
        bins, and the forward bins are appended here (hidden, as in training)."""
        encoded = self._with_forward(encoded)
        token_mask = np.concatenate(
            [token_mask, self._mask(len(spikes), self.forward_bins)], axis=1)
        return _training.predict(self.net_, self._inputs(self._extend(spikes), slots, encoded,
                                                         token_mask))

    def _from_spikes(self, X):
        """``(predictions, latents, n_trials, n_time)`` of one pass over ``X`` with every
        behavior token hidden (decoding); per-bin outputs cover the trials' own bins."""
        spikes, slots = self._spikes(X)
        n_trials, n_time = spikes.shape[:2]
        predictions, latents = self._run(spikes, slots, self._encoded_b(None, spikes),
                                         self._mask(n_trials, n_time))
        for name in ("spikes", "behavior"):
            if name in predictions:
                predictions[name] = predictions[name][:, :n_time]
        return predictions, latents[:, :n_time], n_trials, n_time

    def _mask(self, n_trials, n_time):
        return np.zeros((n_trials, n_time, len(self.config_.streams)), dtype=bool)

    def predict(self, X):
        """Behavior decoded from spikes alone, in the units and layout of ``b`` in fit.

        Returns
        -------
        b_pred : ndarray of shape (n_trials, n_time, n_behavior) or (n_trials, n_behavior)
            Per-trial columns of a per-bin ``b`` are repeated over the bins; categorical
            columns hold the predicted labels (an object array if labels are not numbers).
        """
        check_is_fitted(self)
        predictions, _, n_trials, n_time = self._from_spikes(X)
        return self._to_user(predictions, n_trials, n_time)

    def _has_labels(self):
        check_is_fitted(self)
        return bool(self.classes_)

    @available_if(_has_labels)
    def predict_proba(self, X):
        """Class probabilities of each categorical column from spikes alone: a list with one
        ``(n_trials, n_classes)`` array per categorical column (classes in ``classes_``).
        Available after a fit with categorical behavior."""
        predictions = self._from_spikes(X)[0]
        return [self._softmax(predictions[f"label{v}"]) for v in range(len(self.classes_))]

    @staticmethod
    def _softmax(logits):
        shifted = np.exp(logits - logits.max(-1, keepdims=True))
        return shifted / shifted.sum(-1, keepdims=True)

    def _to_user(self, predictions, n_trials, n_time):
        """Decoded behavior in the units and layout of fit. Continuous columns are float32, as
        the models compute, or float64 when the behavior's units are beyond float32's range
        (its statistics are kept in float64): never inf or a vanished 0."""
        roles, encoding = self.roles_, self.roles_.encoding
        continuous = [*roles.bin, *roles.trial_continuous]
        largest, smallest = float(np.finfo(np.float32).max), float(np.finfo(np.float32).tiny)
        extreme = any(value > largest / 1e3 or 0 < value < smallest * 1e3
                      for j in continuous
                      for value in (abs(float(encoding.scale[j])), abs(float(encoding.mean[j]))))
        precision = np.float64 if extreme else np.float32
        columns = {}
        for k, j in enumerate(roles.bin):
            values = predictions["behavior"][..., k].astype(precision)
            columns[j] = values * encoding.scale[j] + encoding.mean[j]
        for k, j in enumerate(roles.trial_continuous):
            values = predictions["trial"][:, k].astype(precision)
            columns[j] = values * encoding.scale[j] + encoding.mean[j]
        for v, j in enumerate(roles.labels):
            columns[j] = self.classes_[v][predictions[f"label{v}"].argmax(-1)]
        numeric = all(np.asarray(c).dtype.kind in "biuf" for c in columns.values())
        dtype = np.float64 if numeric else object
        if roles.per_bin:
            out = np.empty((n_trials, n_time, len(roles.names)), dtype=dtype)
            for j, values in columns.items():
                out[..., j] = values if np.ndim(values) == 2 else np.asarray(values)[:, None]
        else:
            out = np.empty((n_trials, len(roles.names)), dtype=dtype)
            for j, values in columns.items():
                out[:, j] = values
        return out.astype(precision) if numeric else out

    def predict_rates(self, X=None, b=None, *, session=None, forward=False):
        """Firing rates (expected counts per bin) from spikes, from behavior, or from both.

        Parameters
        ----------
        X : array-like of shape (n_trials, n_time, n_neurons) or SessionTrials, optional
            Spikes. The held-in neurons' rates in each bin come from a pass in which that bin
            was hidden in every per-bin stream (interleaved masks, each hiding about
            ``mask_ratio`` of the bins: the cross-modal scheme), as in training; the held-out
            neurons (never read) and the forward bins from one pass with every spike token
            visible (with behavior hidden: the decoding scheme).
        b : array-like, optional
            Behavior in the layout of fit. Alone (``X=None``): encoding, every spike token
            hidden. With ``X``: the behavior is visible too.
        session : hashable, optional
            With ``X=None``, the key of the session whose neurons to predict (needed when the
            model knows several).
        forward : bool, default=False
            Append the rates of the ``forward_bins`` bins after each trial.

        Returns
        -------
        rates : ndarray of shape (n_trials, n_time[+forward_bins], n_neurons)
            All neurons, held-out ones included. For ``SessionTrials``, ``n_neurons`` is the
            largest session's and the columns past a trial's own neurons are NaN.
        """
        check_is_fitted(self)
        if X is None and b is None:
            raise ValueError("predict_rates needs spikes X, behavior b, or both.")
        if X is None:
            if session is None and len(self.sessions_) > 1:
                raise ValueError(f"the model knows sessions {self.sessions_}: say whose "
                                 "neurons to predict with session=<key>.")
            key = self.sessions_[0] if session is None else session
            if key not in self.sessions_:
                raise ValueError(f"session={key!r} is not one of {self.sessions_}.")
            slot = self.sessions_.index(key)
            n_trials = len(b)
            n_time = np.shape(b)[1] if np.ndim(b) == 3 else self.n_time_in_
            if n_time > self.n_time_in_:
                raise ValueError(f"b has {n_time} bins; the model was fitted on trials of "
                                 f"{self.n_time_in_} (b must be (n_trials, n_time <= "
                                 f"{self.n_time_in_}, n_behavior) or trial-level).")
            if forward and n_time != self.n_time_in_:
                raise ValueError(f"forward=True follows trials of the fitted length "
                                 f"({self.n_time_in_} bins); b has {n_time}.")
            spikes = np.zeros((n_trials, n_time, max(self.n_neurons_)), np.float32)
            mask = self._mask(n_trials, n_time)
            mask[..., 0] = True
            predictions, _ = self._run(spikes, np.full(n_trials, slot, np.int64),
                                       self._encoded_b(b, spikes), mask)
            n_out = n_time + (self.forward_bins if forward else 0)
            return np.exp(predictions["spikes"][:, :n_out, : self.n_neurons_[slot]])
        spikes, slots = self._spikes(X)
        n_trials, n_time = spikes.shape[:2]
        if forward and n_time != self.n_time_in_:
            raise ValueError(f"forward=True follows trials of the fitted length "
                             f"({self.n_time_in_} bins); X has {n_time}.")
        encoded = self._encoded_b(b, spikes)
        # held-out neurons and forward bins: one pass with every spike token visible (without
        # b every behavior token is hidden: the decoding scheme)
        predictions, _ = self._run(spikes, slots, encoded, self._mask(n_trials, n_time))
        rates = np.exp(predictions["spikes"][..., : spikes.shape[2]]).astype(np.float32)
        # the held-in neurons of each bin: a pass in which that bin is hidden in every per-bin
        # stream (the cross-modal scheme; the behavior is hidden everywhere without b)
        per_bin = np.asarray(self.net_.criterion_.masking.per_bin)
        n_heldin = np.asarray(self.n_neurons_)[slots] - self.n_heldout
        heldin = (np.arange(rates.shape[-1])[None, :] < n_heldin[:, None])[:, None, :]
        for hidden in interleaved_masks(n_time, self.mask_ratio).numpy():
            mask = self._mask(n_trials, n_time)
            mask[:, hidden] = per_bin
            predictions, _ = self._run(spikes, slots, encoded, mask)
            window = rates[:, :n_time]
            masked = np.exp(predictions["spikes"][:, :n_time, : spikes.shape[2]])
            window[:, hidden] = np.where(heldin, masked, window)[:, hidden]
        if not forward:
            rates = rates[:, :n_time]
        width = np.asarray(self.n_neurons_)[slots]
        padding = np.arange(rates.shape[-1])[None, :] >= width[:, None]  # (n_trials, neurons)
        rates[np.broadcast_to(padding[:, None, :], rates.shape)] = np.nan
        if not isinstance(X, SessionTrials):
            rates = rates[..., : self.n_neurons_[0]]
        return rates

    # ------------------------------------------------------------------ as a BLEND teacher
    def encode_behavior(self, b, X, *, name="b", behavior_forward=None):
        """Behavior ``b`` of trials ``X`` packed as :attr:`model_` reads it in a student's batch.

        One float array ``(n_trials, n_time + forward_bins, width)``: the per-bin continuous
        columns (standardised with the training statistics), then the per-trial continuous
        variables and the class codes of the categorical ones, repeated over the bins; NaN
        (codes -1) where missing, and over the forward bins unless ``behavior_forward`` gives
        them. Part of the teacher contract of :class:`~sklearn_blend.BlendEstimator`.
        """
        check_is_fitted(self)
        spikes, _ = SPIKES.validate(X)
        raw = read_behavior(b, spikes, name=name, categorical=self.categorical_behavior)
        if raw is None:
            raise ValueError(f"{name} (behavior in the layout of fit) is required by the "
                             "NEDS teacher.")
        self.roles_.encoding.check_compatible(raw, name)
        encoded = self._with_forward(self._encode(raw, *spikes.shape[:2], name=name),
                                     behavior_forward)
        n_bins = encoded["behavior"].shape[1]
        per_trial = np.concatenate([encoded["trial"],
                                    encoded["labels"].astype(np.float32)], axis=1)
        return np.concatenate(
            [encoded["behavior"],
             np.repeat(per_trial[:, None, :], n_bins, axis=1).astype(np.float32)], axis=-1)

    @property
    def model_(self):
        """The fitted model as a BLEND teacher's model
        (:class:`~sklearn_blend.training.neds.NedsTeacherModel`): it reads a student's batch
        (masked held-in spikes, the hidden bins, :meth:`encode_behavior`'s behavior) and
        predicts the log-rates of all neurons. Single-session models only."""
        check_is_fitted(self)
        if len(self.sessions_) > 1:
            raise ValueError(
                f"a NEDS teacher of a BLEND student must know one session; this one knows "
                f"{self.sessions_}. Fine-tune or fit a model on the student's session."
            )
        return NedsTeacherModel(_training.trained_model(self.net_).model,
                                n_forward=self.forward_bins)

    def transform(self, X):
        """Latent spike tokens per bin from spikes alone, ``(n_trials, n_time, hidden_size)``."""
        check_is_fitted(self)
        return self._from_spikes(X)[1]

    def score(self, X, y):
        """Decoding R2 from spikes alone, averaged over the continuous behavior columns (per-bin
        columns pooled over trials and bins, per-trial ones over trials; NaN targets skipped).
        With categorical columns only: mean balanced accuracy over them (NEDS's metric).
        ``y`` is the behavior ``b`` in the layout of fit. Both are the behavior modalities' own
        scores (:meth:`~sklearn_blend.modalities.Modality.score`)."""
        check_is_fitted(self)
        predictions, _, n_trials, n_time = self._from_spikes(X)
        predicted = self._to_user(predictions, n_trials, n_time)
        spikes, _ = self._spikes(X)
        raw = read_behavior(y, spikes, name="b", categorical=self.categorical_behavior)
        self.roles_.encoding.check_compatible(raw, "b")
        roles = self.roles_

        def per_trial(j, values, observed, guess=None):
            if raw.per_bin and j in roles.trial:  # one value per trial, repeated over bins
                values, observed = _per_trial(values, observed, raw.names[j], "b")
                guess = None if guess is None else guess[:, 0]
            return values, observed, guess

        scores = []
        for j in [*roles.bin, *roles.trial_continuous]:
            guess = predicted[..., j] if raw.per_bin else predicted[:, j]
            values, observed, guess = per_trial(j, np.asarray(raw.columns[j], float),
                                                raw.observed[j], guess)
            target = np.where(observed, values, np.nan)
            scores.append(BEHAVIOR.score(np.asarray(guess, float)[..., None],
                                         target[..., None]))
        if scores:
            return float(np.mean(scores))
        accuracies = []
        for v, j in enumerate(roles.labels):
            values, observed, _ = per_trial(j, raw.columns[j], raw.observed[j])
            codes = roles.encoding.codes(j, values, observed, "b")
            accuracies.append(LABELS.score(self._softmax(predictions[f"label{v}"]), codes))
        return float(np.mean(accuracies))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.positive_only = SPIKES.non_negative
        tags.target_tags.required = True
        tags.transformer_tags.preserves_dtype = ["float32"]  # PyTorch computes in float32
        return tags
