"""``model.fit(train_objectives=[(dataloader, loss)], ...)``: sentence-transformers' training entry point from
before v3, run on the trainer, as sentence-transformers itself now runs it.

Each DataLoader holds ``InputExample``-like items (``.texts``, ``.label``) or dict rows; its rows become the
dataset ``_dataset_{i}`` (columns ``sentence_0``, ``sentence_1``..., and ``label`` unless every label is 0), and the
objectives train round robin, one batch of each in turn."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
import transformers

from omnivec.errors import ConfigError, InputError
from omnivec.train.args import BatchSamplers, MultiDatasetBatchSamplers, TrainingArguments

logger = logging.getLogger(__name__)

_SCHEDULERS = ("constantlr", "warmupconstant", "warmuplinear", "warmupcosine", "warmupcosinewithhardrestarts")


def fit(
    model: Any,
    train_objectives: Iterable[tuple[Any, torch.nn.Module]],
    evaluator: Any = None,
    epochs: int = 1,
    steps_per_epoch: int | None = None,
    scheduler: str = "WarmupLinear",
    warmup_steps: int = 10000,
    optimizer_class: type[torch.optim.Optimizer] = torch.optim.AdamW,
    optimizer_params: Mapping[str, Any] | None = None,
    weight_decay: float = 0.01,
    evaluation_steps: int = 0,
    output_path: str | None = None,
    save_best_model: bool = True,
    max_grad_norm: float = 1,
    use_amp: bool = False,
    callback: Callable[[float, int, int], None] | None = None,
    show_progress_bar: bool = True,
    checkpoint_path: str | None = None,
    checkpoint_save_steps: int = 500,
    checkpoint_save_total_limit: int = 0,
    resume_from_checkpoint: bool = False,
) -> None:
    """Trains ``model`` (an Embedder or CrossEncoder) on each ``(dataloader, loss)`` objective, with
    sentence-transformers' ``fit()`` arguments and defaults (AdamW at lr 2e-5, linear warmup over ``warmup_steps``,
    weight decay 0.01 except biases and LayerNorm weights)."""
    from omnivec.models.cross_encoder import CrossEncoder
    from omnivec.train.trainer import CrossEncoderTrainer, EmbedderTrainer

    objectives = list(train_objectives)
    if not objectives or not all(isinstance(o, (tuple, list)) and len(o) == 2 for o in objectives):
        raise ConfigError("train_objectives must be a non-empty list of (DataLoader, loss) pairs.")
    if scheduler.lower() not in _SCHEDULERS:
        raise ConfigError(f"scheduler {scheduler!r} is not one of {_SCHEDULERS} (any capitalisation).")
    datasets, losses, batch_size, sampler = {}, {}, 8, BatchSamplers.BATCH_SAMPLER
    for index, (loader, loss) in enumerate(objectives, start=1):
        if type(loader).__name__ == "NoDuplicatesDataLoader":
            sampler = BatchSamplers.NO_DUPLICATES
        batch_size = getattr(loader, "batch_size", None) or getattr(getattr(loader, "batch_sampler", None),
                                                                    "batch_size", None) or batch_size
        datasets[f"_dataset_{index}"] = _rows(getattr(loader, "dataset", loader), index)
        losses[f"_dataset_{index}"] = loss
    max_steps = steps_per_epoch if steps_per_epoch and epochs == 1 else -1
    if steps_per_epoch and epochs > 1:
        logger.warning("steps_per_epoch with epochs > 1 is ignored (as in sentence-transformers): each epoch uses "
                       "the full datasets.")
    args = TrainingArguments(
        output_dir=checkpoint_path or "checkpoints/model", report_to="none", batch_sampler=sampler,
        multi_dataset_batch_sampler=MultiDatasetBatchSamplers.ROUND_ROBIN, per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size, num_train_epochs=epochs, max_steps=max_steps,
        max_grad_norm=max_grad_norm, fp16=use_amp,
        disable_tqdm=not show_progress_bar, save_strategy="steps" if checkpoint_path else "no",
        save_steps=checkpoint_save_steps, save_total_limit=checkpoint_save_total_limit or None,
    )
    per_epoch = min(len(rows) // batch_size for rows in datasets.values())
    total = max_steps if max_steps > 0 else int(per_epoch * epochs) * len(losses)
    optimizer = _optimizer(model, losses, optimizer_class, dict(optimizer_params or {"lr": 2e-5}), weight_decay)
    schedule = _scheduler(optimizer, scheduler.lower(), warmup_steps, total)
    trainer_class = CrossEncoderTrainer if isinstance(model, CrossEncoder) else EmbedderTrainer
    trainer = trainer_class(model, args, train_dataset=datasets, loss=losses, evaluator=evaluator,
                            optimizers=(optimizer, schedule))
    trainer.add_callback(_EvaluateAndSave(trainer, evaluator, evaluation_steps, callback, output_path, save_best_model))
    trainer.train(resume_from_checkpoint=_latest_checkpoint(checkpoint_path) if resume_from_checkpoint else None)


def fit_cross_encoder(
    model: Any,
    train_dataloader: Any,
    evaluator: Any = None,
    epochs: int = 1,
    loss_fct: torch.nn.Module | None = None,
    activation_fct: torch.nn.Module | None = None,
    scheduler: str = "WarmupLinear",
    warmup_steps: int = 10000,
    optimizer_class: type[torch.optim.Optimizer] = torch.optim.AdamW,
    optimizer_params: Mapping[str, Any] | None = None,
    weight_decay: float = 0.01,
    evaluation_steps: int = 0,
    output_path: str | None = None,
    save_best_model: bool = True,
    max_grad_norm: float = 1,
    use_amp: bool = False,
    callback: Callable[[float, int, int], None] | None = None,
    show_progress_bar: bool = True,
) -> None:
    """``CrossEncoder.fit(train_dataloader, ...)``, sentence-transformers' pre-v4 CrossEncoder entry point: pairs
    with labels; ``loss_fct`` (a torch loss on the logits, e.g. ``torch.nn.BCEWithLogitsLoss()``) or, without one,
    BinaryCrossEntropyLoss (one label) / CrossEntropyLoss (several)."""
    from omnivec.train.cross_encoder_losses import BinaryCrossEntropyLoss, CrossEntropyLoss
    from omnivec.train.trainer import CrossEncoderTrainer

    if scheduler.lower() not in _SCHEDULERS:
        raise ConfigError(f"scheduler {scheduler!r} is not one of {_SCHEDULERS} (any capitalisation).")
    if loss_fct is None:
        loss: torch.nn.Module = (BinaryCrossEntropyLoss(model, activation_fn=activation_fct) if model.num_labels == 1
                                 else CrossEntropyLoss(model, activation_fn=activation_fct))
    else:
        loss = _LogitsLoss(loss_fct, activation_fct)
    rows = _rows(getattr(train_dataloader, "dataset", train_dataloader), 1)
    batch_size = getattr(train_dataloader, "batch_size", None) or 8
    sampler = (BatchSamplers.NO_DUPLICATES if type(train_dataloader).__name__ == "NoDuplicatesDataLoader"
               else BatchSamplers.BATCH_SAMPLER)
    args = TrainingArguments(
        output_dir="checkpoints/model", report_to="none", batch_sampler=sampler, per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size, num_train_epochs=epochs, max_grad_norm=max_grad_norm, fp16=use_amp,
        disable_tqdm=not show_progress_bar, save_strategy="no")
    optimizer = _optimizer(model, {}, optimizer_class, dict(optimizer_params or {"lr": 2e-5}), weight_decay)
    schedule = _scheduler(optimizer, scheduler.lower(), warmup_steps, int(len(rows) // batch_size * epochs))
    trainer = CrossEncoderTrainer(model, args, train_dataset=rows, loss=loss, evaluator=evaluator,
                                  optimizers=(optimizer, schedule))
    trainer.add_callback(_EvaluateAndSave(trainer, evaluator, evaluation_steps, callback, output_path, save_best_model))
    trainer.train()


class _LogitsLoss(torch.nn.Module):
    """CrossEncoder.fit's ``loss_fct``: a torch loss on the pairs' logits (activation applied) and the labels
    (float with one label, class indices with several), as sentence-transformers applies it."""

    def __init__(self, loss_fct: torch.nn.Module, activation: torch.nn.Module | None) -> None:
        super().__init__()
        self.loss_fct, self.activation = loss_fct, activation or torch.nn.Identity()

    def forward(self, model: Any, inputs: list[list[Any]], labels: torch.Tensor) -> torch.Tensor:
        if len(inputs) != 2:
            raise InputError(f"CrossEncoder.fit needs examples of two texts (a pair), got {len(inputs)}.")
        logits = model.logits(list(zip(inputs[0], inputs[1], strict=True)))
        if model.num_labels == 1:
            logits, labels = logits.view(-1), labels.float()
        else:
            labels = labels.long()
        return self.loss_fct(self.activation(logits), labels.to(logits.device))


def _rows(data: Any, index: int) -> list[dict[str, Any]]:
    """The objective's examples as dict rows: ``sentence_{i}`` columns and ``label`` (dropped when all are 0)."""
    rows = []
    for position, example in enumerate(data):
        if isinstance(example, Mapping):
            rows.append(dict(example))
            continue
        texts = getattr(example, "texts", None)
        if texts is None:
            raise InputError(f"train_objectives[{index - 1}] item {position}: expected an InputExample (texts=..., "
                             f"label=...) or a dict, got {type(example).__name__}.")
        rows.append({**{f"sentence_{i}": text for i, text in enumerate(texts)}, "label": getattr(example, "label", 0)})
    if rows and "label" in rows[0] and all(_is_zero(row["label"]) for row in rows) and not isinstance(data, Mapping):
        rows = [{k: v for k, v in row.items() if k != "label"} for row in rows]
    return rows


def _is_zero(value: Any) -> bool:
    try:
        return value == 0
    except Exception:  # noqa: BLE001 (an array label: not the InputExample default)
        return False


def _optimizer(model: Any, losses: dict[str, torch.nn.Module], optimizer_class: type[torch.optim.Optimizer],
               params: dict[str, Any], weight_decay: float) -> torch.optim.Optimizer:
    named = list(torch.nn.ModuleDict({"model": model, **losses}).named_parameters())
    no_decay = ("bias", "LayerNorm.bias", "LayerNorm.weight")
    groups = [{"params": [p for n, p in named if not any(nd in n for nd in no_decay)], "weight_decay": weight_decay},
              {"params": [p for n, p in named if any(nd in n for nd in no_decay)], "weight_decay": 0.0}]
    return optimizer_class(groups, **params)


def _scheduler(optimizer: torch.optim.Optimizer, name: str, warmup: int, total: int) -> Any:
    if name == "constantlr":
        return transformers.get_constant_schedule(optimizer)
    if name == "warmupconstant":
        return transformers.get_constant_schedule_with_warmup(optimizer, num_warmup_steps=warmup)
    if name == "warmuplinear":
        return transformers.get_linear_schedule_with_warmup(optimizer, warmup, total)
    if name == "warmupcosine":
        return transformers.get_cosine_schedule_with_warmup(optimizer, warmup, total)
    return transformers.get_cosine_with_hard_restarts_schedule_with_warmup(optimizer, warmup, total)


def _latest_checkpoint(folder: str | None) -> str | None:
    if not folder or not os.path.isdir(folder):
        return None
    found = [name for name in os.listdir(folder) if name.startswith("checkpoint-") and name.split("-")[-1].isdigit()]
    return os.path.join(folder, max(found, key=lambda n: int(n.split("-")[-1]))) if found else None


class _EvaluateAndSave(transformers.TrainerCallback):
    """fit()'s evaluation and saving: the evaluator runs at each epoch's end (and every ``evaluation_steps``),
    ``callback(score, epoch, steps)`` gets its primary metric, and ``output_path`` receives the best model (or the
    final one without an evaluator or with ``save_best_model=False``)."""

    def __init__(self, trainer: Any, evaluator: Any, evaluation_steps: int,
                 callback: Callable[[float, int, int], None] | None, output_path: str | None,
                 save_best_model: bool) -> None:
        self.trainer, self.evaluator, self.every, self.callback = trainer, evaluator, evaluation_steps, callback
        self.output_path, self.save_best_model = output_path, save_best_model
        self.best: float | None = None

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.evaluator is not None:
            self._score(self.trainer.evaluate(), state)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.evaluator is not None and self.every > 0 and state.global_step % self.every == 0:
            self._score(self.trainer.evaluate(), state)

    def _score(self, metrics: dict[str, float], state: Any) -> None:
        key = "eval_" + getattr(self.evaluator, "primary_metric", "")
        score = metrics.get(key)
        if score is None:
            return
        if self.callback is not None:
            self.callback(score, int(state.epoch or 0), state.global_step)
        greater = getattr(self.evaluator, "greater_is_better", True)
        if self.best is None or (score > self.best if greater else score < self.best):
            self.best = score
            if self.output_path and self.save_best_model:
                self.trainer.model.save(self.output_path)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.output_path and (self.evaluator is None or not self.save_best_model):
            self.trainer.model.save(self.output_path)
