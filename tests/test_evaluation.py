"""omnivec.train.evaluation: metric definitions by hand, evaluators against sentence-transformers' (1e-5)."""

from __future__ import annotations

import csv
import json
from itertools import islice
from math import log2

import pytest
import torch

import omnivec
from omnivec.errors import InputError
from omnivec.train.evaluation import (
    EmbeddingSimilarityEvaluator,
    InformationRetrievalEvaluator,
    RerankingEvaluator,
    SequentialEvaluator,
    STSEvaluator,
)
from omnivec.train.evaluation import metrics as M
from omnivec.train.evaluation.beir import load_beir

TOL = 1e-5
KS = [1, 3, 5, 10, 100]


# -- metrics by hand ------------------------------------------------------------------------------
def test_ndcg_binary_graded_and_cut():
    ranked = ["a", "b", "c", "d"]
    assert M.ndcg_at_k(ranked, {"b", "d"}, 10) == pytest.approx((1 / log2(3) + 1 / log2(5)) / (1 + 1 / log2(3)))
    assert M.ndcg_at_k(ranked, {"b", "d"}, 2) == pytest.approx((1 / log2(3)) / (1 + 1 / log2(3)))
    # Graded: "e" is relevant but not retrieved, grade 0 means not relevant.
    graded = {"a": 1, "c": 3, "e": 2, "b": 0}
    dcg, idcg = 1 / log2(2) + 3 / log2(4), 3 / log2(2) + 2 / log2(3) + 1 / log2(4)
    assert M.ndcg_at_k(ranked, graded, 10) == pytest.approx(dcg / idcg)
    assert M.ndcg_at_k(ranked, {"z": 0}, 10) == 0.0


def test_mrr_recall_precision_accuracy_map():
    ranked, relevant = ["a", "b", "c", "d", "e"], {"b", "d", "x"}
    assert M.mrr_at_k(ranked, relevant, 5) == pytest.approx(1 / 2)
    assert M.mrr_at_k(ranked, relevant, 1) == 0.0
    assert M.recall_at_k(ranked, relevant, 4) == pytest.approx(2 / 3)
    assert M.precision_at_k(ranked, relevant, 10) == pytest.approx(2 / 10)  # k, not the list length
    assert (M.accuracy_at_k(ranked, relevant, 1), M.accuracy_at_k(ranked, relevant, 2)) == (0.0, 1.0)
    # AP@k: precision at each relevant rank, over min(k, #relevant).
    assert M.average_precision_at_k(ranked, relevant, 5) == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert M.average_precision_at_k(ranked, relevant, 2) == pytest.approx((1 / 2) / 2)
    with pytest.raises(ValueError, match="k must be"):
        M.mrr_at_k(ranked, relevant, 0)


def test_ties_keep_the_given_order():
    assert M.rank_by_scores(["a", "b", "c", "d"], [0.5, 0.9, 0.5, 0.9]) == ["b", "d", "a", "c"]


class _Fixed:
    """A stand-in embedder whose documents 0..5 all tie for the query, so tie-breaking decides."""

    def encode_query(self, inputs, **kwargs):
        return torch.tensor([[1.0, 0.0]] * len(inputs))

    def encode_document(self, inputs, **kwargs):
        return torch.tensor([[1.0, 0.0] if int(doc) < 6 else [0.0, 1.0] for doc in inputs])


@pytest.mark.parametrize("chunk", [1, 4, 100])
def test_retrieval_ties_follow_corpus_order_in_any_chunking(chunk):
    corpus = {f"d{i}": str(i) for i in [9, 3, 7, 0, 5, 8, 1, 2, 4, 6]}
    ev = InformationRetrievalEvaluator({"q": "q"}, corpus, {"q": {"d4"}}, k_values=[3], mrr_at_k=[3],
                                       ndcg_at_k=[3], map_at_k=[3], corpus_chunk_size=chunk)
    assert ev.retrieve(_Fixed()) == [["d3", "d0", "d5"]]


# -- retrieval on a SciFact slice, against sentence-transformers ------------------------------------
@pytest.fixture(scope="module")
def minilm(minilm_embedder, minilm_st_model):
    return minilm_embedder, minilm_st_model


# 300 SciFact abstracts through MiniLM in both libraries; the metric and tie tests above cover the evaluator
@pytest.mark.slow
def test_retrieval_matches_sentence_transformers(shared_data, minilm):
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator as Peer

    ours_model, peer_model = minilm
    ev = InformationRetrievalEvaluator.from_beir(shared_data / "scifact", max_queries=50, max_corpus=300,
                                                 k_values=KS, corpus_chunk_size=150)
    assert len(ev.query_ids) == 50 and len(ev.corpus) == 300 and ev.name == "scifact-test"
    first = json.loads((shared_data / "scifact" / "corpus.jsonl").read_text().splitlines()[0])
    assert ev.corpus[0] == f"{first['title']} {first['text']}"
    peer_ev = Peer(dict(zip(ev.query_ids, ev.queries, strict=True)), dict(zip(ev.corpus_ids, ev.corpus, strict=True)),
                   {qid: set(docs) for qid, docs in ev.relevant_docs.items()}, accuracy_at_k=KS,
                   precision_recall_at_k=KS, name=ev.name, write_csv=False)
    saved = peer_model.max_seq_length
    ours_model.max_seq_length = peer_model.max_seq_length = 128  # abstracts run past 256 tokens: halve the time
    try:
        ours, peer = ev(ours_model), peer_ev(peer_model)
    finally:
        ours_model.max_seq_length = peer_model.max_seq_length = saved
    assert ours.keys() == peer.keys() and len(ours) == 3 * len(KS) + 3  # the same keys: scifact-test_cosine_ndcg@10...
    for key, value in ours.items():
        assert value == pytest.approx(peer[key], abs=TOL), key
    assert ev.primary_metric == peer_ev.primary_metric == "scifact-test_cosine_ndcg@10"
    assert ours[ev.primary_metric] > 0.5


def _write_beir(folder, qrels_lines):
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in [
        {"_id": "d1", "title": "Cats", "text": "Cats purr."}, {"_id": "d2", "title": "", "text": "Dogs bark."},
        {"_id": 3, "text": "Fish swim."}]) + "\n")
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "purring"}\n{"_id": "q2", "text": "unjudged"}\n'
                                          '{"_id": "q3", "text": "only zero"}\n')
    (folder / "qrels" / "dev.tsv").write_text("\n".join(qrels_lines) + "\n")


def test_beir_folder_layout_grades_and_errors(tmp_path):
    _write_beir(tmp_path / "ok", ["query-id\tcorpus-id\tscore", "q1\td1\t2", "q1\t3\t1", "q1\td2\t0", "q3\td2\t0"])
    data = load_beir(tmp_path / "ok", split="dev")
    assert data.corpus == {"d1": "Cats Cats purr.", "d2": "Dogs bark.", "3": "Fish swim."}
    assert data.queries == {"q1": "purring"} and data.qrels == {"q1": {"d1": 2, "3": 1}}
    assert load_beir(tmp_path / "ok", split="dev", max_corpus=1).corpus.keys() == {"d1", "3"}

    _write_beir(tmp_path / "bad", ["query-id\tcorpus-id\tscore", "q1\td1\t1", "q1 d2 1"])
    with pytest.raises(InputError, match=r"dev\.tsv line 3: expected 3 tab-separated columns"):
        load_beir(tmp_path / "bad", split="dev")
    (tmp_path / "bad" / "qrels" / "dev.tsv").write_text("q\tc\tscore\nq1\td1\thigh\n")
    with pytest.raises(InputError, match=r"dev\.tsv line 2: score 'high' is not an integer"):
        load_beir(tmp_path / "bad", split="dev")
    with pytest.raises(InputError, match=r"qrels-test\.tsv"):
        load_beir(tmp_path / "bad", split="test")
    (tmp_path / "bad" / "qrels" / "dev.tsv").write_text("q1\td1\t1\n")  # headerless is fine too
    (tmp_path / "bad" / "corpus.jsonl").write_text('{"_id": "d1", "text": "x"}\n{"_id": "d2", "text": \n')
    with pytest.raises(InputError, match=r"corpus\.jsonl line 2: not valid JSON"):
        load_beir(tmp_path / "bad", split="dev")
    with pytest.raises(InputError, match="does not exist"):
        load_beir(tmp_path / "missing")


# -- STS ------------------------------------------------------------------------------------------
def _sts_dev(shared_data, n=300):
    with open(shared_data / "stsb" / "sts-dev.csv", encoding="utf-8") as f:
        rows = list(islice(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), n))
    return [r[5] for r in rows], [r[6] for r in rows], [float(r[4]) for r in rows]


# 600 STS sentences through MiniLM in both libraries, then 200 for a chosen list of functions; the small
# STSEvaluator tests cover the evaluator
@pytest.mark.slow
def test_sts_matches_sentence_transformers(shared_data, minilm):
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator as Peer

    ours_model, peer_model = minilm
    s1, s2, scores = _sts_dev(shared_data)
    # The default functions on 300 pairs; a chosen list (its keys and primary metric) on the first 100 of them.
    for names, pairs in ((None, 300), (["cosine", "dot", "manhattan"], 100)):
        a, b, gold = s1[:pairs], s2[:pairs], scores[:pairs]
        ev = STSEvaluator(a, b, gold, name="sts-dev", similarity_fn_names=names)
        ours = ev(ours_model)
        peer_ev = Peer(a, b, gold, name="sts-dev", similarity_fn_names=names, write_csv=False)
        peer = peer_ev(peer_model)
        assert ours.keys() == peer.keys()
        for key, value in ours.items():
            assert value == pytest.approx(peer[key], abs=TOL), key
        assert ev.primary_metric == peer_ev.primary_metric
        assert ours["sts-dev_spearman_cosine"] > 0.7, pairs


def test_sts_length_mismatch_names_the_lists():
    with pytest.raises(InputError, match="sentences1, sentences2 and scores.*3, 2 and 3"):
        EmbeddingSimilarityEvaluator(["a", "b", "c"], ["a", "b"], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="similarity_fn_name 'cos'"):
        EmbeddingSimilarityEvaluator(["a", "b"], ["a", "b"], [1.0, 2.0], similarity_fn_names=["cos"])


# -- reranking ------------------------------------------------------------------------------------
SAMPLES = [
    {"query": "what do cats do", "positive": ["cats purr on the sofa"],
     "documents": ["dogs bark at night", "cats purr on the sofa", "fish swim", "birds sing"]},
    {"query": "capital of france", "positive": ["paris is the capital of france", "paris is in france"],
     "documents": ["berlin is in germany", "rome is old", "paris is in france", "the sun is hot", "snow"]},
    {"query": "protein binding", "positive": ["the protein binds the receptor"],
     "documents": ["cells divide", "mice eat cheese", "the weather is sunny"]},  # positive missing
    {"query": "guitar music", "positive": ["a man plays guitar on stage"],
     "negative": ["the quick brown fox", "a cat sleeps", "search engines embed queries"]},
    {"query": "nothing relevant", "positive": [], "documents": ["a", "b c"]},
]


@pytest.fixture(scope="module")
def reranker_dir(minilm_dir, st, tmp_path_factory):
    # MiniLM's trained encoder under a seeded random head: the tiny random BERT scores all pairs within ~1e-5
    # of each other, so float ties (which sklearn averages and omnivec breaks by order) would decide the order.
    model = st.CrossEncoder(minilm_dir, num_labels=1, device="cpu")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "classifier" in name:
                param.copy_(torch.randn(param.shape, generator=generator) if param.dim() > 1 else 0 * param)
    folder = tmp_path_factory.mktemp("reranker")
    model.save(str(folder))  # both libraries then load the very same head
    return str(folder)


@pytest.mark.parametrize("always", [True, False])
def test_reranking_matches_sentence_transformers(reranker_dir, st, always):
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator as Peer

    samples = SAMPLES if always else [s for s in SAMPLES if "negative" not in s]  # as sentence-transformers allows
    ev = RerankingEvaluator(samples, name="rr", at_k=3, always_rerank_positives=always)
    ours = ev(omnivec.CrossEncoder(reranker_dir, device="cpu"))
    peer_ev = Peer(samples, name="rr", at_k=3, always_rerank_positives=always, write_csv=False)
    peer = peer_ev(st.CrossEncoder(reranker_dir, device="cpu"))
    assert ours.keys() == peer.keys() == {f"rr_{p}{m}" for p in ("", "base_") for m in ("map", "mrr@3", "ndcg@3")}
    for key, value in ours.items():
        assert value == pytest.approx(peer[key], abs=TOL), key
    assert ev.primary_metric == peer_ev.primary_metric == "rr_ndcg@3"
    assert 0 < ours["rr_base_map"] < 1


def test_reranking_an_embedder_matches_sentence_transformers(minilm):
    from sentence_transformers.sentence_transformer.evaluation import RerankingEvaluator as Peer

    ours_model, peer_model = minilm
    # The embedder peer takes positive/negative samples and skips ones without either.
    as_negatives = [{"query": s["query"], "positive": s["positive"],
                     "negative": s.get("negative") or [d for d in s["documents"] if d not in s["positive"]]}
                    for s in SAMPLES if s["positive"]]
    ours = RerankingEvaluator(as_negatives, name="emb", at_k=3)(ours_model)
    peer = Peer(as_negatives, name="emb", at_k=3, write_csv=False)(peer_model)
    for metric in ("map", "mrr@3", "ndcg@3"):
        assert ours[f"emb_{metric}"] == pytest.approx(peer[f"emb_{metric}"], abs=TOL), metric
    assert ours["emb_mrr@3"] > 0.5


def test_reranking_and_sequential_errors(minilm):
    with pytest.raises(InputError, match="Sample 0 needs exactly one of 'documents' and 'negative'"):
        RerankingEvaluator([{"query": "q", "positive": ["p"]}])
    a = STSEvaluator(["x", "y"], ["x", "z"], [1.0, 0.0], name="a")
    b = STSEvaluator(["x", "y"], ["y", "z"], [0.0, 1.0], name="b")
    merged = SequentialEvaluator([a, b])
    results = merged(minilm[0])
    assert set(results) == {"a_pearson_cosine", "a_spearman_cosine", "b_pearson_cosine", "b_spearman_cosine"}
    assert merged.primary_metric == "b_spearman_cosine"
    with pytest.raises(ValueError, match="distinct names"):
        SequentialEvaluator([a, a])(minilm[0])
