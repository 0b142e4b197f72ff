"""A 1 MB text is tokenized within a character bound (issue 12): bounded memory, and the same vector as its start."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

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


@pytest.mark.slow  # memory measured in a subprocess; test_the_bound_keeps_what_truncation_keeps covers the cut
def test_encoding_a_1_mb_text_stays_in_bounded_memory(minilm_dir):
    """Peak RSS growth measured in a subprocess: under 60 MB (measured: about 12; 150 MB before the bound)."""
    out = subprocess.run([sys.executable, "-c", ENCODE_MEMORY, minilm_dir], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) < 60, out.stdout


def test_the_bound_keeps_what_truncation_keeps(minilm_embedder):
    model = minilm_embedder
    bound = model.max_seq_length * CHARS_PER_TOKEN_BOUND
    long_text = "the cat sat on the mat. " * 100_000
    np.testing.assert_allclose(model.encode(long_text), model.encode(long_text[:bound]), atol=1e-6)
    np.testing.assert_allclose(model.encode(long_text), model.encode(long_text[:2000]), atol=1e-6)


def _left_truncating(bert_dir: str, folder) -> str:
    """A copy of the tiny BERT whose tokenizer truncates on the left (keeps a text's end)."""
    import json
    import shutil

    copy = folder / "bert-left"
    shutil.copytree(bert_dir, copy)
    config = json.loads((copy / "tokenizer_config.json").read_text())
    (copy / "tokenizer_config.json").write_text(json.dumps({**config, "truncation_side": "left"}))
    return str(copy)


# Far past the tiny BERT's 64 tokens x 32 characters: its start and its end differ.
LONG = "alpha beta gamma " * 2_000 + "delta epsilon zeta " * 12


def test_a_left_truncating_tokenizer_keeps_the_end_of_a_long_text(bert_dir, tmp_path, monkeypatch):
    """The character bound cuts on the side truncation drops: the vector equals the one computed without any cut
    (before, the start was kept, and truncation then kept the end of that start)."""
    import omnivec.modules.transformer as transformer

    model = omnivec.Embedder(_left_truncating(bert_dir, tmp_path), device="cpu")
    assert model[0].tokenizer.truncation_side == "left"
    cut = model.encode(LONG)
    monkeypatch.setattr(transformer, "CHARS_PER_TOKEN_BOUND", 10**9)  # no cut: the whole text is tokenized
    np.testing.assert_allclose(cut, model.encode(LONG), atol=1e-6)
    assert not np.allclose(cut, model.encode(LONG[:2000]), atol=1e-3)  # the start alone gives another vector


def test_a_left_truncating_reranker_scores_pairs_as_without_the_cut(bert_dir, tmp_path, monkeypatch):
    """Pairs' texts are cut to about the token limit on the side truncation drops. The texts (1.6 KB, ~300 tokens)
    are long enough to be cut, short enough to pair uncut as the reference (pair truncation of uncut texts costs
    memory out of proportion: 34 KB ones took over 20 GB)."""
    import omnivec.models.text_cut as text_cut

    reranker = omnivec.CrossEncoder(_left_truncating(bert_dir, tmp_path), num_labels=1, device="cpu")
    text = "alpha beta gamma " * 80 + "delta epsilon zeta " * 12
    pairs = [(text, "short document"), ("short query", text), (text, text[::-1])]
    tokenizer, limit = reranker.tokenizer, reranker.max_length

    def kept(some_pairs):  # the token ids the pairs' own truncation keeps
        return tokenizer(*map(list, zip(*some_pairs, strict=True)), truncation="longest_first", max_length=limit)["input_ids"]

    assert kept(reranker._cut_pairs(pairs)) == kept(pairs)
    cut = reranker.predict(pairs)
    monkeypatch.setattr(text_cut, "_cut", lambda value, *args: value)  # pairs tokenized whole
    np.testing.assert_allclose(cut, reranker.predict(pairs), atol=1e-5)


@pytest.mark.parametrize("side", ["left", "right"])
def test_cut_pairs_keep_what_longest_first_truncation_keeps(bert_dir, tmp_path, side):
    """Random pairs of long texts (past the character bound too, at small limits) at random limits: the token ids
    a pair's own "longest first" truncation keeps are the same with and without the cut. It gives the odd token
    to the longer text, so the cut must keep the texts' order, which retokenizing a cut text can change."""
    import random

    reranker = omnivec.CrossEncoder(_left_truncating(bert_dir, tmp_path), num_labels=1, device="cpu")
    tokenizer = reranker.tokenizer
    tokenizer.truncation_side = side
    rng = random.Random(0)
    words = ["alpha", "beta", "gamma", "unbelievable", "x", "qqqq", "tokenization", "ab", "é", "naïve", "😀"]

    def text(n: int) -> str:
        return " ".join(rng.choice(words) + rng.choice(["", "", "ing", "ness"]) for _ in range(n))

    for _ in range(60):
        reranker.max_length = limit = rng.randint(16, 80)
        pairs = [(text(rng.randint(1, 200)), text(rng.randint(1, 200))) for _ in range(4)]

        def kept(some_pairs, limit=limit):
            return tokenizer(*map(list, zip(*some_pairs, strict=True)), truncation="longest_first",
                             max_length=limit)["input_ids"]

        assert kept(reranker._cut_pairs(pairs)) == kept(pairs), (limit, pairs)
