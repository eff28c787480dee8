"""Loader for Neural Latents Benchmark tensor files (``nlb_tools`` ``.h5`` layout)."""

from __future__ import annotations

import os

import numpy as np
from sklearn.utils import Bunch

#: Bunch field -> dataset name suffix in an nlb_tools file (after ``train_`` / ``eval_``)
_FIELDS = {
    "spikes": "spikes_heldin",
    "spikes_heldout": "spikes_heldout",
    "behavior": "behavior",
    "spikes_forward": "spikes_heldin_forward",
    "spikes_heldout_forward": "spikes_heldout_forward",
}


def load_nlb_h5(path, *, split="train", bin_size_ms=None):
    """Load the tensors of one split from an ``nlb_tools`` ``.h5`` file (any NLB dataset).

    ``nlb_tools.make_tensors`` writes ``{split}_spikes_heldin``, ``{split}_spikes_heldout``,
    ``{split}_behavior``, ``{split}_spikes_heldin_forward`` and
    ``{split}_spikes_heldout_forward``; whichever of them the file holds are returned.

    Parameters
    ----------
    path : str or path-like
        The ``.h5`` file.
    split : {"train", "eval"}, default="train"
        Prefix of the datasets to read.
    bin_size_ms : int, optional
        Recorded in the result (the files do not store it).

    Returns
    -------
    data : sklearn.utils.Bunch
        ``spikes`` (held-in, float32 ``(n_trials, n_time, n_heldin)``) and, when present,
        ``spikes_heldout``, ``behavior``, ``spikes_forward``, ``spikes_heldout_forward``
        (``None`` when absent), ``bin_size_ms`` and ``DESCR``.

    Examples
    --------
    A tiny tensor file with held-in and held-out spikes and behavior, no forward bins:

    >>> import os, tempfile
    >>> import h5py
    >>> import numpy as np
    >>> from sklearn_blend.datasets import load_nlb_h5
    >>> rng = np.random.default_rng(0)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "tensors.h5")
    ...     with h5py.File(path, "w") as f:
    ...         f["train_spikes_heldin"] = rng.poisson(1, (4, 6, 3))
    ...         f["train_spikes_heldout"] = rng.poisson(1, (4, 6, 2))
    ...         f["train_behavior"] = rng.normal(size=(4, 6, 2))
    ...     data = load_nlb_h5(path, bin_size_ms=20)
    >>> data.spikes.shape, data.spikes.dtype, data.spikes_heldout.shape, data.behavior.shape
    ((4, 6, 3), dtype('float32'), (4, 6, 2), (4, 6, 2))
    >>> data.spikes_forward is None, data.bin_size_ms
    (True, 20)
    """
    import h5py

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no NLB tensor file at {path!r}.")
    if split not in ("train", "eval"):
        raise ValueError(f"split must be 'train' or 'eval', got {split!r}.")
    try:
        f = h5py.File(path, "r")
    except OSError as error:
        raise OSError(f"cannot read {path!r} as an nlb_tools tensor file (HDF5): {error}") \
            from error
    with f:
        names = sorted(f.keys())
        if f"{split}_spikes_heldin" not in f:
            raise ValueError(
                f"{path!r} has no '{split}_spikes_heldin' dataset, so it is not an nlb_tools "
                f"tensor file for split {split!r}; it holds {names}."
            )
        arrays = {
            field: np.asarray(f[f"{split}_{name}"][()], dtype=np.float32)
            if f"{split}_{name}" in f else None
            for field, name in _FIELDS.items()
        }
    present = [field for field, value in arrays.items() if value is not None]
    descr = (
        f"NLB tensors from {os.path.basename(path)} (split {split!r}): "
        + ", ".join(f"{field} {arrays[field].shape}" for field in present)
    )
    return Bunch(**arrays, bin_size_ms=bin_size_ms, DESCR=descr)
