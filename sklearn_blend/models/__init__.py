"""Base models (pure PyTorch), the base-model protocol and the registry of ``base=`` names."""

import dataclasses

from .base import (
    BASES,
    RESERVED_OPTIONS,
    BaseAdapter,
    ModelOutput,
    TrialBehaviorEmbedding,
    base_fingerprint,
    build_model,
    register_base,
    resolve_base,
)
from .blend_lfads import BlendLFADS, BlendLFADSConfig, build_blend_lfads
from .gru import GRUConfig, GRUModel, build_gru
from .lfads import LFADS, LFADSConfig, build_lfads
from .ndt import NDT, NDTConfig, build_ndt
from .neuprint import NeuPRINT, NeuPRINTConfig, build_neuprint

#: BlendEstimator parameters each built-in base receives when set (the rest come from
#: base_params); left at None, the base's own default applies
NDT_PARAMS = ("hidden_size", "n_layers", "n_heads", "ffn_size", "dropout", "context_backward",
              "context_forward")
GRU_PARAMS = ("hidden_size", "n_layers", "dropout")
LFADS_PARAMS = ("hidden_size", "dropout")
NEUPRINT_PARAMS = NDT_PARAMS
#: LFADS's coordinated-dropout rate in lfads-torch's MC_Maze_Small model
LFADS_MASK_RATIO = 0.3



def _config_defaults(config, names):
    """Defaults of the fields ``names`` of a config dataclass (a base's own defaults)."""
    fields = {f.name: f.default for f in dataclasses.fields(config)}
    return {name: fields[name] for name in names
            if name in fields and fields[name] is not dataclasses.MISSING}


register_base("ndt", build_ndt, estimator_params=NDT_PARAMS,
              defaults=_config_defaults(NDTConfig, NDT_PARAMS))
register_base("gru", build_gru, estimator_params=GRU_PARAMS)
register_base("blend_lfads", build_blend_lfads, estimator_params=GRU_PARAMS)
register_base("lfads", build_lfads, estimator_params=LFADS_PARAMS,
              defaults={**_config_defaults(LFADSConfig, LFADS_PARAMS),
                        "mask_ratio": LFADS_MASK_RATIO},
              masking="coordinated", inference="full")
register_base("neuprint", build_neuprint, estimator_params=NEUPRINT_PARAMS,
              defaults=_config_defaults(NeuPRINTConfig, NEUPRINT_PARAMS))

__all__ = [
    "BASES",
    "BaseAdapter",
    "RESERVED_OPTIONS",
    "base_fingerprint",
    "BlendLFADS",
    "BlendLFADSConfig",
    "GRUConfig",
    "GRUModel",
    "LFADS",
    "LFADSConfig",
    "ModelOutput",
    "NDT",
    "NDTConfig",
    "NeuPRINT",
    "NeuPRINTConfig",
    "TrialBehaviorEmbedding",
    "build_blend_lfads",
    "build_gru",
    "build_lfads",
    "build_model",
    "build_ndt",
    "build_neuprint",
    "register_base",
    "resolve_base",
]
