"""How the KB's fusion defaults were chosen: BEIR SciFact test queries (300) against a KB of its corpus indexed with
`omnivec index` (all-MiniLM-L6-v2 text space + the lexical space), nDCG@10 per fusion method and weight.

Each query's per-space lists are fetched once, as `Searcher.search` fetches them (top `--candidates` chunks per
space), then fused with each setting by `kb.fusion.fuse`; a document counts once, at its best chunk.

    omnivec index ../shared/data/scifact/corpus.jsonl --kb /tmp/scifact-kb --config kb.toml   # [spaces] text = MiniLM
    .venv/bin/python bench/eval_fusion.py --kb /tmp/scifact-kb --config kb.toml
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from _common import SHARED_DATA

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kb", required=True)
    parser.add_argument("--config")
    parser.add_argument("--candidates", type=int, default=50)
    args = parser.parse_args()
    from omnivec.kb.fusion import FusionSettings, fuse
    from omnivec.kb.search import _query_input
    from omnivec.kb.settings import kb_settings
    from omnivec.kb.search import Searcher
    from omnivec.train.evaluation.beir import read_qrels
    from omnivec.train.evaluation.metrics import ndcg_at_k

    scifact = SHARED_DATA / "scifact"
    qrels = read_qrels(scifact / "qrels-test.tsv")
    queries = [json.loads(line) for line in (scifact / "queries.jsonl").read_text().splitlines() if line.strip()]
    queries = [q for q in queries if q["_id"] in qrels]
    kb_dir, config = kb_settings(args.kb, args.config, existing=True)
    searcher = Searcher(Path(kb_dir), config)
    lists = []
    for query in queries:
        per_space = {space.name: space.search(searcher.store, _query_input(query["text"], None), args.candidates, None)
                     for space in searcher.spaces if space.takes_query("text")}
        lists.append((query["_id"], per_space))
    searcher.close()

    def ndcg(settings: FusionSettings, spaces: tuple[str, ...], part: int | None = None) -> float:
        """Mean nDCG@10 over all queries, or over one half (``part`` 0: even positions, 1: odd)."""
        chosen = lists if part is None else lists[part::2]
        total = 0.0
        for qid, per_space in chosen:
            fused = fuse({name: per_space[name] for name in spaces}, settings)
            ranked = list(dict.fromkeys(f.hit.payload.get("record") or f.id for f in fused))[:10]
            total += ndcg_at_k(ranked, qrels[qid], 10)
        return total / len(chosen)

    print(f"SciFact test, {len(lists)} queries, {args.candidates} candidates per space, nDCG@10:")
    print(f"  dense (text) alone       {ndcg(FusionSettings(), ('text',)):.4f}")
    print(f"  lexical (BM25) alone     {ndcg(FusionSettings(), ('lexical',)):.4f}")
    both = ("text", "lexical")
    for k in (10, 30, 60, 100):
        print(f"  rrf k={k:<3}               {ndcg(FusionSettings('rrf', k), both):.4f}")
    # the halves: a weight chosen on one half of the queries should hold on the other (there are no train qrels)
    for lexical in (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7):
        weights = {"text": round(1 - lexical, 2), "lexical": lexical}
        settings = FusionSettings('convex', 60, weights)
        print(f"  convex text {weights['text']:.2f} / lexical {lexical:.2f}  {ndcg(settings, both):.4f}  "
              f"(halves {ndcg(settings, both, 0):.4f} / {ndcg(settings, both, 1):.4f})")
    for lexical in (0.5, 0.6, 0.7):
        weights = {"text": round(1 - lexical, 2), "lexical": lexical}
        print(f"  rrf k=60 text {weights['text']:.1f} / lexical {lexical:.1f}  {ndcg(FusionSettings('rrf', 60, weights), both):.4f}")


if __name__ == "__main__":
    main()
