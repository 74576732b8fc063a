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


class CheckpointError(VitzooError, ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message names the file and the fix."""


class FormatError(VitzooError, ValueError):
    """A checkpoint whose keys do not fit the format it was handed to."""


class HubError(VitzooError, OSError):
    """A download that could not happen; the message says why and what to do."""


class ImageError(VitzooError, ValueError):
    """An image that cannot be read or is too large to decode safely."""
