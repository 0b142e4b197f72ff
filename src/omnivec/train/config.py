"""``omnivec train CONFIG.yaml``: a training run described in a file (model, data files, loss, evaluator, arguments).

Example::

    model: sentence-transformers/all-MiniLM-L6-v2
    data:
      train: ../shared/data/stsb/sts-train.csv
      format: {delimiter: "\\t", quoting: none, header: false, extra_fields: ignore,
               column_names: [genre, file, year, id, score, sentence1, sentence2]}
      columns: [sentence1, sentence2]
      label: score
    loss: CoSENTLoss
    evaluator: {type: sts, data: ../shared/data/stsb/sts-dev.csv}   # same format keys as data
    args: {output_dir: runs/stsb, num_train_epochs: 1, per_device_train_batch_size: 16}
    output: models/minilm-stsb
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omnivec.errors import InputError
from omnivec.train.data_files import numeric_labels, read_rows

logger = logging.getLogger(__name__)

TOP_KEYS = {"model", "model_type", "model_args", "data", "loss", "matryoshka_dims", "evaluator", "args", "output"}
DATA_KEYS = {"train", "eval", "format", "columns", "label", "label_scale"}
FORMAT_KEYS = {"delimiter", "quoting", "header", "column_names", "extra_fields"}
MODEL_ARGS = {"device", "num_labels", "max_length", "template", "prompts", "default_prompt_name", "dtype",
              "trust_remote_code", "truncate_dim"}
MODEL_TYPES = ("embedder", "cross-encoder")


def load_config(path: str | Path) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(f"Training config {str(path)!r} does not exist.")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"Training config {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise InputError(f"Training config {str(path)!r} must be a mapping of keys ({', '.join(sorted(TOP_KEYS))}).")
    _check_keys(config, TOP_KEYS, "the config")
    for required in ("model", "data"):
        if required not in config:
            raise InputError(f"Training config {str(path)!r} has no {required!r} key.")
    _check_keys(config["data"], DATA_KEYS, "'data'")
    _check_keys(config["data"].get("format") or {}, FORMAT_KEYS, "'data.format'")
    if "train" not in config["data"]:
        raise InputError("Training config: 'data' needs a 'train' file.")
    if config.get("model_type", "embedder") not in MODEL_TYPES:
        raise InputError(f"Training config: model_type must be one of {MODEL_TYPES}, got {config['model_type']!r}.")
    _check_keys(config.get("model_args") or {}, MODEL_ARGS, "'model_args'")
    base = path.parent
    for section, key in (("data", "train"), ("data", "eval"), ("evaluator", "data")):
        value = (config.get(section) or {}).get(key)
        if isinstance(value, str) and not Path(value).is_absolute():
            config[section][key] = str(base / value)  # relative to the config file, not the working directory
    return config


def _check_keys(section: Any, allowed: set[str], where: str) -> None:
    if not isinstance(section, dict):
        raise InputError(f"Training config: {where} must be a mapping, got {type(section).__name__}.")
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise InputError(f"Training config: unknown key(s) {unknown} in {where}; allowed: {sorted(allowed)}.")


def run_config(path: str | Path) -> dict[str, Any]:
    """Train as the config says, save the model (with its model card) and return the final metrics."""
    from omnivec.train.args import TrainingArguments

    config = load_config(path)
    cross_encoder = config.get("model_type", "embedder") == "cross-encoder"
    data = config["data"]
    train_rows = _rows(data, "train")
    eval_rows = _rows(data, "eval") if data.get("eval") else None
    loss = _loss(config, cross_encoder)
    evaluator = _evaluator(config.get("evaluator"), data)
    args = dict(config.get("args") or {})
    args.setdefault("output_dir", "omnivec-training")
    args.setdefault("report_to", "none")
    if args.get("eval_strategy", "no") != "no" and eval_rows is None and evaluator is None:
        raise InputError("Training config: args.eval_strategy is set but there is no data.eval file or evaluator.")
    try:
        training_args = TrainingArguments(**_numbers(args))
    except TypeError as exc:
        raise InputError(f"Training config: 'args' has an argument TrainingArguments does not take ({exc}).") from None
    from omnivec.train.trainer import CrossEncoderTrainer, EmbedderTrainer

    model = _model(config, cross_encoder)  # last: a mistake elsewhere in the config is named before a long load

    trainer_class = CrossEncoderTrainer if cross_encoder else EmbedderTrainer
    trainer = trainer_class(model, training_args, train_dataset=train_rows, eval_dataset=eval_rows, loss=loss,
                            evaluator=evaluator, columns=data.get("columns"), label_column=data.get("label"))
    before = trainer.evaluate(metric_key_prefix="before") if evaluator is not None else {}
    trainer.train()
    metrics = trainer.evaluate() if (evaluator is not None or eval_rows is not None) else {}
    output = config.get("output") or str(Path(training_args.output_dir) / "final")
    trainer.save_model(output)
    logger.info("Saved the trained model to %s", output)
    return {"output": output, **before, **metrics}


def _numbers(args: dict[str, Any]) -> dict[str, Any]:
    """YAML reads ``1e-5`` (no dot) as a string: numeric arguments given as text become numbers."""
    import dataclasses

    from omnivec.train.args import TrainingArguments

    kinds = {f.name: f.type for f in dataclasses.fields(TrainingArguments)}
    out = dict(args)
    for key, value in args.items():
        kind = kinds.get(key)
        if isinstance(value, str) and kind in (float, int, "float", "int"):
            try:
                out[key] = float(value) if kind in (float, "float") else int(value)
            except ValueError:
                raise InputError(f"Training config: args.{key} must be a number, got {value!r}.") from None
    return out


def _model(config: dict[str, Any], cross_encoder: bool) -> Any:
    from omnivec import CrossEncoder, Embedder

    kwargs = dict(config.get("model_args") or {})
    if not cross_encoder and {"num_labels", "max_length", "template"} & set(kwargs):
        raise InputError("Training config: num_labels, max_length and template are CrossEncoder arguments; set "
                         "model_type: cross-encoder.")
    if cross_encoder and "truncate_dim" in kwargs:
        raise InputError("Training config: truncate_dim is an Embedder argument.")
    return (CrossEncoder if cross_encoder else Embedder)(config["model"], **kwargs)


def _rows(data: dict[str, Any], split: str) -> list[dict[str, Any]]:
    rows = read_rows(data[split], **(data.get("format") or {}))
    if data.get("label"):
        numeric_labels(rows, data["label"], float(data.get("label_scale", 1.0)), f"{data[split]!r}")
    return rows


def _loss(config: dict[str, Any], cross_encoder: bool) -> Any:
    from omnivec.train import cross_encoder_losses, losses

    spec = config.get("loss")
    if spec is None:
        return None  # the trainer's default for the data
    name, kwargs = (spec, {}) if isinstance(spec, str) else (spec.get("name"), dict(spec.get("args") or {}))
    namespace = cross_encoder_losses if cross_encoder else losses
    available = sorted(n for n in namespace.__all__ if n.endswith("Loss") and n not in ("Loss", "EmbeddingLoss", "PairLoss"))
    if name not in available:
        kind = "CrossEncoder" if cross_encoder else "Embedder"
        raise InputError(f"Training config: loss {name!r} is not an {kind} loss; choose one of {available}.")
    try:
        loss = getattr(namespace, name)(**kwargs)
    except TypeError as exc:
        raise InputError(f"Training config: bad arguments for {name}: {exc}") from None
    if config.get("matryoshka_dims"):
        loss = losses.MatryoshkaLoss(loss, config["matryoshka_dims"])
    return loss


def _evaluator(spec: dict[str, Any] | None, data: dict[str, Any]) -> Any:
    if not spec:
        return None
    from omnivec.train import evaluation

    _check_keys(spec, {"type", "data", "format", "columns", "label", "name", "split"}, "'evaluator'")
    kind = spec.get("type")
    if kind in ("sts", "ir") and "data" not in spec:
        raise InputError("Training config: the evaluator needs a 'data' file (sts) or BEIR folder (ir).")
    if kind == "sts":
        rows = read_rows(spec["data"], **(spec.get("format") or data.get("format") or {}))
        first, second = spec.get("columns") or data.get("columns") or ["sentence1", "sentence2"]
        label = spec.get("label") or data.get("label") or "score"
        numeric_labels(rows, label, 1.0, repr(spec["data"]))
        return evaluation.EmbeddingSimilarityEvaluator([r[first] for r in rows], [r[second] for r in rows],
                                                       [r[label] for r in rows], name=spec.get("name", "sts"))
    if kind == "ir":
        return evaluation.InformationRetrievalEvaluator.from_beir(spec["data"], split=spec.get("split", "test"),
                                                                  name=spec.get("name", "ir"))
    raise InputError(f"Training config: evaluator type {kind!r} must be 'sts' or 'ir'.")
