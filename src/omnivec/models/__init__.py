"""Models (Embedder, CrossEncoder) and, as in ``sentence_transformers.models``, the module classes they are
built from: ``from omnivec.models import Transformer, Pooling, Normalize`` works as it does there.

The module classes load on first access (PEP 562), so importing a submodule here stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omnivec.modules import CLIPModel, Dense, LogitScore, Module, Normalize, Pooling, Router, Transformer
    from omnivec.modules import Router as Asym

# sentence_transformers.models name -> omnivec.modules class name (Asym is Router's old name there too).
_MODULES = {
    "Module": "Module", "Transformer": "Transformer", "CLIPModel": "CLIPModel", "Pooling": "Pooling",
    "Dense": "Dense", "Normalize": "Normalize", "Router": "Router", "Asym": "Router", "LogitScore": "LogitScore",
}

# Spelled out (not list(_MODULES)) so type checkers see the exported names.
__all__ = ["Asym", "CLIPModel", "Dense", "LogitScore", "Module", "Normalize", "Pooling", "Router", "Transformer"]


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module 'omnivec.models' has no attribute {name!r}")
    value = getattr(importlib.import_module("omnivec.modules"), _MODULES[name])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULES})
