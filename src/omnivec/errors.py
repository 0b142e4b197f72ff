"""Exceptions that name what went wrong and where, so users can fix their input or model folder."""

from __future__ import annotations


class OmnivecError(Exception):
    """Base class of omnivec's own errors."""


class ModelLoadError(OmnivecError, OSError):
    """A model folder, Hub id or weights file could not be loaded."""


class ModelNotFoundError(ModelLoadError, FileNotFoundError):
    """Neither a local folder nor a reachable Hub repository matches the name."""


class InputError(OmnivecError, ValueError):
    """An input passed to encode/predict is not what the model accepts."""
