"""CrossEncoder scorers, one per reranker kind: ``classifier``, ``causal_lm`` (yes/no logits), ``vision_language``.

``assemble.build_scorer`` picks one from a CrossEncoder's modules when it is built."""

from omnivec.models.scorers.assemble import build_scorer, with_template_head
from omnivec.models.scorers.base import Scorer, TokenScorer

__all__ = ["Scorer", "TokenScorer", "build_scorer", "with_template_head"]
