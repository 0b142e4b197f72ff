"""``omnivec.quantization``: ``quantize_embeddings`` where sentence-transformers code imports it from
(``from sentence_transformers.quantization import quantize_embeddings``)."""

from omnivec.runtime.precision import quantize_embeddings

__all__ = ["quantize_embeddings"]
