"""CSR's training objective (Wen et al., 2025, "Beyond Matryoshka", arXiv 2503.01776): a SparseAutoEncoder's
reconstruction losses plus a contrastive loss on its sparse codes, as sentence-transformers' ``CSRLoss``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from omnivec.errors import ConfigError
from omnivec.runtime.units import PreparedInputs
from omnivec.train.losses.base import Loss
from omnivec.train.losses.binding import BoundModel
from omnivec.train.sparse_losses.ranking import SparseMultipleNegativesRankingLoss
from omnivec.train.sparse_losses.splade import FlopsLoss

# the features a SparseAutoEncoder adds outside inference
_OUTPUTS = ("sentence_embedding_backbone", "decoded_embedding_k", "decoded_embedding_4k", "decoded_embedding_aux",
            "decoded_embedding_k_pre_bias")


def normalized_mse(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE divided by the MSE of predicting the batch mean (plain MSE where the batch has no variance)."""
    baseline = F.mse_loss(target.mean(dim=0, keepdim=True).expand_as(target), target)
    constant = (baseline == 0) | (target == target[:1]).all()
    return F.mse_loss(reconstruction, target) / torch.where(constant, torch.ones_like(baseline), baseline)


class CSRReconstructionLoss(BoundModel, Loss):
    """How well the autoencoder rebuilds the dense embedding ``x`` it encodes, from each column's outputs:
    ``L(k) = mse(x, decode(top-k))``, ``L(4k) = mse(x, decode(top-4k)) / 8`` and ``beta * L_aux``, the normalized
    MSE of the dead latents' code against the residual ``x - decode(top-k)`` (gradient stopped at the residual),
    each averaged over the columns.

    A part of ``CSRLoss``, not a training loss on its own.

    Args:
        model: the SparseEncoder (CSR: ending in a SparseAutoEncoder).
        beta: weight of the auxiliary part.
    """

    def __init__(self, model: Any = None, beta: float = 1.0) -> None:
        super().__init__()
        self.bind(model, "sparse_encoder")
        self.beta = beta

    def config(self) -> dict[str, Any]:
        return {"beta": self.beta}

    get_config_dict = config  # sentence-transformers' name

    def compute(self, outputs: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """``{"reconstruction_loss_k", "reconstruction_loss_4k", "reconstruction_loss_aux"}`` (weighted), from each
        column's forward outputs (``SparseEncoder.embed_features``)."""
        if not outputs:
            raise ConfigError("CSRReconstructionLoss needs at least one column.")
        missing = [key for key in _OUTPUTS if key not in outputs[0]]
        if missing:
            raise ConfigError(f"CSR losses need a model ending in a SparseAutoEncoder (Transformer + Pooling + "
                              f"SparseAutoEncoder); this model's outputs lack {missing}.")
        loss_k = loss_4k = loss_aux = torch.zeros((), device=outputs[0]["sentence_embedding_backbone"].device)
        for features in outputs:
            x = features["sentence_embedding_backbone"]
            loss_k = loss_k + F.mse_loss(x, features["decoded_embedding_k"])
            loss_4k = loss_4k + F.mse_loss(x, features["decoded_embedding_4k"])
            if features["decoded_embedding_aux"] is not None:
                residual = x - features["decoded_embedding_k_pre_bias"].detach()
                loss_aux = loss_aux + normalized_mse(features["decoded_embedding_aux"], residual)
        columns = len(outputs)
        return {"reconstruction_loss_k": loss_k / columns, "reconstruction_loss_4k": loss_4k / columns / 8.0,
                "reconstruction_loss_aux": self.beta * (loss_aux / columns)}

    compute_loss_from_embeddings = compute  # sentence-transformers' name

    def forward(self, model: Any, inputs: Sequence[PreparedInputs], labels: Any) -> torch.Tensor:
        raise ConfigError("CSRReconstructionLoss is a part of CSRLoss: train with CSRLoss(model, beta=0.1, "
                          "gamma=1.0), not with it alone.")


class CSRLoss(BoundModel, Loss):
    """The CSR objective: ``CSRReconstructionLoss(beta)`` plus ``gamma`` times a loss on the sparse codes.

    Args:
        model: the SparseEncoder to train (Transformer + Pooling + SparseAutoEncoder).
        loss: the loss on the codes (default ``SparseMultipleNegativesRankingLoss(model)``, InfoNCE as in the paper);
            any of the sparse ranking losses.
        beta: weight of the auxiliary reconstruction part.
        gamma: weight of ``loss``.

    Called by the trainer, it returns ``{"reconstruction_loss_k", "reconstruction_loss_4k",
    "reconstruction_loss_aux", "base_loss"}`` (each weighted); the trainer sums them and logs each. Each column
    runs its own forward pass, as in sentence-transformers (the autoencoder's dead-latent counts advance per pass).
    """

    def __init__(self, model: Any = None, loss: Any = None, beta: float = 0.1, gamma: float = 1.0) -> None:
        super().__init__()
        self.bind(model, "sparse_encoder")
        if loss is None:
            loss = SparseMultipleNegativesRankingLoss(model)
        ranks = callable(getattr(loss, "compute", None))  # a loss on the codes: compute(embeddings, labels)
        if not ranks or isinstance(loss, CSRReconstructionLoss | FlopsLoss | CSRLoss):
            raise TypeError(f"CSRLoss: argument 'loss' must be a sparse ranking loss such as "
                            f"SparseMultipleNegativesRankingLoss(model), got {type(loss).__name__}.")
        if getattr(loss, "model", None) is not None and model is not None and loss.model is not model:
            raise ConfigError("CSRLoss: 'loss' was built for a different model than 'model'.")
        self.loss = loss
        self.spec = loss.spec
        self.beta = beta
        self.gamma = gamma
        self.reconstruction_loss = CSRReconstructionLoss(model, beta=beta)

    def config(self) -> dict[str, Any]:
        return {"beta": self.beta, "gamma": self.gamma, "loss": type(self.loss).__name__}

    get_config_dict = config  # sentence-transformers' name

    def forward(self, model: Any, inputs: Sequence[PreparedInputs], labels: Any) -> dict[str, torch.Tensor]:
        outputs = [model.embed_features(column) for column in inputs]
        parts = self.reconstruction_loss.compute(outputs)
        base = self.loss.compute([features["sentence_embedding"] for features in outputs], labels)
        if isinstance(base, dict):
            parts.update({key: value * self.gamma for key, value in base.items()})
        else:
            parts["base_loss"] = base * self.gamma
        return parts

