"""omnivec.util against sentence_transformers.util on the same inputs: the same numbers (1e-5), the same return
types and structures."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from omnivec import util

MATRIX = ["cos_sim", "pytorch_cos_sim", "dot_score", "euclidean_sim", "manhattan_sim"]
PAIRWISE = ["pairwise_cos_sim", "pairwise_dot_score", "pairwise_euclidean_sim", "pairwise_manhattan_sim",
            "pairwise_angle_sim"]


@pytest.fixture(scope="module")
def st_util(st):
    return st.util


def _same(ours, theirs, atol: float = 1e-5) -> None:
    """Same type, dtype, shape and values."""
    assert type(ours) is type(theirs), (type(ours), type(theirs))
    if isinstance(theirs, torch.Tensor):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, (ours.dtype, theirs.dtype, ours.shape)
        torch.testing.assert_close(ours, theirs, atol=atol, rtol=0)
    elif isinstance(theirs, np.ndarray):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, atol=atol, rtol=0)
    else:
        assert ours == theirs


def _inputs(kind: str, rows: int, dim: int, seed: int):
    x = torch.randn(rows, dim, generator=torch.Generator().manual_seed(seed))
    if kind == "tensor":
        return x
    if kind == "numpy":
        return x.numpy()
    if kind == "list_of_tensors":
        return list(x)
    if kind == "list_of_arrays":
        return list(x.numpy())
    if kind == "list":
        return x.tolist()
    if kind == "float16":
        return x.half()
    if kind == "vector":
        return x[0]
    raise AssertionError(kind)


KINDS = ["tensor", "numpy", "list_of_tensors", "list_of_arrays", "list", "float16", "vector"]


@pytest.mark.parametrize("name", MATRIX)
@pytest.mark.parametrize("kind", KINDS)
def test_matrix_functions_match(st_util, name, kind):
    a, b = _inputs(kind, 5, 16, 0), _inputs(kind, 7, 16, 1)
    ours, theirs = getattr(util, name)(a, b), getattr(st_util, name)(a, b)
    _same(ours, theirs)
    assert ours.dim() == 2


@pytest.mark.parametrize("name", PAIRWISE)
@pytest.mark.parametrize("kind", [k for k in KINDS if k != "vector"])
@pytest.mark.parametrize("dim", [16, 15])  # an odd dimension: the AnglE halves are padded
def test_pairwise_functions_match(st_util, name, kind, dim):
    a, b = _inputs(kind, 6, dim, 2), _inputs(kind, 6, dim, 3)
    _same(getattr(util, name)(a, b), getattr(st_util, name)(a, b))


@pytest.mark.parametrize("name", [n for n in PAIRWISE if n != "pairwise_angle_sim"])
def test_pairwise_of_two_vectors_is_a_scalar(st_util, name):
    a, b = torch.randn(8), torch.randn(8)
    ours = getattr(util, name)(a, b)
    _same(ours, getattr(st_util, name)(a, b))
    assert ours.dim() == 0


def test_similarity_function_enum(st_util):
    ours, theirs = util.SimilarityFunction, st_util.SimilarityFunction
    a, b = torch.randn(3, 8), torch.randn(4, 8)
    for name in ("cosine", "dot", "euclidean", "manhattan"):
        assert ours(name).value == theirs(name).value == name
        _same(ours.to_similarity_fn(name)(a, b), theirs.to_similarity_fn(name)(a, b))
        _same(ours.to_similarity_pairwise_fn(ours(name))(a, a), theirs.to_similarity_pairwise_fn(name)(a, a))
    assert ours.DOT is ours.DOT_PRODUCT and ours.DOT_PRODUCT.value == theirs.DOT_PRODUCT.value
    assert set(ours.possible_values()) <= set(theirs.possible_values())
    with pytest.raises(ValueError):
        ours.to_similarity_fn("jaccard")
    # A str, so members go wherever omnivec takes a similarity name.
    from omnivec import similarity

    assert ours.COSINE == "cosine" and f"{ours.MANHATTAN}" == "manhattan"
    assert similarity.get(ours.EUCLIDEAN) is similarity.euclidean


def test_normalize_truncate_and_batch_to_device(st_util):
    x = torch.randn(4, 10)
    _same(util.normalize_embeddings(x), st_util.normalize_embeddings(x))
    sparse = x.relu().to_sparse()
    ours, theirs = util.normalize_embeddings(sparse), st_util.normalize_embeddings(sparse)
    assert ours.is_sparse and theirs.is_sparse
    _same(ours.to_dense(), theirs.to_dense())
    for emb in (x, x.numpy()):
        _same(util.truncate_embeddings(emb, 4), st_util.truncate_embeddings(emb, 4))
        _same(util.truncate_embeddings(emb, None), st_util.truncate_embeddings(emb, None))
    batch = {"input_ids": torch.ones(2, 3, dtype=torch.long), "text": ["a", "b"]}
    moved = util.batch_to_device(batch, torch.device("meta"))
    assert moved is batch and batch["input_ids"].device.type == "meta" and batch["text"] == ["a", "b"]


@pytest.mark.parametrize("score", ["cos_sim", "dot_score", "manhattan_sim"])
@pytest.mark.parametrize(("query_chunk", "corpus_chunk", "top_k"), [(100, 500000, 10), (3, 7, 5), (1, 4, 50)])
def test_semantic_search_matches(st_util, score, query_chunk, corpus_chunk, top_k):
    gen = torch.Generator().manual_seed(4)
    queries, corpus = torch.randn(11, 24, generator=gen), torch.randn(30, 24, generator=gen)
    ours = util.semantic_search(queries, corpus, query_chunk_size=query_chunk, corpus_chunk_size=corpus_chunk,
                                top_k=top_k, score_function=getattr(util, score))
    theirs = st_util.semantic_search(queries, corpus, query_chunk_size=query_chunk, corpus_chunk_size=corpus_chunk,
                                     top_k=top_k, score_function=getattr(st_util, score))
    assert len(ours) == len(theirs) == 11
    for our_hits, their_hits in zip(ours, theirs, strict=True):
        assert len(our_hits) == len(their_hits) == min(top_k, 30)
        assert [h["corpus_id"] for h in our_hits] == [h["corpus_id"] for h in their_hits]
        np.testing.assert_allclose([h["score"] for h in our_hits], [h["score"] for h in their_hits], atol=1e-5)
        assert all(type(h["corpus_id"]) is int and type(h["score"]) is float and set(h) == {"corpus_id", "score"}
                   for h in our_hits)


def test_semantic_search_inputs(st_util):
    corpus = np.random.default_rng(5).normal(size=(9, 8)).astype(np.float32)
    query = corpus[2] + 0.01
    ours, theirs = util.semantic_search(query, corpus, top_k=3), st_util.semantic_search(query, corpus, top_k=3)
    assert [h["corpus_id"] for h in ours[0]] == [h["corpus_id"] for h in theirs[0]] and ours[0][0]["corpus_id"] == 2
    assert util.semantic_search(torch.randn(2, 8), torch.empty(0, 8)) == [[], []]
    with pytest.raises(Exception, match="top_k"):
        util.semantic_search(query, corpus, top_k=0)


def _near_duplicates(n: int, dim: int, seed: int) -> torch.Tensor:
    """Random points plus noisy copies, so pairs and communities exist."""
    gen = torch.Generator().manual_seed(seed)
    centers = torch.randn(n // 4, dim, generator=gen)
    rows = centers.repeat_interleave(4, dim=0) + 0.3 * torch.randn(n // 4 * 4, dim, generator=gen)
    return rows[torch.randperm(len(rows), generator=gen)]


@pytest.mark.parametrize(("query_chunk", "corpus_chunk", "max_pairs", "top_k"),
                         [(5000, 100000, 500000, 100), (7, 5, 500000, 3), (3, 11, 12, 2), (40, 40, 5, 100)])
def test_paraphrase_mining_embeddings_matches(st_util, query_chunk, corpus_chunk, max_pairs, top_k):
    emb = _near_duplicates(40, 16, 6)
    kwargs = dict(query_chunk_size=query_chunk, corpus_chunk_size=corpus_chunk, max_pairs=max_pairs, top_k=top_k)
    ours = util.paraphrase_mining_embeddings(emb, **kwargs)
    theirs = st_util.paraphrase_mining_embeddings(emb, **kwargs)
    assert [p[1:] for p in ours] == [p[1:] for p in theirs]
    np.testing.assert_allclose([p[0] for p in ours], [p[0] for p in theirs], atol=1e-5)
    assert all(type(p) is list and type(p[0]) is float and type(p[1]) is int and p[1] < p[2] for p in ours)


def test_paraphrase_mining_with_a_model(st_util, minilm_embedder, minilm_st_model):
    sentences = ["A man is eating food.", "A man eats a meal.", "The cat sleeps on the sofa.",
                 "A kitten naps on the couch.", "Stocks fell sharply today.", "The market dropped a lot."]
    theirs = st_util.paraphrase_mining(minilm_st_model, sentences, top_k=2)
    for model in (minilm_embedder, minilm_st_model):  # omnivec's helper takes either library's model
        ours = util.paraphrase_mining(model, sentences, top_k=2)
        assert [p[1:] for p in ours] == [p[1:] for p in theirs]
        np.testing.assert_allclose([p[0] for p in ours], [p[0] for p in theirs], atol=1e-5)
    assert theirs[0][1:] in ([0, 1], [2, 3], [4, 5])


@pytest.mark.parametrize(("threshold", "min_size", "batch_size"), [(0.75, 3, 1024), (0.6, 2, 7), (0.9, 4, 5)])
@pytest.mark.parametrize("kind", ["tensor", "numpy"])
def test_community_detection_matches(st_util, threshold, min_size, batch_size, kind):
    emb = _near_duplicates(48, 12, 7)
    emb = emb.numpy() if kind == "numpy" else emb
    ours = util.community_detection(emb, threshold=threshold, min_community_size=min_size, batch_size=batch_size)
    theirs = st_util.community_detection(emb, threshold=threshold, min_community_size=min_size,
                                         batch_size=batch_size)
    assert ours == theirs
    assert all(type(i) is int for community in ours for i in community)
    assert sorted(i for c in ours for i in c) == sorted({i for c in ours for i in c})  # no index twice


def test_community_detection_edge_cases(st_util):
    emb = _near_duplicates(8, 6, 8)
    for args in ((emb[:0],), (emb[:2],), (emb[0],), (emb, 0.5, 2), (emb, 0.99, 3)):
        assert util.community_detection(*args) == st_util.community_detection(*args)
    assert util.community_detection(emb, 0.5, 2)  # two communities of four


@pytest.mark.parametrize("precision", ["float32", "int8", "uint8", "binary", "ubinary"])
@pytest.mark.parametrize("kind", ["numpy", "tensor", "bfloat16", "list_of_tensors"])
def test_quantize_embeddings_matches(st_util, precision, kind):
    emb = np.random.default_rng(9).normal(size=(120, 16)).astype(np.float32)
    data = {"numpy": emb, "tensor": torch.from_numpy(emb), "bfloat16": torch.from_numpy(emb).bfloat16(),
            "list_of_tensors": list(torch.from_numpy(emb))}[kind]
    _same(util.quantize_embeddings(data, precision), st_util.quantize_embeddings(data, precision))
    calibration = np.random.default_rng(10).normal(size=(200, 16)).astype(np.float32)
    _same(util.quantize_embeddings(emb[:3], precision, calibration_embeddings=calibration),
          st_util.quantize_embeddings(emb[:3], precision, calibration_embeddings=calibration))


def test_logging_handler_writes_through_tqdm(st_util, capsys):
    logger = logging.getLogger("omnivec.test_st_util")
    handler = util.LoggingHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    try:
        logger.warning("hello %s", "there")
    finally:
        logger.removeHandler(handler)
    assert "WARNING hello there" in capsys.readouterr().out
    assert isinstance(handler, logging.Handler) and util.LoggingHandler().level == st_util.LoggingHandler().level


def test_mine_hard_negatives_is_the_training_one():
    from omnivec.train.mining import mine_hard_negatives

    assert util.mine_hard_negatives is mine_hard_negatives
    assert set(util.__all__) >= {"cos_sim", "semantic_search", "paraphrase_mining", "community_detection",
                                 "mine_hard_negatives", "quantize_embeddings", "batch_to_device"}


def test_is_sentence_transformer_model(st_util, minilm_dir, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text("{}")
    # A Hub repository in a local cache (HF_HUB_OFFLINE is set for the tests): refs/main -> a snapshot.
    cache = tmp_path / "hub"
    snapshot = cache / "models--someone--tiny" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "modules.json").write_text("[]")
    (cache / "models--someone--tiny" / "refs").mkdir()
    (cache / "models--someone--tiny" / "refs" / "main").write_text("abc123")
    cases = [(minilm_dir, {}), (str(plain), {}), ("someone/tiny", {"cache_folder": str(cache)}),
             ("someone/other", {"cache_folder": str(cache)}), ("not a valid id!", {})]
    answers = [util.is_sentence_transformer_model(path, **kw) for path, kw in cases]
    assert answers == [st_util.is_sentence_transformer_model(path, **kw) for path, kw in cases]
    assert answers == [True, False, True, False, False]
