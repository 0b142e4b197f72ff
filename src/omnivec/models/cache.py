"""Models loaded once per process: the server's ``--model`` embedders and a KB's spaces (and rerankers) that name the
same folder or Hub id share one instance instead of holding two copies in memory."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Literal, TypeVar

ModelKind = Literal["embedder", "cross-encoder", "sparse-encoder"]
M = TypeVar("M")


def source_key(source: str) -> str:
    """What identifies a model source: a local folder by its real path (``./m`` and ``/abs/m`` are one model), a
    Hub id as given."""
    path = os.path.expanduser(source)
    return os.path.realpath(path) if os.path.isdir(path) else source


class ModelCache:
    """Loaded models by (kind, ``source_key``, backend). Callers that use a shared model from different threads serialise
    their calls themselves (the server holds one lock per model)."""

    def __init__(self) -> None:
        self._models: dict[tuple[ModelKind, str, str], Any] = {}

    def get(self, kind: ModelKind, source: str, load: Callable[[], M], backend: str = "torch") -> M:
        """The model of this kind loaded from ``source`` on ``backend``, loaded by ``load()`` the first time (a
        failure is not remembered: the next call tries again)."""
        key = (kind, source_key(source), backend)
        if key not in self._models:
            self._models[key] = load()
        return self._models[key]
