"""Image encoding throughput: omnivec vs sentence-transformers on a CLIP ViT-B/32-sized model (random weights).

Encodes the COCO-mini photos (file paths) in one process, same batch size and thread count; prints
images/s, the ratio, peak memory above baseline, and how close the vectors are.
Run: python bench/bench_image_encode.py [--batch-size 32] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from _common import SHARED_DATA, best_of
from _memory import peak_rss_delta

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fixtures builds the checkpoint


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from sentence_transformers import SentenceTransformer

    import omnivec
    from tests.fixtures.multimodal_checkpoints import build_clip_b32

    photos = sorted(str(p) for p in (SHARED_DATA / "coco-mini").rglob("*.jpg"))
    with tempfile.TemporaryDirectory() as folder:
        path = str(build_clip_b32(Path(folder) / "clip-b32"))
        ours = omnivec.Embedder(path, device="cpu")
        peer = SentenceTransformer(path, device="cpu")
        run_ours = lambda: ours.encode(photos, batch_size=args.batch_size, show_progress_bar=False)  # noqa: E731
        run_peer = lambda: peer.encode(photos, batch_size=args.batch_size, show_progress_bar=False)  # noqa: E731
        run_ours(), run_peer()  # warm-up, so first-call allocations count for neither
        mem_ours, _ = peak_rss_delta(run_ours)
        mem_peer, _ = peak_rss_delta(run_peer)
        t_ours, e_ours = best_of(run_ours, args.repeats)
        t_peer, e_peer = best_of(run_peer, args.repeats)
        ours.fast_image_decode = False
        t_exact, e_exact = best_of(run_ours, args.repeats)

    n = len(photos)
    cosine = torch.nn.functional.cosine_similarity(torch.as_tensor(e_ours), torch.as_tensor(e_peer))
    print(f"images={n} batch_size={args.batch_size} threads={args.threads} torch={torch.__version__}")
    print(f"omnivec                          {n / t_ours:7.1f} images/s   peak +{mem_ours:6.0f} MiB")
    print(f"omnivec (fast_image_decode=False) {n / t_exact:6.1f} images/s")
    print(f"sentence-transformers            {n / t_peer:7.1f} images/s   peak +{mem_peer:6.0f} MiB")
    print(f"ratio (omnivec / sentence-transformers) = {t_peer / t_ours:.2f}x; exact decoding: {t_peer / t_exact:.2f}x")
    print(f"exact decoding max |difference| = {np.abs(e_exact - e_peer).max():.2e}; "
          f"fast decoding min cosine = {cosine.min():.5f}")


if __name__ == "__main__":
    main()
