"""``omnivec.losses``: the embedder losses, where sentence-transformers code imports them from
(``from sentence_transformers import losses``). Every name in ``omnivec.train.losses.__all__`` is here."""

from omnivec.train.losses import *  # noqa: F403 (the re-export is the point: names added there appear here)
from omnivec.train.losses import __all__ as __all__
