"""The backend names a model class takes beyond the three runtimes: ``onnx-int8`` / ``openvino-int8`` (the int8
export for this CPU, made on first use and reused) and ``auto`` (the variant ``omnivec bench-backends`` measured
best for this model on this CPU). ``resolve_backend`` turns them into a runtime and the export's ``file_name``
before any module loads; ``Transformer`` only ever sees ``torch``, ``onnx`` or ``openvino``."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnivec.errors import ConfigError
from omnivec.loading.hub import resolve_model_dir
from omnivec.loading.options import BACKEND_NAMES, LoadOptions
from omnivec.models.exports.for_this_machine import int8_file_name
from omnivec.runtime.cpu import cpu_info

if TYPE_CHECKING:
    from omnivec.models.base_model import BaseModel

logger = logging.getLogger(__name__)


def resolve_backend(model_class: type[BaseModel], name_or_path: str | os.PathLike, options: LoadOptions,
                    config: Mapping[str, Any], device: Any = None) -> LoadOptions:
    """``options`` with ``backend`` one of torch/onnx/openvino: ``auto`` becomes the cached measurement's choice,
    an int8 variant becomes its runtime with ``model_kwargs["file_name"]`` naming the int8 export, which is made
    first when the folder lacks it (the fp32 model is loaded once for that)."""
    if options.backend == "auto":
        choice = _auto_choice(model_class, name_or_path, options, device)
        options = replace(options, backend=choice)  # type: ignore[arg-type]  # a choice is one of BACKEND_NAMES
        if not options.int8:
            return options
    if not options.int8:
        return options
    if "file_name" in options.model_kwargs:
        raise ConfigError(f"backend {options.backend!r} loads the int8 export for this CPU; model_kwargs['file_name'] "
                          f"({options.model_kwargs['file_name']!r}) picks a file itself: pass "
                          f"backend={options.runtime!r} with it instead.")
    runtime, file_name = options.runtime, int8_file_name(options.runtime)
    fp32 = replace(options, backend=runtime)
    folder = resolve_model_dir(name_or_path, fp32.hub)
    if not _has_export(folder, runtime, file_name):
        _make_int8(model_class, folder, fp32, config)
    return replace(fp32, model_kwargs={**fp32.model_kwargs, "file_name": file_name})


def _has_export(folder: Path, runtime: str, file_name: str) -> bool:
    """Whether the folder holds the export: its one graph, or, for a dual encoder, every tower's graph."""
    from omnivec.modules.backends.base import export_files

    if all(path.is_file() for path in export_files(folder, runtime, file_name)):
        return True
    modalities = tower_modalities(folder)
    return bool(modalities) and all(path.is_file() for path in export_files(folder, runtime, file_name, modalities))


# A dual encoder's config.json holds one sub-config per tower (CLIP, SigLIP: text and vision; CLAP: text and audio).
_TOWER_CONFIGS = {"text_config": "text", "vision_config": "image", "audio_config": "audio"}


def tower_modalities(folder: Path) -> list[str]:
    """The towers a dual encoder's int8 export has, from its ``config.json`` (text plus vision and/or audio
    sub-configs); [] for a model of one graph. Reading the config is enough to decide whether the export must be
    made, without loading the model; a model saved with fewer modalities than its config (a text-only CLIP) is
    quantized again on each int8 load, which is slow but not wrong."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found = [modality for key, modality in _TOWER_CONFIGS.items() if isinstance(config, dict) and key in config]
    return found if "text" in found and len(found) > 1 else []


def _make_int8(model_class: type[BaseModel], folder: Path, fp32: LoadOptions, config: Mapping[str, Any]) -> None:
    from omnivec.models.exports.for_this_machine import quantize_for

    model = model_class.loaded_with(folder, fp32, config)
    logger.info("Making the int8 %s export of %s for this CPU (%s); it is reused from now on.", fp32.runtime, folder,
                cpu_info().int8_isa)
    quantize_for(model, fp32.runtime)


# -- the measured choice ("auto") ------------------------------------------------------------------------------
def choice_cache_dir() -> Path:
    """Where ``omnivec bench-backends`` keeps its results: ``$OMNIVEC_CACHE_DIR`` or ``~/.cache/omnivec``, under
    ``backend-choice/``."""
    base = os.environ.get("OMNIVEC_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "omnivec")
    return Path(base) / "backend-choice"


def choice_file(folder: Path, kind: str) -> Path:
    """The cached measurement of one model folder, model kind and CPU (a measurement elsewhere does not apply)."""
    key = f"{os.path.realpath(folder)}|{kind}|{cpu_info().key}"
    return choice_cache_dir() / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def save_choice(folder: Path, kind: str, record: Mapping[str, Any]) -> Path:
    """Keep a measurement (its ``choice`` is what ``backend="auto"`` loads)."""
    path = choice_file(folder, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**record, "model": os.path.realpath(folder), "kind": kind, "cpu": cpu_info().key},
                              indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_choice(folder: Path, kind: str) -> str | None:
    """The measured choice for this model, kind and CPU, or None when it was never measured here."""
    path = choice_file(folder, kind)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    choice = record.get("choice") if isinstance(record, dict) else None
    if choice not in BACKEND_NAMES or choice == "auto":
        logger.warning("Ignoring %s: its choice %r is not a backend name.", path, choice)
        return None
    return choice


def _auto_choice(model_class: type[BaseModel], name_or_path: str | os.PathLike, options: LoadOptions,
                 device: Any) -> str:
    import torch

    if device is not None and torch.device(device).type != "cpu":
        return "torch"  # the measurement is of CPU runtimes; on an accelerator torch runs the model
    folder = resolve_model_dir(name_or_path, options.hub)
    choice = load_choice(folder, model_class.model_kind)
    if choice is None:
        logger.warning("backend='auto': %s was not measured on this CPU yet; using torch. Run `omnivec bench-backends "
                       "%s` once to pick the fastest backend that keeps its numbers.", name_or_path, name_or_path)
        return "torch"
    logger.info("backend='auto': %s runs on %s (measured by omnivec bench-backends on this CPU).", name_or_path, choice)
    return choice
