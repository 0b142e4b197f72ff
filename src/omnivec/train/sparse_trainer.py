"""Training a SparseEncoder (SPLADE, inference-free SPLADE, CSR) on omnivec's trainer: the same data handling,
checkpoints and evaluators as the Embedder's, plus the loss parts SpladeLoss returns and the warm-up of its
regularizer weights."""

from __future__ import annotations

from typing import Any

import torch

from omnivec.train.cross_encoder_losses.base import PairLoss
from omnivec.train.losses.binding import check_model
from omnivec.train.sparse_losses.ranking import SparseLoss, SparseMultipleNegativesRankingLoss
from omnivec.train.sparse_losses.splade import SpladeLoss
from omnivec.train.splade_scheduler import SpladeRegularizerWeightSchedulerCallback
from omnivec.train.trainer import _Trainer


def _default_splade_loss(model: Any) -> SpladeLoss:
    return SpladeLoss(model, SparseMultipleNegativesRankingLoss(model), document_regularizer_weight=3e-5,
                      query_regularizer_weight=5e-5)


class SparseEncoderTrainer(_Trainer):
    """Trains an ``omnivec.SparseEncoder``.

    Same arguments as ``EmbedderTrainer``; the losses are those of ``omnivec.sparse_encoder.losses``, a ranking
    loss inside ``SpladeLoss`` (its FLOPS regularizers keep the vectors sparse). Default loss, as in
    sentence-transformers: ``SpladeLoss(SparseMultipleNegativesRankingLoss, document_regularizer_weight=3e-5,
    query_regularizer_weight=5e-5)``; a CSR model trains with ``CSRLoss``. A SpladeLoss without a
    ``SpladeRegularizerWeightSchedulerCallback`` among ``callbacks`` gets the default one (quadratic warm-up over
    the first third of the steps). A loss returning a dict of parts (SpladeLoss, CSRLoss) trains on their sum, and
    each part is logged (``base_loss``, ``document_regularizer_loss``...)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._parts_sum: dict[str, dict[str, torch.Tensor]] = {"train": {}, "eval": {}}
        self._parts_steps = {"train": 0, "eval": 0}
        scheduled = {id(c.loss) for c in self.callback_handler.callbacks
                     if isinstance(c, SpladeRegularizerWeightSchedulerCallback)}
        for loss in {id(loss): loss for loss in self.part_losses.values()}.values():
            if isinstance(loss, SpladeLoss) and id(loss) not in scheduled:
                # right after transformers' flow callback, so the printer and loggers see the weights it logs
                self.callback_handler.callbacks.insert(1, SpladeRegularizerWeightSchedulerCallback(loss))

    def default_loss(self, data: Any, label_column: str | None) -> torch.nn.Module:
        return _default_splade_loss(self._model_for_losses)

    @classmethod
    def check_model(cls, model: Any) -> None:
        check_model(model, "sparse_encoder", cls.__name__)

    def check_loss(self, loss: Any, argument: str) -> None:
        super().check_loss(loss, argument)
        if isinstance(loss, PairLoss):
            raise TypeError(f"{argument}: {type(loss).__name__} is a CrossEncoder loss; a SparseEncoder trains with "
                            "the losses in omnivec.sparse_encoder.losses.")
        if isinstance(loss, SparseLoss):
            name = type(loss).__name__
            raise TypeError(f"{argument}: {name} trains inside SpladeLoss (its FLOPS regularizers keep the vectors "
                            f"sparse): loss=SpladeLoss(model, loss={name}(model), document_regularizer_weight=3e-5, "
                            "query_regularizer_weight=5e-5); a CSR model (SparseAutoEncoder) trains with "
                            f"loss=CSRLoss(model, loss={name}(model)).")

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        loss_fn = self.part_losses[inputs["dataset"]] if "dataset" in inputs else self.loss
        loss = loss_fn(self.model, inputs["inputs"], inputs["labels"])
        if isinstance(loss, dict):
            self._track(loss)
            loss = torch.stack(list(loss.values())).sum()
        return (loss, {}) if return_outputs else loss

    def _track(self, parts: dict[str, torch.Tensor]) -> None:
        kind = "train" if self.model.training else "eval"
        sums = self._parts_sum[kind]
        for key, value in parts.items():
            value = value.detach().float()
            sums[key] = sums[key] + value if key in sums else value
        self._parts_steps[kind] += 1

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """transformers' log, plus the mean of each loss part since the last log (``eval_``-prefixed in
        evaluation)."""
        kind = "train" if "loss" in logs else "eval" if "eval_loss" in logs else None
        if kind is not None and self._parts_steps[kind]:
            logs = dict(logs)
            prefix = "eval_" if kind == "eval" else ""
            for key, total in self._parts_sum[kind].items():
                logs[f"{prefix}{key}"] = round(total.item() / self._parts_steps[kind], 4)
            self._parts_sum[kind], self._parts_steps[kind] = {}, 0
        super().log(logs, *args, **kwargs)
