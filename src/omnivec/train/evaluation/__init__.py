"""Evaluators for embedders and rerankers: retrieval (BEIR), STS correlation and reranking metrics.

Each is called with a model and returns ``{f"{name}_{metric}": value}``, with the numbers that
sentence-transformers' evaluators of the same purpose report.
"""

from omnivec.train.evaluation.base import Evaluator, SequentialEvaluator
from omnivec.train.evaluation.information_retrieval import InformationRetrievalEvaluator
from omnivec.train.evaluation.reranking import RerankingEvaluator
from omnivec.train.evaluation.similarity import EmbeddingSimilarityEvaluator, STSEvaluator
from omnivec.train.evaluation.sparse_information_retrieval import SparseInformationRetrievalEvaluator

__all__ = [
    "EmbeddingSimilarityEvaluator",
    "Evaluator",
    "InformationRetrievalEvaluator",
    "RerankingEvaluator",
    "STSEvaluator",
    "SparseInformationRetrievalEvaluator",
    "SequentialEvaluator",
]
