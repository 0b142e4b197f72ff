"""Export and quantize a model's graph for the ONNX Runtime and OpenVINO backends, without optimum, under
sentence-transformers' names and file names. Importing this package loads neither onnxruntime nor OpenVINO."""

from omnivec.models.exports.for_this_machine import cpu_quantization_target, int8_file_name, quantize_for
from omnivec.models.exports.onnx_optimize import OnnxOptimizationConfig, export_optimized_onnx_model
from omnivec.models.exports.onnx_quantize import OnnxQuantizationConfig, export_dynamic_quantized_onnx_model
from omnivec.models.exports.openvino_quantize import OpenVINOQuantizationConfig, export_static_quantized_openvino_model

__all__ = [
    "OnnxOptimizationConfig",
    "OnnxQuantizationConfig",
    "OpenVINOQuantizationConfig",
    "cpu_quantization_target",
    "export_dynamic_quantized_onnx_model",
    "export_optimized_onnx_model",
    "export_static_quantized_openvino_model",
    "int8_file_name",
    "quantize_for",
]
