"""Reuse of fitted teachers across fits that share data and teacher parameters.

A grid search over student-side parameters (``alpha``, ``tau``, ``strategy``) would otherwise
retrain an identical teacher for every candidate. Teachers are keyed by a hash of the training
spikes, the behavior and every parameter that shapes the teacher, so a different fold, a
different teacher setting or a different seed always trains a new one.

On disk, entries are pickles: a cache folder must be trusted like any pickle file (loading
one runs code), so keep it where only you write. Each entry is stamped with the hash of the
data, settings and seed it was fitted on; an entry whose stamp does not match the fit asking
for it (copied or edited) is retrained and replaced, with a warning, never used.

Two stores: an in-process LRU (``teacher_cache=True``, shared by all estimators of one
process), bounded both in count (:data:`MAX_CACHED_TEACHERS`) and in memory
(:data:`MAX_CACHED_BYTES` of the teachers' tensors: weights and optimizer state), and a
joblib.Memory on disk (``teacher_cache="/some/dir"`` or a ``joblib.Memory``),
which parallel workers (``GridSearchCV(n_jobs=...)``) share.
"""

from __future__ import annotations

import numbers
import os
import pickle
import threading
import warnings
from collections import OrderedDict

import joblib
import numpy as np
import torch

from .. import __version__

#: how many fitted teachers the in-process cache keeps (least recently used are dropped)
MAX_CACHED_TEACHERS = 16
#: how many bytes of tensors (weights, optimizer state) the in-process cache keeps at most; the
#: least recently used teachers are dropped first, and a teacher larger than this is not kept
MAX_CACHED_BYTES = 512 * 2**20

_in_process = OrderedDict()
_lock = threading.Lock()


def seed_policy(random_state, cache):
    """How an estimator's ``random_state`` enters the teacher cache: ``(key_seed, cache)``.

    An int is part of the key (the teacher's seed derives from it); unseeded fits key on
    ``None`` (any teacher fitted the same way qualifies); a ``RandomState`` cannot be keyed, so
    its teachers are never cached.
    """
    key_seed = random_state if isinstance(random_state, numbers.Integral) else None
    if isinstance(random_state, np.random.RandomState):
        cache = False
    return key_seed, cache


def cache_key(params, random_state, cache, *, seeded_by="estimator"):
    """``(key_params, cache)`` for :func:`fitted_teacher`: what identifies a teacher.

    ``params`` are the settings that shape the teacher apart from its seed; ``random_state``
    is the value its seed comes from, and ``seeded_by`` says whose it is (``"estimator"``: the
    teacher's seed is derived from the student estimator's ``random_state``; ``"teacher"``:
    the teacher's own), so that two teachers trained on different seeds never share a key.
    The package version is part of the key; :func:`seed_policy` says how the seed enters it.
    """
    key = dict(params, package_version=__version__, seeded_by=seeded_by)
    key["random_state"], cache = seed_policy(random_state, cache)
    return key, cache


def teacher_nbytes(teacher):
    """Bytes of the tensors a fitted teacher holds: its net's weights and optimizer state."""
    net = getattr(teacher, "net_", None)
    if net is None:
        return 0
    tensors = list(net.module_.state_dict().values())
    for state in net.optimizer_.state_dict()["state"].values():
        tensors += [value for value in state.values() if isinstance(value, torch.Tensor)]
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors)


def _cached_bytes():
    return sum(size for _, size in _in_process.values())


def _fit(teacher, data, fit_params):
    return teacher.fit(*data, **fit_params)


def clear():
    """Forget every teacher kept in this process."""
    with _lock:
        _in_process.clear()


def check_unwrapped(teacher):
    """An unfitted teacher must come unwrapped: a wrapper cannot be cloned into one to fit."""
    if "estimator" in teacher.get_params(deep=False):
        raise ValueError(
            "teacher is a wrapper (such as sklearn.frozen.FrozenEstimator) around an "
            "unfitted teacher; fit the teacher first, or pass it unwrapped to have it "
            "fitted here."
        )


def fit_teacher(teacher, data, fit_params, cache, *, own_seed, random_state, seed):
    """Fit the unfitted ``teacher`` (final parameters set), or reuse an equal cached one.

    The key is every parameter of ``teacher`` but ``verbose`` and ``random_state`` (a base by
    its code, :func:`~sklearn_blend.models.base_fingerprint`, so that a redefined class never
    reuses old teachers), its class and the seed policy: with ``own_seed`` the teacher keeps
    its own ``random_state``; otherwise it gets ``seed``, derived from the student estimator's
    ``random_state``, which keys it.
    """
    from ..models.base import base_fingerprint

    params = {k: v for k, v in teacher.get_params(deep=False).items()
              if k not in ("verbose", "random_state")}
    if "base" in params:
        params["base"] = base_fingerprint(teacher.base)
    params["teacher_class"] = f"{type(teacher).__module__}.{type(teacher).__qualname__}"
    key, cache = cache_key(params, teacher.random_state if own_seed else random_state, cache,
                           seeded_by="teacher" if own_seed else "estimator")
    if not own_seed:
        teacher.set_params(random_state=seed)
    return fitted_teacher(teacher, data, fit_params, cache, key_params=key)


def fitted_teacher(teacher, data, fit_params, cache, *, key_params):
    """Return ``teacher.fit(*data, **fit_params)``, or an equal teacher fitted before.

    Parameters
    ----------
    teacher : BlendTeacher
        Unfitted teacher with its final parameters.
    data : tuple of arrays
        Positional arguments of ``fit`` (spikes, behavior).
    fit_params : dict
        Keyword arguments of ``fit`` (arrays or ``None``); part of the key.
    cache : bool, str or joblib.Memory
        ``False``: always fit. ``True``: in-process cache. A path or ``joblib.Memory``: on-disk
        cache.
    key_params : dict
        The teacher parameters that identify it (``random_state`` is ``None`` for an unseeded
        fit, so that any teacher fitted on the same data with the same settings qualifies).
    """
    if cache is False or cache is None:
        return _fit(teacher, data, fit_params)
    try:
        key = joblib.hash((data, sorted(fit_params.items()), sorted(key_params.items())))
    except (pickle.PicklingError, AttributeError, TypeError) as error:
        warnings.warn(
            f"the teacher cannot be cached: its data or parameters cannot be hashed ({error}); "
            "a base defined as a lambda or inside a function is the usual cause. Every fit "
            "trains its own teacher.",
            UserWarning,
            stacklevel=4,
        )
        return _fit(teacher, data, fit_params)
    if cache is True:
        with _lock:  # fits in threads share the store
            if key in _in_process:
                _in_process.move_to_end(key)
                return _in_process[key][0]
        fitted = _fit(teacher, data, fit_params)  # outside the lock: fits run in parallel
        with _lock:
            _in_process[key] = (fitted, teacher_nbytes(fitted))
            while _in_process and (len(_in_process) > MAX_CACHED_TEACHERS
                                   or _cached_bytes() > MAX_CACHED_BYTES):
                _in_process.popitem(last=False)
        return fitted
    if not isinstance(cache, joblib.Memory):
        cache = joblib.Memory(os.fspath(cache), verbose=0)
    cached = cache.cache(_fit_keyed, ignore=["teacher", "data", "fit_params"])
    fitted = cached(teacher, data, fit_params, key)
    if getattr(fitted, "_teacher_cache_key", None) != key:
        # an entry written for other data or settings (a copied or edited cache folder)
        warnings.warn(
            f"the teacher cache in {cache.location!r} holds, under this fit's key, a teacher "
            "fitted on other data or settings; training a new one and replacing the entry. "
            "Only use cache folders that you alone write to.",
            UserWarning,
            stacklevel=4,
        )
        fitted, _ = cached.call(teacher, data, fit_params, key)
    return fitted


def _fit_keyed(teacher, data, fit_params, key):
    """Fit ``teacher`` and stamp it with the key it is stored under (checked on every load)."""
    fitted = _fit(teacher, data, fit_params)
    fitted._teacher_cache_key = key
    return fitted
