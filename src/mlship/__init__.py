"""mlship: take a machine-learning model through its whole life, on one laptop or a cluster."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mlship")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
