"""omnivec: multimodal embeddings, reranking and search.

Heavy dependencies (torch, transformers) load on first use of a public name, so that
``import omnivec`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omnivec._version import __version__

if TYPE_CHECKING:
    from omnivec.inputs.video import VideoSampling
    from omnivec.models.cross_encoder import CrossEncoder
    from omnivec.models.embedder import Embedder
    from omnivec.models.exports import (
        OnnxOptimizationConfig,
        OnnxQuantizationConfig,
        OpenVINOQuantizationConfig,
        export_dynamic_quantized_onnx_model,
        export_optimized_onnx_model,
        export_static_quantized_openvino_model,
        quantize_for,
    )
    from omnivec.models.templates import RerankTemplate
    from omnivec.modules import CLIPModel, Dense, LogitScore, Normalize, Pooling, Router, Transformer

# Public name -> module that defines it, imported on first attribute access (PEP 562).
_LAZY = {
    "Embedder": "omnivec.models.embedder",
    "SentenceTransformer": "omnivec.models.embedder",
    "CrossEncoder": "omnivec.models.cross_encoder",
    "RerankTemplate": "omnivec.models.templates",
    "LogitScore": "omnivec.modules.logit_score",
    "Transformer": "omnivec.modules.transformer",
    "Pooling": "omnivec.modules.pooling",
    "Dense": "omnivec.modules.dense",
    "Normalize": "omnivec.modules.normalize",
    "Router": "omnivec.modules.router",
    "CLIPModel": "omnivec.modules.clip_model",
    "VideoSampling": "omnivec.inputs.video",
    "similarity": "omnivec.similarity",
    "quantize_embeddings": "omnivec.runtime.precision",
    "export_optimized_onnx_model": "omnivec.models.exports",
    "export_dynamic_quantized_onnx_model": "omnivec.models.exports",
    "export_static_quantized_openvino_model": "omnivec.models.exports",
    "OnnxOptimizationConfig": "omnivec.models.exports",
    "OnnxQuantizationConfig": "omnivec.models.exports",
    "OpenVINOQuantizationConfig": "omnivec.models.exports",
    "quantize_for": "omnivec.models.exports",
}

__all__ = ["__version__", *_LAZY]  # pyright: ignore[reportUnsupportedDunderAll] (names resolved lazily below)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'omnivec' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(_LAZY[name])
    value = module if name == "similarity" else getattr(module, "Embedder" if name == "SentenceTransformer" else name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
