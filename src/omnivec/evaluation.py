"""``omnivec.evaluation``: the evaluators, where sentence-transformers code imports them from
(``from sentence_transformers import evaluation``). Every name in ``omnivec.train.evaluation.__all__`` is here,
plus sentence-transformers' names for the same classes (``SentenceEvaluator``) and ``SimilarityFunction``."""

from omnivec.similarity import SimilarityFunction
from omnivec.train.evaluation import *  # noqa: F403 (the re-export is the point: names added there appear here)
from omnivec.train.evaluation import __all__ as _TRAIN_ALL
from omnivec.train.evaluation.base import Evaluator as SentenceEvaluator

__all__ = [*_TRAIN_ALL, "SentenceEvaluator", "SimilarityFunction"]  # pyright: ignore[reportUnsupportedDunderAll]
