"""Building blocks: each owns its JSON config and its save/load (sentence-transformers layout)."""

from omnivec.modules.base import Module, module_class_for, register_module
from omnivec.modules.clip_model import CLIPModel
from omnivec.modules.dense import Dense
from omnivec.modules.logit_score import LogitScore
from omnivec.modules.mlm_transformer import MLMTransformer
from omnivec.modules.normalize import Normalize
from omnivec.modules.pooling import Pooling
from omnivec.modules.router import Router
from omnivec.modules.sparse_auto_encoder import SparseAutoEncoder
from omnivec.modules.sparse_static_embedding import SparseStaticEmbedding
from omnivec.modules.splade_pooling import SpladePooling
from omnivec.modules.transformer import Transformer

__all__ = [
    "Module", "Transformer", "CLIPModel", "Pooling", "Dense", "LogitScore", "Normalize", "Router",
    "MLMTransformer", "SpladePooling", "SparseStaticEmbedding", "SparseAutoEncoder",
    "module_class_for", "register_module",
]
