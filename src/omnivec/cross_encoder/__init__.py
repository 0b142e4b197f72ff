"""``omnivec.cross_encoder``: the reranker and its training names where sentence-transformers code imports them
from (``from sentence_transformers.cross_encoder import CrossEncoder``), with the ``losses`` and
``evaluation`` submodules. Loaded on first access, so ``import omnivec.cross_encoder`` stays cheap."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omnivec.cross_encoder import evaluation as evaluation
    from omnivec.cross_encoder import losses as losses
    from omnivec.models.cross_encoder import CrossEncoder
    from omnivec.models.model_card_data import CrossEncoderModelCardData
    from omnivec.train.args import TrainingArguments as CrossEncoderTrainingArguments
    from omnivec.train.trainer import CrossEncoderTrainer

# name -> (module, attribute); a None attribute is the module itself.
_LAZY: dict[str, tuple[str, str | None]] = {
    "CrossEncoder": ("omnivec.models.cross_encoder", "CrossEncoder"),
    "CrossEncoderTrainer": ("omnivec.train.trainer", "CrossEncoderTrainer"),
    "CrossEncoderTrainingArguments": ("omnivec.train.args", "TrainingArguments"),
    "CrossEncoderModelCardData": ("omnivec.models.model_card_data", "CrossEncoderModelCardData"),
    "losses": ("omnivec.cross_encoder.losses", None),
    "evaluation": ("omnivec.cross_encoder.evaluation", None),
}

__all__ = ["CrossEncoder", "CrossEncoderModelCardData", "CrossEncoderTrainer", "CrossEncoderTrainingArguments"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'omnivec.cross_encoder' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value
