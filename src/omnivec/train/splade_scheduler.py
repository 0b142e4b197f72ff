"""Warm-up of SpladeLoss's regularizer weights: from 0 to their set values over the first part of training, so the
ranking loss shapes the vectors before sparsity pressure starts (as sentence-transformers' SparseEncoderTrainer
does by default)."""

from __future__ import annotations

import logging
from enum import Enum
from typing import Any

import transformers

from omnivec.errors import ConfigError
from omnivec.train.sparse_losses.splade import SpladeLoss

logger = logging.getLogger(__name__)


class SchedulerType(Enum):
    """How the weights grow during warm-up: in proportion to the step, or to its square."""

    LINEAR = "linear"
    QUADRATIC = "quadratic"


class SpladeRegularizerWeightSchedulerCallback(transformers.TrainerCallback):
    """Sets ``loss.document_regularizer_weight`` and ``loss.query_regularizer_weight`` at each step to
    ``weight * ratio`` (linear) or ``weight * ratio**2`` (quadratic), ``ratio = step / warmup_steps``, where
    ``warmup_steps = int(total_steps * warmup_ratio)`` (at least 1); from then on the full weights. The weights
    reached are logged with the loss."""

    def __init__(self, loss: SpladeLoss, scheduler_type: str | SchedulerType = SchedulerType.QUADRATIC,
                 warmup_ratio: float = 1 / 3) -> None:
        super().__init__()
        if not isinstance(loss, SpladeLoss):
            raise TypeError(f"SpladeRegularizerWeightSchedulerCallback: argument 'loss' must be a SpladeLoss, got "
                            f"{type(loss).__name__}.")
        try:
            name = scheduler_type.value if isinstance(scheduler_type, SchedulerType) else str(scheduler_type)
            self.scheduler_type = SchedulerType(name.lower())
        except ValueError:
            raise ConfigError(f"scheduler_type must be 'linear' or 'quadratic', got {scheduler_type!r}.") from None
        if not 0 < warmup_ratio <= 1:
            raise ConfigError(f"warmup_ratio must be in (0, 1], got {warmup_ratio}.")
        self.loss, self.warmup_ratio = loss, warmup_ratio
        self.max_document_regularizer_weight = loss.document_regularizer_weight
        self.max_query_regularizer_weight = loss.query_regularizer_weight
        self.warmup_steps: int | None = None

    def _weight(self, step: int, full: float) -> float:
        if self.warmup_steps is None or step >= self.warmup_steps:
            return full
        ratio = step / self.warmup_steps
        return full * (ratio if self.scheduler_type == SchedulerType.LINEAR else ratio ** 2)

    def _set(self, step: int) -> None:
        self.loss.document_regularizer_weight = self._weight(step, self.max_document_regularizer_weight)
        if self.max_query_regularizer_weight is not None:  # None: queries are not regularized
            self.loss.query_regularizer_weight = self._weight(step, self.max_query_regularizer_weight)

    def on_train_begin(self, args: Any, state: transformers.TrainerState, control: transformers.TrainerControl,
                       **kwargs: Any) -> None:
        if state.max_steps <= 0:
            logger.warning("The number of training steps is unknown: SpladeLoss's regularizer weights are not warmed up.")
            return
        self.warmup_steps = max(int(state.max_steps * self.warmup_ratio), 1)
        self._set(state.global_step)  # 0 on a fresh run; where the run left off on a resumed one

    def on_step_begin(self, args: Any, state: transformers.TrainerState, control: transformers.TrainerControl,
                      **kwargs: Any) -> None:
        self._set(state.global_step)

    def on_log(self, args: Any, state: transformers.TrainerState, control: transformers.TrainerControl,
               logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if logs is not None:
            logs["document_regularizer_weight"] = float(self.loss.document_regularizer_weight)
            if self.loss.query_regularizer_weight is not None:
                logs["query_regularizer_weight"] = float(self.loss.query_regularizer_weight)
