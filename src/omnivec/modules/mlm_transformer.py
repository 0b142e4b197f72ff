"""MLMTransformer: a Transformer that outputs masked-LM logits per token (sentence-transformers' SPLADE input)."""

from __future__ import annotations

from typing import Any

from omnivec.modules.transformer import Transformer


class MLMTransformer(Transformer):
    """``Transformer(..., transformer_task="fill-mask")``: a ``*ForMaskedLM`` model whose ``token_embeddings`` are the
    vocabulary logits of each token, for ``SpladePooling``. Kept under sentence-transformers 5's name, which its
    folders (``modules.json`` type ``...sparse_encoder.models.MLMTransformer``) and code still use; sentence-transformers
    6 saves new SPLADE models as a plain Transformer with that task, which omnivec loads as such.
    """

    st_type = "sentence_transformers.sparse_encoder.models.MLMTransformer"

    def __init__(self, model_name_or_path: Any, *, transformer_task: str = "fill-mask", **kwargs: Any) -> None:
        super().__init__(model_name_or_path, transformer_task=transformer_task, **kwargs)
