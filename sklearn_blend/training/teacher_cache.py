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
which parallel workers (``GridSearchCV(n_jobs=...)``, Dask or Ray workers on several machines
sharing a folder) share:

* **One fit per key.** Looking an entry up, fitting the teacher when it is missing and writing
  it happen under a per-key inter-process lock (:mod:`filelock`, a file in
  ``<folder>/teacher_locks``), so that workers asking for the same teacher at once fit it
  once: the others wait, then read it. A worker that waits longer than the lock timeout
  (:data:`LOCK_TIMEOUT`; environment variable ``SKLEARN_BLEND_CACHE_LOCK_TIMEOUT``, seconds,
  a negative value waits without limit) warns and fits its own teacher, so that a hung worker
  never blocks a search.
* **Whole entries or none.** joblib writes each entry to a temporary file in the entry's
  folder and renames it into place (``os.replace``): a reader finds a complete entry or none,
  even when the writer is killed mid-write.
* **Corrupt entries are refitted.** An entry that cannot be read (truncated, overwritten) is
  reported with a warning, refitted and replaced; so is one stamped for other data or
  settings.

The default lock is the operating system's (``flock``), which the system releases when a
worker dies. On a network file system it works where the file system supports it (NFSv4, or
NFSv3 with ``lockd``; many cluster file systems need it enabled at mount). Where it does not,
set ``SKLEARN_BLEND_CACHE_LOCK=soft`` on every worker: a :class:`filelock.SoftFileLock`, whose
lock is the existence of the lock file, works on any shared file system, but a worker killed
while it holds the lock can leave the file behind (recent filelock versions reclaim it only
from a worker of the same machine), so the others wait until the lock timeout (delete the
stale ``.lock`` file to release them sooner). The cached teachers depend on the
device they were fitted on (``device="auto"`` is keyed by the device it resolves to), so
machines with and without a GPU never exchange teachers.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import pickle
import threading
import warnings
from collections import OrderedDict

import joblib
import numpy as np
import torch

from .._version import __version__

#: how many fitted teachers the in-process cache keeps (least recently used are dropped)
MAX_CACHED_TEACHERS = 16
#: how many bytes of tensors (weights, optimizer state) the in-process cache keeps at most; the
#: least recently used teachers are dropped first, and a teacher larger than this is not kept
MAX_CACHED_BYTES = 512 * 2**20
#: how long (seconds) a worker waits for another worker fitting the same teacher into a
#: cache folder before fitting its own (negative: no limit); the environment variable
#: ``SKLEARN_BLEND_CACHE_LOCK_TIMEOUT`` overrides it, so that it reaches remote workers
LOCK_TIMEOUT = 3600.0
#: folder of the per-key lock files, inside a cache folder
LOCK_FOLDER = "teacher_locks"

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
    if isinstance(params.get("device"), str):
        # keyed by the device it fits on: "auto" is "cuda" on one machine, "cpu" on another
        from .core import resolve_device

        params["device"] = resolve_device(params["device"])
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
    if cache.location is None:  # joblib.Memory(None) caches nothing
        return _fit(teacher, data, fit_params)
    cached = cache.cache(_fit_keyed, ignore=["teacher", "data", "fit_params"])
    args = (teacher, data, fit_params, key)
    # a data-parallel teacher is fitted by all processes of its run together, each taking
    # part in every step, so none may wait for another's lock (each write is still whole)
    together = getattr(teacher, "distributed", None) is not None
    with contextlib.nullcontext() if together else _entry_lock(cache.location, key):
        # look up, fit and write under the key's lock: concurrent workers fit a teacher once
        fitted = _load_entry(cached, args, key, cache.location)
        if fitted is None:
            fitted, _ = cached.call(*args)  # joblib writes it whole (temporary file, rename)
    return fitted


def _load_entry(cached, args, key, location):
    """The cached teacher of ``args``, or ``None`` when there is none, or none usable: an
    entry that cannot be read (corrupt) or that is stamped for another key is reported."""
    if not cached.check_call_in_cache(*args):
        return None
    try:
        fitted = cached.call_and_shelve(*args).get()
    except Exception as error:  # any failure to unpickle: truncated, garbage, a lost module
        warnings.warn(
            f"the teacher cache in {location!r} holds a corrupt entry under this fit's key "
            f"(it cannot be read: {type(error).__name__}: {error}); training a new teacher "
            "and replacing the entry.",
            UserWarning,
            stacklevel=5,
        )
        return None
    if getattr(fitted, "_teacher_cache_key", None) != key:
        # an entry written for other data or settings (a copied or edited cache folder)
        warnings.warn(
            f"the teacher cache in {location!r} holds, under this fit's key, a teacher "
            "fitted on other data or settings; training a new one and replacing the entry. "
            "Only use cache folders that you alone write to.",
            UserWarning,
            stacklevel=5,
        )
        return None
    return fitted


def lock_timeout():
    """Seconds a worker waits for a teacher's lock: ``SKLEARN_BLEND_CACHE_LOCK_TIMEOUT`` if
    set, else :data:`LOCK_TIMEOUT` (negative: no limit)."""
    value = os.environ.get("SKLEARN_BLEND_CACHE_LOCK_TIMEOUT")
    if value is None:
        return LOCK_TIMEOUT
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"SKLEARN_BLEND_CACHE_LOCK_TIMEOUT must be a number of seconds, got "
                         f"{value!r}.") from None


def _lock_class():
    """:class:`filelock.FileLock` (the system's ``flock``), or with
    ``SKLEARN_BLEND_CACHE_LOCK=soft`` a :class:`filelock.SoftFileLock` (a lock file)."""
    import filelock

    kind = os.environ.get("SKLEARN_BLEND_CACHE_LOCK", "native").strip().lower()
    if kind not in ("native", "soft"):
        raise ValueError(f"SKLEARN_BLEND_CACHE_LOCK must be 'native' or 'soft', got "
                         f"{kind!r}.")
    return filelock.SoftFileLock if kind == "soft" else filelock.FileLock


@contextlib.contextmanager
def _entry_lock(location, key):
    """Hold the inter-process lock of ``key`` in the cache folder ``location``; after the lock
    timeout (or where the folder takes no lock) warn and go on unlocked: the teacher may then
    be fitted twice, each write still whole."""
    import filelock

    timeout = lock_timeout()
    lock_class = _lock_class()
    folder = os.path.join(os.fspath(location), LOCK_FOLDER)
    try:
        os.makedirs(folder, exist_ok=True)
        # each kind of lock has its own file: a native lock leaves its (unlocked) file behind,
        # which a soft lock of the same name would take for a held lock
        path = os.path.join(folder, key)
        soft = lock_class is filelock.SoftFileLock
        lock = lock_class(f"{path}.soft.lock" if soft else f"{path}.lock", timeout=timeout)
        try:
            lock.acquire()
        except NotImplementedError:  # filelock < 4 on a file system without flock
            lock = filelock.SoftFileLock(f"{path}.soft.lock", timeout=timeout)
            lock.acquire()
    except filelock.Timeout:
        warnings.warn(
            f"waited {timeout:g} s for another worker fitting the same teacher into "
            f"{os.fspath(location)!r} (lock {lock.lock_file}); fitting it "
            "here too. A worker killed while holding a soft lock can leave its lock file "
            "behind: delete it if no worker is fitting that teacher; a fit that takes longer "
            "than this wait needs a larger SKLEARN_BLEND_CACHE_LOCK_TIMEOUT.",
            UserWarning,
            stacklevel=6,
        )
        lock = None
    except OSError as error:  # a read-only folder, a file system refusing locks
        warnings.warn(
            f"cannot lock the teacher cache in {os.fspath(location)!r} ({error}); workers "
            "sharing it may fit the same teacher more than once (each entry is still written "
            "whole). On a network file system without flock, set "
            "SKLEARN_BLEND_CACHE_LOCK=soft.",
            UserWarning,
            stacklevel=6,
        )
        lock = None
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def _fit_keyed(teacher, data, fit_params, key):
    """Fit ``teacher`` and stamp it with the key it is stored under (checked on every load)."""
    fitted = _fit(teacher, data, fit_params)
    fitted._teacher_cache_key = key
    return fitted
