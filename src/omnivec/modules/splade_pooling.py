"""SpladePooling: masked-LM logits per token -> one sparse vocabulary-sized vector (SPLADE)."""

from __future__ import annotations

from typing import Any

import torch

from omnivec.errors import ConfigError
from omnivec.modules.base import Module
from omnivec.modules.renamed_args import renamed_kwargs

SPLADE_POOLING_STRATEGIES = ("max", "sum")
SPLADE_ACTIVATIONS = ("relu", "log1p_relu")


class SpladePooling(Module):
    """Pools ``token_embeddings`` (MLM logits, (B, T, V)) into ``sentence_embedding`` (B, V):
    ``log1p(relu(logits))`` per token (``log1p_relu``: one more ``log1p``, OpenSearch's models), padding masked out,
    then the max (SPLADE v2 and later) or the sum (the first SPLADE) over the tokens.

    Args:
        pooling_strategy: ``max`` or ``sum``.
        activation_function: ``relu`` or ``log1p_relu``.
        embedding_dimension: the vocabulary size (None: learnt from the first batch, or set by the model class from
            its masked-LM's config).
        chunk_size: tokens pooled at a time (None: all at once); smaller chunks bound the (B, chunk, V) activations.
    """

    config_keys = ("pooling_strategy", "activation_function", "embedding_dimension")
    config_key_renames = {"word_embedding_dimension": "embedding_dimension"}
    ignored_config_keys = frozenset({"chunk_size"})  # a memory setting, never saved by sentence-transformers
    st_type = "sentence_transformers.sparse_encoder.models.SpladePooling"

    @renamed_kwargs(word_embedding_dimension="embedding_dimension")
    def __init__(
        self,
        pooling_strategy: str = "max",
        activation_function: str = "relu",
        embedding_dimension: int | None = None,
        chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        if pooling_strategy not in SPLADE_POOLING_STRATEGIES:
            raise ConfigError(f"pooling_strategy {pooling_strategy!r} is not one of {SPLADE_POOLING_STRATEGIES}.")
        if activation_function not in SPLADE_ACTIVATIONS:
            raise ConfigError(f"activation_function {activation_function!r} is not one of {SPLADE_ACTIVATIONS}.")
        if embedding_dimension is not None and (isinstance(embedding_dimension, bool)
                                                or not isinstance(embedding_dimension, int) or embedding_dimension < 1):
            raise ConfigError(f"embedding_dimension must be None or a positive integer, got {embedding_dimension!r}.")
        if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)):
            raise ConfigError(f"chunk_size must be None or an integer (<= 0: no chunking), got {chunk_size!r}.")
        self.pooling_strategy = pooling_strategy
        self.activation_function = activation_function
        self.embedding_dimension = embedding_dimension
        self.chunk_size = chunk_size

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        logits: torch.Tensor = features["token_embeddings"]  # (B, T, V)
        mask = features["attention_mask"].unsqueeze(-1).to(logits.dtype)  # (B, T, 1)
        seq_len = logits.shape[1]
        step = max(seq_len if not self.chunk_size or self.chunk_size <= 0 else self.chunk_size, 1)
        pooled: torch.Tensor | None = None  # (B, V)
        in_place = not torch.is_grad_enabled()  # inference: reuse the masked product's memory
        for start in range(0, max(seq_len, 1), step):  # one pass at least (an empty batch's width is 1)
            weights = logits[:, start:start + step] * mask[:, start:start + step]  # (B, chunk, V), a new tensor
            weights = weights.relu_().log1p_() if in_place else weights.relu().log1p()
            if self.activation_function == "log1p_relu":
                weights = weights.log1p_() if in_place else weights.log1p()
            part = weights.amax(dim=1) if self.pooling_strategy == "max" else weights.sum(dim=1)  # (B, V)
            if pooled is None:
                pooled = part
            else:
                pooled = torch.maximum(pooled, part) if self.pooling_strategy == "max" else pooled + part
        assert pooled is not None
        if self.embedding_dimension is None:
            self.embedding_dimension = int(pooled.shape[1])
        features["sentence_embedding"] = pooled
        return features

    def get_embedding_dimension(self) -> int | None:
        return self.embedding_dimension

    def get_config_dict(self) -> dict[str, Any]:
        # The older key name: sentence-transformers 5 reads only it, 6 renames it silently.
        return {"pooling_strategy": self.pooling_strategy, "activation_function": self.activation_function,
                "word_embedding_dimension": self.embedding_dimension}

    def __repr__(self) -> str:
        return (f"SpladePooling(strategy={self.pooling_strategy!r}, activation={self.activation_function!r}, "
                f"dim={self.embedding_dimension}, chunk_size={self.chunk_size})")
