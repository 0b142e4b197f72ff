"""The module classes a SparseEncoder is built from, as ``sentence_transformers.sparse_encoder.modules`` names them
(``models`` is sentence-transformers 5's name for the same list)."""

from omnivec.modules import (
    MLMTransformer,
    Module,
    Router,
    SparseAutoEncoder,
    SparseStaticEmbedding,
    SpladePooling,
    Transformer,
)
from omnivec.modules import Router as Asym

__all__ = ["Asym", "MLMTransformer", "Module", "Router", "SparseAutoEncoder", "SparseStaticEmbedding", "SpladePooling",
           "Transformer"]
