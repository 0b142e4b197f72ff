"""Measure every backend a model can run on, on this machine and the user's texts: speed, and agreement with torch
float32. The fastest variant that keeps the numbers is the recommendation ``backend="auto"`` loads afterwards."""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from omnivec.errors import ConfigError, InputError, ModelLoadError
from omnivec.loading.hub import resolve_model_dir
from omnivec.loading.options import BackendName
from omnivec.models.backend_choice import save_choice
from omnivec.runtime.cpu import cpu_info

logger = logging.getLogger(__name__)

MEASURED: tuple[BackendName, ...] = ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8")  # torch: the reference
RUNTIME_PACKAGES = {"onnx": "onnxruntime", "openvino": "openvino"}
PAIRS_FOR_SPEARMAN = 200  # texts whose pairwise similarities are ranked (200 -> 19,900 pairs)


@dataclass(frozen=True)
class AgreementBar:
    """What a variant must keep to be recommended: mean and worst cosine of its vectors to torch float32's, and the
    Spearman correlation of the similarities (of the scores, for a CrossEncoder) to torch's."""

    min_mean_cosine: float = 0.99
    min_cosine: float = 0.95
    min_spearman: float = 0.99

    def __post_init__(self) -> None:
        for name in ("min_mean_cosine", "min_cosine", "min_spearman"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not -1 <= value <= 1:
                raise ConfigError(f"AgreementBar.{name} must be a number from -1 to 1, got {value!r}.")


@dataclass
class BackendRow:
    """One backend's measurement; ``error`` when it could not run (then it has no figures)."""

    backend: str
    per_second: float | None = None
    prepare_s: float | None = None  # load, with any export or quantization made on first use
    mean_cosine: float | None = None
    min_cosine: float | None = None
    spearman: float | None = None
    error: str | None = None
    passes: bool = False


@dataclass
class BenchResult:
    """A whole measurement: the CPU, the workload, every row, and the recommended backend."""

    model: str
    kind: str
    cpu: str
    threads: int
    inputs: int
    batch_size: int
    rows: list[BackendRow] = field(default_factory=list)
    choice: str = "torch"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def available_backends() -> list[BackendName]:
    """The backend names whose runtime is installed (torch always)."""
    return [name for name in MEASURED
            if name == "torch" or importlib.util.find_spec(RUNTIME_PACKAGES[name.removesuffix("-int8")]) is not None]


def measure_backends(model_name_or_path: str, texts: Sequence[str], *, kind: str = "embedder",
                     backends: Sequence[str] | None = None, batch_size: int = 32, bar: AgreementBar | None = None,
                     save: bool = True, progress: Callable[[str], None] | None = None) -> BenchResult:
    """Time each backend on ``texts`` (embedders) or on pairs of neighbouring texts (CrossEncoders), compare with
    torch float32, recommend the fastest that passes ``bar`` and (``save``) keep the result for ``backend="auto"``.

    Each backend runs the same inputs with the same batch size after one warm-up batch; torch runs first."""
    import torch

    bar = bar or AgreementBar()
    if kind not in ("embedder", "cross-encoder"):
        raise ConfigError(f"kind {kind!r}: expected 'embedder' or 'cross-encoder'.")
    if len(texts) < 2:
        raise InputError(f"bench-backends needs at least 2 texts to compare similarities; got {len(texts)}.")
    names = list(backends) if backends is not None else available_backends()
    unknown = [name for name in names if name not in MEASURED]
    if unknown:
        raise ConfigError(f"backends {unknown}: choose from {list(MEASURED)}.")
    chosen: list[BackendName] = [b for b in MEASURED if b == "torch" or b in names]  # torch first: the reference
    folder = resolve_model_dir(model_name_or_path)
    result = BenchResult(model=str(model_name_or_path), kind=kind, cpu=cpu_info().summary,
                         threads=torch.get_num_threads(), inputs=len(texts), batch_size=batch_size)
    reference: np.ndarray | None = None
    for backend in chosen:
        if progress is not None:
            progress(backend)
        row, values = _measure_one(str(folder), backend, kind, texts, batch_size)
        if values is not None and reference is None:
            reference = values
        if values is not None and reference is not None:
            _agreement(row, values, reference, kind)
            row.passes = backend == "torch" or _passes(row, bar, kind)
        result.rows.append(row)
    passing = [row for row in result.rows if row.passes and row.per_second]
    result.choice = max(passing, key=lambda row: row.per_second or 0.0).backend if passing else "torch"
    if save:
        save_choice(folder, kind, result.to_dict())
    return result


def _measure_one(folder: str, name: BackendName, kind: str, texts: Sequence[str],
                 batch_size: int) -> tuple[BackendRow, np.ndarray | None]:
    from omnivec.models.cross_encoder import CrossEncoder
    from omnivec.models.embedder import Embedder

    row = BackendRow(backend=name)
    start = time.perf_counter()
    try:
        model: Any = (Embedder if kind == "embedder" else CrossEncoder)(folder, backend=name, device="cpu")
    except (ModelLoadError, ConfigError, ImportError) as exc:
        row.error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        return row, None
    row.prepare_s = time.perf_counter() - start

    def run(inputs: Sequence[str]) -> np.ndarray:
        if kind == "embedder":
            return np.asarray(model.encode(list(inputs), batch_size=batch_size, convert_to_numpy=True), np.float64)
        pairs = [(inputs[i], inputs[(i + 1) % len(inputs)]) for i in range(len(inputs))]
        return np.asarray(model.predict(pairs, batch_size=batch_size, convert_to_numpy=True), np.float64)

    try:
        run(texts[:batch_size])  # warm-up: the first calls allocate and compile
        start = time.perf_counter()
        values = run(texts)
    except Exception as exc:  # a runtime failing on these inputs is this backend's result, not the whole run's
        row.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return row, None
    row.per_second = len(texts) / (time.perf_counter() - start)
    return row, values


def _agreement(row: BackendRow, values: np.ndarray, reference: np.ndarray, kind: str) -> None:
    if kind == "cross-encoder":  # scores: their order is what a reranker keeps
        row.spearman = spearman(values.reshape(-1), reference.reshape(-1))
        return
    a = values / np.linalg.norm(values, axis=1, keepdims=True)
    b = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    cosines = np.sum(a * b, axis=1)
    row.mean_cosine, row.min_cosine = float(cosines.mean()), float(cosines.min())
    n = min(len(a), PAIRS_FOR_SPEARMAN)
    upper = np.triu_indices(n, k=1)
    row.spearman = spearman((a[:n] @ a[:n].T)[upper], (b[:n] @ b[:n].T)[upper])


def _passes(row: BackendRow, bar: AgreementBar, kind: str) -> bool:
    if row.spearman is None or row.spearman < bar.min_spearman:
        return False
    if kind == "cross-encoder":
        return True
    return (row.mean_cosine or 0.0) >= bar.min_mean_cosine and (row.min_cosine or 0.0) >= bar.min_cosine


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two equally long vectors (the Pearson correlation of their ranks)."""
    if a.shape != b.shape or a.size < 2:
        raise InputError(f"spearman needs two vectors of the same length >= 2; got {a.shape} and {b.shape}.")
    ranks = [np.argsort(np.argsort(x, kind="stable"), kind="stable").astype(np.float64) for x in (a, b)]
    ra, rb = (r - r.mean() for r in ranks)
    denominator = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denominator) if denominator else 1.0
