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
from omnivec.train.args import BatchSamplers, MultiDatasetBatchSamplers, TrainingArguments
from omnivec.train.cross_encoder_losses.base import PairLoss
from omnivec.train.data import LABEL_COLUMNS, Collator, ColumnPlan, Rows, check_rows, column_names, plan_columns
from omnivec.train.losses.base import EmbeddingLoss
from omnivec.train.losses.binding import check_model
from omnivec.train.model_card import write_model_card
from omnivec.train.multi_dataset import (
    LossDict,
    MultiCollator,
    Part,
    ProportionalBatchSampler,
    RoundRobinBatchSampler,
    ShuffledBatchSampler,
)
from omnivec.train.optimizer import apply_learning_rate_mapping
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
        loss: torch.nn.Module | dict[str, torch.nn.Module] | None = None,
        evaluator: Any = None,
        columns: Sequence[str] | None = None,
        label_column: str | None = None,
        callbacks: list[transformers.TrainerCallback] | None = None,
        optimizers: tuple[Any, Any] = (None, None),
    ) -> None:
        if model is None:
            raise ConfigError("model is required: the model to train.")
        if train_dataset is None:
            raise ConfigError("train_dataset is required: a datasets.Dataset, a list of dicts, or a dict of them.")
        self.check_model(model)
        args = args or TrainingArguments(output_dir="omnivec-training", report_to="none")
        if not isinstance(args, TrainingArguments):
            raise TypeError("args must be omnivec.train.TrainingArguments (transformers' plus prompts, router_mapping "
                            f"and batch_sampler), got {type(args).__name__}.")
        if isinstance(loss, dict) and not isinstance(train_dataset, dict):
            raise ConfigError("loss is a dict (one loss per dataset) but train_dataset is a single dataset; pass "
                              "train_dataset as a dict with the same keys, or a single loss.")
        if isinstance(evaluator, (list, tuple)):  # sentence-transformers takes a list of evaluators too
            from omnivec.train.evaluation import SequentialEvaluator

            evaluator = SequentialEvaluator(evaluator)
        self.evaluator, self.last_metrics = evaluator, {}
        self._model_for_losses = model  # a loss given as a class or factory is built with it
        self.parts = self._parts(train_dataset, loss, "training data", columns, label_column, args)
        losses = {part.key: part.loss for part in self.parts}
        self.loss = losses[None] if None in losses else LossDict(losses)  # type: ignore[arg-type]
        self.plan = self.parts[0].plan
        self.eval_parts = None
        if eval_dataset is not None:
            # without a loss of their own, evaluation datasets use the training loss (by name for a dict of both)
            eval_loss = loss if loss is not None else (dict(losses) if isinstance(eval_dataset, dict) and None not in
                                                       losses and set(eval_dataset) <= set(losses) else self.parts[0].loss)
            self.eval_parts = self._parts(eval_dataset, eval_loss, "evaluation data", columns, label_column, args)
        self.part_losses = {p.key: p.loss for p in self.parts + (self.eval_parts or [])}
        train_rows = self._concat(self.parts)
        eval_rows = self._concat(self.eval_parts) if self.eval_parts is not None else None
        self.data_summary = {"rows": len(train_rows), "columns": self.plan.inputs, "label": self.plan.label,
                             "eval_rows": len(eval_rows) if eval_rows is not None else 0}
        if len(self.parts) > 1 or self.parts[0].key is not None:
            self.data_summary["datasets"] = {p.key: len(p.rows) for p in self.parts}
        # transformers refuses eval_strategy without an eval_dataset; an evaluator alone is enough for us.
        placeholder = eval_rows if eval_rows is not None else (
            Rows([], [], "evaluation data") if evaluator is not None else None)
        collators = {p.key: Collator(model, p.plan, self.prepares_inputs) for p in self.parts + (self.eval_parts or [])}
        collator = collators[None] if list(collators) == [None] else MultiCollator(collators)
        super().__init__(model=model, args=args, train_dataset=train_rows, eval_dataset=placeholder,
                         data_collator=collator, callbacks=callbacks, optimizers=optimizers)
        self.eval_dataset = eval_rows
        self.base_model = getattr(model, "name_or_path", None)

    @classmethod
    def check_model(cls, model: Any) -> None:
        """A TypeError naming ``model`` when the trainer is given the other kind of model."""
        raise NotImplementedError

    @staticmethod
    def _row_columns(plan: ColumnPlan) -> list[str]:
        return plan.inputs + ([plan.label] if plan.label else [])

    @staticmethod
    def _concat(parts: list[Part]) -> Any:
        return parts[0].rows if len(parts) == 1 and parts[0].key is None else torch.utils.data.ConcatDataset(
            [p.rows for p in parts])

    def _parts(self, data: Any, loss: Any, name: str, columns: Sequence[str] | None, label_column: str | None,
               args: TrainingArguments) -> list[Part]:
        """One Part per dataset: a single dataset (key None), or each entry of a dict of datasets."""
        if not isinstance(data, dict):
            return [self._part(None, data, loss, name, columns, label_column, args)]
        if not data:
            raise ConfigError(f"The {name} is an empty dict of datasets.")
        if isinstance(loss, dict):
            missing = [key for key in data if key not in loss]
            if missing:
                raise ConfigError(f"loss is a dict without an entry for dataset(s) {missing} of the {name}; its keys "
                                  f"are {list(loss)}.")
        return [self._part(str(key), value, loss[key] if isinstance(loss, dict) else loss,
                           f"{name} {key!r}", columns, label_column, args) for key, value in data.items()]

    def _part(self, key: str | None, data: Any, loss: Any, name: str, columns: Sequence[str] | None,
              label_column: str | None, args: TrainingArguments) -> Part:
        loss = loss if loss is not None else self.default_loss(data, label_column)
        if isinstance(loss, type) or (callable(loss) and not isinstance(loss, torch.nn.Module)):
            loss = loss(self._model_for_losses)  # sentence-transformers: a loss class, or a function of the model
        self.check_loss(loss, f"loss[{key!r}]" if key is not None else "loss")
        plan = self._plan(data, loss, name, columns, label_column, args, key)
        return Part(key, Rows(data, self._row_columns(plan), name, key), plan, loss)

    def check_loss(self, loss: Any, argument: str) -> None:
        if not isinstance(loss, torch.nn.Module):
            raise TypeError(f"{argument} must be a torch.nn.Module called as loss(model, inputs, labels), got "
                            f"{type(loss).__name__}.")

    def _plan(self, data: Any, loss: Any, name: str, columns: Sequence[str] | None, label_column: str | None,
              args: TrainingArguments, key: str | None = None) -> ColumnPlan:
        plan = plan_columns(data, loss, name, columns, label_column)
        check_rows(data, plan, type(loss).__name__, name)
        plan.prompts = args.column_prompts(plan.inputs, key)
        plan.tasks = args.column_tasks(plan.inputs, key)
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
        loss_fn = self.part_losses[inputs["dataset"]] if "dataset" in inputs else self.loss
        loss = loss_fn(self.model, inputs["inputs"], inputs["labels"])
        return (loss, {}) if return_outputs else loss

    def prediction_step(self, model: Any, inputs: dict[str, Any], prediction_loss_only: bool,
                        ignore_keys: list[str] | None = None) -> tuple[torch.Tensor, None, None]:
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def create_optimizer(self, model: Any = None) -> torch.optim.Optimizer:
        optimizer = super().create_optimizer(model) if model is not None else super().create_optimizer()
        if self.args.learning_rate_mapping:
            apply_learning_rate_mapping(optimizer, self.model, self.args.learning_rate_mapping)
        # A loss with weights of its own (a classifier head, a learned temperature) trains with the model.
        known = {id(p) for group in optimizer.param_groups for p in group["params"]}
        extra = [p for p in self.loss.parameters() if p.requires_grad and id(p) not in known]
        if extra:
            optimizer.add_param_group({"params": extra, "weight_decay": 0.0})
        return optimizer

    # -- data ---------------------------------------------------------------------------------------
    def get_train_dataloader(self) -> torch.utils.data.DataLoader:
        multi = len(self.parts) > 1 or self.parts[0].key is not None
        if self.args.batch_sampler == BatchSamplers.BATCH_SAMPLER and not multi:
            return super().get_train_dataloader()
        samplers = [self._batch_sampler(part) for part in self.parts]
        if multi:
            choice = self.args.multi_dataset_batch_sampler
            kind = {MultiDatasetBatchSamplers.ROUND_ROBIN: RoundRobinBatchSampler,
                    MultiDatasetBatchSamplers.PROPORTIONAL: ProportionalBatchSampler}.get(choice)
            sizes = [len(p.rows) for p in self.parts]
            sampler = (kind(sizes, samplers, self.args.seed) if kind is not None
                       else choice(dataset=self.train_dataset, batch_samplers=samplers,
                                   generator=torch.Generator(), seed=self.args.seed))
        else:
            sampler = samplers[0]
        workers = self.args.dataloader_num_workers
        extra = {}  # the worker settings transformers.Trainer passes to its own loader
        if workers > 0:
            extra = {"persistent_workers": self.args.dataloader_persistent_workers,
                     "prefetch_factor": self.args.dataloader_prefetch_factor}
        loader = torch.utils.data.DataLoader(self.train_dataset, batch_sampler=sampler,  # type: ignore[arg-type]
                                             collate_fn=self.data_collator, num_workers=workers,
                                             pin_memory=self.args.dataloader_pin_memory, **extra)
        return self.accelerator.prepare(loader)

    def _batch_sampler(self, part: Part) -> Any:
        choice, size, drop = self.args.batch_sampler, self._train_batch_size, self.args.dataloader_drop_last
        if choice in (BatchSamplers.NO_DUPLICATES, BatchSamplers.NO_DUPLICATES_HASHED):
            return NoDuplicatesBatchSampler(part.rows, part.plan.inputs, size, drop, self.args.seed)
        if choice == BatchSamplers.BATCH_SAMPLER:
            return ShuffledBatchSampler(len(part.rows), size, drop, self.args.seed)
        # a custom sampler class or factory, called as sentence-transformers calls it
        return choice(part.rows, batch_size=size, drop_last=drop, valid_label_columns=list(LABEL_COLUMNS),
                      generator=torch.Generator(), seed=self.args.seed)

    # -- evaluation ---------------------------------------------------------------------------------
    def evaluate(self, eval_dataset: Any = None, ignore_keys: list[str] | None = None,
                 metric_key_prefix: str = "eval") -> dict[str, float]:
        """The loss on the evaluation data (when given) and the evaluator's metrics (when given)."""
        metrics: dict[str, float] = {}
        if eval_dataset is None and self.eval_parts is not None and self.eval_parts[0].key is not None:
            for part in self.eval_parts:  # a dict of datasets: one loss per dataset, as eval_{name}_loss
                metrics.update(super().evaluate(part.rows, ignore_keys, f"{metric_key_prefix}_{part.key}"))
        elif eval_dataset is not None or self.eval_dataset is not None:
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

    @classmethod
    def check_model(cls, model: Any) -> None:
        check_model(model, "embedder", cls.__name__)

    def check_loss(self, loss: Any, argument: str) -> None:
        super().check_loss(loss, argument)
        if isinstance(loss, PairLoss):
            raise TypeError(f"{argument}: {type(loss).__name__} is a CrossEncoder loss; an Embedder trains with the "
                            "losses in omnivec.train.losses.")


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

    @classmethod
    def check_model(cls, model: Any) -> None:
        check_model(model, "cross_encoder", cls.__name__)

    def check_loss(self, loss: Any, argument: str) -> None:
        super().check_loss(loss, argument)
        if isinstance(loss, EmbeddingLoss):
            raise TypeError(f"{argument}: {type(loss).__name__} is an Embedder loss; a CrossEncoder trains with the "
                            "losses in omnivec.train.cross_encoder_losses.")
