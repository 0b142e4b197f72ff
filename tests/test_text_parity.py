"""omnivec's text embeddings equal sentence-transformers' on identical checkpoints (float32, 1e-5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import omnivec
from tests.fixtures.checkpoints import TEXTS

ATOL = 1e-5


def _pair(path: str, st, **kwargs):
    return omnivec.Embedder(path, device="cpu", **kwargs), st.SentenceTransformer(path, device="cpu", **kwargs)


@pytest.mark.parametrize("fixture", ["minilm_dir", "bert_dir", "xlmr_dir", "qwen3_dir", "qwen3_st_dir"])
def test_sentence_embeddings_match(fixture, request, st):
    path = request.getfixturevalue(fixture)
    ours, peer = _pair(path, st)
    # batch_size=4 keeps the peer from meeting a batch holding only "" (which it cannot run for Qwen3).
    a, b = ours.encode(TEXTS, batch_size=4), peer.encode(TEXTS, batch_size=4)
    assert a.shape == b.shape == (len(TEXTS), peer.get_embedding_dimension())
    np.testing.assert_allclose(a, b, atol=ATOL)
    assert ours.max_seq_length == peer.max_seq_length
    assert ours.get_sentence_embedding_dimension() == peer.get_embedding_dimension()


def test_lone_empty_string_without_special_tokens(qwen3_dir):
    ours = omnivec.Embedder(qwen3_dir, device="cpu")
    assert ours.tokenizer("")["input_ids"] == []
    out = ours.encode(["", "a", ""], batch_size=1)
    assert out.shape == (3, 32) and np.isfinite(out).all()
    np.testing.assert_array_equal(out[0], np.zeros(32, dtype=np.float32))  # last-token pool of nothing


def test_long_input_is_truncated_like_sentence_transformers(bert_dir, st):
    ours, peer = _pair(bert_dir, st)
    long_text = TEXTS[5]
    assert len(ours.tokenizer(long_text)["input_ids"]) > ours.max_seq_length
    np.testing.assert_allclose(ours.encode(long_text), peer.encode(long_text), atol=ATOL)
    # Truncation means the tail no longer matters.
    np.testing.assert_allclose(ours.encode(long_text), ours.encode(long_text + " extra words at the end"), atol=ATOL)


def test_query_and_document_prompts_with_lasttoken_pooling(qwen3_st_dir, st):
    ours, peer = _pair(qwen3_st_dir, st)
    assert ours.prompts == peer.prompts
    queries, docs = TEXTS[:5], TEXTS[2:]
    np.testing.assert_allclose(ours.encode_query(queries), peer.encode_query(queries), atol=ATOL)
    np.testing.assert_allclose(ours.encode_document(docs), peer.encode_document(docs), atol=ATOL)
    # The query prompt changes the vector; the empty document prompt does not.
    assert not np.allclose(ours.encode_query(queries), ours.encode(queries), atol=1e-3)
    np.testing.assert_allclose(ours.encode_document(docs), ours.encode(docs), atol=ATOL)
    np.testing.assert_allclose(ours.encode(queries, prompt="Query: "), peer.encode(queries, prompt="Query: "), atol=ATOL)


@pytest.mark.parametrize(
    "mode",
    ["cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken", ("cls", "mean", "max")],
)
@pytest.mark.parametrize("base", ["bert_dir", "qwen3_dir"])  # right and left padding
def test_every_pooling_mode(mode, base, request, st, tmp_path):
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    hf = request.getfixturevalue(base)
    model = st.SentenceTransformer(modules=[Transformer(hf, max_seq_length=24), Pooling(32, pooling_mode=mode)], device="cpu")
    model.save(str(tmp_path))
    ours = omnivec.Embedder(str(tmp_path), device="cpu")
    assert ours[1].modes == ((mode,) if isinstance(mode, str) else mode)
    np.testing.assert_allclose(ours.encode(TEXTS, batch_size=4), model.encode(TEXTS, batch_size=4), atol=ATOL)


@pytest.mark.parametrize("base", ["bert_dir", "qwen3_dir"])
def test_pooling_without_prompt_tokens(base, request, st, tmp_path):
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    hf = request.getfixturevalue(base)
    modules = [Transformer(hf), Pooling(32, pooling_mode="mean", include_prompt=False)]
    model = st.SentenceTransformer(modules=modules, device="cpu", prompts={"query": "query: "})
    model.save(str(tmp_path))
    ours = omnivec.Embedder(str(tmp_path), device="cpu")
    np.testing.assert_allclose(ours.encode_query(TEXTS), model.encode_query(TEXTS), atol=ATOL)


def test_dense_and_normalize(bert_dir, st, tmp_path):
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling, Transformer

    torch.manual_seed(0)
    modules = [Transformer(bert_dir), Pooling(32, "mean"), Dense(32, 16, activation_function=torch.nn.Tanh()), Normalize()]
    model = st.SentenceTransformer(modules=modules, device="cpu")
    model.save(str(tmp_path))
    ours = omnivec.Embedder(str(tmp_path), device="cpu")
    a, b = ours.encode(TEXTS), model.encode(TEXTS)
    assert a.shape == (len(TEXTS), 16)
    np.testing.assert_allclose(a, b, atol=ATOL)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("truncate_dim", [8, 16])
def test_truncate_dim(truncate_dim, minilm_dir, st):
    ours, peer = _pair(minilm_dir, st)
    a = ours.encode(TEXTS, truncate_dim=truncate_dim, normalize_embeddings=True)
    b = peer.encode(TEXTS, truncate_dim=truncate_dim, normalize_embeddings=True)
    assert a.shape == (len(TEXTS), truncate_dim)
    np.testing.assert_allclose(a, b, atol=ATOL)
    ours_saved, peer_saved = _pair(minilm_dir, st, truncate_dim=truncate_dim)
    assert ours_saved.get_sentence_embedding_dimension() == truncate_dim
    np.testing.assert_allclose(ours_saved.encode(TEXTS), peer_saved.encode(TEXTS), atol=ATOL)


@pytest.mark.parametrize("precision", ["float32", "int8", "uint8", "binary", "ubinary"])
def test_every_precision(precision, minilm_dir, st):
    ours, peer = _pair(minilm_dir, st)
    texts = TEXTS * 3
    # Buckets are exact only for bit-identical floats, so batch exactly like the peer (by count alone); the
    # CPU token budget would form other batches, whose floats differ by rounding and can flip a bucket.
    a = ours.encode(texts, precision=precision, max_tokens_per_batch=10**9)
    b = peer.encode(texts, precision=precision)
    assert a.dtype == b.dtype and a.shape == b.shape
    if precision == "float32":
        np.testing.assert_allclose(a, b, atol=ATOL)
    else:
        np.testing.assert_array_equal(a, b)
    tensor = ours.encode(texts, precision=precision, convert_to_tensor=True)
    assert isinstance(tensor, torch.Tensor) and tensor.shape == a.shape


def test_token_embeddings_output(bert_dir, qwen3_dir, st):
    for path in (bert_dir, qwen3_dir):
        ours, peer = _pair(path, st)
        a = ours.encode(TEXTS, output_value="token_embeddings")
        b = peer.encode(TEXTS, output_value="token_embeddings")
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            y = y[-len(x):] if len(x) else y[:0]  # peer keeps left padding in front; the real tokens are last
            assert x.shape == y.shape, index
            torch.testing.assert_close(x, y, atol=ATOL, rtol=0)


def test_output_types_and_single_input(minilm_dir, st):
    ours, peer = _pair(minilm_dir, st)
    single = ours.encode("hello world")
    assert single.shape == (384,)
    np.testing.assert_allclose(single, peer.encode("hello world"), atol=ATOL)
    tensor = ours.encode(TEXTS, convert_to_tensor=True)
    assert isinstance(tensor, torch.Tensor) and tensor.shape == (len(TEXTS), 384)
    listed = ours.encode(TEXTS, convert_to_numpy=False)
    assert isinstance(listed, list) and len(listed) == len(TEXTS) and listed[0].shape == (384,)


def test_similarity_functions(minilm_dir, st):
    ours, peer = _pair(minilm_dir, st)
    emb = ours.encode(TEXTS)
    for name in ("cosine", "dot", "euclidean", "manhattan"):
        ours.similarity_fn_name = name
        peer.similarity_fn_name = name
        torch.testing.assert_close(ours.similarity(emb, emb[:3]), peer.similarity(emb, emb[:3]), atol=1e-5, rtol=0)
        reversed_ = emb[::-1].copy()  # the peer cannot take negative strides; omnivec can
        torch.testing.assert_close(ours.similarity_pairwise(emb, emb[::-1]), peer.similarity_pairwise(emb, reversed_),
                                   atol=1e-5, rtol=0)


def test_order_is_restored_whatever_the_batching(minilm_embedder):
    ours = minilm_embedder
    texts = TEXTS * 4
    reference = np.stack([ours.encode(t) for t in texts])
    for batch_size, budget in ((1, None), (5, None), (64, None), (8, 40)):
        got = ours.encode(texts, batch_size=batch_size, max_tokens_per_batch=budget)
        np.testing.assert_allclose(got, reference, atol=ATOL)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_dtype(dtype, minilm_dir, minilm_embedder):
    full = minilm_embedder
    half = omnivec.Embedder(minilm_dir, device="cpu", dtype=dtype)
    assert half.dtype == getattr(torch, dtype)
    a = full.encode(TEXTS, convert_to_tensor=True)
    b = half.encode(TEXTS, convert_to_tensor=True)
    assert b.dtype == getattr(torch, dtype)
    cosines = torch.nn.functional.cosine_similarity(a, b.float(), dim=1)
    assert cosines.min() > 0.99, cosines
