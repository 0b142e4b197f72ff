"""omnivec on Ray Data, for people who already have a ``ray.data.Dataset`` (docs/ray.md):

- ``Embed`` / ``Score``: callable classes for ``ds.map_batches`` (one model per actor) that add a vector column (any
  Embedder: text, images, audio, video) or a CrossEncoder score column, set by ``EmbedSettings`` / ``ScoreSettings``;
- ``KBSink`` (a ``ray.data.Datasink``) and ``write_kb``: the vectors into one space of a knowledge base, set by
  ``KBWriteSettings``, so that ``omnivec search --kb`` finds them.

Names load on first use: ``import omnivec.ray`` imports neither Ray nor torch."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omnivec.kb.ray_target import WriteSummary
    from omnivec.kb.ray_write_settings import KBWriteSettings
    from omnivec.kb.ray_writer import KBSink, write_kb
    from omnivec.models.ray_embed import Embed, Score
    from omnivec.models.ray_settings import EmbedSettings, ScoreSettings

_LAZY = {
    "Embed": "omnivec.models.ray_embed",
    "Score": "omnivec.models.ray_embed",
    "EmbedSettings": "omnivec.models.ray_settings",
    "ScoreSettings": "omnivec.models.ray_settings",
    "KBSink": "omnivec.kb.ray_writer",
    "write_kb": "omnivec.kb.ray_writer",
    "KBWriteSettings": "omnivec.kb.ray_write_settings",
    "WriteSummary": "omnivec.kb.ray_target",
}

__all__ = ["Embed", "EmbedSettings", "KBSink", "KBWriteSettings", "Score", "ScoreSettings", "WriteSummary", "write_kb"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'omnivec.ray' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
