"""Training arguments: transformers' TrainingArguments plus what embedding and reranking training needs, accepting
what sentence-transformers' ``SentenceTransformerTrainingArguments`` accepts."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import torch
import transformers

from omnivec.errors import ConfigError

logger = logging.getLogger(__name__)


class BatchSamplers(str, Enum):
    """How rows are grouped into batches (sentence-transformers' names and values).

    ``BATCH_SAMPLER``: shuffled batches (the default). ``NO_DUPLICATES`` (and ``NO_DUPLICATES_HASHED``, the same
    here): no input value twice in a batch, so an in-batch negative is never a copy of the positive (use with
    MultipleNegativesRankingLoss). ``GROUP_BY_LABEL`` is for batch-triplet losses, which omnivec does not have."""

    BATCH_SAMPLER = "batch_sampler"
    NO_DUPLICATES = "no_duplicates"
    NO_DUPLICATES_HASHED = "no_duplicates_hashed"
    GROUP_BY_LABEL = "group_by_label"


class MultiDatasetBatchSamplers(str, Enum):
    """With several training datasets (a dict), which dataset each batch comes from: ``ROUND_ROBIN`` takes one
    batch of each in turn until the smallest runs out; ``PROPORTIONAL`` (the default) draws datasets at random in
    proportion to their number of batches, using every row."""

    ROUND_ROBIN = "round_robin"
    PROPORTIONAL = "proportional"


BATCH_SAMPLERS = tuple(s.value for s in BatchSamplers)


@dataclass
class TrainingArguments(transformers.TrainingArguments):
    """``transformers.TrainingArguments`` (checkpointing, resume, gradient accumulation, fp16/bf16, logging...)
    plus:

    Args:
        prompts: a prompt prepended to every input column, ``{column: prompt}`` (e.g. ``{"query": "query: "}``), or
            for a dict of datasets ``{dataset: prompt}`` / ``{dataset: {column: prompt}}``.
        router_mapping: ``{column: task}`` for a Router model (e.g. ``{"question": "query", "answer": "document"}``),
            or ``{dataset: {column: task}}``.
        batch_sampler: a ``BatchSamplers`` value (or its string); ``"default"`` is the older spelling of
            ``"batch_sampler"``. A callable ``(dataset, batch_size, drop_last, valid_label_columns, generator, seed)``
            returning a batch sampler also works, as in sentence-transformers.
        multi_dataset_batch_sampler: a ``MultiDatasetBatchSamplers`` value, for a dict of training datasets.
        learning_rate_mapping: ``{parameter-name regex: learning rate}`` for parts of the model that train at their
            own rate.
        warmup_ratio: the fraction of steps spent warming up (transformers 5 spells it as a float ``warmup_steps``;
            sentence-transformers keeps both).
    """

    prompts: Any = field(default=None, metadata={"help": "a prompt, {column: prompt} or {dataset: ...}"})
    router_mapping: Any = field(default=None, metadata={"help": "{column: Router task} or {dataset: {...}}"})
    batch_sampler: Any = field(default=BatchSamplers.BATCH_SAMPLER, metadata={"help": f"one of {BATCH_SAMPLERS}"})
    multi_dataset_batch_sampler: Any = field(default=MultiDatasetBatchSamplers.PROPORTIONAL,
                                             metadata={"help": "round_robin or proportional"})
    learning_rate_mapping: Any = field(default=None, metadata={"help": "{parameter regex: learning rate}"})
    warmup_ratio: float | None = field(default=None, metadata={"help": "warmup as a fraction of the steps"})
    # The collator reads the columns itself; transformers' column removal (by model.forward's signature) would
    # drop them all.
    remove_unused_columns: bool = False

    def __post_init__(self) -> None:
        if self.warmup_ratio is not None:
            if not 0.0 <= self.warmup_ratio < 1.0:
                raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}.")
            if self.warmup_steps == 0:  # transformers 5 reads a float below 1 in warmup_steps as a ratio
                self.warmup_steps, self.warmup_ratio = self.warmup_ratio, None  # as sentence-transformers does
                logger.warning("warmup_ratio is deprecated in transformers 5 (as in sentence-transformers); it is "
                               "passed on as warmup_steps=%s (a float below 1 is a ratio).", self.warmup_steps)
        super().__post_init__()
        self.prediction_loss_only = True  # the trainers compute losses, never logits to gather
        if not torch.cuda.is_available():
            self.dataloader_pin_memory = False  # pinned memory only helps copies to a GPU
        self.batch_sampler = _enum(self.batch_sampler, BatchSamplers, "batch_sampler", {"default": "batch_sampler"})
        if self.batch_sampler == BatchSamplers.GROUP_BY_LABEL:
            raise ConfigError("batch_sampler=group_by_label is for batch-triplet losses (BatchAllTripletLoss...), "
                              "which omnivec does not have; use batch_sampler or no_duplicates.")
        self.multi_dataset_batch_sampler = _enum(self.multi_dataset_batch_sampler, MultiDatasetBatchSamplers,
                                                 "multi_dataset_batch_sampler", {})
        self.prompts = _json_or_text(self.prompts)
        if self.prompts is not None and not isinstance(self.prompts, (str, dict)):
            raise ConfigError(f"prompts must be a string or a {{column: prompt}} dict, got {type(self.prompts).__name__}.")
        for name in ("router_mapping", "learning_rate_mapping"):
            value = _json_or_text(getattr(self, name))
            if value is not None and not isinstance(value, dict):
                raise ConfigError(f"{name} must be a dict, got {type(value).__name__}.")
            setattr(self, name, value or None)

    def column_prompts(self, columns: list[str], dataset: str | None = None) -> dict[str, str]:
        """The prompt of each input column (of the dataset named ``dataset`` in a dict of datasets)."""
        prompts = self.prompts
        if isinstance(prompts, dict) and dataset is not None and dataset in prompts:
            prompts = prompts[dataset]
        if isinstance(prompts, str):
            return dict.fromkeys(columns, prompts)
        return {c: p for c, p in (prompts or {}).items() if c in columns and isinstance(p, str)}

    def column_tasks(self, columns: list[str], dataset: str | None = None) -> dict[str, str]:
        """The Router task of each input column (of the dataset named ``dataset`` in a dict of datasets)."""
        mapping = self.router_mapping or {}
        if dataset is not None and isinstance(mapping.get(dataset), dict):
            mapping = mapping[dataset]
        return {c: t for c, t in mapping.items() if c in columns and isinstance(t, str)}


def _enum(value: Any, enum: type[Enum], name: str, aliases: dict[str, str]) -> Any:
    if isinstance(value, enum) or (callable(value) and not isinstance(value, str)):
        return value  # a member, or a custom sampler class / factory
    if isinstance(value, str):
        try:
            return enum(aliases.get(value, value))
        except ValueError:
            pass
    choices = [member.value for member in enum]  # type: ignore[attr-defined]
    raise ConfigError(f"{name} {value!r} is not one of {choices}.")


def _json_or_text(value: Any) -> Any:
    """A dict given on the command line arrives as its JSON text."""
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


@dataclass
class SentenceTransformerTrainingArguments(TrainingArguments):
    """sentence-transformers' name for omnivec's ``TrainingArguments`` (for an Embedder)."""


@dataclass
class CrossEncoderTrainingArguments(TrainingArguments):
    """sentence-transformers' name for omnivec's ``TrainingArguments`` (for a CrossEncoder)."""


@dataclass
class SparseEncoderTrainingArguments(TrainingArguments):
    """sentence-transformers' name for omnivec's ``TrainingArguments`` (for a SparseEncoder)."""
