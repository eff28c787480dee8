"""The package version (one place; the modules that stamp it import it from here)."""

__version__ = "0.5.0"
