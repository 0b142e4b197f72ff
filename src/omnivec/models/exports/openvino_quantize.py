"""``export_static_quantized_openvino_model``: post-training static int8 quantization of the OpenVINO graph with
NNCF (transformer preset), calibrated on the caller's own texts (or the built-in sample) tokenized by the model's
tokenizer, written as ``openvino/openvino_model_qint8_quantized.xml`` (+ ``.bin``) as sentence-transformers names
it, without optimum and without Hub datasets."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from omnivec.errors import ConfigError
from omnivec.models.exports.calibration import (
    builtin_calibration_texts,
    check_texts,
    media_batches,
    pick_samples,
    token_batches,
    tower_calibration,
)
from omnivec.models.exports.source import (
    OPENVINO_FOLDER,
    ExportSource,
    export_source,
    fp32_onnx,
    write_atomically,
)
from omnivec.modules.backends.towers import BackendTowers, Tower

logger = logging.getLogger(__name__)

PRESETS = ("mixed", "performance")
FP32_OPENVINO = "openvino_model.xml"


@dataclass(frozen=True)
class OpenVINOQuantizationConfig:
    """Static int8 quantization settings (the parts of optimum's ``OVQuantizationConfig`` that apply).

    Attributes:
        num_samples: calibration texts used (evenly spread over the ones given); optimum's default, 300.
        batch_size: texts per calibration batch (sorted by length, padded per batch, as encode runs them).
        preset: NNCF's ``"mixed"`` (symmetric weights, asymmetric activations: the accurate default for
            transformers) or ``"performance"`` (symmetric both).
        fast_bias_correction: NNCF's fast bias correction (False: the slower, sometimes more accurate algorithm).
        max_length: tokens kept per calibration text; default the model's ``max_seq_length``.
    """

    num_samples: int = 300
    batch_size: int = 8
    preset: str = "mixed"
    fast_bias_correction: bool = True
    max_length: int | None = None

    def __post_init__(self) -> None:
        for name in ("num_samples", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"OpenVINOQuantizationConfig.{name} must be a positive integer; got {value!r}.")
        if self.max_length is not None and (isinstance(self.max_length, bool) or not isinstance(self.max_length, int)
                                            or self.max_length < 1):
            raise ConfigError(f"OpenVINOQuantizationConfig.max_length must be a positive integer or None; "
                              f"got {self.max_length!r}.")
        if self.preset not in PRESETS:
            raise ConfigError(f"OpenVINOQuantizationConfig.preset must be one of {list(PRESETS)}; got {self.preset!r}.")
        if not isinstance(self.fast_bias_correction, bool):
            raise ConfigError("OpenVINOQuantizationConfig.fast_bias_correction must be True or False; "
                              f"got {self.fast_bias_correction!r}.")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> OpenVINOQuantizationConfig:
        """The settings of a dict; a key that is not a setting is an error naming it."""
        allowed = [field.name for field in fields(cls)]
        unknown = sorted(str(key) for key in values if key not in allowed)
        if unknown:
            raise ConfigError(f"quantization_config has unknown key(s) {unknown}; allowed: {allowed}.")
        return cls(**dict(values))


def export_static_quantized_openvino_model(  # noqa: C901 (sentence-transformers' signature: one check per argument)
    model: Any,
    quantization_config: OpenVINOQuantizationConfig | Mapping[str, Any] | None = None,
    model_name_or_path: str | os.PathLike | None = None,
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    dataset_split: str | None = None,
    column_name: str | None = None,
    push_to_hub: bool = False,
    create_pr: bool = False,
    file_suffix: str = "qint8_quantized",
    *,
    dataset: Sequence[Any] | None = None,
) -> Path:
    """Write a statically int8-quantized OpenVINO graph of an Embedder or CrossEncoder (any backend).

    Args:
        model: an omnivec Embedder or CrossEncoder. The fp32 graph quantized is the one it runs with
            ``backend="openvino"``, else the folder's ``openvino/openvino_model.xml``, else its ONNX graph
            (exported first when missing; from the weights in memory for a ``backend="torch"`` model).
        quantization_config: an ``OpenVINOQuantizationConfig``, a dict of its fields, or None (defaults).
        model_name_or_path: the folder to write into (``<folder>/openvino/``); default: the model's own folder.
        dataset_name, dataset_config_name, dataset_split, column_name: sentence-transformers' Hub dataset
            arguments; there are no Hub datasets here, so any of them raises ``ConfigError`` (use ``dataset``).
        push_to_hub, create_pr: not supported here (raise ``ConfigError``); upload the folder yourself.
        file_suffix: the file is ``openvino/openvino_model_<file_suffix>.xml`` (+ ``.bin``).
        dataset: calibration texts, typical of what the model will see (a few hundred), or (query, document)
            pairs for a CrossEncoder; None: omnivec's built-in sample of varied English sentences and paragraphs.
            For a dual encoder (CLIP, SigLIP, CLAP) the list may mix texts with images or audio (file paths, PIL
            images, ``{"array": ..., "sampling_rate": ...}``), tagged and decoded as ``encode`` does: each tower is
            quantized on its own modality's inputs (the text tower on the built-in sample when there are no
            texts). A media tower without inputs of its modality raises ``ConfigError`` before anything is written.

    Returns:
        The written ``.xml`` file. Load it with ``Embedder(folder, backend="openvino",
        model_kwargs={"file_name": path.name})``. A dual encoder gets one file per tower
        (``openvino/text_openvino_model_qint8_quantized.xml``, ``openvino/image_...``); the text tower's is
        returned, and ``model_kwargs={"file_name": "openvino_model_qint8_quantized.xml"}`` loads them all.
    """
    if any(value is not None for value in (dataset_name, dataset_config_name, dataset_split, column_name)):
        raise ConfigError("export_static_quantized_openvino_model: dataset_name / dataset_config_name / dataset_split "
                          "/ column_name name a Hugging Face Hub dataset, which omnivec does not download; pass your "
                          "calibration texts as dataset=[...] (or nothing, for the built-in sample).")
    if quantization_config is None:
        settings = OpenVINOQuantizationConfig()
    elif isinstance(quantization_config, OpenVINOQuantizationConfig):
        settings = quantization_config
    elif isinstance(quantization_config, Mapping):
        settings = OpenVINOQuantizationConfig.from_dict(quantization_config)
    else:
        raise ConfigError("quantization_config must be an OpenVINOQuantizationConfig, a dict of its fields or None; "
                          f"got {type(quantization_config).__name__}.")
    if not isinstance(file_suffix, str) or not file_suffix:
        raise ConfigError(f"file_suffix must be a non-empty string; got {file_suffix!r}.")
    source = export_source(model, model_name_or_path, push_to_hub, create_pr,
                           "export_static_quantized_openvino_model")
    towers = source.towers
    if towers is None:
        inputs: dict[str | None, Sequence[Any]] = {
            None: builtin_calibration_texts() if dataset is None else check_texts(dataset)}
    else:  # every tower's inputs are checked before any is quantized: a missing medium fails fast, writes nothing
        grouped = tower_calibration(dataset, [tower.modality for tower in towers], type(source.config).__name__)
        inputs = {tower.modality: grouped[tower.modality] for tower in towers}
    name = f"openvino_model_{file_suffix}.xml"
    import openvino as ov

    # Every tower's batches first: a file that does not decode fails before anything is written, and media decoding
    # after a tower's ONNX export was seen to stall (CLAP's audio features).
    batches = {modality: _calibration_batches(source, values, settings, modality) for modality, values in inputs.items()}
    for tower in towers or [None]:
        modality = None if tower is None else tower.modality
        path = source.target / OPENVINO_FOLDER / (name if tower is None else tower.file_name(name))
        with _fp32_openvino(ov, source, tower) as fp32:
            quantized = quantize_model(fp32, batches[modality], settings)
        write_atomically(path, lambda staged, quantized=quantized: ov.save_model(quantized, str(staged),
                                                                                 compress_to_fp16=False),
                         suffixes=("", ".bin"))
        logger.info("Wrote the int8 OpenVINO model %s (calibrated on %d %s inputs).", path,
                    min(len(inputs[modality]), settings.num_samples), modality or "text")
    return source.target / OPENVINO_FOLDER / (name if towers is None else towers[0].file_name(name))


def quantize_model(model: Any, batches: list[dict[str, np.ndarray]], settings: OpenVINOQuantizationConfig) -> Any:
    """The NNCF-quantized copy of an OpenVINO model, calibrated on token batches (fed as the graph declares)."""
    import nncf

    names = [port.get_any_name() for port in model.inputs]
    items = [graph_inputs(batch, names) for batch in batches]
    preset = nncf.QuantizationPreset.MIXED if settings.preset == "mixed" else nncf.QuantizationPreset.PERFORMANCE
    return nncf.quantize(model, nncf.Dataset(items), preset=preset, model_type=nncf.ModelType.TRANSFORMER,
                         subset_size=len(items), fast_bias_correction=settings.fast_bias_correction)


def graph_inputs(batch: Mapping[str, np.ndarray], names: Sequence[str]) -> dict[str, np.ndarray]:
    """The arrays a graph with inputs ``names`` takes from a tokenizer batch (segment ids default to zeros, position
    ids to 0, 1, ...: the torch model's defaults) or from a tower's processor features (pixels, audio features)."""
    feed = {}
    for name in names:
        if name in batch:
            feed[name] = batch[name]
        elif name in ("token_type_ids", "position_ids") and "input_ids" in batch:
            shape = batch["input_ids"].shape
            feed[name] = (np.zeros(shape, dtype=np.int64) if name == "token_type_ids"
                          else np.broadcast_to(np.arange(shape[1], dtype=np.int64), shape).copy())
        else:
            raise ConfigError(f"The OpenVINO graph takes an input {name!r} that the calibration batches do not give "
                              f"(they give {sorted(batch)}); it cannot be calibrated on these inputs.")
    return feed


def _calibration_batches(source: ExportSource, values: Sequence[Any], settings: OpenVINOQuantizationConfig,
                         modality: str | None = None) -> list[dict[str, np.ndarray]]:
    transformer = source.transformer
    samples = pick_samples(values, settings.num_samples)
    if modality not in (None, "text"):
        return media_batches(transformer, modality, samples, settings.batch_size)
    previous = transformer.max_seq_length
    if settings.max_length is not None:
        transformer.max_seq_length = settings.max_length
    try:
        return token_batches(transformer, samples, settings.batch_size)
    finally:
        transformer.max_seq_length = previous


@contextmanager
def _fp32_openvino(ov: Any, source: ExportSource, tower: Tower | None = None) -> Iterator[Any]:
    """The fp32 OpenVINO model to quantize (see ``export_static_quantized_openvino_model``); of one ``tower``
    (``openvino/<modality>_openvino_model.xml``) for a dual encoder."""
    transformer = source.transformer
    loaded_model = transformer.model
    if isinstance(loaded_model, BackendTowers) and tower is not None:
        loaded_model = loaded_model.towers.get(tower.modality)
    loaded = getattr(loaded_model, "path", None) if transformer.backend == "openvino" else None
    candidates = [Path(loaded)] if loaded is not None else []
    if transformer.backend != "torch":
        candidates.append(source.folder / OPENVINO_FOLDER / (FP32_OPENVINO if tower is None
                                                             else tower.file_name(FP32_OPENVINO)))
    for candidate in candidates:
        if candidate.is_file():
            model = ov.Core().read_model(str(candidate))
            if any(op.get_type_name() == "FakeQuantize" for op in model.get_ops()):
                raise ConfigError(f"{str(candidate)!r} is already quantized; load the model's fp32 OpenVINO graph "
                                  "(the default file) to quantize it.")
            yield model
            return
    with fp32_onnx(source, use_loaded=False, tower=tower) as onnx_file:
        yield ov.convert_model(str(onnx_file))
