"""Image encoding on every CPU backend: a CLIP ViT-B/32-sized model (random weights, built here) on the COCO-mini
photos, omnivec's torch, ONNX Runtime and OpenVINO paths (fp32 and int8) against sentence-transformers' torch fp32,
same process, same files, batch size and threads.

Each row: images/s (decode included), ratio to omnivec torch fp32 and to sentence-transformers, mean and minimum
cosine of its image vectors to omnivec torch fp32's (same decode, so only the backend differs). The int8 image tower
is calibrated (OpenVINO) on every other photo and
COCO captions (its text tower on the captions); that export's time is in the "prepare" column.

    .venv/bin/python bench/bench_backends_image.py [--batch-size 32] [--threads 2]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import rate_after_warmup, SHARED_DATA

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fixtures builds the checkpoint
os.environ.setdefault("HF_HUB_OFFLINE", "1")
BACKENDS = ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8")



def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from sentence_transformers import SentenceTransformer

    import omnivec
    from omnivec.models.exports import quantize_for
    from omnivec.runtime.cpu import cpu_info
    from tests.fixtures.multimodal_checkpoints import build_clip_b32

    photos = sorted(str(p) for p in (SHARED_DATA / "coco-mini").rglob("*.jpg"))
    print(f"CPU: {cpu_info().summary}\nthreads={args.threads} images={len(photos)} batch_size={args.batch_size} "
          f"torch={torch.__version__} load={os.getloadavg()[0]:.2f}\n")
    with tempfile.TemporaryDirectory() as work:
        folder = build_clip_b32(Path(work) / "clip-b32")
        peer = SentenceTransformer(str(folder), device="cpu")
        peer_rate, _ = timed(lambda p: peer.encode(p, batch_size=args.batch_size, show_progress_bar=False), photos,
                             args.repeats)
        del peer
        gc.collect()
        print(f"{'path':<40}{'images/s':>9}{'vs torch':>10}{'vs ST':>8}{'mean cos':>10}{'min cos':>9}{'prepare s':>11}")
        print(f"{'sentence-transformers torch fp32':<40}{peer_rate:>9.1f}{'-':>10}{'1.00x':>8}{'-':>10}{'-':>9}{'-':>11}")
        reference, torch_rate = None, None
        for backend in args.backends.split(","):
            start = time.perf_counter()
            if backend == "openvino-int8":  # a media tower calibrates on its own modality: texts and photos
                quantize_for(omnivec.Embedder(str(folder), device="cpu"), "openvino",
                             captions(len(photos)) + photos[::2])
            model = omnivec.Embedder(str(folder), backend=backend, device="cpu")
            prepare = time.perf_counter() - start
            rate, vectors = timed(lambda p: model.encode(p, batch_size=args.batch_size), photos, args.repeats)
            if reference is None:
                reference, torch_rate = vectors, rate
            cos = np.sum(vectors * reference, 1) / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1))
            print(f"{'omnivec ' + backend:<40}{rate:>9.1f}{rate / (torch_rate or rate):>9.2f}x{rate / peer_rate:>7.2f}x"
                  f"{cos.mean():>10.5f}{cos.min():>9.5f}{prepare:>11.1f}", flush=True)
            del model
            gc.collect()  # the previous backend's sessions and threads are gone before the next one is timed

def captions(n: int) -> list[str]:
    """The first ``n`` COCO captions of the photos, for the text tower's calibration."""
    data = json.loads((SHARED_DATA / "coco-mini" / "captions_val2017.json").read_text(encoding="utf-8"))
    return [a["caption"] for a in data["annotations"][:n]]


def timed(fn, items: list, repeats: int) -> tuple[float, np.ndarray]:
    rate, result = rate_after_warmup(fn, items, repeats, warmup=8)
    return rate, np.asarray(result)


if __name__ == "__main__":
    main()
