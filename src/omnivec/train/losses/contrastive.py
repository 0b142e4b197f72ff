"""In-batch negatives (InfoNCE) for embedders, plain and with GradCache: a large effective batch at the memory
cost of a mini-batch."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch

from omnivec.errors import ConfigError
from omnivec.runtime.units import PreparedInputs
from omnivec.train.losses.base import EmbeddingLoss, LossSpec, embed_columns
from omnivec.train.losses.binding import BoundModel, resolve_similarity

DIRECTIONS = ("query_to_doc", "doc_to_query", "query_to_query", "doc_to_doc")


class MultipleNegativesRankingLoss(BoundModel, EmbeddingLoss):
    """InfoNCE over (anchor, positive, negative...) columns: each anchor must pick its positive among every
    positive and negative in the batch.

    Args:
        model: the Embedder to train, as in sentence-transformers (``MultipleNegativesRankingLoss(model)``); optional.
        scale: multiplies the similarities (1 / temperature).
        similarity: ``cosine``, ``dot``, ``euclidean`` or ``manhattan``; or ``similarity_fct``, a function such as
            ``util.cos_sim`` (sentence-transformers' argument).
        symmetric: also make each positive pick its anchor among all anchors (the two losses are averaged).
        directions / partition_mode: the general form, as in sentence-transformers: which similarity blocks
            (query_to_doc, doc_to_query, query_to_query, doc_to_doc) are candidates, normalised jointly or
            per direction.
    """

    spec = LossSpec(inputs=("anchor", "positive"), more_inputs="negative")

    def __init__(self, model: Any = None, scale: float = 20.0, similarity_fct: Any = None,
                 gather_across_devices: bool = False, directions: Sequence[str] | None = None,
                 partition_mode: str | None = None, *, similarity: str | None = None, symmetric: bool = False) -> None:
        super().__init__()
        self.bind(model, "embedder")
        if gather_across_devices:
            raise ConfigError("gather_across_devices=True is not supported: omnivec trains on one device per process.")
        if scale <= 0:
            raise ConfigError(f"scale must be positive, got {scale}.")
        if symmetric and directions is not None:
            raise ConfigError("Pass symmetric=True or directions, not both.")
        directions = tuple(directions or (("query_to_doc", "doc_to_query") if symmetric else ("query_to_doc",)))
        unknown = set(directions) - set(DIRECTIONS)
        if unknown or "query_to_doc" not in directions:
            raise ConfigError(f"directions must include 'query_to_doc' and be among {DIRECTIONS}, got {directions}.")
        partition_mode = partition_mode or ("per_direction" if symmetric else "joint")
        if partition_mode not in ("joint", "per_direction"):
            raise ConfigError(f"partition_mode must be 'joint' or 'per_direction', got {partition_mode!r}.")
        if partition_mode == "per_direction" and {"query_to_query", "doc_to_doc"} & set(directions):
            raise ConfigError("partition_mode='per_direction' needs every direction to contain the positive pair; "
                              "query_to_query and doc_to_doc do not. Use partition_mode='joint'.")
        self.similarity, self._sim = resolve_similarity(similarity, similarity_fct, "cosine", pairwise=False)
        self.scale, self.directions, self.partition_mode = scale, directions, partition_mode

    def config(self) -> dict[str, Any]:
        return {"scale": self.scale, "similarity": self.similarity, "directions": list(self.directions),
                "partition_mode": self.partition_mode}

    def compute(self, embeddings: list[torch.Tensor], labels: Any) -> torch.Tensor:
        if len(embeddings) < 2:
            raise ConfigError(f"{type(self).__name__} needs at least 2 input columns (anchor, positive), got {len(embeddings)}.")
        queries, docs = embeddings[0], embeddings[1:]
        n = queries.shape[0]
        rows = torch.arange(n, device=queries.device)
        all_docs = torch.cat(docs)
        blocks = {"query_to_doc": self._sim(queries, all_docs)}
        if "doc_to_query" in self.directions:
            blocks["doc_to_query"] = self._sim(docs[0], queries)
        if "query_to_query" in self.directions:
            blocks["query_to_query"] = self._sim(queries, queries).masked_fill(torch.eye(n, dtype=torch.bool,
                                                                                         device=queries.device), -torch.inf)
        if "doc_to_doc" in self.directions:
            own = torch.eye(n, dtype=torch.bool, device=queries.device).repeat(1, len(docs))
            blocks["doc_to_doc"] = self._sim(docs[0], all_docs).masked_fill(own, -torch.inf)
        blocks = {name: block * self.scale for name, block in blocks.items()}
        positives = blocks["query_to_doc"][rows, rows]
        if self.partition_mode == "joint":
            log_z = torch.logsumexp(torch.cat(list(blocks.values()), dim=1), dim=1)
        else:
            log_z = torch.stack([torch.logsumexp(block, dim=1) for block in blocks.values()]).mean(dim=0)
        return (log_z - positives).mean()


class MultipleNegativesSymmetricRankingLoss(MultipleNegativesRankingLoss):
    """sentence-transformers' symmetric InfoNCE (anchors pick their positive and positives pick their anchor, the
    two losses averaged): ``MultipleNegativesRankingLoss(model, symmetric=True)``."""

    def __init__(self, model: Any = None, scale: float = 20.0, similarity_fct: Any = None,
                 gather_across_devices: bool = False, *, similarity: str | None = None) -> None:
        super().__init__(model, scale, similarity_fct, gather_across_devices, similarity=similarity, symmetric=True)


class CachedMultipleNegativesRankingLoss(MultipleNegativesRankingLoss):
    """``MultipleNegativesRankingLoss`` with GradCache (Gao et al., 2021): the batch is embedded in mini-batches
    without gradients, the loss's gradient with respect to every embedding is computed once, then each
    mini-batch is embedded again with gradients and back-propagated against its cached slice. Same loss and
    gradients as the full batch; memory of one mini-batch.

    Dropout masks are replayed: each mini-batch's random state is captured on the first pass and restored on
    the second, so both passes see the same network."""

    def __init__(self, model: Any = None, scale: float = 20.0, similarity_fct: Any = None, mini_batch_size: int = 32,
                 **kwargs: Any) -> None:
        kwargs.pop("show_progress_bar", None)  # sentence-transformers' progress bar over mini-batches: not shown
        super().__init__(model, scale, similarity_fct, **kwargs)
        if mini_batch_size <= 0:
            raise ConfigError(f"mini_batch_size must be positive, got {mini_batch_size}.")
        self.mini_batch_size = mini_batch_size

    def config(self) -> dict[str, Any]:
        return {**super().config(), "mini_batch_size": self.mini_batch_size}

    def forward(self, model: Any, inputs: Sequence[PreparedInputs], labels: Any) -> torch.Tensor:
        if not torch.is_grad_enabled():  # evaluation: nothing to cache
            return self.compute(embed_columns(model, inputs), labels)
        embeddings, states = embed_in_mini_batches(model, inputs, self.mini_batch_size)
        leaves = [e.detach().requires_grad_() for e in embeddings]
        loss = self.compute(leaves, labels)
        grads = torch.autograd.grad(loss, leaves)
        out = loss.detach().requires_grad_()
        # The trainer's backward() on the returned loss replays the mini-batches with gradients.
        out.register_hook(partial(replay_mini_batches, model, inputs, grads, states, self.mini_batch_size))
        return out


def embed_in_mini_batches(model: Any, inputs: Sequence[PreparedInputs],
                          mini_batch_size: int) -> tuple[list[torch.Tensor], list[RandomState]]:
    """GradCache's first pass: every column embedded without gradients, ``mini_batch_size`` rows at a time, with the
    random state before each mini-batch (so the replay draws the same dropout)."""
    embeddings, states = [], []
    with torch.no_grad():
        for column in inputs:
            parts = []
            for start in range(0, len(column), mini_batch_size):
                states.append(RandomState(model.device))
                parts.append(model.embed(column.select(start, start + mini_batch_size)))
            embeddings.append(torch.cat(parts))
    return embeddings, states


def replay_mini_batches(model: Any, inputs: Sequence[PreparedInputs], grads: Sequence[torch.Tensor],
                        states: list[RandomState], mini_batch_size: int, grad_output: torch.Tensor) -> None:
    """GradCache's second pass (a hook on the loss): each mini-batch embedded again with gradients and the cached
    gradient of its embeddings pushed through the model."""
    replay = iter(states)
    with torch.enable_grad():
        for column, grad in zip(inputs, grads, strict=True):
            for start in range(0, len(column), mini_batch_size):
                with next(replay).restored():
                    part = model.embed(column.select(start, start + mini_batch_size))
                (part * grad[start : start + mini_batch_size]).sum().mul(grad_output).backward()


class RandomState:
    """torch's random state (CPU and the model's accelerator) at one moment, to replay dropout exactly."""

    def __init__(self, device: torch.device) -> None:
        self.cpu = torch.get_rng_state()
        # (device, its generator state) when the model runs on CUDA
        self.cuda = (device, torch.cuda.get_rng_state(device)) if device.type == "cuda" else None

    @contextmanager
    def restored(self) -> Iterator[None]:
        devices = [self.cuda[0]] if self.cuda is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.cuda[1], self.cuda[0])
            yield
