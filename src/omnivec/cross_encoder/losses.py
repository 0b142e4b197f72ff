"""``omnivec.cross_encoder.losses``: the reranker losses, where sentence-transformers code imports them from.
Every name in ``omnivec.train.cross_encoder_losses.__all__`` is here."""

from omnivec.train.cross_encoder_losses import *  # noqa: F403 (names added there appear here)
from omnivec.train.cross_encoder_losses import __all__ as __all__
