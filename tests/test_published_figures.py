"""Real-model figures: all-MiniLM-L6-v2 reproduces its published STS-benchmark score."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from scipy.stats import spearmanr


@pytest.mark.slow  # 2,758 sentences through MiniLM; the parity tests cover encode()
def test_stsb_test_spearman_is_82_03(minilm_embedder, shared_data):
    rows = []
    with open(shared_data / "stsb" / "sts-test.csv", encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            rows.append((row[5], row[6], float(row[4])))
    assert len(rows) == 1379
    model = minilm_embedder
    first = model.encode([r[0] for r in rows], batch_size=64)
    second = model.encode([r[1] for r in rows], batch_size=64)
    cosine = model.similarity_pairwise(first, second).numpy()
    spearman = spearmanr(cosine, np.array([r[2] for r in rows])).statistic * 100
    assert abs(spearman - 82.03) <= 0.01, spearman
