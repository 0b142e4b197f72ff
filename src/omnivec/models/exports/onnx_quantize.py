"""``export_dynamic_quantized_onnx_model``: int8 weights, activations quantized at run time (no calibration), with
ONNX Runtime's ``quantize_dynamic`` on the graph after the transformer fusions; the per-ISA settings optimum's
``AutoQuantizationConfig`` uses, and sentence-transformers' file names (``onnx/model_qint8_avx512_vnni.onnx``)."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from omnivec.errors import ConfigError
from omnivec.models.exports.onnx_optimize import OnnxOptimizationConfig, optimize_graph, ort_model_type
from omnivec.models.exports.source import ONNX_FOLDER, export_source, fp32_onnx, write_atomically

logger = logging.getLogger(__name__)

QuantizationTarget = Literal["arm64", "avx2", "avx512", "avx512_vnni"]
WEIGHT_TYPES = ("qint8", "quint8")
# The fusions only (no hardware-specific graph rewrites, which would hide MatMuls from the quantizer).
FUSIONS_ONLY = OnnxOptimizationConfig(optimization_level=0)


@dataclass(frozen=True)
class OnnxQuantizationConfig:
    """Dynamic int8 quantization settings (optimum's ``QuantizationConfig`` for ``is_static=False``).

    Attributes:
        weights_dtype: ``"qint8"`` (signed) or ``"quint8"`` (unsigned) weights; activations are always uint8.
        per_channel: one scale per output channel of each weight (far closer to fp32 than one per tensor).
        reduce_range: 7-bit weights, for CPUs whose int8 instructions can saturate (AVX2/AVX512 without VNNI).
        weights_symmetric: symmetric weight ranges (zero point 0).
        activations_symmetric: symmetric activation ranges.
        operators_to_quantize: operator types to quantize; empty: every type ONNX Runtime quantizes dynamically.
        fuse_first: apply the transformer fusions (LayerNorm, Gelu, Attention) before quantizing.
    """

    weights_dtype: str = "qint8"
    per_channel: bool = True
    reduce_range: bool = False
    weights_symmetric: bool = True
    activations_symmetric: bool = False
    operators_to_quantize: tuple[str, ...] = ()
    fuse_first: bool = True

    def __post_init__(self) -> None:
        if self.weights_dtype not in WEIGHT_TYPES:
            raise ConfigError(f"OnnxQuantizationConfig.weights_dtype must be one of {list(WEIGHT_TYPES)}; "
                              f"got {self.weights_dtype!r}.")
        for field in fields(self):
            value = getattr(self, field.name)
            if field.type == "bool" and not isinstance(value, bool):
                raise ConfigError(f"OnnxQuantizationConfig.{field.name} must be True or False; got {value!r}.")
        ops = self.operators_to_quantize
        if not isinstance(ops, tuple) or not all(isinstance(op, str) and op for op in ops):
            raise ConfigError("OnnxQuantizationConfig.operators_to_quantize must be a tuple of ONNX operator type "
                              f"names (e.g. ('MatMul', 'Attention')); got {ops!r}.")

    @classmethod
    def for_target(cls, name: str) -> OnnxQuantizationConfig:
        """optimum's ``AutoQuantizationConfig.<name>(is_static=False)``: per-channel, symmetric weights, full range;
        signed weights except on AVX2 (unsigned, as optimum has it)."""
        if name not in QUANTIZATION_TARGETS:
            raise ConfigError(f"quantization_config {name!r} is not a quantization target; choose one of "
                              f"{', '.join(QUANTIZATION_TARGETS)} or pass an OnnxQuantizationConfig.")
        return QUANTIZATION_TARGETS[name]


QUANTIZATION_TARGETS: dict[str, OnnxQuantizationConfig] = {
    "arm64": OnnxQuantizationConfig(),
    "avx2": OnnxQuantizationConfig(weights_dtype="quint8"),
    "avx512": OnnxQuantizationConfig(),
    "avx512_vnni": OnnxQuantizationConfig(),
}


def export_dynamic_quantized_onnx_model(
    model: Any,
    quantization_config: OnnxQuantizationConfig | QuantizationTarget,
    model_name_or_path: str | os.PathLike | None = None,
    push_to_hub: bool = False,
    create_pr: bool = False,
    file_suffix: str | None = None,
) -> Path:
    """Write a dynamically int8-quantized ONNX graph of an Embedder or CrossEncoder (any backend).

    Args:
        model: an omnivec Embedder or CrossEncoder; its fp32 graph is exported first when its folder has none.
        quantization_config: the CPU to target, ``"arm64"``, ``"avx2"``, ``"avx512"`` or ``"avx512_vnni"``
            (``quantize_for`` picks this machine's), or an ``OnnxQuantizationConfig``.
        model_name_or_path: the folder to write into (``<folder>/onnx/``); default: the model's own folder.
        push_to_hub, create_pr: not supported here (raise ``ConfigError``); upload the folder yourself.
        file_suffix: default ``<weights_dtype>_<target>`` (``model_qint8_avx512_vnni.onnx``,
            ``model_quint8_avx2.onnx``), or ``<weights_dtype>_quantized`` for a config object.

    Returns:
        The written file. Load it with ``Embedder(folder, backend="onnx", model_kwargs={"file_name": path.name})``.
        A dual encoder (CLIP, SigLIP: text and image; CLAP: text and audio) gets every tower quantized, each from its
        fp32 tower graph (``onnx/<modality>_model.onnx``, exported first when missing) with the same settings:
        ``onnx/text_model_qint8_avx512_vnni.onnx``, ``onnx/image_model_qint8_avx512_vnni.onnx``. The text tower's
        file is returned (one path, as sentence-transformers returns); the others lie beside it, and
        ``model_kwargs={"file_name": "model_qint8_avx512_vnni.onnx"}`` loads them all. The fusions before
        quantizing are ONNX Runtime's ``clip`` type for CLIP's and SigLIP's text towers and ``vit`` for their image
        towers; CLAP's towers have no matching type and are quantized after the general optimizations only.
    """
    source = export_source(model, model_name_or_path, push_to_hub, create_pr, "export_dynamic_quantized_onnx_model")
    if isinstance(quantization_config, str):
        settings = OnnxQuantizationConfig.for_target(quantization_config)
        file_suffix = file_suffix or f"{settings.weights_dtype}_{quantization_config}"
    elif isinstance(quantization_config, OnnxQuantizationConfig):
        settings = quantization_config
    else:
        raise ConfigError(f"quantization_config must be one of {', '.join(QUANTIZATION_TARGETS)} or an "
                          f"OnnxQuantizationConfig; got {type(quantization_config).__name__}.")
    name = f"model_{file_suffix or settings.weights_dtype + '_quantized'}.onnx"
    towers = source.towers
    for tower in towers or [None]:
        path = source.target / ONNX_FOLDER / (name if tower is None else tower.file_name(name))
        with fp32_onnx(source, tower=tower) as fp32, tempfile.TemporaryDirectory(prefix="omnivec-quantize-") as tmp:
            _refuse_quantized(fp32)
            graph, modality = fp32, None if tower is None else tower.modality
            # A tower without fusions in ONNX Runtime (CLAP's) is quantized as exported: level 0 would do nothing.
            if settings.fuse_first and (tower is None or ort_model_type(source.config, modality) is not None):
                graph = Path(tmp) / "fused.onnx"
                optimize_graph(fp32, graph, source.config, FUSIONS_ONLY, modality)
            write_atomically(path, lambda staged, graph=graph: quantize_graph(graph, staged, settings))
        logger.info("Wrote the int8 ONNX model %s.", path)
    return source.target / ONNX_FOLDER / (name if towers is None else towers[0].file_name(name))


def quantize_graph(source: Path, target: Path, settings: OnnxQuantizationConfig) -> None:
    """Quantize the ONNX file ``source`` into ``target`` (weights int8, activations uint8 at run time)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weight_type = QuantType.QInt8 if settings.weights_dtype == "qint8" else QuantType.QUInt8
    with _without_preprocess_hint():
        quantize_dynamic(str(source), str(target), op_types_to_quantize=list(settings.operators_to_quantize) or None,
                         per_channel=settings.per_channel, reduce_range=settings.reduce_range, weight_type=weight_type,
                         extra_options={"WeightSymmetric": settings.weights_symmetric,
                                        "ActivationSymmetric": settings.activations_symmetric})


def _refuse_quantized(path: Path) -> None:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    if any(node.op_type in ("MatMulInteger", "DynamicQuantizeLinear", "QLinearMatMul") for node in graph.node):
        raise ConfigError(f"{str(path)!r} is already quantized; load the model's fp32 graph (the default "
                          "onnx/model.onnx) to quantize it.")


class _DropPreprocessHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextmanager
def _without_preprocess_hint() -> Iterator[None]:
    """quantize_dynamic logs, on the root logger, a hint to run its shape pre-processing (meant for static
    quantization of vision models); it says nothing about this export."""
    hint_filter = _DropPreprocessHint()
    root = logging.getLogger()
    root.addFilter(hint_filter)
    try:
        yield
    finally:
        root.removeFilter(hint_filter)
