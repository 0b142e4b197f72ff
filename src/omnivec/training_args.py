"""sentence-transformers' ``sentence_transformers.training_args`` import path: the training arguments classes and
the batch sampler choices."""

from omnivec.train.args import (
    BatchSamplers,
    CrossEncoderTrainingArguments,
    MultiDatasetBatchSamplers,
    SentenceTransformerTrainingArguments,
    SparseEncoderTrainingArguments,
    TrainingArguments,
)

__all__ = [
    "BatchSamplers", "CrossEncoderTrainingArguments", "MultiDatasetBatchSamplers",
    "SentenceTransformerTrainingArguments", "SparseEncoderTrainingArguments", "TrainingArguments",
]
