"""Vector store throughput and latency: LanceDB (embedded) and Qdrant local mode, same vectors, same queries.

Random L2-normalised 384-d float32 vectors (all-MiniLM-L6-v2's size) with KB-style payloads, written in upsert
calls of 512 records (the indexer's flush size). For each store and size: insert rate, exact search latency
(p50/p99 over 200 queries, k=10); for LanceDB at the largest size also the ANN index build time, indexed
search latency and recall@10 against numpy brute force. Random vectors have no cluster structure, the worst
case for IVF recall, so LanceDB's largest size is also run on clustered vectors (2,000 topics, queries near
stored points), closer to what embeddings look like. Qdrant local mode keeps every point in numpy and commits
each to SQLite, so its inserts are slow: past ``--qdrant-cap-s`` seconds of inserting it stops and reports
the size it reached.
Run: python bench/bench_store.py [--sizes 10000 100000] [--qdrant-cap-s 150]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from omnivec.kb.stores.base import Record, VectorStore

from omnivec.kb.stores.uri import open_store

DIM, BATCH, K = 384, 512, 10


def _vectors(rows: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(rows, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _clustered(rows: int, seed: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    """Points around 2,000 random topics, and queries that are perturbed stored points."""
    rng = np.random.default_rng(seed)
    unit = lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    noise = 0.9 / np.sqrt(DIM)
    topics = unit(rng.normal(size=(2000, DIM)))
    points = unit(topics[rng.integers(0, len(topics), rows)] + rng.normal(size=(rows, DIM)) * noise)
    return points, unit(points[rng.integers(0, rows, queries)] + rng.normal(size=(queries, DIM)) * noise)


def _records(vectors: np.ndarray, start: int) -> list[Record]:
    return [Record(f"r{start + i}", vector, {"file": f"/kb/dir{(start + i) % 100}/file{(start + i) // 20}.txt",
                                             "modality": "text", "kind": "text", "chunk": (start + i) % 20,
                                             "text": "a passage of about this length, stored alongside"})
            for i, vector in enumerate(vectors)]


def _insert(store: VectorStore, vectors: np.ndarray, cap_s: float | None) -> tuple[int, float]:
    """Rows written and seconds spent, stopping after ``cap_s`` seconds if given."""
    start = time.perf_counter()
    for offset in range(0, len(vectors), BATCH):
        store.upsert("bench", _records(vectors[offset:offset + BATCH], offset))
        if cap_s is not None and time.perf_counter() - start > cap_s:
            return offset + len(vectors[offset:offset + BATCH]), time.perf_counter() - start
    return len(vectors), time.perf_counter() - start


def _latency(store: VectorStore, queries: np.ndarray, vectors: np.ndarray) -> tuple[float, float, float]:
    """p50 and p99 in ms, and recall@K against brute force over ``vectors`` (the rows in the store)."""
    store.search("bench", queries[0], K)  # warm-up: opens files, loads the index
    times, recall = [], []
    for query in queries:
        start = time.perf_counter()
        hits = store.search("bench", query, K)
        times.append(time.perf_counter() - start)
        exact = {f"r{i}" for i in np.argpartition(-(vectors @ query), K)[:K]}
        recall.append(len(exact & {h.id for h in hits}) / K)
    p50, p99 = np.percentile(np.array(times) * 1e3, [50, 99])
    return float(p50), float(p99), float(np.mean(recall))


def _run(backend: str, size: int, data: str, queries: np.ndarray, vectors: np.ndarray, cap_s: float,
         index: bool) -> dict[str, str]:
    """One table row: a fresh store of ``backend`` filled with ``vectors``."""
    with tempfile.TemporaryDirectory() as tmp:
        uri = str(Path(tmp) / "v") if backend == "lancedb" else f"qdrant://{Path(tmp) / 'v'}"
        store = open_store(uri, ann_threshold=10**9)  # no index while inserting and for the exact searches
        store.ensure_collection("bench", DIM)
        written, seconds = _insert(store, vectors, cap_s if backend == "qdrant" else None)
        vectors = vectors[:written]
        reached = f"{written:,}" + ("" if written == size else f" (capped; of {size:,})")
        row = {"store": backend, "data": data, "rows": reached, "insert/s": f"{written / seconds:,.0f}"}
        p50, p99, _ = _latency(store, queries, vectors)
        row["exact p50/p99 ms"] = f"{p50:.1f} / {p99:.1f}"
        if index:
            store.ann_threshold = 1
            start = time.perf_counter()
            store.optimize("bench")
            row["index build s"] = f"{time.perf_counter() - start:.1f}"
            p50, p99, recall = _latency(store, queries, vectors)
            row["ANN p50/p99 ms"] = f"{p50:.1f} / {p99:.1f}"
            row["ANN recall@10"] = f"{recall:.3f}"
        store.close()
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--qdrant-cap-s", type=float, default=150.0)
    parser.add_argument("--backends", nargs="+", default=["lancedb", "qdrant"])
    args = parser.parse_args()
    warnings.simplefilter("ignore", UserWarning)  # qdrant-client's "local mode is slow past 20k points"

    largest = max(args.sizes)
    runs = [(backend, size, "random") for backend in args.backends for size in args.sizes]
    if "lancedb" in args.backends:
        runs.insert(len(args.sizes), ("lancedb", largest, "clustered"))
    rows = []
    for backend, size, data in runs:
        if data == "random":
            vectors, queries = _vectors(size, seed=2), _vectors(args.queries, seed=1)
        else:
            vectors, queries = _clustered(size, seed=3, queries=args.queries)
        index = backend == "lancedb" and size == largest
        rows.append(_run(backend, size, data, queries, vectors, args.qdrant_cap_s, index))
        print(rows[-1], flush=True)

    columns = ["store", "data", "rows", "insert/s", "exact p50/p99 ms", "index build s", "ANN p50/p99 ms",
               "ANN recall@10"]
    print(f"\n{DIM}-d vectors, upserts of {BATCH}, {args.queries} queries, k={K}\n")
    print("| " + " | ".join(columns) + " |")
    print("| " + " | ".join("---" for _ in columns) + " |")
    for row in rows:
        print("| " + " | ".join(row.get(c, "-") for c in columns) + " |")


if __name__ == "__main__":
    main()
