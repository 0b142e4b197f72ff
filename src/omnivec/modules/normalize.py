"""Normalize: L2-normalise an embedding so dot product equals cosine similarity."""

from __future__ import annotations

from typing import Any

import torch

from omnivec.modules.base import Module


class Normalize(Module):
    """Scales ``features[module_input_name]`` to unit length."""

    config_keys = ("module_input_name", "module_output_name")
    st_type = "sentence_transformers.models.Normalize"

    def __init__(self, module_input_name: str = "sentence_embedding", module_output_name: str | None = None) -> None:
        super().__init__()
        self.module_input_name = module_input_name
        self.module_output_name = module_output_name or module_input_name

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        if self.module_input_name in features:
            features[self.module_output_name] = torch.nn.functional.normalize(features[self.module_input_name], p=2, dim=-1)
        return features

    def __repr__(self) -> str:
        return "Normalize()"
