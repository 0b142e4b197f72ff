"""A 1 MB text is tokenized within a character bound (issue 12): bounded memory, and the same vector as its start."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

import omnivec
from omnivec.modules.transformer import CHARS_PER_TOKEN_BOUND

ENCODE_MEMORY = """
import resource, sys, omnivec
model = omnivec.Embedder(sys.argv[1], device="cpu")
model.encode(["warm up"])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
model.encode(["router " * 150_000])  # 1 MB
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_encoding_a_1_mb_text_stays_in_bounded_memory(minilm_dir):
    """Peak RSS growth measured in a subprocess: under 60 MB (measured: about 12; 150 MB before the bound)."""
    out = subprocess.run([sys.executable, "-c", ENCODE_MEMORY, minilm_dir], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) < 60, out.stdout


def test_the_bound_keeps_what_truncation_keeps(minilm_dir):
    model = omnivec.Embedder(minilm_dir, device="cpu")
    bound = model.max_seq_length * CHARS_PER_TOKEN_BOUND
    long_text = "the cat sat on the mat. " * 100_000
    np.testing.assert_allclose(model.encode(long_text), model.encode(long_text[:bound]), atol=1e-6)
    np.testing.assert_allclose(model.encode(long_text), model.encode(long_text[:2000]), atol=1e-6)
