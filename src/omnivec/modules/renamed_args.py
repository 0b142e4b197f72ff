"""Older argument names that sentence-transformers still accepts, mapped to omnivec's, with its deprecation warning.

Code written for sentence-transformers 2-5 passes ``model_args=``, ``default_activation_function=``,
``predict(sentences=...)``...; sentence-transformers 6 renames them with a logged warning, and so does omnivec. Lives
in ``modules`` so that module classes (Transformer, Pooling) and model classes can both use it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from omnivec.errors import ConfigError

logger = logging.getLogger("omnivec.renamed_args")

F = TypeVar("F", bound=Callable[..., Any])

_warned: set[str] = set()


def warn_once(message: str) -> None:
    """Log ``message`` as a warning the first time it is seen in this process (sentence-transformers'
    ``warning_once``): a loop of old-style calls warns once, not once per call."""
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


def rename_kwargs(kwargs: dict[str, Any], renames: Mapping[str, str], owner: str = "") -> dict[str, Any]:
    """``kwargs`` with each old name in ``renames`` replaced by its new name, warning once per old name. The new
    name wins when both are given (as in sentence-transformers); ``owner`` prefixes the warning ("The CrossEncoder")."""
    for old, new in renames.items():
        if old in kwargs:
            value = kwargs.pop(old)
            prefix = f"The {owner} `{old}` argument was renamed and is now deprecated" if owner else \
                f"The `{old}` argument was renamed and is now deprecated"
            separator = ", please" if owner == "Transformer" else ". Please"
            warn_once(f"{prefix}{separator} use `{new}` instead.")
            kwargs.setdefault(new, value)
    return kwargs


def renamed_kwargs(owner: str = "", *, same: Mapping[str, str] | None = None, no_effect: tuple[str, ...] = (),
                   **renames: str) -> Callable[[F], F]:
    """Decorator: the wrapped function also takes the old keyword names in ``renames`` (old=new), with a warning;
    ``same`` maps other libraries' current names to omnivec's (no warning); ``no_effect`` names arguments
    sentence-transformers still accepts and ignores (dropped, with its warning)."""

    def decorate(func: F) -> F:
        method = func.__qualname__  # "CrossEncoder.predict"

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for name in no_effect:
                if name in kwargs:
                    kwargs.pop(name)
                    warn_once(f"The {method} `{name}` argument is deprecated and has no effect. It will be "
                              "removed in a future version.")
            for theirs, ours in (same or {}).items():
                if theirs in kwargs:
                    kwargs.setdefault(ours, kwargs.pop(theirs))
            return func(*args, **rename_kwargs(kwargs, renames, owner))

        return cast(F, wrapper)

    return decorate


def merge_kwargs(name: str, *dicts: Mapping[str, Any] | None) -> dict[str, Any]:
    """One kwargs dict from an argument and its older spellings (later ones win), each checked to be a dict."""
    merged: dict[str, Any] = {}
    for value in dicts:
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name} must be a dict of keyword arguments, got {type(value).__name__}.")
        merged.update(value)
    return merged


def legacy_positionals(owner: str, keep: int, names: tuple[str, ...]) -> Callable[[F], F]:
    """Decorator: positional arguments past the first ``keep`` (``self`` counted) are read as the keywords ``names``,
    in order, with sentence-transformers' warning: ``CrossEncoder(name, 1, 512)`` from before its version 5.4."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            extra = args[keep:]
            if len(extra) > len(names):
                raise ConfigError(f"{owner} takes at most {keep - 1 + len(names)} positional arguments, got "
                                  f"{len(args) - 1}; pass the others by keyword.")
            for name, value in zip(names, extra, strict=False):
                logger.warning("Passing `%s` as a positional argument to %s is deprecated. Please use `%s=%r` as a "
                               "keyword argument instead.", name, owner, name, value)
                kwargs.setdefault(name, value)
            return func(*args[:keep], **kwargs)

        return cast(F, wrapper)

    return decorate
