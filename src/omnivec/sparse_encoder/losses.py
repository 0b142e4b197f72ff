"""``omnivec.sparse_encoder.losses``: the SparseEncoder losses, where sentence-transformers code imports them from
(``from sentence_transformers.sparse_encoder import losses``). Every name in
``omnivec.train.sparse_losses.__all__`` is here."""

from omnivec.train.sparse_losses import *  # noqa: F403 (the re-export is the point: names added there appear here)
from omnivec.train.sparse_losses import __all__ as __all__
