"""Datasets: bundled MC_Maze_Small, loaders for NLB .h5 and NWB files, synthetic families."""

from ._mc_maze_small import load_mc_maze_small
from ._nlb import load_nlb_h5
from ._nwb import load_nwb
from ._synthetic import make_synthetic

__all__ = ["load_mc_maze_small", "load_nlb_h5", "load_nwb", "make_synthetic"]
