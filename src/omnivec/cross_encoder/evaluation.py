"""``omnivec.cross_encoder.evaluation``: reranker evaluators under sentence-transformers' cross-encoder names.

``CrossEncoderRerankingEvaluator`` is omnivec's ``RerankingEvaluator`` (it scores a CrossEncoder through
``model.rank``, with the metrics of sentence-transformers' evaluator of that name), unless
``omnivec.train.evaluation`` exports a class of that name itself; every ``CrossEncoder*`` name that
``omnivec.train.evaluation`` exports is here too.
"""

from __future__ import annotations

from typing import Any

from omnivec.train import evaluation as _evaluation

CrossEncoderRerankingEvaluator: Any = _evaluation.RerankingEvaluator

# Names the training package adds later (CrossEncoderCorrelationEvaluator, ...) flow through.
_ADDED = [name for name in _evaluation.__all__ if name.startswith("CrossEncoder")]
globals().update({name: getattr(_evaluation, name) for name in _ADDED})

__all__ = sorted({"CrossEncoderRerankingEvaluator", *_ADDED})  # pyright: ignore[reportUnsupportedDunderAll]
