"""The library's own exceptions.

All of them subclass ``ValueError`` so callers can catch bad input with one
``except ValueError`` and show the message, which is always written for a
person to read.
"""


class CycleGANError(ValueError):
    """Base class of every error the library raises on purpose."""


class ConfigError(CycleGANError):
    """A configuration is invalid, has unknown fields or an unsupported version."""


class InputImageError(CycleGANError):
    """An image or volume cannot be translated (empty, constant, NaN, size...)."""


class ModelLoadError(CycleGANError):
    """A model folder or Hub repository cannot be loaded."""


class DataError(CycleGANError):
    """A training data set cannot be read or is unusable."""


class PushError(CycleGANError):
    """Uploading a model folder to the Hub failed."""
