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
    from omnivec.models.model_card_data import (
        CrossEncoderModelCardData,
        SentenceTransformerModelCardData,
        SparseEncoderModelCardData,
    )
    from omnivec.models.sparse_encoder import SparseEncoder
    from omnivec.models.templates import RerankTemplate
    from omnivec.modules import CLIPModel, Dense, LogitScore, Normalize, Pooling, Router, Transformer
    from omnivec.similarity import SimilarityFunction
    # The names from train/ and util/ are left out here: import-linter counts these imports, and library
    # modules that import omnivec would then reach train/.

# Public name -> module that defines it, imported on first attribute access (PEP 562).
_LAZY = {
    "Embedder": "omnivec.models.embedder",
    "SentenceTransformer": "omnivec.models.embedder",
    "CrossEncoder": "omnivec.models.cross_encoder",
    "SparseEncoder": "omnivec.models.sparse_encoder",
    "SparseEncoderModelCardData": "omnivec.models.model_card_data",
    "RerankTemplate": "omnivec.models.templates",
    "LogitScore": "omnivec.modules.logit_score",
    "Transformer": "omnivec.modules.transformer",
    "Pooling": "omnivec.modules.pooling",
    "Dense": "omnivec.modules.dense",
    "Normalize": "omnivec.modules.normalize",
    "Router": "omnivec.modules.router",
    "CLIPModel": "omnivec.modules.clip_model",
    "VideoSampling": "omnivec.inputs.video",
    "quantize_embeddings": "omnivec.runtime.precision",
    "export_optimized_onnx_model": "omnivec.models.exports",
    "export_dynamic_quantized_onnx_model": "omnivec.models.exports",
    "export_static_quantized_openvino_model": "omnivec.models.exports",
    "OnnxOptimizationConfig": "omnivec.models.exports",
    "OnnxQuantizationConfig": "omnivec.models.exports",
    "OpenVINOQuantizationConfig": "omnivec.models.exports",
    "quantize_for": "omnivec.models.exports",
    # sentence-transformers' top-level names (issue 15)
    "SimilarityFunction": "omnivec.similarity",
    "InputExample": "omnivec.train.input_example",
    "LoggingHandler": "omnivec.util.log_handler",
    "mine_hard_negatives": "omnivec.train.mining",
    "SentenceTransformerTrainer": "omnivec.train.trainer",
    "SentenceTransformerTrainingArguments": "omnivec.train.args",
    "CrossEncoderTrainer": "omnivec.train.trainer",
    "CrossEncoderTrainingArguments": "omnivec.train.args",
    "SparseEncoderTrainer": "omnivec.train.sparse_trainer",
    "SparseEncoderTrainingArguments": "omnivec.train.args",
    "SentenceTransformerModelCardData": "omnivec.models.model_card_data",
    "CrossEncoderModelCardData": "omnivec.models.model_card_data",
}
# Public name -> the defining module's name for it, where they differ.
_RENAMED = {
    "SentenceTransformer": "Embedder",
    "SentenceTransformerTrainer": "EmbedderTrainer",
    "SentenceTransformerTrainingArguments": "TrainingArguments",
    "CrossEncoderTrainingArguments": "TrainingArguments",
}
# Subpackages reachable as attributes (``omnivec.util.cos_sim`` after a bare ``import omnivec``).
_SUBMODULES = ("similarity", "util", "models", "modules", "losses", "evaluation", "cross_encoder", "quantization",
               "sparse_encoder", "ray")

# Names resolved lazily below.
__all__ = ["__version__", *_LAZY, "similarity"]  # pyright: ignore[reportUnsupportedDunderAll]


def _train_method(name: str) -> Any:
    """``model.<name>()`` implemented in ``omnivec.train`` (the model classes cannot import it): importing that package
    registers the real implementation, which is then called."""

    def method(*args: Any, **kwargs: Any) -> Any:
        try:
            import omnivec.train  # noqa: F401  (registers the implementation over this one)
        except ImportError as exc:
            from omnivec.errors import ConfigError

            raise ConfigError(f"model.{name.removeprefix('cross_encoder_')}() needs omnivec's training extra: "
                              f"pip install 'omnivec[train]' ({exc}).") from None

        return _extensions.call(name, *args, **kwargs)

    return method


# The root package composes the layers: model.fit() works without importing omnivec.train first.
from omnivec.models import extensions as _extensions  # noqa: E402  (cheap: no torch)

for _name in ("fit", "cross_encoder_fit"):
    _extensions.register(_name, _train_method(_name))


def __getattr__(name: str) -> Any:
    import importlib

    if name in _SUBMODULES:
        value = importlib.import_module(f"omnivec.{name}")
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), _RENAMED.get(name, name))
    else:
        raise AttributeError(f"module 'omnivec' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
