"""Fast import, a fast --help, and the command line's demo and encode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import omnivec


def _best_time(cmd: list[str], runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def test_import_is_fast_and_lazy():
    code = "import sys, omnivec; assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert _best_time([sys.executable, "-c", "import omnivec"]) < 0.5


def test_cli_help_is_fast():
    script = Path(sys.executable).parent / "omnivec"  # the console script pip installed
    assert script.is_file(), f"omnivec is not installed as a command next to {sys.executable}"
    cli = [str(script), "--help"]
    assert _best_time(cli) < 1.0
    assert "demo" in subprocess.run(cli, capture_output=True, text=True, check=True).stdout


def test_lazy_public_names():
    assert omnivec.SentenceTransformer is omnivec.Embedder
    assert {"Embedder", "Transformer", "Pooling", "Dense", "Normalize"} <= set(dir(omnivec))


@pytest.mark.slow  # `omnivec demo` in a subprocess loads a real model
def test_demo_prints_similarity_matrix(minilm_dir):
    out = subprocess.run([sys.executable, "-m", "omnivec.cli", "demo", "--sentences", "--model", minilm_dir],
                         capture_output=True, text=True, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}).stdout
    assert "384-d vectors" in out
    assert "most similar pair: [0] and [1]" in out  # the two sentences about a man eating


@pytest.mark.slow  # two `omnivec encode` subprocess runs, each loading MiniLM
def test_encode_command_matches_library(minilm_dir, tmp_path):
    target = tmp_path / "out.npy"
    subprocess.run([sys.executable, "-m", "omnivec.cli", "encode", "--model", minilm_dir, "-o", str(target), "hello", "world"],
                   check=True, capture_output=True)
    expected = omnivec.Embedder(minilm_dir, device="cpu").encode(["hello", "world"])
    np.testing.assert_allclose(np.load(target), expected, atol=1e-6)
    lines = subprocess.run([sys.executable, "-m", "omnivec.cli", "encode", "--model", minilm_dir], input="hi\nthere\n",
                           capture_output=True, text=True, check=True).stdout.splitlines()
    assert [json.loads(line)["text"] for line in lines] == ["hi", "there"]


def test_cli_reports_missing_model_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "omnivec.cli", "encode", "--model", str(tmp_path / "nope"), "x"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr
