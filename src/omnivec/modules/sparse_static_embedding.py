"""SparseStaticEmbedding: text -> a vocabulary-sized vector of fixed per-token weights (inference-free SPLADE's
query side: each token present in the query gets its IDF-like weight, no network runs)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from omnivec.errors import ConfigError, ModelLoadError
from omnivec.loading.options import LoadOptions
from omnivec.modules.base import Module


class SparseStaticEmbedding(Module):
    """An input module: tokenizes (no special tokens) and scores each token present by its static weight.

    Args:
        tokenizer: a Hugging Face tokenizer (usually the document side's).
        weight: one weight per vocabulary entry, shape (V,) (None: all ones).
        frozen: keep the weights fixed in training.
    """

    config_keys = ("frozen",)
    ignored_config_keys = frozenset({"path"})  # read by load (an idf.json next to the config)
    st_type = "sentence_transformers.sparse_encoder.models.SparseStaticEmbedding"
    modalities = ["text"]

    def __init__(self, tokenizer: Any, weight: torch.Tensor | None = None, frozen: bool = False) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        size = len(tokenizer.get_vocab())
        if weight is None:
            weight = torch.ones(size)
        if weight.ndim != 1:
            raise ConfigError(f"weight must be a 1-D tensor (one weight per vocabulary entry), got shape "
                              f"{tuple(weight.shape)}.")
        self.weight = torch.nn.Parameter(weight.detach().clone(), requires_grad=not frozen)
        self.frozen = frozen
        self.num_dimensions = int(self.weight.shape[0])
        self.max_seq_length = int(tokenizer.model_max_length)  # the tokenizer's own limit, as sentence-transformers

    # -- prepare (CPU): the same calls a Transformer answers, so the runtime batches both alike ----------------
    def tokenize_unpadded(self, texts: Sequence[str]) -> dict[str, list[list[int]]]:
        """Token ids without special tokens ([CLS]/[SEP] carry no query term), truncated to the tokenizer's limit."""
        encoded = self.tokenizer(list(texts), add_special_tokens=False, truncation=True, padding=False)
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    def collate(self, encoded: dict[str, list[list[int]]], indices: Sequence[int]) -> dict[str, torch.Tensor]:
        rows = [encoded["input_ids"][i] for i in indices]
        width = max(max((len(r) for r in rows), default=0), 1)  # an all-empty batch still gets a column
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id or 0, dtype=torch.long)  # (B, T)
        mask = torch.zeros((len(rows), width), dtype=torch.long)  # (B, T)
        for row, values in enumerate(rows):
            if values:
                ids[row, : len(values)] = torch.as_tensor(values, dtype=torch.long)
                mask[row, : len(values)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def prompt_length(self, prompt: str) -> int:
        return len(self.tokenize_unpadded([prompt])["input_ids"][0])

    # -- forward ------------------------------------------------------------------------------------------------
    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        ids: torch.Tensor = features["input_ids"]  # (B, T)
        present = torch.zeros(ids.shape[0], self.num_dimensions, dtype=torch.long, device=ids.device)  # (B, V)
        present.scatter_(1, ids, features["attention_mask"].to(torch.long))  # 1 where a real token occurs
        embeddings = present * self.weight  # (B, V)
        if features.get("sentence_embedding") is not None:  # a module before this one scored the tokens too
            embeddings = embeddings * features["sentence_embedding"]
        features["sentence_embedding"] = embeddings
        return features

    def get_embedding_dimension(self) -> int:
        return self.num_dimensions

    # -- save / load --------------------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        self.tokenizer.save_pretrained(str(folder))
        self.save_weights(folder)
        self.save_config(folder)

    @classmethod
    def load(cls, folder: Path, options: LoadOptions) -> SparseStaticEmbedding:
        from transformers import AutoTokenizer

        config = cls.read_config(folder)
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder), **options.from_pretrained_kwargs("tokenizer_kwargs"))
        except Exception as exc:
            raise ModelLoadError(f"SparseStaticEmbedding in {str(folder)!r}: no loadable tokenizer: "
                                 f"{type(exc).__name__}: {exc}") from None
        settings = cls.split_config(config, folder)
        path = config.get("path")
        if isinstance(path, str) and path.endswith(".json"):
            return cls.from_json(folder / path, tokenizer, **settings)
        module = cls(tokenizer, **settings)
        module.load_weights(folder)
        return module

    @classmethod
    def from_json(cls, json_path: str | Path, tokenizer: Any, frozen: bool = False) -> SparseStaticEmbedding:
        """Weights from a JSON file mapping tokens to weights (an ``idf.json``); tokens not in it weigh 0."""
        path = Path(json_path)
        if not path.is_file():
            raise ModelLoadError(f"IDF weights file {str(path)!r} does not exist.")
        try:
            idf = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelLoadError(f"IDF weights file {str(path)!r} is not valid JSON: {exc}") from None
        if not isinstance(idf, dict) or not all(isinstance(v, int | float) for v in idf.values()):
            raise ModelLoadError(f"IDF weights file {str(path)!r} must map tokens to numbers.")
        weight = torch.zeros(len(tokenizer.get_vocab()), dtype=torch.float32)
        ids = tokenizer.convert_tokens_to_ids(list(idf))
        weight[torch.as_tensor(ids, dtype=torch.long)] = torch.tensor(list(idf.values()), dtype=torch.float32)
        return cls(tokenizer, weight=weight, frozen=frozen)

    def __repr__(self) -> str:
        return f"SparseStaticEmbedding(dim={self.num_dimensions}, frozen={self.frozen}, tokenizer={type(self.tokenizer).__name__})"
