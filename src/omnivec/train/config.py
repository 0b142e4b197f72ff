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

from omnivec.errors import ConfigError, InputError
from omnivec.train.data_files import numeric_labels, read_rows

logger = logging.getLogger(__name__)

TOP_KEYS = {"model", "model_type", "model_args", "data", "loss", "matryoshka_dims", "evaluator", "args", "output"}
DATA_KEYS = {"train", "eval", "format", "columns", "label", "label_scale"}
FORMAT_KEYS = {"delimiter", "quoting", "header", "column_names", "extra_fields"}
MODEL_ARGS = {"device", "num_labels", "max_length", "template", "prompts", "default_prompt_name", "dtype",
              "trust_remote_code", "truncate_dim"}
MODEL_TYPES = ("embedder", "cross-encoder")


def load_config(path: str | Path) -> dict[str, Any]:
    """The config at ``path`` with its keys and files checked (a ``ConfigError`` names the file, the key and what is
    allowed); data paths made relative to the config file."""
    import yaml

    path = Path(path)
    where = f"Training config {str(path)!r}"
    if not path.is_file():
        raise ConfigError(f"{where} does not exist.")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{where} must be a mapping of keys ({', '.join(sorted(TOP_KEYS))}).")
    _check_sections(config, where)
    _check_model(config, where)
    base = path.parent
    for section, key in (("data", "train"), ("data", "eval"), ("evaluator", "data")):
        value = (config.get(section) or {}).get(key)
        if isinstance(value, str) and not Path(value).is_absolute():
            config[section][key] = str(base / value)  # relative to the config file, not the working directory
    _check_files(config, where)
    return config


def _check_sections(config: dict[str, Any], where: str) -> None:
    _check_keys(config, TOP_KEYS, "the config", where)
    for required in ("model", "data"):
        if required not in config:
            raise ConfigError(f"{where} has no {required!r} key; a run needs 'model' and 'data'.")
    data = config["data"]
    _check_keys(data, DATA_KEYS, "'data'", where)
    _check_keys(data.get("format") or {}, FORMAT_KEYS, "'data.format'", where)
    if "train" not in data:
        raise ConfigError(f"{where}: 'data' needs a 'train' file.")
    for key in ("evaluator", "args"):
        _check_keys(config.get(key) or {}, None, repr(key), where)
    loss = config.get("loss")
    if loss is not None and not isinstance(loss, str) and not (isinstance(loss, dict) and "name" in loss):
        raise ConfigError(f"{where}: loss must be a loss name or {{name: ..., args: {{...}}}}, got {loss!r}.")


def _check_model(config: dict[str, Any], where: str) -> None:
    """``model``, ``model_type`` and ``model_args`` agree, so a mistake is named before the model loads."""
    if not isinstance(config["model"], str) or not config["model"].strip():
        raise ConfigError(f"{where}: model must be a model folder or Hub id, got {config['model']!r}.")
    model_type = config.get("model_type", "embedder")
    if model_type not in MODEL_TYPES:
        raise ConfigError(f"{where}: model_type must be one of {MODEL_TYPES}, got {model_type!r}.")
    model_args = config.get("model_args") or {}
    _check_keys(model_args, MODEL_ARGS, "'model_args'", where)
    if model_type == "embedder" and {"num_labels", "max_length", "template"} & set(model_args):
        raise ConfigError(f"{where}: model_args num_labels, max_length and template are CrossEncoder arguments; set "
                          "model_type: cross-encoder.")
    if model_type == "cross-encoder" and "truncate_dim" in model_args:
        raise ConfigError(f"{where}: model_args truncate_dim is an Embedder argument (model_type: embedder).")


def _check_files(config: dict[str, Any], where: str) -> None:
    for section, key in (("data", "train"), ("data", "eval"), ("evaluator", "data")):
        value = (config.get(section) or {}).get(key)
        if value is not None and (not isinstance(value, str) or not Path(value).exists()):
            raise ConfigError(f"{where}: {section}.{key} {value!r} does not exist (paths are relative to the config "
                              "file).")


def _check_keys(section: Any, allowed: set[str] | None, name: str, where: str) -> None:
    """``section`` is a mapping whose keys are among ``allowed`` (any keys when None)."""
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: {name} must be a mapping, got {type(section).__name__}.")
    unknown = sorted(set(section) - allowed) if allowed is not None else []
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown} in {name}; allowed: {sorted(allowed or ())}.")


def run_config(path: str | Path) -> dict[str, Any]:
    """Train as the config says, save the model (with its model card) and return the final metrics."""
    from omnivec.train.args import TrainingArguments

    config = load_config(path)
    where = f"Training config {str(path)!r}"
    cross_encoder = config.get("model_type", "embedder") == "cross-encoder"
    data = config["data"]
    train_rows = _rows(data, "train", where)
    eval_rows = _rows(data, "eval", where) if data.get("eval") else None
    loss = _loss(config, cross_encoder, where)
    evaluator = _evaluator(config.get("evaluator"), data, where)
    args = dict(config.get("args") or {})
    args.setdefault("output_dir", "omnivec-training")
    args.setdefault("report_to", "none")
    if args.get("eval_strategy", "no") != "no" and eval_rows is None and evaluator is None:
        raise ConfigError(f"{where}: args.eval_strategy is set but there is no data.eval file or evaluator.")
    args = _numbers(args, where)
    try:
        training_args = TrainingArguments(**args)
    except TypeError as exc:
        raise ConfigError(f"{where}: 'args' has an argument TrainingArguments does not take ({exc}).") from None
    except ValueError as exc:  # transformers' own checks (an unknown strategy name, ...)
        raise ConfigError(f"{where}: args: {exc}") from None
    from omnivec.train.trainer import CrossEncoderTrainer, EmbedderTrainer

    model = _model(config, cross_encoder)  # last: a mistake elsewhere in the config is named before a long load

    trainer_class = CrossEncoderTrainer if cross_encoder else EmbedderTrainer
    trainer = trainer_class(model, training_args, train_dataset=train_rows, eval_dataset=eval_rows, loss=loss,
                            evaluator=evaluator, columns=data.get("columns"), label_column=data.get("label"))
    before = trainer.evaluate(metric_key_prefix="before") if evaluator is not None else {}
    trainer.train()
    metrics = trainer.evaluate() if (evaluator is not None or eval_rows is not None) else {}
    output = config.get("output") or str(Path(args["output_dir"]) / "final")
    trainer.save_model(output)
    logger.info("Saved the trained model to %s", output)
    return {"output": output, **before, **metrics}


def _numbers(args: dict[str, Any], where: str) -> dict[str, Any]:
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
                raise ConfigError(f"{where}: args.{key} must be a number, got {value!r}.") from None
    rate = out.get("learning_rate", 1.0)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < float("inf"):
        raise ConfigError(f"{where}: args.learning_rate must be a number > 0, got {args['learning_rate']!r}.")
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


def _rows(data: dict[str, Any], split: str, where: str) -> list[dict[str, Any]]:
    try:
        rows = read_rows(data[split], **(data.get("format") or {}))
    except ConfigError as exc:
        raise ConfigError(f"{where}: data: {exc}") from None
    _check_columns("data", data, split, rows, where)
    if data.get("label"):
        numeric_labels(rows, data["label"], float(data.get("label_scale", 1.0)), f"{data[split]!r}")
    return rows


def _check_columns(section: str, data: dict[str, Any], split: str, rows: list[dict[str, Any]], where: str) -> None:
    """``<section>.columns`` and ``<section>.label`` name columns the file has (its first row's keys)."""
    if not rows:
        return
    present = set(rows[0])
    for key in ("columns", "label"):
        value = data.get(key)
        wanted = [value] if isinstance(value, str) else list(value or [])
        missing = [name for name in wanted if name not in present]
        if missing:
            raise ConfigError(f"{where}: {section}.{key} names {missing}, not column(s) of {section}.{split} "
                              f"{data[split]!r}; its columns: {sorted(present)}.")


def _loss(config: dict[str, Any], cross_encoder: bool, where: str) -> Any:
    from omnivec.train import cross_encoder_losses, losses

    spec = config.get("loss")
    if spec is None:
        return None  # the trainer's default for the data
    name, kwargs = (spec, {}) if isinstance(spec, str) else (spec.get("name"), dict(spec.get("args") or {}))
    namespace = cross_encoder_losses if cross_encoder else losses
    available = sorted(n for n in namespace.__all__ if n.endswith("Loss") and n not in ("Loss", "EmbeddingLoss", "PairLoss"))
    if name not in available:
        kind = "CrossEncoder" if cross_encoder else "Embedder"
        raise ConfigError(f"{where}: loss {name!r} is not an {kind} loss; choose one of {available}.")
    try:
        loss = getattr(namespace, name)(**kwargs)
    except (TypeError, ValueError) as exc:  # ConfigError is a ValueError
        raise ConfigError(f"{where}: bad arguments for {name}: {exc}") from None
    if config.get("matryoshka_dims"):
        try:
            loss = losses.MatryoshkaLoss(loss, config["matryoshka_dims"])
        except (TypeError, ValueError) as exc:  # ConfigError is a ValueError
            raise ConfigError(f"{where}: matryoshka_dims: {exc}") from None
    return loss


def _evaluator(spec: dict[str, Any] | None, data: dict[str, Any], where: str) -> Any:
    if not spec:
        return None
    from omnivec.train import evaluation

    _check_keys(spec, {"type", "data", "format", "columns", "label", "name", "split"}, "'evaluator'", where)
    kind = spec.get("type")
    if kind in ("sts", "ir") and "data" not in spec:
        raise ConfigError(f"{where}: the evaluator needs a 'data' file (sts) or BEIR folder (ir).")
    if kind == "sts":
        rows = read_rows(spec["data"], **(spec.get("format") or data.get("format") or {}))
        columns = spec.get("columns") or data.get("columns") or ["sentence1", "sentence2"]
        label = spec.get("label") or data.get("label") or "score"
        if len(columns) != 2:
            raise ConfigError(f"{where}: the sts evaluator needs 2 text columns, got columns {columns!r}.")
        _check_columns("evaluator", {"data": spec["data"], "columns": columns, "label": label}, "data", rows, where)
        first, second = columns
        numeric_labels(rows, label, 1.0, repr(spec["data"]))
        return evaluation.EmbeddingSimilarityEvaluator([r[first] for r in rows], [r[second] for r in rows],
                                                       [r[label] for r in rows], name=spec.get("name", "sts"))
    if kind == "ir":
        return evaluation.InformationRetrievalEvaluator.from_beir(spec["data"], split=spec.get("split", "test"),
                                                                  name=spec.get("name", "ir"))
    raise ConfigError(f"{where}: evaluator type {kind!r} must be 'sts' or 'ir'.")
