"""``omnivec.sparse_encoder.evaluation``: the SparseEncoder evaluators, where sentence-transformers code imports
them from (``from sentence_transformers.sparse_encoder.evaluation import SparseInformationRetrievalEvaluator``)."""

from omnivec.train.evaluation.sparse_information_retrieval import SparseInformationRetrievalEvaluator

__all__ = ["SparseInformationRetrievalEvaluator"]
