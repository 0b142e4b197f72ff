"""omnivec's errors: one hierarchy rooted at ``OmnivecError``; each message names what went wrong and where (the
input's index, the file, the setting) and what was expected, so users can fix their input, settings or model folder.

``InputError`` (what a caller passes), ``ConfigError`` (settings) and ``SourceError`` (unreadable sources) are also
``ValueError``: code written for sentence-transformers, which raises ``ValueError`` for the same mistakes, keeps
working. ``ModelLoadError`` is also an ``OSError``, as transformers' loading errors are."""

from __future__ import annotations


class OmnivecError(Exception):
    """Base class of omnivec's own errors."""


class InputError(OmnivecError, ValueError):
    """What a caller passes to encode/predict/rank/search (an input, or a per-call argument such as ``batch_size``)
    is not what the model or call accepts. Messages name the input's index and what is expected."""


class ConfigError(OmnivecError, ValueError):
    """A setting is not allowed: kb.toml, a training YAML, a command-line value, a store URI, a module's config or a
    constructor option. Messages name the setting (file and key, or ``--flag``) and the allowed values; the command
    line prints it as one line and exits with status 2."""


class SourceError(OmnivecError, ValueError):
    """A file, URL or ``data:`` URI cannot be read, or its bytes cannot be decoded as the media they should hold."""


class DecodeError(SourceError, InputError):
    """An input given to encode/predict whose source cannot be read or decoded (missing file, failed download,
    corrupt media); the message names the input's index."""


class ModelLoadError(OmnivecError, OSError):
    """A model folder, Hub id or weights file could not be loaded."""


class ModelNotFoundError(ModelLoadError, FileNotFoundError):
    """Neither a local folder nor a reachable Hub repository matches the name."""
