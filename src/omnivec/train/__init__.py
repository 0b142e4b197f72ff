"""Fine-tuning: trainers on transformers.Trainer, losses, evaluators and hard-negative mining.

Needs the ``train`` extra (``pip install omnivec[train]``: datasets, accelerate, pyyaml)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from omnivec.models import extensions as _extensions

if TYPE_CHECKING:
    from omnivec.train import cross_encoder_losses, evaluation, losses, sparse_losses
    from omnivec.train.args import (
        BatchSamplers,
        CrossEncoderTrainingArguments,
        MultiDatasetBatchSamplers,
        SentenceTransformerTrainingArguments,
        SparseEncoderTrainingArguments,
        TrainingArguments,
    )
    from omnivec.train.fit import fit
    from omnivec.train.mining import mine_hard_negatives
    from omnivec.train.sparse_trainer import SparseEncoderTrainer
    from omnivec.train.trainer import CrossEncoderTrainer, EmbedderTrainer
    from omnivec.train.trainer import EmbedderTrainer as SentenceTransformerTrainer

def _fit(*args: Any, **kwargs: Any) -> Any:
    from omnivec.train.fit import fit

    return fit(*args, **kwargs)


def _fit_cross_encoder(*args: Any, **kwargs: Any) -> Any:
    from omnivec.train.fit import fit_cross_encoder

    return fit_cross_encoder(*args, **kwargs)


# model.fit() (omnivec.models cannot import omnivec.train; this package lends it the implementation)
_extensions.register("fit", _fit)
_extensions.register("cross_encoder_fit", _fit_cross_encoder)

_LAZY = {
    "EmbedderTrainer": "omnivec.train.trainer",
    "SentenceTransformerTrainer": "omnivec.train.trainer",
    "CrossEncoderTrainer": "omnivec.train.trainer",
    "TrainingArguments": "omnivec.train.args",
    "SentenceTransformerTrainingArguments": "omnivec.train.args",
    "CrossEncoderTrainingArguments": "omnivec.train.args",
    "SparseEncoderTrainer": "omnivec.train.sparse_trainer",
    "SparseEncoderTrainingArguments": "omnivec.train.args",
    "BatchSamplers": "omnivec.train.args",
    "MultiDatasetBatchSamplers": "omnivec.train.args",
    "fit": "omnivec.train.fit",
    "mine_hard_negatives": "omnivec.train.mining",
    "losses": "omnivec.train.losses",
    "cross_encoder_losses": "omnivec.train.cross_encoder_losses",
    "sparse_losses": "omnivec.train.sparse_losses",
    "evaluation": "omnivec.train.evaluation",
}
_ALIASES = {"SentenceTransformerTrainer": "EmbedderTrainer"}

# Spelled out (not list(_LAZY)) so type checkers see the exported names.
__all__ = ["EmbedderTrainer", "SentenceTransformerTrainer", "CrossEncoderTrainer", "TrainingArguments",
           "SentenceTransformerTrainingArguments", "CrossEncoderTrainingArguments", "BatchSamplers",
           "MultiDatasetBatchSamplers", "fit", "mine_hard_negatives", "losses", "cross_encoder_losses", "evaluation",
           "SparseEncoderTrainer", "SparseEncoderTrainingArguments", "sparse_losses"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'omnivec.train' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    if _LAZY[name].rsplit(".", 1)[1] == name and name != "fit":  # a submodule (fit is the function of train.fit)
        return module
    return getattr(module, _ALIASES.get(name, name))
