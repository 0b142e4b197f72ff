"""Model methods implemented by a higher layer: ``model.fit()`` lives in ``omnivec.train`` (which the library must
not import), so ``omnivec.train`` registers it here when it is imported. Any loss import does that, and ``fit()``
cannot be called without a loss."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omnivec.errors import ConfigError

_REGISTERED: dict[str, Callable[..., Any]] = {}


def register(name: str, function: Callable[..., Any]) -> None:
    """Makes ``function`` the implementation of the model method ``name``."""
    _REGISTERED[name] = function


def call(name: str, *args: Any, **kwargs: Any) -> Any:
    function = _REGISTERED.get(name)
    if function is None:
        raise ConfigError(f"model.{name}() is provided by omnivec.train: import it (e.g. `from omnivec.train import "
                          f"losses`; it needs `pip install omnivec[train]`).")
    return function(*args, **kwargs)
