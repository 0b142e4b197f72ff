"""What a user tells the model card about a model: sentence-transformers' ``SentenceTransformerModelCardData``
and ``CrossEncoderModelCardData`` fields, with their defaults and checks."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from omnivec.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass
class ModelCardData:
    """Args:
    language: the model's language(s), e.g. ``"en"`` or ``["en", "de"]`` (kept as a list).
    license: e.g. ``"apache-2.0"``.
    model_name: the model's display name.
    model_id: the Hub id the model is pushed to, ``"user/name"`` (anything else is dropped with a warning,
        as sentence-transformers does).
    train_datasets, eval_datasets: ``[{"name": ..., "id": ...}, ...]`` (an entry with only an ``id`` is named
        after it).
    task_name: what the model is for, in words.
    tags: the card's tags.
    local_files_only: never look up datasets or the base model on the Hub.
    generate_widget_examples: put example inputs on the card.
    eval_results: the metrics evaluators reported through ``set_evaluation_metrics``, newest last.
    """

    language: str | list[str] | None = field(default_factory=list)
    license: str | None = None
    model_name: str | None = None
    model_id: str | None = None
    train_datasets: list[dict[str, str]] = field(default_factory=list)
    eval_datasets: list[dict[str, str]] = field(default_factory=list)
    task_name: str | None = None
    tags: list[str] = field(default_factory=list)
    local_files_only: bool = False
    generate_widget_examples: bool = True
    eval_results: list[dict[str, Any]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.language, str):
            self.language = [self.language]
        for name in ("train_datasets", "eval_datasets"):
            for entry in getattr(self, name):
                if not isinstance(entry, dict):
                    raise ConfigError(f"{name} entries must be dicts like {{'name': ..., 'id': ...}}, got {entry!r}.")
                if "name" not in entry and "id" in entry:
                    entry["name"] = entry["id"]  # as sentence-transformers (which also asks the Hub; omnivec doesn't)
        if self.model_id and self.model_id.count("/") != 1:
            logger.warning("The model_id %r should be 'user/name'; setting model_id to None.", self.model_id)
            self.model_id = None

    def set_evaluation_metrics(self, evaluator: Any, metrics: dict[str, Any], epoch: float = 0, step: int = 0) -> None:
        """Keep an evaluator's metrics (sentence-transformers' evaluators call this after each run)."""
        self.eval_results.append({"evaluator": type(evaluator).__name__, "epoch": epoch, "step": step,
                                  "metrics": dict(metrics)})

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for the card's YAML header)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class SentenceTransformerModelCardData(ModelCardData):
    """Model card facts of an embedder (sentence-transformers' class of that name); fields as ModelCardData."""

    task_name: str | None = (
        "semantic textual similarity, semantic search, paraphrase mining, classification, clustering, and more")
    tags: list[str] = field(default_factory=lambda: [
        "sentence-transformers", "sentence-similarity", "feature-extraction", "dense"])


@dataclass
class CrossEncoderModelCardData(ModelCardData):
    """Model card facts of a reranker (sentence-transformers' class of that name); fields as ModelCardData."""

    tags: list[str] = field(default_factory=lambda: ["sentence-transformers", "cross-encoder", "reranker"])


@dataclass
class SparseEncoderModelCardData(ModelCardData):
    """Model card facts of a sparse encoder (sentence-transformers' class of that name); fields as ModelCardData."""

    task_name: str | None = "semantic search and sparse retrieval"
    tags: list[str] = field(default_factory=lambda: [
        "sentence-transformers", "sparse-encoder", "sparse", "splade", "feature-extraction"])


def checked_card_data(value: Any, kind: type[ModelCardData]) -> ModelCardData:
    """``model_card_data=`` of a model: the given ``kind`` instance, or a fresh one for None."""
    if value is None:
        return kind()
    if not isinstance(value, ModelCardData):
        raise ConfigError(f"model_card_data must be a {kind.__name__} (or None), got {type(value).__name__}.")
    return value
