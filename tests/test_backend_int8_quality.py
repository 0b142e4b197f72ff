"""int8 on real data: all-MiniLM-L6-v2 through ``backend="onnx-int8"`` and ``"openvino-int8"`` (exports made on
first use for this CPU) keeps its STS-benchmark test Spearman at >= 81.6 (fp32: 82.03). SciFact nDCG@10 of each
path is in README.md (``bench/eval_backends_quality.py``; too long for the test suite)."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from scipy.stats import spearmanr

import omnivec

pytestmark = pytest.mark.slow  # two int8 exports of MiniLM and 2 x 2,758 sentences


@pytest.fixture(scope="module")
def minilm_copy(minilm_fp32_exports, tmp_path_factory) -> str:
    """A private copy (the int8 exports are written into the model folder) of MiniLM with its fp32 ONNX and OpenVINO
    graphs, made once per session (tests/fixtures/backend_exports.py): each int8 backend quantizes from those."""
    folder = tmp_path_factory.mktemp("int8-quality") / "all-MiniLM-L6-v2"
    shutil.copytree(minilm_fp32_exports, folder)
    return str(folder)


@pytest.mark.parametrize("backend", ["onnx-int8", "openvino-int8"])
def test_int8_keeps_the_stsb_spearman(backend, minilm_copy, shared_data):
    with open(shared_data / "stsb" / "sts-test.csv", encoding="utf-8") as f:
        rows = [(r[5], r[6], float(r[4])) for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    model = omnivec.Embedder(minilm_copy, backend=backend)
    assert model[0].backend == backend.removesuffix("-int8") and "int8" in model[0].model.path.name
    first = model.encode([r[0] for r in rows], batch_size=64)
    second = model.encode([r[1] for r in rows], batch_size=64)
    cosine = model.similarity_pairwise(first, second).numpy()
    spearman = spearmanr(cosine, np.array([r[2] for r in rows])).statistic * 100
    assert 81.6 <= spearman <= 82.5, spearman  # above: int8 cannot be better than fp32 by chance this much
