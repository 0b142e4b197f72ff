"""Shared helpers for the benchmark scripts: real-word texts and a fair timer."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Callable

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def mixed_length_texts(n: int, min_words: int = 5, max_words: int = 200, seed: int = 0) -> list[str]:
    """``n`` texts of uniformly mixed length, cut from SciFact abstracts (or a synthetic vocabulary)."""
    rng = random.Random(seed)
    corpus = SHARED_DATA / "scifact" / "corpus.jsonl"
    words: list[str] = []
    if corpus.is_file():
        with open(corpus, encoding="utf-8") as f:
            for line in f:
                words.extend(json.loads(line)["text"].split())
                if len(words) > 300_000:
                    break
    else:
        vocab = [f"{a}{b}" for a in ("pro", "con", "bio", "neo", "geo") for b in ("tein", "cell", "gene", "site", "form")]
        words = [rng.choice(vocab) for _ in range(300_000)]
    texts = []
    for _ in range(n):
        length = rng.randint(min_words, max_words)
        start = rng.randrange(0, len(words) - length)
        texts.append(" ".join(words[start : start + length]))
    return texts


def best_of(fn: Callable[[], object], repeats: int = 3) -> tuple[float, object]:
    """Best wall time of ``repeats`` runs (after one warm-up), and the last result."""
    fn()
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def rate_after_warmup(fn: Callable[[list], object], items: list, repeats: int = 1,
                      warmup: int = 64) -> tuple[float, object]:
    """Items per second of the best of ``repeats`` full runs of ``fn(items)`` after a warm-up on the first
    ``warmup`` items (cheaper than ``best_of``'s full warm-up run), and the last result."""
    fn(items[:warmup])
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn(items)
        best = min(best, time.perf_counter() - start)
    return len(items) / best, result
