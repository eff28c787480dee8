"""Datasets: the bundled NLB'21 MC_Maze_Small trials and the paper's synthetic families."""

from ._mc_maze_small import load_mc_maze_small
from ._synthetic import make_synthetic

__all__ = ["load_mc_maze_small", "make_synthetic"]
