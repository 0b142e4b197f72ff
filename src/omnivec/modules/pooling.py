"""Pooling: token embeddings -> one sentence embedding (cls, mean, max, weighted mean, last token ...)."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from omnivec.errors import ConfigError
from omnivec.modules.base import Module
from omnivec.modules.renamed_args import renamed_kwargs

POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")

# sentence-transformers' legacy boolean keys, in the order their outputs are concatenated.
_LEGACY_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


def _legacy_modes(init: Callable[..., None]) -> Callable[..., None]:
    """``Pooling(pooling_mode_mean_tokens=True, ...)``, sentence-transformers' older boolean arguments, read as
    ``pooling_mode`` (with its FutureWarning); an explicit ``pooling_mode`` wins over them, as there."""

    @functools.wraps(init)
    def wrapper(self: Pooling, *args: Any, **kwargs: Any) -> None:
        old = [key for key in kwargs if key in _LEGACY_KEYS]
        if old:
            warnings.warn(f"The {', '.join(f'`{key}`' for key in old)} argument(s) are deprecated. Please use "
                          "`pooling_mode` instead.", FutureWarning, stacklevel=3)
            chosen = [mode for key, mode in _LEGACY_KEYS.items() if kwargs.pop(key, False)]
            if kwargs.get("pooling_mode") is None and len(args) < 2:
                kwargs["pooling_mode"] = chosen or ["mean"]
        init(self, *args, **kwargs)

    return wrapper


class Pooling(Module):
    """Pools ``token_embeddings`` into ``sentence_embedding``.

    Args:
        embedding_dimension: size of each token embedding.
        pooling_mode: one mode or a sequence of modes whose outputs are concatenated.
        include_prompt: when False, the prompt's tokens are left out of the pool (Instructor-style models).
    """

    config_keys = ("embedding_dimension", "pooling_mode", "include_prompt")
    config_key_renames = {"word_embedding_dimension": "embedding_dimension"}
    st_type = "sentence_transformers.models.Pooling"

    @renamed_kwargs(word_embedding_dimension="embedding_dimension")
    @_legacy_modes
    def __init__(
        self,
        embedding_dimension: int,
        pooling_mode: str | Sequence[str] | None = "mean",
        include_prompt: bool = True,
    ) -> None:
        super().__init__()
        pooling_mode = "mean" if pooling_mode is None else pooling_mode  # sentence-transformers 2's default
        modes = (pooling_mode,) if isinstance(pooling_mode, str) else tuple(pooling_mode)
        for mode in modes:
            if mode not in POOLING_MODES:
                raise ConfigError(f"Pooling mode {mode!r} is not one of {POOLING_MODES}.")
        if not modes:
            raise ConfigError(f"Pooling needs at least one mode from {POOLING_MODES}.")
        self.embedding_dimension = embedding_dimension
        self.modes = modes
        self.include_prompt = include_prompt

    @property
    def pooling_mode(self) -> str | tuple[str, ...]:
        return self.modes[0] if len(self.modes) == 1 else self.modes

    def get_embedding_dimension(self) -> int:
        return self.embedding_dimension * len(self.modes)

    def get_sentence_embedding_dimension(self) -> int:
        """The older name of ``get_embedding_dimension`` (with sentence-transformers' FutureWarning)."""
        warnings.warn("The `get_sentence_embedding_dimension` method has been renamed to `get_embedding_dimension`.",
                      FutureWarning, stacklevel=2)
        return self.get_embedding_dimension()

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        tokens: torch.Tensor = features["token_embeddings"]
        mask = features.get("attention_mask")
        if mask is None or mask.shape[-1] != tokens.shape[1]:
            mask = torch.ones(tokens.shape[:-1], dtype=torch.long, device=tokens.device)
        original_mask = mask
        if not self.include_prompt and features.get("prompt_length"):
            mask = _drop_prompt(mask, int(features["prompt_length"]))
        features["sentence_embedding"] = torch.cat([self._pool(mode, tokens, mask, original_mask) for mode in self.modes], dim=-1)
        return features

    @staticmethod
    def _pool(mode: str, tokens: torch.Tensor, mask: torch.Tensor, original_mask: torch.Tensor) -> torch.Tensor:
        # Half-precision sums lose too much; accumulate in float32 and cast back.
        acc = torch.float32 if tokens.dtype in (torch.float16, torch.bfloat16) else tokens.dtype
        if mode == "cls":
            first = mask.to(torch.int).argmax(dim=1)
            return tokens[torch.arange(tokens.shape[0], device=tokens.device), first]
        if mode == "max":
            return tokens.masked_fill(mask.unsqueeze(-1) == 0, float("-inf")).max(dim=1).values
        if mode in ("mean", "mean_sqrt_len_tokens"):
            m = mask.unsqueeze(-1).to(tokens.dtype)
            total = (tokens * m).sum(dim=1, dtype=acc)
            count = torch.clamp(m.sum(dim=1, dtype=acc), min=1e-9)
            return (total / (count if mode == "mean" else count.sqrt())).to(tokens.dtype)
        if mode == "weightedmean":
            # Weights count positions from the first real token, so left padding does not shift them.
            weights = torch.arange(1, tokens.shape[1] + 1, device=tokens.device, dtype=acc).view(1, -1, 1)
            weights = weights - original_mask.to(torch.int32).argmax(dim=1).view(-1, 1, 1)
            weighted = mask.unsqueeze(-1).to(acc) * weights
            total = (tokens * weighted).sum(dim=1)
            return (total / torch.clamp(weighted.sum(dim=1), min=1e-9)).to(tokens.dtype)
        # lasttoken: the last position whose mask is 1, whichever side the padding is on.
        seq_len = tokens.shape[1]
        values, from_end = mask.flip(1).max(1)
        from_end = torch.where(values == 0, seq_len - 1, from_end)
        last = seq_len - from_end - 1
        picked = tokens[torch.arange(tokens.shape[0], device=tokens.device), last]
        return picked * values.unsqueeze(-1).to(tokens.dtype)

    def get_config_dict(self) -> dict[str, Any]:
        # The legacy keys are read by every sentence-transformers release (v2 to v6).
        config: dict[str, Any] = {"word_embedding_dimension": self.embedding_dimension}
        config.update({key: mode in self.modes for key, mode in _LEGACY_KEYS.items()})
        config["include_prompt"] = self.include_prompt
        return config

    @classmethod
    def read_config(cls, folder: Path) -> dict[str, Any]:
        config = super().read_config(folder)
        legacy = [key for key in _LEGACY_KEYS if key in config]
        if legacy:
            if "pooling_mode" not in config:
                modes = [mode for key, mode in _LEGACY_KEYS.items() if config.get(key)]
                config["pooling_mode"] = modes or ["mean"]
            for key in legacy:
                del config[key]
        return config

    def __repr__(self) -> str:
        return f"Pooling(dim={self.embedding_dimension}, mode={self.pooling_mode!r}, include_prompt={self.include_prompt})"


def _drop_prompt(mask: torch.Tensor, prompt_length: int) -> torch.Tensor:
    """Zero the mask over the prompt's tokens (after any left padding)."""
    mask = mask.clone()
    pad = mask.to(torch.int32).argmax(dim=1)
    positions = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)
    mask[positions < (pad + prompt_length).unsqueeze(1)] = 0
    return mask
