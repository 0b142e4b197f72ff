"""Listwise CrossEncoder losses: a query with a list of documents and one relevance label per document."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from omnivec.errors import ConfigError, InputError
from omnivec.train.cross_encoder_losses.base import PairLoss
from omnivec.train.losses.base import LossSpec

WEIGHTINGS = ("ndcg2pp", "ndcg2", "lambdarank", "none")


class NDCGLoss2PPScheme:
    """sentence-transformers' default LambdaLoss weighting: ``mu`` x NDCG-Loss2 + LambdaRank."""

    weighting = "ndcg2pp"

    def __init__(self, mu: float = 10.0) -> None:
        self.mu = mu


class NDCGLoss2Scheme:
    """LambdaLoss weighting NDCG-Loss2."""

    weighting = "ndcg2"


class LambdaRankScheme:
    """LambdaLoss weighting LambdaRank."""

    weighting = "lambdarank"


class NoWeightingScheme:
    """LambdaLoss without weights (plain pairwise logistic loss)."""

    weighting = "none"


def _scheme(weighting_scheme: Any) -> tuple[str, float | None]:
    """(omnivec's weighting name, mu or None) from a scheme object (omnivec's or sentence-transformers', matched by
    class name) or a name."""
    if weighting_scheme is None:
        return "none", None
    if isinstance(weighting_scheme, str):
        return weighting_scheme, None
    names = {"NDCGLoss2PPScheme": "ndcg2pp", "NDCGLoss2Scheme": "ndcg2", "LambdaRankScheme": "lambdarank",
             "NoWeightingScheme": "none"}
    name = names.get(type(weighting_scheme).__name__)
    if name is None:
        raise ConfigError(f"LambdaLoss: argument 'weighting_scheme' must be one of {sorted(names)} (or a name among "
                          f"{WEIGHTINGS}), got {type(weighting_scheme).__name__}.")
    return name, getattr(weighting_scheme, "mu", None)


class ListwiseLoss(PairLoss):
    """Scores every (query, document) of the lists, in chunks of ``mini_batch_size`` pairs, into a padded
    (queries, longest list) matrix: padded scores are -1e16 and padded labels -inf."""

    spec = LossSpec(inputs=("query", "documents"), label="list", list_input=1)

    def __init__(self, model: Any = None, activation_fn: torch.nn.Module | None = None,
                 mini_batch_size: int | None = None, *, activation: torch.nn.Module | None = None) -> None:
        super().__init__(model, activation_fn, activation=activation)
        self.mini_batch_size = mini_batch_size

    def config(self) -> dict[str, Any]:
        return {**super().config(), "mini_batch_size": self.mini_batch_size}

    def matrices(self, model: Any, inputs: Sequence[Sequence[Any]], labels: Sequence[torch.Tensor]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_model(model)
        queries, lists = inputs
        counts = [len(docs) for docs in lists]
        for row, (count, label) in enumerate(zip(counts, labels, strict=True)):
            if count != len(label):
                raise InputError(f"{type(self).__name__}: batch row {row} has {count} documents but {len(label)} labels.")
        pairs = [(query, doc) for query, docs in zip(queries, lists, strict=True) for doc in docs]
        step = self.mini_batch_size or len(queries) or 1
        logits = torch.cat([model.logits(pairs[i : i + step]).view(-1) for i in range(0, len(pairs), step)])
        logits = self.activation(logits.float())
        rows = torch.repeat_interleave(torch.arange(len(queries)), torch.tensor(counts))
        cols = torch.cat([torch.arange(count) for count in counts])
        scores = torch.full((len(queries), max(counts)), -1e16, device=logits.device)
        scores = scores.index_put((rows.to(logits.device), cols.to(logits.device)), logits)
        truth = torch.full_like(scores, -torch.inf)
        truth[rows, cols] = torch.cat([torch.as_tensor(label) for label in labels]).float().to(truth.device)
        return scores, truth


class ListNetLoss(ListwiseLoss):
    """ListNet (Cao et al., 2007): cross-entropy between the softmax of the labels and of the scores."""

    def forward(self, model: Any, inputs: Sequence[Sequence[Any]], labels: Sequence[torch.Tensor]) -> torch.Tensor:
        scores, truth = self.matrices(model, inputs, labels)
        return torch.nn.functional.cross_entropy(scores, truth.softmax(dim=1))


class LambdaLoss(ListwiseLoss):
    """LambdaLoss (Wang et al., 2018): pairwise logistic losses weighted by how much swapping the two documents
    changes NDCG. ``weighting``: ndcg2pp (default: ``mu`` x NDCG-Loss2 + LambdaRank), ndcg2, lambdarank or
    none; ``k`` restricts to pairs touching the top k predicted positions."""

    _DEFAULT_SCHEME = NDCGLoss2PPScheme()

    def __init__(self, model: Any = None, weighting_scheme: Any = _DEFAULT_SCHEME, k: int | None = None,
                 sigma: float = 1.0, eps: float = 1e-10, reduction_log: str = "binary",
                 activation_fn: torch.nn.Module | None = None, mini_batch_size: int | None = None, *,
                 weighting: str | None = None, mu: float | None = None,
                 activation: torch.nn.Module | None = None) -> None:
        super().__init__(model, activation_fn, mini_batch_size, activation=activation)
        scheme_name, scheme_mu = _scheme(weighting_scheme)
        if weighting is not None and weighting_scheme is not self._DEFAULT_SCHEME:
            raise ConfigError("Pass weighting_scheme or weighting (the same setting), not both.")
        weighting = weighting or scheme_name
        if weighting not in WEIGHTINGS:
            raise ConfigError(f"weighting {weighting!r} is not one of {WEIGHTINGS}.")
        if reduction_log not in ("binary", "natural"):
            raise ConfigError(f"reduction_log must be 'binary' or 'natural', got {reduction_log!r}.")
        mu = mu if mu is not None else (scheme_mu if scheme_mu is not None else 10.0)
        self.weighting, self.k, self.sigma, self.mu, self.eps = weighting, k, sigma, mu, eps
        self.reduction_log = reduction_log

    def config(self) -> dict[str, Any]:
        return {**super().config(), "weighting": self.weighting, "k": self.k, "sigma": self.sigma, "mu": self.mu}

    def forward(self, model: Any, inputs: Sequence[Sequence[Any]], labels: Sequence[torch.Tensor]) -> torch.Tensor:
        scores, truth = self.matrices(model, inputs, labels)
        width = scores.shape[1]
        scores_sorted, order = scores.sort(descending=True, dim=1)
        ideal = truth.sort(descending=True, dim=1).values.clamp(min=0.0)
        truth_by_pred = truth.gather(1, order)
        true_diffs = truth_by_pred[:, :, None] - truth_by_pred[:, None, :]
        pairs = torch.isfinite(true_diffs) & (true_diffs > 0)
        k = self.k or width
        top = torch.zeros((width, width), dtype=torch.bool, device=scores.device)
        top[:k, :] = True
        top[:, :k] = True
        truth_by_pred = truth_by_pred.clamp(min=0.0)
        discount = torch.log2(2.0 + torch.arange(width, device=scores.device).float())
        max_dcg = ((2 ** ideal - 1) / discount)[:, :k].sum(dim=1).clamp(min=self.eps)
        gain = (2 ** truth_by_pred - 1) / max_dcg[:, None]
        weights = self._weights(gain, discount)
        diffs = (scores_sorted[:, :, None] - scores_sorted[:, None, :]).clamp(-1e8, 1e8).nan_to_num(0.0)
        losses = weights * torch.nn.functional.logsigmoid(self.sigma * diffs)
        if self.reduction_log == "binary":
            losses = losses / math.log(2)
        kept = losses[pairs & top]
        return -kept.sum() / max(kept.numel(), 1)

    def _weights(self, gain: torch.Tensor, discount: torch.Tensor) -> torch.Tensor:
        gain_gap = (gain[:, :, None] - gain[:, None, :]).abs()
        if self.weighting == "none":
            return torch.ones_like(gain_gap)
        lambdarank = (1 / discount[None, :, None] - 1 / discount[None, None, :]).abs() * gain_gap
        if self.weighting == "lambdarank":
            return lambdarank
        # NDCG-Loss2: the discount change between positions |i - j| and |i - j| + 1 apart
        positions = torch.arange(gain.shape[1], device=gain.device)
        gap = (positions[:, None] - positions[None, :]).abs()
        inverse = torch.cat([discount.new_ones(1), 1 / discount])  # 1/D at distance 0 is unused (diagonal)
        deltas = (inverse[gap] - inverse[gap + 1]).abs()
        deltas.fill_diagonal_(0.0)
        ndcg2 = deltas[None] * gain_gap
        return ndcg2 if self.weighting == "ndcg2" else self.mu * ndcg2 + lambdarank
