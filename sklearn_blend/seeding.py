"""Seeding: per-fit random generators, so that seeded fits in threads are reproducible.

While a model trains, :func:`using` makes its own :class:`torch.Generator` the *current* one
of that thread; masks (:mod:`sklearn_blend.training.objective`), dropout
(:class:`sklearn_blend.models.layers.Dropout`) and the batch order
(:class:`ReplaySampler`, used by :class:`sklearn_blend.training.core.ObjectiveNet`) draw from
it instead of torch's process-wide generator. The stream is
the one the global generator would give under the same seed (same draws, same order), so
results do not depend on which generator is used, only on the seed.

A model whose modules draw from torch's global generator themselves (``nn.GRU``'s dropout
between layers in LFADS, a user's base) declares nothing and trains under a process-wide lock
with the global generator seeded and restored (:func:`torch.random.fork_rng`): reproducible in
threads too, one such fit at a time.
"""

from __future__ import annotations

import contextlib
import threading

import torch
from torch.utils.data import Sampler

_local = threading.local()

#: held while a model is built (its initial weights draw from the global generator) and while
#: a model that draws from the global generator trains
GLOBAL_RNG_LOCK = threading.RLock()


def current():
    """The generator of the fit running in this thread, or ``None`` (use torch's global one)."""
    return getattr(_local, "generator", None)


@contextlib.contextmanager
def using(generator):
    """Make ``generator`` the current one of this thread for the duration of the block."""
    previous = current()
    _local.generator = generator
    try:
        yield generator
    finally:
        _local.generator = previous


def draws_from_fit_generator(model):
    """Whether every random draw of ``model`` in training goes through :func:`current`.

    True when the model (or the base inside its adapter) says so with a class attribute
    ``draws_from_fit_generator = True``, as NDT and NeuPRINT do (their only randomness is
    :class:`~sklearn_blend.models.layers.Dropout` on the CPU).
    """
    inner = [getattr(model, name) for name in ("base", "model") if hasattr(model, name)]
    return any(getattr(type(m), "draws_from_fit_generator", False) for m in [model, *inner])


class ReplaySampler(Sampler):
    """Shuffled indices as :class:`torch.utils.data.RandomSampler` draws them, but from
    ``generator``: one seed drawn per epoch, then a permutation from a generator seeded with it
    (the global generator would give the same order)."""

    def __init__(self, n_samples, generator):
        self.n_samples = n_samples
        self.generator = generator

    def __len__(self):
        return self.n_samples

    def __iter__(self):
        seed = int(torch.empty((), dtype=torch.int64).random_(generator=self.generator).item())
        permutation = torch.Generator()
        permutation.manual_seed(seed)
        yield from torch.randperm(self.n_samples, generator=permutation).tolist()
