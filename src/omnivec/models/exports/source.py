"""What every export function starts from: the model's Transformer, the folder the result goes to, and the model's
fp32 ONNX graph (the existing one, or a fresh export), whatever backend the model was loaded with."""

from __future__ import annotations

import copy
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omnivec.errors import ConfigError, ModelLoadError
from omnivec.modules.backends.base import TOWER_MODALITIES
from omnivec.modules.backends.towers import BackendTowers, Tower, towers_of
from omnivec.modules.transformer import TASKS, Transformer

logger = logging.getLogger(__name__)

ONNX_FOLDER = "onnx"
OPENVINO_FOLDER = "openvino"
FP32_ONNX = "model.onnx"


@dataclass(frozen=True)
class ExportSource:
    """The parts of a loaded model an export reads.

    Attributes:
        transformer: the model's input Transformer (its tokenizer, HF config, task and backend).
        folder: the folder the model was loaded from (its exports live in ``onnx/`` and ``openvino/`` there).
        target: the folder the export is written to (``<target>/onnx/...``, ``<target>/openvino/...``).
    """

    transformer: Transformer
    folder: Path
    target: Path

    @property
    def task(self) -> str:
        return self.transformer.transformer_task

    @property
    def config(self) -> Any:
        return self.transformer.config

    @property
    def towers(self) -> list[Tower] | None:
        """A dual encoder's towers (CLIP, SigLIP: text and image; CLAP: text and audio), each exported and quantized
        as its own graph (``onnx/<modality>_<file>``); None for a text model (one graph)."""
        transformer = self.transformer
        spec = transformer.modality_config
        towers = isinstance(transformer.model, BackendTowers) or (
            transformer.transformer_task == "feature-extraction" and bool(spec) and all(
                modality in TOWER_MODALITIES and config.get("method") == f"get_{modality}_features"
                for modality, config in spec.items()))
        return towers_of(spec, transformer.processor) if towers else None


def export_source(model: Any, model_name_or_path: str | os.PathLike | None, push_to_hub: bool,
                  create_pr: bool, function: str) -> ExportSource:
    """The export source of an omnivec Embedder or CrossEncoder (anything with a ``transformer`` property).

    ``model_name_or_path=None`` writes into the model's own folder. There is no Hub upload here: ``push_to_hub``
    (and ``create_pr``) raise, saying how to upload the written folder instead."""
    if push_to_hub or create_pr:
        raise ConfigError(f"{function}(push_to_hub=True / create_pr=True): omnivec does not upload to the Hugging Face "
                          "Hub; write the export to a folder (model_name_or_path) and upload that folder with "
                          "huggingface_hub.upload_folder.")
    transformer = _find_transformer(model, function)
    if transformer.transformer_task not in ("feature-extraction", "sequence-classification"):
        raise ConfigError(f"{function}: exports cover text embedders and classifier CrossEncoders; this model's "
                          f"Transformer has transformer_task {transformer.transformer_task!r}.")
    folder = Path(transformer.source_folder)
    target = folder if model_name_or_path is None else Path(model_name_or_path)
    return ExportSource(transformer=transformer, folder=folder, target=target)


def _find_transformer(model: Any, function: str) -> Transformer:
    try:
        transformer = model.transformer
    except (AttributeError, TypeError):
        transformer = None
    if not isinstance(transformer, Transformer):
        raise ConfigError(f"{function} takes an omnivec Embedder or CrossEncoder whose first module is a Transformer; "
                          f"got {type(model).__name__}.")
    return transformer


@contextmanager
def fp32_onnx(source: ExportSource, use_loaded: bool = True, tower: Tower | None = None) -> Iterator[Path]:
    """The fp32 ONNX graph to optimize or quantize from (of one ``tower`` of a dual encoder:
    ``onnx/<modality>_model.onnx``).

    A model loaded with ``backend="onnx"`` gives the file it runs (as sentence-transformers quantizes the loaded
    file), unless ``use_loaded`` is False. Otherwise the folder's ``onnx/model.onnx``, exported and saved there when
    missing; a ``backend="torch"`` model is exported from its weights in memory into a temporary file instead (a
    model changed since loading exports as it is now)."""
    from omnivec.modules.backends.onnx import OnnxModel

    transformer = source.transformer
    loaded = transformer.model
    if isinstance(loaded, BackendTowers) and tower is not None:
        loaded = loaded.towers.get(tower.modality)
    if use_loaded and transformer.backend == "onnx" and isinstance(loaded, OnnxModel):
        yield loaded.path
        return
    if transformer.backend == "torch":
        with tempfile.TemporaryDirectory(prefix="omnivec-export-") as tmp:
            path = Path(tmp) / FP32_ONNX
            # A copy: the exporter moves the model to the CPU in float32, the caller's model stays where it is.
            model = copy.deepcopy(transformer.model)
            _export(source, model, path, tower)
            del model
            yield path
        return
    path = source.folder / ONNX_FOLDER / (FP32_ONNX if tower is None else tower.file_name(FP32_ONNX))
    if not path.is_file():
        _export(source, _load_torch_model(source), path, tower)
        logger.info("Exported %s to %s (the fp32 graph the quantized exports start from).", source.folder, path)
    yield path


def _export(source: ExportSource, model: Any, path: Path, tower: Tower | None) -> None:
    from omnivec.modules.backends.base import export_inputs
    from omnivec.modules.backends.onnx import export_onnx
    from omnivec.modules.backends.towers import tower_inputs

    inputs = export_inputs(source.transformer.tokenizer) if tower is None else tower_inputs(model, tower)
    export_onnx(model, inputs, source.task, path, tower=tower)


def _load_torch_model(source: ExportSource) -> Any:
    """The folder's torch model (float32): for a model loaded with another backend whose folder has no ONNX graph."""
    import transformers

    auto_class = TASKS[source.task][0]
    try:
        return getattr(transformers, auto_class).from_pretrained(str(source.folder), config=source.config,
                                                                 dtype="float32")
    except Exception as exc:  # transformers raises many types for a folder without (readable) weights
        raise ModelLoadError(f"Exporting {str(source.folder)!r} to ONNX needs its torch weights (model.safetensors), "
                             f"which could not be loaded as {auto_class}: {type(exc).__name__}: {exc}") from None


def write_atomically(path: Path, write: Any, suffixes: tuple[str, ...] = ("",)) -> None:
    """Call ``write(staged_path)`` on a temporary name next to ``path``, then move every written file (``path`` with
    each of ``suffixes`` swapped in; the first is the main file, moved last) into place: a reader never finds a
    half-written export."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp:
        staged = Path(tmp) / path.name
        write(staged)
        for suffix in reversed(suffixes):
            source = staged.with_suffix(suffix) if suffix else staged
            os.replace(source, path.with_suffix(suffix) if suffix else path)
