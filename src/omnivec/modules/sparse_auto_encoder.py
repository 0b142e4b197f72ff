"""SparseAutoEncoder: a dense sentence embedding -> a sparse code of ``hidden_dim`` latents, the ``k`` largest kept
(CSR, Contrastive Sparse Representation: Wen et al., 2025, "Beyond Matryoshka", arXiv 2503.01776)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from omnivec.errors import ConfigError, ModelLoadError
from omnivec.loading.options import LoadOptions
from omnivec.modules.base import Module

# sentence-transformers keeps the decoder as a transposed view of the encoder and saves the one matrix under this name
_ST_WEIGHT = "decoder.linear.weight"
_FIRED = 1e-5  # a latent above this counts as active for the dead-latent statistics


class SparseAutoEncoder(Module):
    """Encodes ``sentence_embedding`` (B, input_dim) into ``relu(top_k(W (x - b_pre) + b_lat))`` (B, hidden_dim); the
    decoder is the encoder's transpose (tied weights) plus ``b_pre``.

    At inference only the top-k code is computed. Otherwise (training, evaluation losses) the features also carry
    what the CSR losses read, under sentence-transformers' keys: the input (``sentence_embedding_backbone``), the
    pre-activation latents, the top-4k code, the top-``k_aux`` code of the dead latents (``auxiliary_embedding``)
    and the reconstructions of each (``decoded_embedding_*``).

    Args:
        input_dim: size of the dense embedding it reads.
        hidden_dim: number of latents (the sparse vector's length).
        k: latents kept per embedding (encode's ``max_active_dims`` overrides it per call).
        k_aux: latents of the auxiliary code (0: none), which teaches dead latents to reconstruct the residual.
        normalize: standardize each input (mean 0, std 1) before encoding, and undo it on decoding.
        dead_threshold: a latent is dead after this many training steps without firing.
    """

    config_keys = ("input_dim", "hidden_dim", "k", "k_aux", "normalize", "dead_threshold")
    st_type = "sentence_transformers.sparse_encoder.models.SparseAutoEncoder"

    def __init__(self, input_dim: int, hidden_dim: int = 512, k: int = 8, k_aux: int = 512, normalize: bool = False,
                 dead_threshold: int = 30) -> None:
        super().__init__()
        _check_int("input_dim", input_dim, 1)
        _check_int("hidden_dim", hidden_dim, 1)
        _check_int("k", k, 1, hidden_dim)
        _check_int("k_aux", k_aux, 0, hidden_dim)
        _check_int("dead_threshold", dead_threshold, 0)
        if not isinstance(normalize, bool):
            raise ConfigError(f"SparseAutoEncoder normalize must be true or false, got {normalize!r}.")
        self.input_dim, self.hidden_dim, self.k, self.k_aux = input_dim, hidden_dim, k, k_aux
        self.normalize, self.dead_threshold = normalize, dead_threshold
        # created in sentence-transformers' order, so the same seed gives the same initial weights
        self.pre_bias = torch.nn.Parameter(torch.zeros(input_dim))
        self.encoder = torch.nn.Linear(input_dim, hidden_dim, bias=False)
        self.latent_bias = torch.nn.Parameter(torch.zeros(hidden_dim))
        # training steps since each latent last fired (two per training forward: the k and the 4k code)
        self.stats_last_nonzero: torch.Tensor
        self.register_buffer("stats_last_nonzero", torch.zeros(hidden_dim, dtype=torch.long))
        self.register_load_state_dict_pre_hook(_st_weight_name)

    # -- forward --------------------------------------------------------------------------------------------------
    def forward(self, features: dict[str, Any], max_active_dims: int | None = None) -> dict[str, Any]:
        x: torch.Tensor = features["sentence_embedding"]  # (B, input_dim)
        k = min(max_active_dims if max_active_dims is not None else self.k, self.hidden_dim)
        inputs, mean, std = self._standardized(x)
        latents = F.linear(inputs - self.pre_bias, self.encoder.weight, self.latent_bias)  # (B, hidden_dim)
        code_k = self._top(latents, k)
        if torch.is_inference_mode_enabled():  # encode: the code alone
            features["sentence_embedding"] = code_k
            return features
        code_aux = None
        if self.k_aux:  # the dead latents (the others masked to 0, as in sentence-transformers), by pre-activation
            code_aux = _top_relu(latents * (self.stats_last_nonzero > self.dead_threshold), self.k_aux)[0]
        # sentence-transformers fails where 4k exceeds the latents; all of them is the top-4k code then
        code_4k = self._top(latents, min(4 * k, self.hidden_dim))
        bias = self.pre_bias if std is None else self.pre_bias * std
        decoded_k = self._decoded(code_k, mean, std)
        decoded_aux = None
        if code_aux is not None:  # the residual's reconstruction: scaled back, not shifted by the mean
            decoded_aux = code_aux @ self.encoder.weight + self.pre_bias
            decoded_aux = decoded_aux if std is None else decoded_aux * std
        features.update({
            "sentence_embedding_backbone": x,
            "sentence_embedding_encoded": latents,
            "sentence_embedding_encoded_4k": code_4k,
            "auxiliary_embedding": code_aux,
            "decoded_embedding_k": decoded_k,
            "decoded_embedding_4k": self._decoded(code_4k, mean, std),
            "decoded_embedding_aux": decoded_aux,
            "decoded_embedding_k_pre_bias": decoded_k - bias,
            "sentence_embedding": code_k,
        })
        return features

    def _standardized(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        if not self.normalize:
            return x, None, None
        mean = x.mean(dim=-1, keepdim=True)
        centered = x - mean
        std = centered.std(dim=-1, keepdim=True)  # the unbiased estimate, as sentence-transformers
        return centered / (std + 1e-5), mean, std

    def _decoded(self, code: torch.Tensor, mean: torch.Tensor | None, std: torch.Tensor | None) -> torch.Tensor:
        out = code @ self.encoder.weight + self.pre_bias  # (B, input_dim): the tied decoder
        return out if std is None or mean is None else out * std + mean

    def _top(self, latents: torch.Tensor, k: int) -> torch.Tensor:
        """The top-k code; in a training step, also counts the step for every latent that did not fire."""
        code, top = _top_relu(latents, k)
        if self.training and torch.is_grad_enabled():
            fired = torch.zeros_like(self.stats_last_nonzero).scatter_add_(
                0, top.indices.reshape(-1), (top.values > _FIRED).reshape(-1).to(self.stats_last_nonzero.dtype))
            self.stats_last_nonzero.masked_fill_(fired > 0, 0).add_(1)
        return code

    def get_embedding_dimension(self) -> int:
        """The sparse vector's length (only ``k`` of its entries are non-zero)."""
        return self.hidden_dim

    # -- save / load ----------------------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        self.save_config(folder)
        state = {"pre_bias": self.pre_bias, _ST_WEIGHT: self.encoder.weight, "latent_bias": self.latent_bias,
                 "stats_last_nonzero": self.stats_last_nonzero}
        save_file({name: t.detach().cpu().contiguous() for name, t in state.items()},
                  str(folder / "model.safetensors"), metadata={"format": "pt", "encoder.weight": _ST_WEIGHT})

    @classmethod
    def load(cls, folder: Path, options: LoadOptions) -> SparseAutoEncoder:
        config = cls.split_config(cls.read_config(folder), folder)
        if "input_dim" not in config:
            raise ModelLoadError(f"SparseAutoEncoder config in {str(folder)!r} has no input_dim.")
        try:
            module = cls(**config)
        except ConfigError as exc:
            raise ModelLoadError(f"SparseAutoEncoder config in {str(folder)!r}: {exc}") from None
        module.load_weights(folder)
        return module

    def __repr__(self) -> str:
        return f"SparseAutoEncoder({self.get_config_dict()})"


def _st_weight_name(module: torch.nn.Module, state: dict[str, Any], prefix: str, *_: Any) -> None:
    """Read the tied matrix under sentence-transformers' name (its .bin files hold both names)."""
    theirs = state.pop(prefix + _ST_WEIGHT, None)
    if theirs is not None:
        state.setdefault(prefix + "encoder.weight", theirs)


def _top_relu(values: torch.Tensor, k: int) -> tuple[torch.Tensor, Any]:
    """``relu`` of each row's ``k`` largest values, zeros elsewhere; and the top-k (values, indices)."""
    top = torch.topk(values, k=k, dim=-1)
    return F.relu(torch.zeros_like(values).scatter(-1, top.indices, top.values)), top


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        expected = f"an integer >= {low}" if high is None else f"an integer from {low} to hidden_dim ({high})"
        raise ConfigError(f"SparseAutoEncoder {name} must be {expected}, got {value!r}.")
