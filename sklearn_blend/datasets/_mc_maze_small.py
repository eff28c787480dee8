"""The bundled NLB'21 MC_Maze_Small training trials."""

from __future__ import annotations

from importlib import resources

import numpy as np
from sklearn.utils import Bunch

_FILE = "mc_maze_small_train.h5"

DESCR = """\
MC_Maze_Small (Neural Latents Benchmark '21), 75 training trials at 5 ms
------------------------------------------------------------------------
Monkey J, primary motor and dorsal premotor cortex (Utah arrays, sorted units), delayed
center-out reaching through a virtual maze. Each trial is a 700 ms window starting 250 ms before
movement onset (140 bins of 5 ms), with the 200 ms after it (40 bins) for forward prediction.

spikes                   (75, 140, 107) held-in spike counts per bin
spikes_heldout           (75, 140, 35)  held-out neurons (NLB's official split)
behavior                 (75, 140, 2)   hand velocity (x, y), mm/s, lagged +120 ms as in NLB
spikes_forward           (75, 40, 107)  held-in counts in the 40 bins after the window
spikes_heldout_forward   (75, 40, 35)
bin_size_ms              5

License: CC-BY-4.0. Cite: Churchland, M. & Kaufman, M. (2022) MC_Maze_Small, DANDI archive,
https://dandiarchive.org/dandiset/000140; Churchland et al. 2010 (Neuron) and 2012 (Nature);
Pei et al. 2021, Neural Latents Benchmark '21, arXiv:2109.04463. See
sklearn_blend/datasets/data/README.md.
"""


def load_mc_maze_small():
    """Load the 75 MC_Maze_Small training trials that ship with the package.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``spikes`` (75, 140, 107), ``spikes_heldout`` (75, 140, 35), ``behavior``
        (75, 140, 2), ``spikes_forward`` (75, 40, 107), ``spikes_heldout_forward``
        (75, 40, 35), all float32; ``bin_size_ms`` (5) and ``DESCR`` (description and
        citation).

    Examples
    --------
    >>> from sklearn_blend.datasets import load_mc_maze_small
    >>> data = load_mc_maze_small()
    >>> data.spikes.shape, data.behavior.shape
    ((75, 140, 107), (75, 140, 2))
    """
    import h5py

    path = resources.files(__package__).joinpath("data", _FILE)
    with resources.as_file(path) as local, h5py.File(local, "r") as f:
        arrays = {
            "spikes": f["train_spikes_heldin"][()],
            "spikes_heldout": f["train_spikes_heldout"][()],
            "behavior": f["train_behavior"][()],
            "spikes_forward": f["train_spikes_heldin_forward"][()],
            "spikes_heldout_forward": f["train_spikes_heldout_forward"][()],
        }
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}
    return Bunch(**arrays, bin_size_ms=5, DESCR=DESCR)
