"""sentence-transformers' ``util`` under omnivec: similarity functions, semantic search, paraphrase mining,
community detection, quantization and hard-negative mining, with the same names, arguments and results.

``from omnivec import util`` stands in for ``from sentence_transformers import util``. This package is a
drop-in façade above the library: nothing inside omnivec imports it (a contract in pyproject.toml).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omnivec.runtime.precision import quantize_embeddings
from omnivec.similarity import (
    SimilarityFunction,
    cos_sim,
    dot_score,
    euclidean_sim,
    manhattan_sim,
    pairwise_angle_sim,
    pairwise_cos_sim,
    pairwise_dot_score,
    pairwise_euclidean_sim,
    pairwise_manhattan_sim,
    pytorch_cos_sim,
)
from omnivec.util.hub import is_sentence_transformer_model
from omnivec.util.log_handler import LoggingHandler
from omnivec.util.retrieval import community_detection, paraphrase_mining, paraphrase_mining_embeddings, semantic_search
from omnivec.util.tensor import batch_to_device, normalize_embeddings, truncate_embeddings

if TYPE_CHECKING:
    from omnivec.train.mining import mine_hard_negatives

__all__ = [
    "LoggingHandler", "SimilarityFunction", "batch_to_device", "community_detection", "cos_sim", "dot_score",
    "euclidean_sim", "is_sentence_transformer_model", "manhattan_sim", "mine_hard_negatives", "normalize_embeddings", "pairwise_angle_sim",
    "pairwise_cos_sim", "pairwise_dot_score", "pairwise_euclidean_sim", "pairwise_manhattan_sim",
    "paraphrase_mining", "paraphrase_mining_embeddings", "pytorch_cos_sim", "quantize_embeddings",
    "semantic_search", "truncate_embeddings",
]


def __getattr__(name: str) -> Any:
    # Mining lives with training (it needs the train extra's datasets); loaded on first use only.
    if name == "mine_hard_negatives":
        from omnivec.train.mining import mine_hard_negatives

        return mine_hard_negatives
    raise AttributeError(f"module 'omnivec.util' has no attribute {name!r}")
