"""Training on several datasets at once (a dict of datasets, each with its own loss): every batch comes from one
dataset, chosen round robin or in proportion to the datasets' sizes, as in sentence-transformers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import torch

from omnivec.train.data import Collator, ColumnPlan, Rows


@dataclass
class Part:
    """One training (or evaluation) dataset: its rows, column plan and loss. ``key`` is its name in a dict of
    datasets, or None for a single dataset."""

    key: str | None
    rows: Rows
    plan: ColumnPlan
    loss: torch.nn.Module


class LossDict(torch.nn.ModuleDict):
    """The losses of a dict of datasets, by dataset name (their weights train with the model)."""

    def config(self) -> dict[str, Any]:
        return {name: type(loss).__name__ for name, loss in self.items()}


class MultiCollator:
    """Collates a batch with the collator of the dataset its rows come from (a batch never mixes datasets)."""

    def __init__(self, collators: dict[str | None, Collator]) -> None:
        self.collators = collators

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        key = rows[0].get("__dataset__")  # None: the single training dataset beside a dict of evaluation datasets
        return {**self.collators[key](rows), "dataset": key}


class ShuffledBatchSampler(torch.utils.data.Sampler):
    """Shuffled batches of one dataset's row indices, reshuffled each epoch, reproducibly by ``seed``."""

    def __init__(self, size: int, batch_size: int, drop_last: bool, seed: int = 0) -> None:
        self.size, self.batch_size, self.drop_last, self.seed, self.epoch = size, batch_size, drop_last, seed, 0

    def __len__(self) -> int:
        return self.size // self.batch_size if self.drop_last else -(-self.size // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist()
        self.epoch += 1
        for start in range(0, self.size, self.batch_size):
            batch = order[start:start + self.batch_size]
            if len(batch) == self.batch_size or not self.drop_last:
                yield batch


class _MultiDatasetSampler(torch.utils.data.Sampler):
    def __init__(self, sizes: Sequence[int], batch_samplers: Sequence[Any], seed: int = 0) -> None:
        self.offsets = [0, *accumulate(sizes)]
        self.batch_samplers, self.seed, self.epoch = list(batch_samplers), seed, 0


class RoundRobinBatchSampler(_MultiDatasetSampler):
    """One batch from each dataset in turn, until the one with the fewest batches runs out."""

    def __len__(self) -> int:
        return min(len(s) for s in self.batch_samplers) * len(self.batch_samplers)

    def __iter__(self) -> Iterator[list[int]]:
        for batches in zip(*self.batch_samplers, strict=False):  # stops at the shortest, by design
            for offset, batch in zip(self.offsets, batches, strict=False):
                yield [index + offset for index in batch]


class ProportionalBatchSampler(_MultiDatasetSampler):
    """Every batch of every dataset, the datasets interleaved at random (a dataset with more batches comes up
    more often)."""

    def __len__(self) -> int:
        return sum(len(s) for s in self.batch_samplers)

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        order = [i for i, sampler in enumerate(self.batch_samplers) for _ in range(len(sampler))]
        order = [order[i] for i in torch.randperm(len(order), generator=generator).tolist()]
        iterators = [iter(sampler) for sampler in self.batch_samplers]
        for dataset in order:
            batch = next(iterators[dataset], None)
            if batch is not None:  # a no-duplicates sampler may yield fewer batches than it estimated
                yield [index + self.offsets[dataset] for index in batch]
