"""Fine-tuning: trainers on transformers.Trainer, losses, evaluators and hard-negative mining.

Needs the ``train`` extra (``pip install omnivec[train]``: datasets, accelerate, pyyaml)."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "EmbedderTrainer": "omnivec.train.trainer",
    "SentenceTransformerTrainer": "omnivec.train.trainer",
    "CrossEncoderTrainer": "omnivec.train.trainer",
    "TrainingArguments": "omnivec.train.args",
    "mine_hard_negatives": "omnivec.train.mining",
    "losses": "omnivec.train.losses",
    "cross_encoder_losses": "omnivec.train.cross_encoder_losses",
    "evaluation": "omnivec.train.evaluation",
}
_ALIASES = {"SentenceTransformerTrainer": "EmbedderTrainer"}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'omnivec.train' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    if _LAZY[name].rsplit(".", 1)[1] == name:  # a submodule
        return module
    return getattr(module, _ALIASES.get(name, name))
