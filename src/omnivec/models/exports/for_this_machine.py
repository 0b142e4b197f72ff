"""The best int8 export for the CPU this runs on: which ONNX quantization target it is (from ``/proc/cpuinfo`` or
the machine type), the file name each backend's int8 export has, and ``quantize_for`` to make it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from omnivec.errors import ConfigError
from omnivec.runtime.cpu import cpu_info, flags_of, int8_isa

if TYPE_CHECKING:
    from omnivec.models.exports.onnx_quantize import QuantizationTarget

BACKENDS = ("onnx", "openvino")
OPENVINO_INT8_FILE = "openvino_model_qint8_quantized.xml"


def cpu_quantization_target(cpuinfo: str | None = None) -> QuantizationTarget:
    """``"arm64"`` on ARM (aarch64/arm64), ``"avx512_vnni"`` when the CPU flags have avx512_vnni, ``"avx512"`` when
    they have avx512f, else ``"avx2"``. ``cpuinfo``: the text of ``/proc/cpuinfo`` (read when None; where it is
    missing, e.g. macOS or Windows on x86, the answer is ``"avx2"``)."""
    flags = cpu_info().flags if cpuinfo is None else flags_of(cpuinfo)
    return cast("QuantizationTarget", int8_isa(flags))


def int8_file_name(backend: str) -> str:
    """The file name of this machine's int8 export for ``backend`` (``"onnx"``: e.g. ``model_qint8_avx512_vnni.onnx``;
    ``"openvino"``: ``openvino_model_qint8_quantized.xml``), as ``model_kwargs={"file_name": ...}`` takes it."""
    if backend == "onnx":
        from omnivec.models.exports.onnx_quantize import OnnxQuantizationConfig

        target = cpu_quantization_target()
        return f"model_{OnnxQuantizationConfig.for_target(target).weights_dtype}_{target}.onnx"
    if backend == "openvino":
        return OPENVINO_INT8_FILE
    raise ConfigError(f"backend {backend!r} has no int8 export; choose one of {list(BACKENDS)}.")


def quantize_for(model: Any, backend: str, calibration_texts: Sequence[Any] | None = None,
                 model_name_or_path: str | None = None) -> Path:
    """Make the best int8 export of ``model`` (an Embedder or CrossEncoder, any backend) for this machine and
    return the written file; load it with the same ``backend`` and ``model_kwargs={"file_name":
    int8_file_name(backend)}`` (``backend="onnx-int8"`` / ``"openvino-int8"`` does that). For a text model
    ``path.name == int8_file_name(backend)``; a dual encoder (CLIP, SigLIP, CLAP) gets one file per tower and the
    text tower's is returned (``text_<int8_file_name(backend)>``).

    Args:
        model: the model to export (its fp32 graph is exported first when missing).
        backend: ``"onnx"``: dynamic int8 (``export_dynamic_quantized_onnx_model``) for this CPU's target
            (``cpu_quantization_target``: arm64, avx512_vnni, avx512 or avx2); ``"openvino"``: static int8 with NNCF
            (``export_static_quantized_openvino_model``), calibrated on ``calibration_texts``.
        calibration_texts: typical inputs (texts, or (query, document) pairs for a CrossEncoder) for OpenVINO's
            calibration (None: the built-in sample); ignored for ONNX, whose dynamic quantization needs none. A dual
            encoder's list mixes texts with images or audio (file paths, PIL images, audio dicts): each tower
            calibrates on its own modality, and a media tower needs some (``ConfigError`` otherwise).
        model_name_or_path: the folder to write into; default: the model's own folder.

    Example::

        path = quantize_for(model, "openvino", my_texts)
        fast = Embedder(folder, backend="openvino", model_kwargs={"file_name": path.name})
    """
    if backend == "onnx":
        from omnivec.models.exports.onnx_quantize import export_dynamic_quantized_onnx_model

        return export_dynamic_quantized_onnx_model(model, cpu_quantization_target(), model_name_or_path)
    if backend == "openvino":
        from omnivec.models.exports.openvino_quantize import export_static_quantized_openvino_model

        return export_static_quantized_openvino_model(model, None, model_name_or_path,
                                                      dataset=calibration_texts)
    raise ConfigError(f"backend {backend!r} has no int8 export; choose one of {list(BACKENDS)}.")
