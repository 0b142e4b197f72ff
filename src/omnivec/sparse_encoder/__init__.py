"""``omnivec.sparse_encoder``: the sparse encoder where sentence-transformers code imports it from
(``from sentence_transformers.sparse_encoder import SparseEncoder``), with its module classes in the ``models``
(sentence-transformers 5) and ``modules`` (6) submodules, and its training names (``SparseEncoderTrainer``,
``SparseEncoderTrainingArguments``, the ``losses``, ``evaluation`` and ``callbacks`` submodules). Loaded on first access, so the import stays cheap."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omnivec.models.model_card_data import SparseEncoderModelCardData
    from omnivec.models.sparse_encoder import SparseEncoder
    from omnivec.sparse_encoder import callbacks as callbacks
    from omnivec.sparse_encoder import evaluation as evaluation
    from omnivec.sparse_encoder import losses as losses
    from omnivec.sparse_encoder import models as models
    from omnivec.sparse_encoder import modules as modules
    from omnivec.train.args import SparseEncoderTrainingArguments
    from omnivec.train.sparse_trainer import SparseEncoderTrainer

# name -> (module, attribute); a None attribute is the module itself.
_LAZY: dict[str, tuple[str, str | None]] = {
    "SparseEncoder": ("omnivec.models.sparse_encoder", "SparseEncoder"),
    "SparseEncoderModelCardData": ("omnivec.models.model_card_data", "SparseEncoderModelCardData"),
    "models": ("omnivec.sparse_encoder.models", None),
    "modules": ("omnivec.sparse_encoder.modules", None),
    "SparseEncoderTrainer": ("omnivec.train.sparse_trainer", "SparseEncoderTrainer"),
    "SparseEncoderTrainingArguments": ("omnivec.train.args", "SparseEncoderTrainingArguments"),
    "losses": ("omnivec.sparse_encoder.losses", None),
    "evaluation": ("omnivec.sparse_encoder.evaluation", None),
    "callbacks": ("omnivec.sparse_encoder.callbacks", None),
}

__all__ = ["SparseEncoder", "SparseEncoderModelCardData", "SparseEncoderTrainer", "SparseEncoderTrainingArguments"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'omnivec.sparse_encoder' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value
