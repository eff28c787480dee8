"""The base-model protocol, the registry of bases, and the adapter every base is trained through.

A *base* is what teacher and student are made of (NDT, LFADS, or a user's PyTorch module). It
is given by a name in :data:`BASES` or by a callable (a ``torch.nn.Module`` subclass or a
factory function) that follows this protocol:

* it is called with keyword arguments ``n_inputs`` (spike channels given as input: the held-in
  neurons), ``n_outputs`` (neurons whose log-rates are predicted: held-in then held-out),
  ``n_behavior`` (behavior channels per time bin; ``0`` for a student) and, if its signature
  accepts it, ``n_time`` (the longest trial it will see, forward bins included), plus any
  options given as ``base_params``;
* it returns an ``nn.Module`` whose ``forward(spikes, behavior=None)`` takes spikes
  ``(batch, time, n_inputs)`` (masked bins are zeros) and, for a teacher, behavior
  ``(batch, time, n_behavior)``, and returns the log-rates ``(batch, time, n_outputs)``: as a
  tensor, a tuple ``(log_rates, features)`` or ``(log_rates, features, latents)``, a dict with
  those keys, or a :class:`ModelOutput`. ``features`` is a list of ``(batch, time, width)``
  tensors, one per layer that ``strategy="feature"`` should align; ``latents``
  ``(batch, time, width)`` is what ``output="latents"`` returns;
* optionally, a method ``init_output_bias(mean_counts)`` that starts the readout at the log mean
  count of each output neuron (it roughly halves the epochs needed on small data).
* optionally, penalties of its own (a variational model's KL terms): the dict or
  :class:`ModelOutput` it returns in training carries ``penalty``, a scalar tensor that the
  objective adds to the training loss (logged as ``train_penalty`` when the module has
  ``penalised = True``).

:class:`BaseAdapter` wraps every base, built-in or not, so the training core sees one kind of
model (it reads and predicts mappings keyed by modality): it checks and normalises the output, and turns trial-level behavior ``(batch, k)`` into
per-bin behavior with a learnable embedding (:class:`TrialBehaviorEmbedding`).
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import torch
from torch import nn


class ModelOutput(NamedTuple):
    """What a model returns: its predictions, latents and per-layer features.

    ``predictions`` maps a modality name (:mod:`sklearn_blend.modalities`) to a
    ``(batch, time, channels)`` tensor in that modality's prediction units (log-rates for
    spikes, z-scored values for continuous signals, logits for labels): what the training core
    reads. A base (the protocol above) may give one tensor instead, its log-rates, which
    :class:`BaseAdapter` files under its modality. ``latents`` ``(batch, time, width)`` or
    ``None`` is the representation ``output="latents"`` returns; ``features`` one
    ``(batch, time, width)`` tensor per aligned layer (what feature distillation matches),
    possibly empty. ``penalty`` is a scalar the model adds to the training loss (its own
    regularisers, weighted: LFADS's KL and L2 terms), or ``None``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_blend.models import ModelOutput
    >>> out = ModelOutput({"spikes": torch.zeros(2, 5, 3)}, latents=torch.zeros(2, 5, 4))
    >>> tuple(out.log_rates.shape), tuple(out.latents.shape), out.features, out.penalty
    ((2, 5, 3), (2, 5, 4), (), None)
    >>> ModelOutput(torch.ones(2, 5, 3)).log_rates.sum().item()
    30.0
    """

    predictions: dict | torch.Tensor
    latents: torch.Tensor | None = None
    features: list | tuple = ()
    penalty: torch.Tensor | None = None

    @property
    def log_rates(self):
        """The log-rates: ``predictions["spikes"]``, or a base's single tensor."""
        if isinstance(self.predictions, torch.Tensor):
            return self.predictions
        return self.predictions["spikes"]

    def float(self):
        """The same outputs in float32 (after a bfloat16 autocast region)."""
        predictions = (self.predictions.float() if isinstance(self.predictions, torch.Tensor)
                       else {name: value.float() for name, value in self.predictions.items()})
        return ModelOutput(predictions, None if self.latents is None else self.latents.float(),
                           [feature.float() for feature in self.features],
                           None if self.penalty is None else self.penalty.float())


#: the name :class:`ModelOutput` had while a second class held the models' predictions by
#: modality (one class since); kept for code written then
ModalityOutput = ModelOutput


@dataclass(frozen=True)
class BaseEntry:
    """A registered base: its builder, the estimator parameters forwarded to it, and the
    base's own defaults of those parameters (used where the estimator leaves them at None)."""

    builder: Callable
    estimator_params: tuple = ()
    defaults: dict = field(default_factory=dict)
    #: how the training objective hides inputs: ``"timestep"`` (whole bins, NDT's masked
    #: modelling) or ``"coordinated"`` (single entries, LFADS's coordinated dropout)
    masking: str = "timestep"
    #: the estimators' ``inference`` where it is ``None``: ``"masked"`` or ``"full"``
    inference: str = "masked"


#: ``base=`` name -> :class:`BaseEntry`; see :func:`register_base`
BASES: dict = {}


def register_base(name, builder, *, estimator_params=(), defaults=None, masking="timestep",
                  inference="masked"):
    """Make ``base=name`` build models with ``builder`` (a callable following the protocol).

    ``estimator_params`` names :class:`~sklearn_blend.BlendEstimator` parameters (such as
    ``"hidden_size"`` or ``"dropout"``) that are passed to the builder as keyword arguments, in
    addition to ``base_params``, when the estimator sets them (not ``None``). ``defaults`` gives
    the base's own value of each (default: read from the builder's signature) and may give its
    own ``"mask_ratio"``; an estimator left at ``None`` builds with it, so every base keeps its
    own defaults. ``masking`` says how training hides inputs (``"timestep"``: whole bins;
    ``"coordinated"``: single entries, coordinated dropout) and ``inference`` the estimators'
    ``inference`` where it is ``None`` (``"masked"`` or ``"full"``).

    Examples
    --------
    A throwaway base (a linear map of each bin), registered, built and removed again:

    >>> import torch
    >>> from torch import nn
    >>> from sklearn_blend.models import BASES, build_model, register_base
    >>> def build_linear(*, n_inputs, n_outputs, n_behavior=0, hidden_size=8):
    ...     return nn.Linear(n_inputs, n_outputs)
    >>> register_base("doctest_linear", build_linear, estimator_params=("hidden_size",))
    >>> entry = BASES["doctest_linear"]
    >>> entry.defaults, entry.masking, entry.inference
    ({'hidden_size': 8}, 'timestep', 'masked')
    >>> model = build_model("doctest_linear", n_inputs=6, n_outputs=8, n_behavior=0, n_time=10)
    >>> tuple(model(torch.zeros(2, 10, 6)).log_rates.shape)
    (2, 10, 8)
    >>> del BASES["doctest_linear"]
    """
    if not isinstance(name, str) or not callable(builder):
        raise TypeError("register_base needs a name (str) and a callable builder.")
    if masking not in ("timestep", "coordinated"):
        raise ValueError(f"masking must be 'timestep' or 'coordinated', got {masking!r}.")
    if inference not in ("masked", "full"):
        raise ValueError(f"inference must be 'masked' or 'full', got {inference!r}.")
    estimator_params = tuple(estimator_params)
    if defaults is None:
        defaults = signature_defaults(builder, estimator_params)
    BASES[name] = BaseEntry(builder, estimator_params, dict(defaults), masking, inference)


def signature_defaults(builder, names):
    """Default values of the parameters ``names`` in ``builder``'s signature (where it has one)."""
    try:
        parameters = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return {}
    return {name: parameters[name].default for name in names
            if name in parameters and parameters[name].default is not inspect.Parameter.empty}


def resolve_base(base):
    """The :class:`BaseEntry` of ``base`` (a registered name or a callable).

    Examples
    --------
    >>> from sklearn_blend.models import build_ndt, resolve_base
    >>> entry = resolve_base("lfads")
    >>> entry.masking, entry.inference, entry.defaults["mask_ratio"]
    ('coordinated', 'full', 0.3)
    >>> resolve_base(build_ndt).builder is build_ndt, resolve_base(build_ndt).masking
    (True, 'timestep')
    """
    if isinstance(base, str):
        if base not in BASES:
            raise ValueError(
                f"base must be one of {sorted(BASES)} or a callable that builds a PyTorch "
                f"module (see sklearn_blend.models.base), got {base!r}."
            )
        return BASES[base]
    if callable(base):
        return BaseEntry(base)
    raise TypeError(
        f"base must be a registered name ({sorted(BASES)}) or a callable that builds a "
        f"PyTorch module, got {type(base).__name__} {base!r}."
    )


@torch.no_grad()
def set_log_mean_bias(readout, mean_counts):
    """Set a readout layer's bias to ``log(mean count per bin)`` of each output neuron.

    Starting there halves the epochs needed on small data (``cpu_performance.md``, section 4);
    a silent neuron gets ``log(1e-4)``, not ``-inf``.
    """
    mean_counts = torch.as_tensor(mean_counts, dtype=readout.bias.dtype)
    readout.bias.copy_(torch.log(mean_counts.clamp_min(1e-4)))


#: builder arguments the estimator sets; ``base_params`` may not
RESERVED_OPTIONS = ("n_inputs", "n_outputs", "n_behavior", "n_time")



@torch.no_grad()
def set_session_biases(readouts, mean_counts):
    """:func:`set_log_mean_bias` for each session's readout (a ``None`` entry of
    ``mean_counts`` leaves that session's readout as it is)."""
    for readout, counts in zip(readouts, mean_counts):
        if counts is not None:
            set_log_mean_bias(readout, counts)

def base_fingerprint(base):
    """What identifies a base, for the teacher cache: name, a hash of its source and its
    registration (forwarded parameters and their defaults).

    A class or factory redefined under the same name (an edited notebook cell, a reloaded
    module, ``register_base`` on an existing name) gets a new fingerprint. When the source is
    not available, the object's ``id`` stands in (valid within this process only).

    Examples
    --------
    >>> from sklearn_blend.models import base_fingerprint, build_ndt
    >>> name, builder, code, registration = base_fingerprint("ndt")
    >>> name, builder, len(code)
    ('ndt', 'sklearn_blend.models.ndt.build_ndt', 64)
    >>> base_fingerprint("ndt") == base_fingerprint("ndt")
    True
    >>> base_fingerprint(build_ndt)[0] is None, base_fingerprint(build_ndt)[2] == code
    (True, True)
    """
    entry = resolve_base(base)
    builder = entry.builder
    name = f"{getattr(builder, '__module__', '?')}.{getattr(builder, '__qualname__', builder)}"
    try:
        code = hashlib.sha256(inspect.getsource(builder).encode()).hexdigest()
    except (OSError, TypeError):
        code = f"id:{id(builder)}"
    registration = (entry.estimator_params, tuple(sorted(entry.defaults.items(), key=str)),
                    entry.masking, entry.inference)
    return (base if isinstance(base, str) else None, name, code, registration)


def _accepts(builder, name):
    try:
        parameters = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def build_model(base, *, n_inputs, n_outputs, n_behavior, n_time, options=None,
                trial_behavior=0, modality="spikes"):
    """Build ``base`` for these shapes and wrap it in a :class:`BaseAdapter`.

    Parameters
    ----------
    base : str or callable
        A name in :data:`BASES` or a builder following the protocol.
    n_inputs, n_outputs, n_behavior, n_time : int
        Shapes (see the module docstring); ``n_behavior`` is the per-bin width the base sees.
    options : dict, optional
        Keyword arguments for the builder (forwarded estimator parameters and ``base_params``).
    trial_behavior : int, default=0
        Width of trial-level behavior ``(batch, trial_behavior)``: when positive, a
        :class:`TrialBehaviorEmbedding` maps it to ``n_behavior`` channels per bin.
    modality : str, default="spikes"
        The modality the model reads and predicts (a name in
        :data:`sklearn_blend.modalities.MODALITIES`): its outputs are log-rates for counts,
        values in model units for a continuous signal such as ``"lfp"``.

    Examples
    --------
    A small NDT teacher that reads 10 spike channels and 2 behavior channels per bin:

    >>> import torch
    >>> from sklearn_blend.models import build_model
    >>> model = build_model("ndt", n_inputs=10, n_outputs=12, n_behavior=2, n_time=20,
    ...                     options=dict(hidden_size=8, n_layers=1, ffn_size=16))
    >>> out = model({"spikes": torch.zeros(3, 20, 10), "behavior": torch.zeros(3, 20, 2)})
    >>> type(model).__name__, tuple(out.predictions["spikes"].shape), len(out.features)
    ('BaseAdapter', (3, 20, 12), 1)

    With trial-level behavior (3 values per trial), embedded into the 2 channels per bin:

    >>> model = build_model("ndt", n_inputs=10, n_outputs=12, n_behavior=2, n_time=20,
    ...                     options=dict(hidden_size=8, n_layers=1, ffn_size=16),
    ...                     trial_behavior=3)
    >>> out = model({"spikes": torch.zeros(3, 20, 10), "behavior": torch.zeros(3, 3)})
    >>> tuple(out.log_rates.shape)
    (3, 20, 12)
    """
    builder = resolve_base(base).builder
    kwargs = dict(options or {}, n_inputs=n_inputs, n_outputs=n_outputs, n_behavior=n_behavior)
    if _accepts(builder, "n_time"):
        kwargs["n_time"] = n_time
    try:
        module = builder(**kwargs)
    except TypeError as error:
        raise TypeError(
            f"could not build base {base!r} with {sorted(kwargs)}: {error}. A base is called "
            "with n_inputs, n_outputs, n_behavior (and n_time if it accepts it) plus "
            "base_params."
        ) from error
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"base {base!r} must build a torch.nn.Module, got {type(module).__name__}."
        )
    embedding = None
    if trial_behavior:
        embedding = TrialBehaviorEmbedding(trial_behavior, n_behavior, n_time)
    return BaseAdapter(module, n_inputs=n_inputs, n_outputs=n_outputs, n_behavior=n_behavior,
                       n_time=n_time, trial_behavior=trial_behavior, embedding=embedding,
                       modality=modality)


class TrialBehaviorEmbedding(nn.Module):
    """Trial-level behavior ``(batch, k)`` to per-bin channels ``(batch, time, width)``.

    ``gelu(W b + p_t)``: a linear map of the trial's behavior plus a learnable embedding of each
    time bin, so the same trial label can mean different things at different times in the trial
    (the learnable temporal encoding of BLEND's appendix A.10).

    Examples
    --------
    >>> import torch
    >>> from sklearn_blend.models import TrialBehaviorEmbedding
    >>> _ = torch.manual_seed(0)
    >>> embedding = TrialBehaviorEmbedding(n_features=3, width=4, n_time=20)
    >>> per_bin = embedding(torch.randn(2, 3), n_time=15)
    >>> tuple(per_bin.shape)
    (2, 15, 4)
    >>> bool(torch.allclose(per_bin[:, 0], per_bin[:, 1]))  # each bin has its own embedding
    False
    """

    def __init__(self, n_features, width, n_time):
        super().__init__()
        self.project = nn.Linear(n_features, width)
        self.position = nn.Parameter(torch.randn(1, n_time, width) * 0.02)

    def forward(self, behavior, n_time):
        return nn.functional.gelu(self.project(behavior)[:, None, :] + self.position[:, :n_time])


PROTOCOL = ("a base's forward returns log-rates (batch, time, n_outputs) as a tensor, a tuple "
            "(log_rates, features) or (log_rates, features, latents) with features a list of "
            "(batch, time, width) tensors (possibly empty) and latents a (batch, time, width) "
            "tensor or None, a dict with those keys (and optionally 'penalty', a scalar "
            "tensor added to the training loss), or a ModelOutput")


def _as_output(result):
    penalty = None
    if isinstance(result, ModelOutput):
        log_rates, latents, features, penalty = result
    elif isinstance(result, torch.Tensor):
        log_rates, latents, features = result, None, []
    elif isinstance(result, dict):
        if "log_rates" not in result:
            raise ValueError(f"the base returned a dict without 'log_rates'; {PROTOCOL}.")
        log_rates = result["log_rates"]
        latents, features = result.get("latents"), result.get("features", [])
        penalty = result.get("penalty")
    elif isinstance(result, (tuple, list)) and 1 <= len(result) <= 3:
        log_rates = result[0]
        features = result[1] if len(result) > 1 else []
        latents = result[2] if len(result) > 2 else None
    else:
        raise TypeError(f"the base returned a {type(result).__name__}; {PROTOCOL}.")
    if features is None:
        features = []
    if not isinstance(features, (list, tuple)) or not all(
        isinstance(f, torch.Tensor) for f in features
    ):
        raise TypeError(
            f"the base returned features of type {type(features).__name__}; {PROTOCOL}."
        )
    for what, value in (("log-rates", log_rates), ("latents", latents), ("penalty", penalty)):
        if value is not None and not isinstance(value, torch.Tensor):
            raise TypeError(f"the base returned {what} of type {type(value).__name__}; "
                            f"{PROTOCOL}.")
    if penalty is not None and penalty.dim() != 0:
        raise ValueError(f"the base returned a penalty of shape {tuple(penalty.shape)}; "
                         "expected a scalar tensor.")
    return ModelOutput(log_rates, latents, list(features), penalty)


def _check_output(output, spikes, n_outputs, base):
    batch_time = tuple(spikes.shape[:2])
    expected = (*batch_time, n_outputs)
    if tuple(output.log_rates.shape) != expected:
        raise ValueError(
            f"base {type(base).__name__} returned log-rates of shape "
            f"{tuple(output.log_rates.shape)}; expected (batch, time, n_outputs) = {expected}."
        )
    tensors = [("latents", output.latents)] if output.latents is not None else []
    tensors += [(f"features[{i}]", f) for i, f in enumerate(output.features)]
    for what, tensor in tensors:
        if tensor.dim() != 3 or tuple(tensor.shape[:2]) != batch_time:
            raise ValueError(
                f"base {type(base).__name__} returned {what} of shape {tuple(tensor.shape)}; "
                f"expected (batch, time, width) = ({batch_time[0]}, {batch_time[1]}, width)."
            )


class BaseAdapter(nn.Module):
    """A base model as the training core sees it: reads and predicts modalities.

    ``forward(inputs)`` takes a mapping with the signal of ``modality`` (default ``"spikes"``,
    ``(batch, time, n_inputs)``) and, for a model built with behavior, ``"behavior"``: per-bin
    ``(batch, time, n_behavior)`` or, with ``trial_behavior > 0``, trial-level
    ``(batch, trial_behavior)``, embedded per bin. Other entries are ignored, so a student and
    its teacher read the same mapping. It returns a :class:`ModelOutput` whose
    ``predictions`` hold ``{modality: outputs}`` (log-rates for spikes).
    ``model(spikes, behavior)`` works too.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sklearn_blend.models import BaseAdapter
    >>> model = BaseAdapter(nn.Linear(10, 12), n_inputs=10, n_outputs=12, n_behavior=0,
    ...                     n_time=20)
    >>> inputs = model.example_inputs(n_trials=2)
    >>> {name: tuple(value.shape) for name, value in inputs.items()}
    {'spikes': (2, 20, 10)}
    >>> out = model(inputs)
    >>> model.predicts, tuple(out.predictions["spikes"].shape), model.feature_widths()
    (('spikes',), (2, 20, 12), [])
    """

    def __init__(self, base, *, n_inputs, n_outputs, n_behavior, n_time, trial_behavior=0,
                 embedding=None, modality="spikes"):
        super().__init__()
        self.modality = modality
        self.base = base
        self.embedding = embedding
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        self.n_behavior = n_behavior
        self.n_time = n_time
        self.trial_behavior = trial_behavior

    @property
    def predicts(self):
        """The modalities this model predicts."""
        return (self.modality,)

    @property
    def penalised(self):
        """Whether the base adds penalties to the training loss (``ModelOutput.penalty``)."""
        return bool(getattr(self.base, "penalised", False))

    @torch.no_grad()
    def init_output_bias(self, mean_counts):
        """Start the readout at the log mean counts, if the base knows how."""
        if hasattr(self.base, "init_output_bias"):
            self.base.init_output_bias(mean_counts)

    def example_inputs(self, n_trials=1):
        """Zero inputs of the shapes this model takes (a mapping by modality)."""
        device = next(self.parameters()).device
        inputs = {self.modality: torch.zeros(n_trials, self.n_time, self.n_inputs,
                                             device=device)}
        if self.trial_behavior:
            inputs["behavior"] = torch.zeros(n_trials, self.trial_behavior, device=device)
        elif self.n_behavior:
            inputs["behavior"] = torch.zeros(n_trials, self.n_time, self.n_behavior,
                                             device=device)
        return inputs

    @torch.no_grad()
    def feature_widths(self):
        """Width of each feature tensor, from one forward pass in evaluation mode."""
        was_training = self.training
        self.eval()
        output = self(self.example_inputs())
        self.train(was_training)
        return [feature.shape[-1] for feature in output.features]

    def forward(self, inputs, behavior=None):
        if isinstance(inputs, torch.Tensor):
            inputs = {self.modality: inputs, "behavior": behavior}
        spikes = inputs[self.modality]
        if self.n_behavior:
            behavior = inputs.get("behavior")
            if self.embedding is not None:
                behavior = self.embedding(behavior, spikes.shape[1])
            output = _as_output(self.base(spikes, behavior))
        else:
            output = _as_output(self.base(spikes))
        _check_output(output, spikes, self.n_outputs, self.base)
        return ModelOutput({self.modality: output.log_rates}, output.latents,
                           output.features, output.penalty)
