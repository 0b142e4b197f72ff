"""The evaluator interface: call it with a model, get ``{name_metric: value}`` back."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from omnivec.errors import ConfigError


class Evaluator:
    """Base class: subclasses implement :meth:`compute` returning unprefixed metrics.

    ``evaluator(model)`` returns them keyed ``f"{name}_{metric}"`` (just ``metric`` when ``name`` is empty,
    as in sentence-transformers); ``primary_metric`` is the full key of the metric to select models by.
    """

    greater_is_better: bool = True
    main_metric: str = ""  # unprefixed; subclasses set it

    def __init__(self, name: str = "") -> None:
        self.name = name

    @property
    def primary_metric(self) -> str:
        """Full key of the main metric in the dict that ``__call__`` returns."""
        return self.key(self.main_metric)

    def key(self, metric: str) -> str:
        """``metric`` prefixed with the evaluator's name."""
        return f"{self.name}_{metric}" if self.name else metric

    def compute(self, model: Any) -> dict[str, float]:
        """Unprefixed metrics of ``model``."""
        raise NotImplementedError

    def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        """Metrics of ``model``, keyed ``f"{name}_{metric}"``. ``output_path``, ``epoch`` and ``steps`` are
        sentence-transformers' arguments (where it writes CSV files); accepted, nothing is written."""
        return {self.key(metric): float(value) for metric, value in self.compute(model).items()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class SequentialEvaluator(Evaluator):
    """Runs several evaluators and merges their results; the primary metric is the last evaluator's."""

    def __init__(self, evaluators: Iterable[Evaluator]) -> None:
        super().__init__(name="")
        self.evaluators = list(evaluators)
        if not self.evaluators:
            raise ConfigError("SequentialEvaluator needs at least one evaluator.")

    @property
    def primary_metric(self) -> str:
        return self.evaluators[-1].primary_metric

    @property
    def greater_is_better(self) -> bool:  # type: ignore[override]
        return self.evaluators[-1].greater_is_better

    def __call__(self, model: Any) -> dict[str, float]:
        merged: dict[str, float] = {}
        for evaluator in self.evaluators:
            results = evaluator(model)
            # A silent overwrite would hide one evaluator's numbers behind another's.
            clash = sorted(merged.keys() & results.keys())
            if clash:
                raise ConfigError(f"{evaluator!r} returns metric keys that an earlier evaluator also returned: "
                                  f"{clash}; give the evaluators distinct names.")
            merged.update(results)
        return merged
