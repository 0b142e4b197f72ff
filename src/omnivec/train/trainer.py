"""Trainers for Embedder and CrossEncoder, built on ``transformers.Trainer`` (checkpointing, resume, gradient
accumulation, mixed precision, logging and callbacks all come from it)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import torch
import transformers

from omnivec.errors import ConfigError
from omnivec.train.args import TrainingArguments
from omnivec.train.data import LABEL_COLUMNS, Collator, ColumnPlan, Rows, check_rows, column_names, plan_columns
from omnivec.train.model_card import write_model_card
from omnivec.train.sampler import NoDuplicatesBatchSampler

logger = logging.getLogger(__name__)


class _Trainer(transformers.Trainer):
    prepares_inputs = True  # Embedder: decode inputs in the collator; CrossEncoder: its losses pair raw values
    # What this trainer holds, narrower than transformers' annotations (a PreTrainedModel or None, its own arguments).
    model: Any  # an Embedder or CrossEncoder
    args: TrainingArguments
    train_dataset: Any  # Rows

    def __init__(
        self,
        model: Any,
        args: TrainingArguments | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        loss: torch.nn.Module | None = None,
        evaluator: Any = None,
        columns: Sequence[str] | None = None,
        label_column: str | None = None,
        callbacks: list[transformers.TrainerCallback] | None = None,
        optimizers: tuple[Any, Any] = (None, None),
    ) -> None:
        if train_dataset is None:
            raise ConfigError("train_dataset is required: a datasets.Dataset or a list of dicts.")
        args = args or TrainingArguments(output_dir="omnivec-training", report_to="none")
        if not isinstance(args, TrainingArguments):
            raise TypeError("args must be omnivec.train.TrainingArguments (transformers' plus prompts, router_mapping "
                            f"and batch_sampler), got {type(args).__name__}.")
        loss = loss if loss is not None else self.default_loss(train_dataset, label_column)
        if not isinstance(loss, torch.nn.Module):
            raise TypeError(f"loss must be a torch.nn.Module called as loss(model, inputs, labels), got {type(loss).__name__}.")
        self.loss, self.evaluator, self.last_metrics = loss, evaluator, {}
        self.plan = self._plan(train_dataset, loss, "training data", columns, label_column, args)
        train_rows = Rows(train_dataset, self._row_columns(self.plan), "training data")
        eval_rows = None
        if eval_dataset is not None:
            eval_plan = self._plan(eval_dataset, loss, "evaluation data", columns, label_column, args)
            eval_rows = Rows(eval_dataset, self._row_columns(eval_plan), "evaluation data")
        self.data_summary = {"rows": len(train_rows), "columns": self.plan.inputs, "label": self.plan.label,
                             "eval_rows": len(eval_rows) if eval_rows is not None else 0}
        # transformers refuses eval_strategy without an eval_dataset; an evaluator alone is enough for us.
        placeholder = eval_rows if eval_rows is not None else (
            Rows([], [], "evaluation data") if evaluator is not None else None)
        super().__init__(model=model, args=args, train_dataset=train_rows, eval_dataset=placeholder,
                         data_collator=Collator(model, self.plan, self.prepares_inputs), callbacks=callbacks,
                         optimizers=optimizers)
        self.eval_dataset = eval_rows
        self.base_model = getattr(model, "name_or_path", None)

    @staticmethod
    def _row_columns(plan: ColumnPlan) -> list[str]:
        return plan.inputs + ([plan.label] if plan.label else [])

    def _plan(self, data: Any, loss: Any, name: str, columns: Sequence[str] | None, label_column: str | None,
              args: TrainingArguments) -> ColumnPlan:
        plan = plan_columns(data, loss, name, columns, label_column)
        check_rows(data, plan, type(loss).__name__, name)
        plan.prompts = args.column_prompts(plan.inputs)
        plan.tasks = {c: t for c, t in (args.router_mapping or {}).items() if c in plan.inputs}
        return plan

    def default_loss(self, data: Any, label_column: str | None) -> torch.nn.Module:
        """The loss for data without one: a pairwise loss with a label column, in-batch negatives without."""
        with_labels, without_labels = self.default_losses()
        labelled = label_column is not None or any(c in LABEL_COLUMNS for c in column_names(data, "training data"))
        loss = with_labels() if labelled else without_labels()
        logger.info("No loss given: training with %s.", type(loss).__name__)
        return loss

    @staticmethod
    def default_losses() -> tuple[type, type]:
        raise NotImplementedError

    # -- loss ---------------------------------------------------------------------------------------
    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        loss = self.loss(self.model, inputs["inputs"], inputs["labels"])
        return (loss, {}) if return_outputs else loss

    def prediction_step(self, model: Any, inputs: dict[str, Any], prediction_loss_only: bool,
                        ignore_keys: list[str] | None = None) -> tuple[torch.Tensor, None, None]:
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def create_optimizer(self, model: Any = None) -> torch.optim.Optimizer:
        optimizer = super().create_optimizer(model) if model is not None else super().create_optimizer()
        # A loss with weights of its own (a classifier head, a learned temperature) trains with the model.
        known = {id(p) for group in optimizer.param_groups for p in group["params"]}
        extra = [p for p in self.loss.parameters() if p.requires_grad and id(p) not in known]
        if extra:
            optimizer.add_param_group({"params": extra, "weight_decay": 0.0})
        return optimizer

    # -- data ---------------------------------------------------------------------------------------
    def get_train_dataloader(self) -> torch.utils.data.DataLoader:
        if self.args.batch_sampler != "no_duplicates":
            return super().get_train_dataloader()
        dataset = self.train_dataset
        assert isinstance(dataset, Rows)  # set in __init__; transformers only reads it
        sampler = NoDuplicatesBatchSampler(dataset, self.plan.inputs, self._train_batch_size,
                                           self.args.dataloader_drop_last, self.args.seed)
        workers = self.args.dataloader_num_workers
        extra = {}  # the worker settings transformers.Trainer passes to its own loader
        if workers > 0:
            extra = {"persistent_workers": self.args.dataloader_persistent_workers,
                     "prefetch_factor": self.args.dataloader_prefetch_factor}
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=self.data_collator,
                                             num_workers=workers, pin_memory=self.args.dataloader_pin_memory, **extra)
        return self.accelerator.prepare(loader)

    # -- evaluation ---------------------------------------------------------------------------------
    def evaluate(self, eval_dataset: Any = None, ignore_keys: list[str] | None = None,
                 metric_key_prefix: str = "eval") -> dict[str, float]:
        """The loss on the evaluation data (when given) and the evaluator's metrics (when given)."""
        metrics: dict[str, float] = {}
        if eval_dataset is not None or self.eval_dataset is not None:
            metrics.update(super().evaluate(eval_dataset, ignore_keys, metric_key_prefix))
        if self.evaluator is not None:
            training = self.model.training
            self.model.eval()
            try:
                scores = self.evaluator(self.model)
            finally:
                self.model.train(training)
            scores = {f"{metric_key_prefix}_{key}": float(value) for key, value in scores.items()}
            self.log(scores)
            metrics.update(scores)
        self.last_metrics = metrics
        return metrics

    # -- saving and resuming ------------------------------------------------------------------------
    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir or self.args.output_dir
        assert output_dir is not None  # TrainingArguments.__post_init__ fills a missing output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        self.model.save(output_dir)
        write_model_card(output_dir, self)
        torch.save(self.args, os.path.join(output_dir, transformers.trainer.TRAINING_ARGS_NAME))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        loaded = type(self.model)(resume_from_checkpoint, device=str(self.model.device))
        (model or self.model).load_state_dict(loaded.state_dict())

    def _load_best_model(self) -> None:
        checkpoint = self.state.best_model_checkpoint
        assert checkpoint is not None  # transformers calls this only once a best checkpoint was recorded
        logger.info("Loading the best model from %s (score: %s).", checkpoint, self.state.best_metric)
        self._load_from_checkpoint(checkpoint)


class EmbedderTrainer(_Trainer):
    """Trains an ``omnivec.Embedder``.

    Args:
        model: the Embedder to train.
        args: ``omnivec.train.TrainingArguments``.
        train_dataset / eval_dataset: a ``datasets.Dataset`` or a list of dicts. Input columns are every column but
            the label (``label``/``score``), in order, or those named in ``columns``.
        loss: any ``torch.nn.Module`` called as ``loss(model, inputs, labels)`` returning a scalar, where ``inputs``
            holds one entry per input column and ``model.embed(entry)`` gives its embeddings. Default:
            CoSENTLoss with a label column, MultipleNegativesRankingLoss without.
        evaluator: called as ``evaluator(model) -> {metric: value}`` at each evaluation.
    """

    @staticmethod
    def default_losses() -> tuple[type, type]:
        from omnivec.train.losses import CoSENTLoss, MultipleNegativesRankingLoss

        return CoSENTLoss, MultipleNegativesRankingLoss


class CrossEncoderTrainer(_Trainer):
    """Trains an ``omnivec.CrossEncoder`` (a classifier, or a generative reranker through its LogitScore head).

    Same arguments as ``EmbedderTrainer``; losses receive each column's raw values and score pairs with
    ``model.logits(pairs)``. Default loss: BinaryCrossEntropyLoss with a label column, MultipleNegativesRankingLoss
    without."""

    prepares_inputs = False

    @staticmethod
    def default_losses() -> tuple[type, type]:
        from omnivec.train.cross_encoder_losses import BinaryCrossEntropyLoss, MultipleNegativesRankingLoss

        return BinaryCrossEntropyLoss, MultipleNegativesRankingLoss
