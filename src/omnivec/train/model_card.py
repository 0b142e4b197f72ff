"""The README.md model card a trained model is saved with: base model, data, loss, arguments, final metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ARGUMENTS = ("num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
             "learning_rate", "warmup_steps", "lr_scheduler_type", "weight_decay", "fp16", "bf16", "seed",
             "batch_sampler", "prompts", "router_mapping")
_TAGS = {"CrossEncoder": "cross-encoder", "SparseEncoder": "sparse-encoder, sparse"}  # else sentence-similarity


def card_facts(trainer: Any) -> dict[str, Any]:
    """What the card says, as plain data (also handy for tests)."""
    args = trainer.args
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {
        "model_type": type(trainer.model).__name__,
        "base_model": trainer.base_model,
        "data": trainer.data_summary,
        "loss": {"name": type(trainer.loss).__name__, **_loss_config(trainer.loss)},
        "arguments": {name: getattr(args, name) for name in ARGUMENTS if getattr(args, name, None) not in (None, {})},
        "steps": trainer.state.global_step,
        "final_training_loss": losses[-1] if losses else None,
        "metrics": trainer.last_metrics,
        "evaluator": type(trainer.evaluator).__name__ if trainer.evaluator is not None else None,
    }


def write_model_card(folder: str | Path, trainer: Any) -> None:
    facts = card_facts(trainer)
    from omnivec._version import __version__

    lines = [
        "---",
        "library_name: sentence-transformers",
        "tags: [omnivec, sentence-transformers, " + _TAGS.get(facts["model_type"], "sentence-similarity") + "]",
        *([f"base_model: {facts['base_model']}"] if facts["base_model"] else []),
        "---",
        "",
        f"# {facts['model_type']} fine-tuned with omnivec {__version__}",
        "",
        f"Base model: `{facts['base_model'] or 'built from modules'}`. Loads with `omnivec.{facts['model_type']}` or "
        "sentence-transformers.",
        "",
        "## Training data",
        f"- {facts['data']['rows']} training rows; input columns {facts['data']['columns']}"
        + (f", label column `{facts['data']['label']}`" if facts["data"]["label"] else ", no label column"),
        *([f"- {facts['data']['eval_rows']} evaluation rows"] if facts["data"]["eval_rows"] else []),
        "",
        "## Loss",
        f"`{facts['loss']['name']}`" + (f" with `{json.dumps(_plain(_without_name(facts['loss'])))}`"
                                       if len(facts["loss"]) > 1 else ""),
        "",
        "## Training arguments",
        *[f"- {name}: `{_plain(value)}`" for name, value in facts["arguments"].items()],
        f"- steps run: {facts['steps']}",
        "",
        "## Final metrics",
        *([f"- training loss (last logged): {facts['final_training_loss']:.4f}"]
          if facts["final_training_loss"] is not None else []),
        *[f"- {name}: {value:.4f}" for name, value in facts["metrics"].items() if isinstance(value, float)],
        *(["- none recorded (no evaluation ran)"] if not facts["metrics"] and facts["final_training_loss"] is None else []),
        "",
    ]
    Path(folder, "README.md").write_text("\n".join(lines), encoding="utf-8")


def _loss_config(loss: Any) -> dict[str, Any]:
    config = getattr(loss, "config", None)
    described = config() if callable(config) else None
    return described if isinstance(described, dict) else {}


def _without_name(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != "name"}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
