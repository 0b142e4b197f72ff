"""Semantic textual similarity: how well embedding similarity of sentence pairs tracks gold scores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from omnivec import similarity as sim
from omnivec.errors import InputError
from omnivec.train.evaluation.base import Evaluator


class EmbeddingSimilarityEvaluator(Evaluator):
    """Pearson and Spearman correlation between gold ``scores`` and the similarity of each
    (``sentences1[i]``, ``sentences2[i]``) pair, for each similarity function in ``similarity_fn_names``
    (default: the model's own ``similarity_fn_name``, read at each call).

    Keys ``pearson_{fn}`` and ``spearman_{fn}`` (plus ``pearson_max`` / ``spearman_max`` with several
    functions), as in sentence-transformers' evaluator of the same name; the primary metric is
    ``spearman_{fn}`` (``spearman_max`` with several). Every distinct sentence is embedded once.
    """

    def __init__(
        self,
        sentences1: Sequence[Any],
        sentences2: Sequence[Any],
        scores: Sequence[float],
        name: str = "",
        batch_size: int = 32,
        similarity_fn_names: Sequence[str] | None = None,
        show_progress_bar: bool | None = None,
        truncate_dim: int | None = None,
    ) -> None:
        super().__init__(name)
        if not len(sentences1) == len(sentences2) == len(scores):
            raise InputError(f"sentences1, sentences2 and scores must have the same length, got "
                             f"{len(sentences1)}, {len(sentences2)} and {len(scores)}.")
        if len(scores) < 2:
            raise InputError(f"Correlations need at least 2 pairs, got {len(scores)}.")
        for fn_name in similarity_fn_names or ():
            sim.get(fn_name)  # fail at construction on an unknown name, not after embedding everything
        self.sentences1, self.sentences2 = list(sentences1), list(sentences2)
        self.scores = np.asarray(scores, dtype=np.float64)
        self.batch_size = batch_size
        self.similarity_fn_names = list(similarity_fn_names) if similarity_fn_names else None
        self.show_progress_bar = show_progress_bar
        self.truncate_dim = truncate_dim
        self._last_fn_names = self.similarity_fn_names or ["cosine"]

    @property
    def main_metric(self) -> str:  # type: ignore[override]
        names = self._last_fn_names
        return "spearman_max" if len(names) > 1 else f"spearman_{names[0]}"

    def compute(self, model: Any) -> dict[str, float]:
        try:
            from scipy.stats import pearsonr, spearmanr
        except ImportError as err:  # scipy is not a dependency of omnivec itself
            raise ImportError("EmbeddingSimilarityEvaluator needs scipy: pip install scipy") from err
        names = self.similarity_fn_names or [getattr(model, "similarity_fn_name", None) or "cosine"]
        self._last_fn_names = names
        # Pairs often repeat a sentence (STS-B does): embed each distinct one once, in one call.
        index: dict[Any, int] = {}
        unique: list[Any] = []
        for sentence in (*self.sentences1, *self.sentences2):
            if index.setdefault(_hashable(sentence), len(unique)) == len(unique):
                unique.append(sentence)
        kwargs: dict[str, Any] = dict(batch_size=self.batch_size, show_progress_bar=self.show_progress_bar,
                                      convert_to_tensor=True)
        if self.truncate_dim is not None:
            kwargs["truncate_dim"] = self.truncate_dim
        embeddings = model.encode(unique, **kwargs)
        left = embeddings[[index[_hashable(s)] for s in self.sentences1]]
        right = embeddings[[index[_hashable(s)] for s in self.sentences2]]
        results: dict[str, float] = {}
        for fn_name in names:
            predicted = sim.get(fn_name, pairwise=True)(left, right).double().cpu().numpy()
            results[f"pearson_{fn_name}"] = _coefficient(pearsonr(self.scores, predicted))
            results[f"spearman_{fn_name}"] = _coefficient(spearmanr(self.scores, predicted))
        if len(names) > 1:
            results["pearson_max"] = max(results[f"pearson_{n}"] for n in names)
            results["spearman_max"] = max(results[f"spearman_{n}"] for n in names)
        return results


def _coefficient(result: Any) -> float:
    # scipy's results are (statistic, pvalue) tuples in every supported version; their generic tuple base
    # hides the element type from type checkers, hence Any.
    return float(result[0])


def _hashable(sentence: Any) -> Any:
    # Non-text inputs (images, dicts) may be unhashable; id() still dedupes the same object passed twice.
    try:
        hash(sentence)
    except TypeError:
        return ("id", id(sentence))
    return sentence


STSEvaluator = EmbeddingSimilarityEvaluator
