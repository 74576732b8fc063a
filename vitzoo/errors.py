"""One exception family, so callers can catch everything vitzoo raises on purpose with ``except VitzooError``.

Each class also derives from the builtin a Python user would expect (``ValueError`` for bad arguments and inputs,
``OSError`` for downloads), so existing ``except ValueError`` code keeps working.
"""

from __future__ import annotations


class VitzooError(Exception):
    """Base class of every error vitzoo raises deliberately."""


class ConfigError(VitzooError, ValueError):
    """A model configuration or override that cannot describe a valid network."""


class UnknownModelError(VitzooError, ValueError):
    """A model name that is neither a registered architecture nor one of its aliases."""


class InputError(VitzooError, ValueError):
    """A tensor handed to the model has the wrong rank, channel count or spatial size."""

