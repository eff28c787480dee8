"""Datasets: bundled MC_Maze_Small, loaders for NLB .h5, NWB (spikes and behavior, or LFP) and
Bugeon et al. 2022 files, synthetic trial families, a simulator of cell-type activity, one of
simultaneously recorded spikes, LFP and behavior, and one of calcium imaging beside spikes."""

from ._bugeon import load_bugeon
from ._cell_types import make_cell_types
from ._mc_maze_small import load_mc_maze_small
from ._nlb import load_nlb_h5
from ._nwb import load_nwb
from ._nwb_lfp import load_nwb_lfp
from ._spikes_calcium import make_spikes_calcium
from ._spikes_lfp import make_spikes_lfp
from ._synthetic import make_synthetic

__all__ = ["load_bugeon", "load_mc_maze_small", "load_nlb_h5", "load_nwb", "load_nwb_lfp",
           "make_cell_types", "make_spikes_calcium", "make_spikes_lfp", "make_synthetic"]
