"""``sentence_transformers.sparse_encoder.models`` (sentence-transformers 5's path): the same classes as ``modules``."""

from omnivec.sparse_encoder.modules import (
    Asym,
    MLMTransformer,
    Module,
    Router,
    SparseAutoEncoder,
    SparseStaticEmbedding,
    SpladePooling,
    Transformer,
)

__all__ = ["Asym", "MLMTransformer", "Module", "Router", "SparseAutoEncoder", "SparseStaticEmbedding", "SpladePooling",
           "Transformer"]
