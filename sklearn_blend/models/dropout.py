"""Dropout whose random mask is cheap to draw on the CPU.

:class:`torch.nn.Dropout` on the CPU draws its mask with ``bernoulli_``, which is slow: for one
``64 x 140 x 182`` activation of an NDT at the paper's configuration it costs several times
what :func:`keep_mask` does (``benchmarks/cpu_kernels.py``). :class:`Dropout` keeps the same
semantics (each element kept independently with probability ``1 - p`` and scaled by
``1 / (1 - p)`` in training mode; identity in evaluation mode) but draws the mask from 32-bit
uniform integers of NumPy's SFC64 generator. The keep probability is exact to ``2**-32``, finer
than ``torch.rand``'s 24-bit floats.

The generator is seeded for every call from PyTorch's default generator, so
:func:`torch.manual_seed` and :func:`torch.random.fork_rng` control the masks as they do for
:class:`torch.nn.Dropout`. On other devices the module falls back to :func:`F.dropout
<torch.nn.functional.dropout>`, whose kernels are fast there.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

_SEED_HIGH = 2**63 - 1


def keep_mask(shape, p):
    """Boolean CPU tensor of ``shape``, each entry True with probability ``1 - p``.

    Seeded from PyTorch's default generator (one draw per call), so it is reproducible under
    :func:`torch.manual_seed`.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> mask = keep_mask((1000, 100), 0.1)
    >>> mask.dtype, round(mask.float().mean().item(), 2)
    (torch.bool, 0.9)
    """
    n = int(np.prod(shape, dtype=np.int64))
    seed = int(torch.randint(_SEED_HIGH, (), dtype=torch.int64))
    words = np.random.SFC64(seed).random_raw((n + 1) // 2).view(np.uint32)[:n]
    threshold = np.uint32(min(round(p * 2.0**32), 2**32 - 1))
    return torch.from_numpy((words >= threshold).reshape(shape))


class Dropout(nn.Module):
    """Drop-in replacement of :class:`torch.nn.Dropout` with a faster CPU mask.

    Parameters
    ----------
    p : float
        Probability of zeroing an element, in ``[0, 1)``.

    Examples
    --------
    >>> import torch
    >>> layer = Dropout(0.5)
    >>> x = torch.ones(2, 3)
    >>> y = layer(x)
    >>> bool(((y == 0) | (y == 2)).all()), bool((layer.eval()(x) == x).all())
    (True, True)
    """

    def __init__(self, p=0.5):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real):
            raise TypeError(f"dropout probability p must be a real number, got {p!r}.")
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability p must be in [0, 1), got {p!r}.")
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        scale = torch.tensor(1.0 / (1.0 - self.p), dtype=x.dtype)
        return x * keep_mask(x.shape, self.p).to(x.dtype).mul_(scale)

    def extra_repr(self):
        return f"p={self.p}"
