"""Batches without repeated values: with in-batch negatives, a duplicate would be counted as a negative of
itself."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch


class NoDuplicatesBatchSampler(torch.utils.data.Sampler):
    """Shuffled batches of row indices in which no input value (text, or any hashable value) occurs twice. A row
    that would repeat a value waits for a later batch; the order changes every epoch, reproducibly by ``seed``."""

    def __init__(self, rows: Any, columns: list[str], batch_size: int, drop_last: bool, seed: int = 0) -> None:
        self.rows, self.columns, self.batch_size, self.drop_last, self.seed = rows, columns, batch_size, drop_last, seed
        self.epoch = 0

    def __len__(self) -> int:
        count = len(self.rows)
        return count // self.batch_size if self.drop_last else -(-count // self.batch_size)

    def _values(self, index: int) -> set[Any]:
        record = self.rows.data[index]
        values = set()
        for column in self.columns:
            value = record[column]
            for part in value if isinstance(value, (list, tuple)) else [value]:
                try:
                    values.add(part if isinstance(part, str) else hash(part))
                except TypeError:  # images, arrays: not comparable cheaply, never treated as duplicates
                    pass
        return values

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        remaining = torch.randperm(len(self.rows), generator=generator).tolist()
        while remaining:
            batch, seen, deferred = [], set(), []
            for pos, index in enumerate(remaining):
                if len(batch) == self.batch_size:
                    deferred.extend(remaining[pos:])
                    break
                values = self._values(index)
                if values & seen:
                    deferred.append(index)
                else:
                    batch.append(index)
                    seen |= values
            remaining = deferred
            if len(batch) == self.batch_size or not self.drop_last:
                yield batch
