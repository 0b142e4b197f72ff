"""Training arguments: transformers' TrainingArguments plus what embedding and reranking training needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import transformers

from omnivec.errors import ConfigError

BATCH_SAMPLERS = ("default", "no_duplicates")


@dataclass
class TrainingArguments(transformers.TrainingArguments):
    """``transformers.TrainingArguments`` (checkpointing, resume, gradient accumulation, fp16/bf16, logging...)
    plus:

    Args:
        prompts: a prompt prepended to every input column, or ``{column: prompt}`` (e.g. ``{"query": "query: "}``).
        router_mapping: ``{column: task}`` for a Router model (e.g. ``{"question": "query", "answer": "document"}``).
        batch_sampler: ``"no_duplicates"`` keeps a value from appearing twice in a batch, so an in-batch negative is
            never a copy of the positive (use with MultipleNegativesRankingLoss); ``"default"`` shuffles.
    """

    prompts: Any = field(default=None, metadata={"help": "a prompt, or {column: prompt}"})
    router_mapping: Any = field(default=None, metadata={"help": "{column: Router task}"})
    batch_sampler: str = field(default="default", metadata={"help": f"one of {BATCH_SAMPLERS}"})
    # The collator reads the columns itself; transformers' column removal (by model.forward's signature) would
    # drop them all.
    remove_unused_columns: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not torch.cuda.is_available():
            self.dataloader_pin_memory = False  # pinned memory only helps copies to a GPU
        if self.batch_sampler not in BATCH_SAMPLERS:
            raise ConfigError(f"batch_sampler {self.batch_sampler!r} is not one of {BATCH_SAMPLERS}.")
        if self.prompts is not None and not isinstance(self.prompts, (str, dict)):
            raise ConfigError(f"prompts must be a string or a {{column: prompt}} dict, got {type(self.prompts).__name__}.")
        if self.router_mapping is not None and not isinstance(self.router_mapping, dict):
            raise ConfigError("router_mapping must be a {column: task} dict.")

    def column_prompts(self, columns: list[str]) -> dict[str, str]:
        if isinstance(self.prompts, str):
            return dict.fromkeys(columns, self.prompts)
        return {c: p for c, p in (self.prompts or {}).items() if c in columns}
