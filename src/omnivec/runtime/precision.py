"""Embedding precision: Matryoshka truncation and int8/uint8/binary quantization."""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np

from omnivec.errors import InputError

logger = logging.getLogger(__name__)

Precision = Literal["float32", "int8", "uint8", "binary", "ubinary"]
PRECISIONS: tuple[str, ...] = ("float32", "int8", "uint8", "binary", "ubinary")


def _numpy(x: Any) -> Any:
    """A torch tensor (on any device, bfloat16 too) as a NumPy array; anything else as it is."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # duck-typed, so this module needs no torch import
        x = x.detach()
        return (x.float() if str(x.dtype) == "torch.bfloat16" else x).cpu().numpy()
    return x


def quantize_embeddings(
    embeddings: Any,
    precision: Precision,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
) -> np.ndarray:
    """Quantize float embeddings (a NumPy array, a torch tensor, or a list of either's rows).

    int8/uint8 map each dimension's [min, max] (from ``ranges``, ``calibration_embeddings`` or the
    embeddings themselves) onto 256 buckets; binary/ubinary pack the sign bits, 8 dimensions a byte.
    """
    if precision not in PRECISIONS:
        raise InputError(f"precision {precision!r} is not one of {PRECISIONS}.")
    if isinstance(embeddings, list):
        embeddings = [_numpy(e) for e in embeddings]
    embeddings = np.asarray(_numpy(embeddings))
    if embeddings.dtype in (np.int8, np.uint8):
        raise InputError("Embeddings to quantize must be floats, not already int8/uint8.")
    if precision == "float32":
        return embeddings.astype(np.float32)
    if precision in ("binary", "ubinary"):
        packed = np.packbits(embeddings > 0, axis=-1)
        return packed if precision == "ubinary" else (packed - 128).astype(np.int8)
    if ranges is None:
        calibration = embeddings if calibration_embeddings is None else np.asarray(calibration_embeddings)
        if calibration.ndim == 1 or calibration.shape[0] < 2:
            raise InputError(f"{precision} quantization needs ranges from at least 2 embeddings; "
                             "pass ranges= or calibration_embeddings=.")
        if calibration_embeddings is None and calibration.shape[0] < 100:
            logger.warning("%s quantization ranges computed from only %d embeddings; pass calibration_embeddings "
                           "for stable buckets.", precision, calibration.shape[0])
        ranges = np.vstack((calibration.min(axis=0), calibration.max(axis=0)))
    ranges = np.asarray(ranges, dtype=np.float32)
    starts = ranges[0]
    steps = (ranges[1] - starts) / 255
    steps = np.where(steps == 0, 1, steps)
    buckets = np.clip(np.floor((embeddings - starts) / steps), 0, 255)
    return buckets.astype(np.uint8) if precision == "uint8" else (buckets - 128).astype(np.int8)


def as_requested(embeddings: Any, precision: Precision, convert_to_numpy: bool, convert_to_tensor: bool,
                 single: bool) -> Any:
    """``encode``'s output from a (n, dim) float tensor: quantized to ``precision`` (over all n rows together), then
    a tensor (``convert_to_tensor``), an array (``convert_to_numpy``) or a list of row tensors; one row for a single
    input."""
    import torch

    result = embeddings
    if precision != "float32":
        result = torch.from_numpy(quantize_embeddings(_numpy(embeddings), precision))
    if not convert_to_tensor:
        result = _numpy(result) if convert_to_numpy else list(result)
    return result[0] if single else result
