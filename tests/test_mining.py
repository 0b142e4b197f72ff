"""mine_hard_negatives: row-for-row parity with sentence-transformers on real SciFact data and MiniLM, positives
never mined as negatives, the cross-encoder filter, seeded sampling, list-of-dicts input and error messages."""

from __future__ import annotations

import csv
import json
import logging
import random

import numpy as np
import pytest
import torch

import omnivec
from omnivec.errors import InputError
from omnivec.train import mining
from omnivec.train.mining import mine_hard_negatives


@pytest.fixture(scope="module")
def scifact(shared_data):
    """40 (query, relevant doc) pairs from the SciFact test qrels, and 300 other docs as extra corpus."""
    folder = shared_data / "scifact"
    queries = {r["_id"]: r["text"] for r in map(json.loads, open(folder / "queries.jsonl"))}
    docs = {r["_id"]: (r["title"] + ". " + r["text"])[:200] for r in map(json.loads, open(folder / "corpus.jsonl"))}
    with open(folder / "qrels-test.tsv") as f:
        qrels = list(csv.reader(f, delimiter="\t"))[1:41]
    pairs = [{"query": queries[q], "answer": docs[d]} for q, d, _ in qrels]
    assert len({p["query"] for p in pairs}) < len(pairs)  # some queries have several positives
    used = {d for _, d, _ in qrels}
    return pairs, [text for key, text in docs.items() if key not in used][:300]


class _Memo:
    """An Embedder that embeds each (text list, options) once: these tests check mining, and the CPU is slow."""

    def __init__(self, model):
        self.model, self.seen = model, {}
        self.similarity, self.similarity_pairwise = model.similarity, model.similarity_pairwise

    def _run(self, name, texts, **kwargs):
        key = (name, tuple(texts), tuple(sorted(kwargs.items())))
        if key not in self.seen:
            self.seen[key] = getattr(self.model, name)(texts, **kwargs)
        return self.seen[key]

    def encode_query(self, texts, **kwargs):
        return self._run("encode_query", texts, **kwargs)

    def encode_document(self, texts, **kwargs):
        return self._run("encode_document", texts, **kwargs)


@pytest.fixture(scope="module")
def models(minilm_embedder, minilm_st_model):
    return _Memo(minilm_embedder), minilm_st_model


@pytest.fixture(scope="module")
def peer_mine(st, tmp_path_factory):
    from sentence_transformers.util import mine_hard_negatives as peer

    cache = str(tmp_path_factory.mktemp("st-embeddings"))  # the oracle embeds the same texts once

    def run(dataset, model, **kwargs):
        return peer(dataset, model, verbose=False, cache_folder=cache, **kwargs)

    return run


@pytest.fixture(scope="module")
def cross_encoders(bert_dir, st, tmp_path_factory):
    # The tiny BERT's classifier head is random on load: save it once so both libraries read the same weights.
    # Its default init scores every pair within ~1e-5 (ranks would tie), so widen the weights first.
    peer = st.CrossEncoder(bert_dir, num_labels=1, max_length=64, device="cpu")
    torch.manual_seed(0)
    with torch.no_grad():
        for name, weight in peer.model.named_parameters():
            if "LayerNorm" not in name:
                weight.normal_(std=0.2)
    folder = str(tmp_path_factory.mktemp("ce"))
    peer.save(folder)
    return omnivec.CrossEncoder(folder, device="cpu"), st.CrossEncoder(folder, device="cpu")


@pytest.mark.parametrize("kwargs", [
    {"output_format": "triplet"},
    {"output_format": "n-tuple", "num_negatives": 5, "chunked": True},
    {"range_min": 3, "range_max": 20},
    {"absolute_margin": 0.05, "output_format": "n-tuple"},
    {"relative_margin": 0.1, "max_score": 0.6},
    {"output_format": "labeled-pair", "min_score": 0.3},
    {"output_format": "labeled-list", "output_scores": True},
    {"include_positives": True, "use_corpus": False, "range_max": 60},  # a pool beyond the corpus is padded
])
def test_rows_match_sentence_transformers(kwargs, scifact, models, peer_mine, monkeypatch, caplog):
    from datasets import Dataset

    caplog.set_level(logging.INFO, logger="omnivec.train.mining")
    pairs, others = scifact
    kwargs = dict(kwargs)
    if kwargs.pop("chunked", False):  # force many corpus chunks and anchor blocks through the top-k merge
        monkeypatch.setattr(mining, "_CORPUS_CHUNK", 7)
        monkeypatch.setattr(mining, "_SCORE_BUDGET", 20)
    corpus = others if kwargs.pop("use_corpus", True) else None
    dataset = Dataset.from_list(pairs)
    ours = mine_hard_negatives(dataset, models[0], corpus=corpus, **kwargs)
    peer = peer_mine(dataset, models[1], corpus=corpus, **kwargs)
    assert isinstance(ours, Dataset) and ours.column_names == peer.column_names
    ours, peer = ours.to_list(), peer.to_list()
    if kwargs.get("output_scores"):  # scores agree to float error; everything else exactly
        np.testing.assert_allclose([s for r in ours for s in r.pop("scores")],
                                   [s for r in peer for s in r.pop("scores")], atol=1e-5)
    assert len(ours) > 20 and ours == peer
    assert "Mean score: positives" in caplog.text
    if kwargs.get("output_format") == "n-tuple" and len(ours) < len(pairs):
        assert f"Dropped {len(pairs) - len(ours)} (anchor, positive) rows" in caplog.text


def test_random_sampling_is_seeded_and_matches_sentence_transformers(scifact, models, peer_mine):
    from datasets import Dataset

    pairs, others = scifact
    options = dict(corpus=others, sampling_strategy="random", range_max=15, num_negatives=2)
    first = mine_hard_negatives(pairs, models[0], seed=3, **options)
    assert isinstance(first, list) and all(isinstance(r, dict) for r in first)  # list in, list out
    assert mine_hard_negatives(Dataset.from_list(pairs), models[0], seed=3, **options).to_list() == first
    assert mine_hard_negatives(pairs, models[0], seed=4, **options) != first
    random.seed(3)  # the oracle samples from Python's global generator
    assert peer_mine(Dataset.from_list(pairs), models[1], **options).to_list() == first


def test_no_positive_of_an_anchor_is_its_negative(scifact, models):
    pairs, others = scifact
    anchor = pairs[0]["query"]
    hardest = mine_hard_negatives(pairs[:1], models[0], corpus=others, num_negatives=1)[0]["negative"]
    # The hardest negative becomes a second positive of the same anchor (plus a duplicated row).
    dataset = pairs + [{"query": anchor, "answer": hardest}, dict(pairs[0])]
    rows = mine_hard_negatives(dataset, models[0], corpus=others, num_negatives=4)
    positives: dict[str, set[str]] = {}
    for row in dataset:
        positives.setdefault(row["query"], set()).add(row["answer"])
    assert rows and all(r["negative"] not in positives[r["query"]] for r in rows)
    mine = [r for r in rows if r["query"] == anchor]
    assert {r["answer"] for r in mine} == positives[anchor] and len(mine) == 4 * len(positives[anchor])


@pytest.mark.slow  # the cross-encoder rescores thousands of SciFact pairs in both libraries
def test_cross_encoder_max_score_filters_false_negatives(scifact, models, cross_encoders, peer_mine):
    from datasets import Dataset

    pairs, others = scifact
    ours_ce, peer_ce = cross_encoders
    plain = mine_hard_negatives(pairs, models[0], corpus=others, num_negatives=5)
    plain_scores = ours_ce.predict([(r["query"], r["negative"]) for r in plain])
    threshold = float(np.median(plain_scores))  # so the filter has false negatives to remove
    rows = mine_hard_negatives(pairs, models[0], corpus=others, cross_encoder=ours_ce, max_score=threshold,
                               num_negatives=5)
    rescored = ours_ce.predict([(r["query"], r["negative"]) for r in rows])
    assert len(rows) > 20 and (rescored <= threshold + 1e-6).all()
    assert {(r["query"], r["negative"]) for r in rows} != {(r["query"], r["negative"]) for r in plain}
    peer = peer_mine(Dataset.from_list(pairs), models[1], corpus=others, cross_encoder=peer_ce, max_score=threshold,
                     num_negatives=5)
    assert peer.to_list() == rows


PAIRS = [{"q": "a", "p": "b", "x": "c"}, {"q": "d", "p": "e", "x": "f"}]


@pytest.mark.parametrize("dataset, kwargs, needle", [
    (PAIRS, {"anchor_column_name": "question"}, "'question'"),
    (PAIRS, {"positive_column_name": "answer"}, "'answer' (positive_column_name)"),
    ([{"q": "a"}], {}, "at least two"),
    (PAIRS, {"num_negatives": 0}, "num_negatives must be an integer >= 1"),
    (PAIRS, {"range_min": -1}, "range_min must be >= 0"),
    (PAIRS, {"range_min": 5, "range_max": 5}, "range_min must be smaller than range_max"),
    (PAIRS, {"range_max": 2, "num_negatives": 3}, "range_max - range_min >= num_negatives"),
    (PAIRS, {"output_format": "pairs"}, "'triplet', 'n-tuple', 'labeled-pair', 'labeled-list'"),
    (PAIRS, {"sampling_strategy": "best"}, "'top' or 'random'"),
    (PAIRS + [{"q": "g"}], {"positive_column_name": "x"}, "Row 2 has no column 'x'"),
    ([{"q": "a", "p": None}], {}, "Row 0, column 'p': expected a string, got NoneType"),
    (PAIRS, {"corpus": ["ok", 3]}, "corpus[1]: expected a string"),
    ([], {}, "empty"),
    ({"q": ["a"], "p": ["b"]}, {}, "expected a datasets.Dataset or a list of dicts"),
    ([{"q": "a", "negative": "b"}], {}, "would collide"),
])
def test_errors_name_what_was_expected(dataset, kwargs, needle):
    with pytest.raises(InputError) as caught:  # every check runs before the model is touched
        mine_hard_negatives(dataset, model=None, **kwargs)
    assert needle in str(caught.value)
