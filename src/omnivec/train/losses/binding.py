"""Losses written the sentence-transformers way: the model as first argument (``MultipleNegativesRankingLoss(model,
scale=20.0)``), checked at construction, and similarity functions given as callables (``similarity_fct=cos_sim``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, cast

import torch

from omnivec import similarity as sim
from omnivec.errors import ConfigError
from omnivec.models.cross_encoder import CrossEncoder
from omnivec.models.embedder import Embedder
from omnivec.models.sparse_encoder import SparseEncoder

ModelKind = Literal["embedder", "cross_encoder", "sparse_encoder"]
# kind -> (model class, how errors name it, the package of its losses)
_KINDS: dict[str, tuple[type, str, str]] = {
    "embedder": (Embedder, "an omnivec.Embedder (SentenceTransformer)", "omnivec.train.losses"),
    "cross_encoder": (CrossEncoder, "an omnivec.CrossEncoder", "omnivec.train.cross_encoder_losses"),
    "sparse_encoder": (SparseEncoder, "an omnivec.SparseEncoder", "omnivec.sparse_encoder.losses"),
}


def check_model(model: Any, kind: ModelKind, loss_name: str) -> Any:
    """``model`` if it is the kind of model the loss trains (or None, the model-free form), else a TypeError that
    names the argument and says which losses fit the model that was given."""
    if model is None:
        return None
    expected, wording, _ = _KINDS[kind]
    if isinstance(model, expected):
        return model
    hint = next((f" For a {type(model).__name__}, use the losses in {package}."
                 for cls, _, package in _KINDS.values() if isinstance(model, cls)), "")
    raise TypeError(f"{loss_name}: argument 'model' must be {wording}, got {type(model).__name__}.{hint}")


class BoundModel:
    """Mixin for losses: ``loss.model`` is the model given at construction (or None).

    The model is held outside the module's registry so the loss's own ``parameters()`` and ``state_dict()`` stay its
    own weights (a classifier head, a temperature); the trainer passes its model at every call, so the model trained
    is always the trainer's, as in sentence-transformers (whose trainer puts its model into the loss)."""

    _bound_model: Any = None

    def bind(self, model: Any, kind: ModelKind) -> None:
        object.__setattr__(self, "_bound_model", check_model(model, kind, type(self).__name__))

    @property
    def model(self) -> Any:
        return self._bound_model


# The names of sentence-transformers' (and omnivec.util's) similarity functions, by what they compute.
_NAMES = {
    "cos_sim": "cosine", "pairwise_cos_sim": "cosine", "cosine": "cosine", "pairwise_cosine": "cosine",
    "dot_score": "dot", "pairwise_dot_score": "dot", "dot": "dot", "pairwise_dot": "dot",
    "euclidean_sim": "euclidean", "pairwise_euclidean_sim": "euclidean", "euclidean": "euclidean",
    "pairwise_euclidean": "euclidean",
    "manhattan_sim": "manhattan", "pairwise_manhattan_sim": "manhattan", "manhattan": "manhattan",
    "pairwise_manhattan": "manhattan",
}


def resolve_similarity(similarity: str | Callable[..., torch.Tensor] | None, similarity_fct: Any, default: str,
                       pairwise: bool) -> tuple[str, Callable[..., torch.Tensor]]:
    """(name, function) from omnivec's ``similarity`` name or sentence-transformers' ``similarity_fct`` callable.
    A known function (``util.cos_sim``, ``util.pairwise_dot_score``...) maps to omnivec's; any other callable is
    used as given."""
    if similarity is not None and similarity_fct is not None:
        raise ConfigError("Pass similarity (a name) or similarity_fct (a function), not both.")
    chosen = similarity_fct if similarity_fct is not None else similarity
    if chosen is None:
        return default, sim.get(default, pairwise=pairwise)
    if isinstance(chosen, str):
        return chosen, sim.get(chosen, pairwise=pairwise)
    if not callable(chosen):
        raise ConfigError(f"similarity_fct must be a function such as util.cos_sim, got {type(chosen).__name__}.")
    name = getattr(chosen, "__name__", type(chosen).__name__)
    if name in _NAMES:
        return _NAMES[name], sim.get(_NAMES[name], pairwise=pairwise)
    return name, cast(Callable[..., torch.Tensor], chosen)
