"""Base models (pure PyTorch) and the registry that maps ``base=`` names to them."""

from .ndt import NDT, ModelOutput, NDTConfig

#: ``base=`` name -> (model class, config class)
BASES = {"ndt": (NDT, NDTConfig)}


def build_model(base, **config):
    """Build the base model registered under ``base`` from its config fields."""
    try:
        model_cls, config_cls = BASES[base]
    except (KeyError, TypeError):
        raise ValueError(
            f"base must be one of {sorted(BASES)}, got {base!r}."
        ) from None
    return model_cls(config_cls(**config))


__all__ = ["BASES", "NDT", "ModelOutput", "NDTConfig", "build_model"]
