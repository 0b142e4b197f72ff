"""CLIPModel: sentence-transformers' legacy CLIP module (``0_CLIPModel``, as in clip-ViT-B-32)."""

from __future__ import annotations

from typing import Any

from omnivec.modules.transformer import Transformer

_CLIP_CONFIG = {
    "text": {"method": "get_text_features", "method_output_name": "pooler_output"},
    "image": {"method": "get_image_features", "method_output_name": "pooler_output"},
}


class CLIPModel(Transformer):
    """A CLIP checkpoint in its own subfolder, text and image towers projected into one space.

    New models are saved as a ``Transformer`` with a modality config; this class keeps old folders loading
    (and saving) as they were.
    """

    save_in_root = False
    st_type = "sentence_transformers.models.CLIPModel"

    def default_modality_config(self) -> tuple[dict[str, dict[str, Any]], str | None]:
        return {k: dict(v) for k, v in _CLIP_CONFIG.items()}, "sentence_embedding"
