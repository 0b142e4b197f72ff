"""SparseEncoder: sentence-transformers 6 parity on tiny random checkpoints (SPLADE and inference-free SPLADE),
folders both ways, max_active_dims, similarity, decode, intersection, sparsity, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import omnivec
from omnivec.errors import ConfigError, InputError, ModelLoadError
from omnivec.sparse_encoder.models import MLMTransformer, Router, SparseStaticEmbedding, SpladePooling
from tests.fixtures.checkpoints import TEXTS

ATOL = 1e-5
QUERIES = ["what is the capital of france", "protein receptor cells", "", "Zürich café"]
KINDS = ["splade_st_dir", "inference_free_st_dir"]


def dense(x) -> torch.Tensor:
    return x.to_dense() if x.is_sparse else x


def max_diff(a, b) -> float:
    return (dense(a) - dense(b)).abs().max().item()


@pytest.fixture(scope="module")
def pairs(request, st) -> dict[str, tuple[omnivec.SparseEncoder, object]]:
    """Each oracle-written folder loaded by omnivec and by sentence-transformers."""
    out = {}
    for kind in KINDS:
        folder = request.getfixturevalue(kind)
        out[kind] = (omnivec.SparseEncoder(folder, device="cpu"), st.SparseEncoder(folder, device="cpu"))
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_encode_parity(kind, pairs):
    ours, peer = pairs[kind]
    for method in ("encode", "encode_query", "encode_document"):
        a, b = getattr(ours, method)(TEXTS, batch_size=3), getattr(peer, method)(TEXTS, batch_size=3)
        assert a.is_sparse and a.layout == torch.sparse_coo and a.shape == b.shape == (len(TEXTS), 400)
        assert max_diff(a, b) < ATOL, (method, max_diff(a, b))
        assert dense(b).abs().max() > 0.1  # the oracle's vectors are not all zero: the comparison means something
    if kind == "inference_free_st_dir":  # the query side is the static weights: exact, and unlike the documents
        assert max_diff(ours.encode_query(QUERIES), peer.encode_query(QUERIES)) == 0
        assert max_diff(ours.encode_query(QUERIES), ours.encode_document(QUERIES)) > 0.5
    else:  # the "query: " prompt reaches the model: queries differ from plain encode
        assert max_diff(ours.encode_query(QUERIES), ours.encode(QUERIES)) > 1e-3
    single = ours.encode(TEXTS[0])
    assert single.is_sparse and single.shape == (400,) and max_diff(single, peer.encode(TEXTS[0])) < ATOL
    as_dense = ours.encode(TEXTS, convert_to_sparse_tensor=False)
    assert not as_dense.is_sparse and max_diff(as_dense, peer.encode(TEXTS)) < ATOL
    rows = ours.encode(TEXTS, convert_to_tensor=False)
    assert isinstance(rows, list) and len(rows) == len(TEXTS) and all(r.is_sparse and r.shape == (400,) for r in rows)
    assert ours.get_sentence_embedding_dimension() == 400 and ours.similarity_fn_name == "dot"


@pytest.mark.parametrize("kind", KINDS)
def test_max_active_dims_similarity_decode_intersection(kind, pairs):
    ours, peer = pairs[kind]
    a, b = ours.encode(TEXTS, max_active_dims=7), peer.encode(TEXTS, max_active_dims=7)
    assert max_diff(a, b) < ATOL
    assert (dense(a) != 0).sum(dim=1).max().item() == 7
    assert ours.sparsity(a) == pytest.approx(peer.sparsity(b), abs=1e-6)
    assert ours.sparsity(a)["active_dims"] == pytest.approx((dense(a) != 0).sum().item() / len(TEXTS))
    q, qp = ours.encode_query(QUERIES), peer.encode_query(QUERIES)
    assert max_diff(ours.similarity(q, a), peer.similarity(qp, b)) < ATOL
    assert max_diff(ours.similarity(dense(q), a), peer.similarity(qp, b)) < ATOL  # dense x sparse
    assert max_diff(ours.similarity(q, dense(a)), peer.similarity(qp, b)) < ATOL  # sparse x dense
    ours.similarity_fn_name = peer.similarity_fn_name = "cosine"
    try:
        assert max_diff(ours.similarity(q, a), peer.similarity(qp, b)) < ATOL
    finally:
        ours.similarity_fn_name = peer.similarity_fn_name = "dot"
    pair_a, pair_b = ours.encode(TEXTS[:4], convert_to_sparse_tensor=False), dense(q)
    expected = peer.similarity_pairwise(peer.encode(TEXTS[:4], convert_to_sparse_tensor=False), dense(qp))
    assert max_diff(ours.similarity_pairwise(pair_a, pair_b), expected) < ATOL
    for top_k in (None, 3):
        decoded, oracle = ours.decode(a, top_k=top_k), peer.decode(b, top_k=top_k)
        assert [[t for t, _ in row] for row in decoded] == [[t for t, _ in row] for row in oracle]
        assert all(w == pytest.approx(v, abs=ATOL) for row, orow in zip(decoded, oracle, strict=True)
                   for (_, w), (_, v) in zip(row, orow, strict=True))
    one = ours.decode(a[0])
    assert len(one) == 7 and [w for _, w in one] == sorted((w for _, w in one), reverse=True)
    shared, oracle_shared = ours.intersection(q[0], a), peer.intersection(qp[0], b)
    assert shared.is_sparse and max_diff(shared, oracle_shared) < ATOL
    assert max_diff(ours.intersection(q[0], a[0]), peer.intersection(qp[0], b[0])) < ATOL


def test_max_active_dims_saved_and_per_call(splade_st_dir, st, tmp_path):
    ours = omnivec.SparseEncoder(splade_st_dir, device="cpu", max_active_dims=5)
    assert (dense(ours.encode(TEXTS)) != 0).sum(dim=1).max().item() == 5
    assert (dense(ours.encode(TEXTS, max_active_dims=9)) != 0).sum(dim=1).max().item() == 9  # the call wins
    ours.save(str(tmp_path))
    assert json.loads((tmp_path / "config_sentence_transformers.json").read_text())["max_active_dims"] == 5
    peer = st.SparseEncoder(str(tmp_path), device="cpu")
    assert peer.max_active_dims == 5 and max_diff(ours.encode(TEXTS), peer.encode(TEXTS)) < ATOL
    assert omnivec.SparseEncoder(str(tmp_path), device="cpu").max_active_dims == 5


def _omnivec_built(kind: str, bert_mlm_dir: str) -> omnivec.SparseEncoder:
    if kind == "plain":  # a bare *ForMaskedLM checkpoint: SPLADE max pooling, as sentence-transformers builds it
        return omnivec.SparseEncoder(bert_mlm_dir, device="cpu", prompts={"query": "q: "})
    if kind == "splade_sum":
        return omnivec.SparseEncoder(modules=[MLMTransformer(bert_mlm_dir), SpladePooling("sum", "log1p_relu")],
                                     device="cpu")
    mlm = MLMTransformer(bert_mlm_dir)
    weight = torch.rand(len(mlm.tokenizer.get_vocab()), generator=torch.Generator().manual_seed(5)) * 3
    router = Router.for_query_document([SparseStaticEmbedding(mlm.tokenizer, weight=weight, frozen=True)],
                                       [mlm, SpladePooling("max")])
    return omnivec.SparseEncoder(modules=[router], device="cpu")


@pytest.mark.parametrize("kind", ["plain", pytest.param("splade_sum", marks=pytest.mark.slow), "inference_free"])
def test_saved_by_omnivec_loads_in_sentence_transformers(kind, bert_mlm_dir, st, tmp_path):
    ours = _omnivec_built(kind, bert_mlm_dir)
    ours.save(str(tmp_path))
    assert json.loads((tmp_path / "config_sentence_transformers.json").read_text())["model_type"] == "SparseEncoder"
    peer = st.SparseEncoder(str(tmp_path), device="cpu")
    reloaded = omnivec.SparseEncoder(str(tmp_path), device="cpu")
    for method in ("encode", "encode_query", "encode_document"):
        a = getattr(ours, method)(TEXTS)
        assert max_diff(a, getattr(peer, method)(TEXTS)) < ATOL, method
        assert max_diff(a, getattr(reloaded, method)(TEXTS)) == 0, method
    if kind == "plain":
        assert max_diff(ours.encode(TEXTS), st.SparseEncoder(bert_mlm_dir, device="cpu").encode(TEXTS)) < ATOL
    if kind == "inference_free":
        assert max_diff(ours.encode_query(QUERIES), ours.encode_document(QUERIES)) > 0.5
        assert not reloaded[0].chain("query")[0].weight.requires_grad  # frozen survives the round trip


@pytest.mark.slow
def test_round_trip_of_oracle_folders(pairs, st, tmp_path):
    """sentence-transformers' folder -> omnivec -> saved -> sentence-transformers: the same numbers."""
    for kind, (ours, peer) in pairs.items():
        ours.save(str(tmp_path / kind))
        again = st.SparseEncoder(str(tmp_path / kind), device="cpu")
        assert again.prompts.get("query") == peer.prompts.get("query")
        for method in ("encode_query", "encode_document"):
            assert max_diff(getattr(again, method)(TEXTS), getattr(peer, method)(TEXTS)) < ATOL


def test_chunked_pooling_and_training_forward(pairs):
    ours, _ = pairs["splade_st_dir"]
    full = ours.encode(TEXTS, convert_to_sparse_tensor=False)
    ours.splade_pooling_chunk_size = 3
    try:
        assert max_diff(ours.encode(TEXTS, convert_to_sparse_tensor=False), full) < 1e-6
    finally:
        ours.splade_pooling_chunk_size = None
    with torch.enable_grad():
        embedded = ours.embed(TEXTS[:3])
        assert embedded.requires_grad and embedded.shape == (3, 400)
    assert max_diff(embedded.detach(), full[:3]) < ATOL


def test_bad_input(pairs, bert_dir, splade_st_dir):
    ours, _ = pairs["splade_st_dir"]
    with pytest.raises(InputError, match="max_active_dims"):
        omnivec.SparseEncoder(splade_st_dir, device="cpu", max_active_dims=0)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(InputError, match="max_active_dims"):
            ours.encode(TEXTS, max_active_dims=bad)
    with pytest.raises(InputError, match="top_k"):
        ours.decode(ours.encode("a"), top_k=0)
    with pytest.raises(InputError, match=r"inputs\[1\]"):
        ours.encode(["fine", 3])
    with pytest.raises(InputError, match="batch_size"):
        ours.encode(TEXTS, batch_size=0)
    with pytest.raises(InputError, match="embeddings_1"):
        ours.intersection(ours.encode(TEXTS), ours.encode(TEXTS))
    with pytest.raises(InputError, match="chunk_size"):
        ours.encode(TEXTS, device=["cpu", "cpu"], chunk_size=0)
    with pytest.raises(ModelLoadError, match="fill-mask"):  # ONNX / OpenVINO run no masked-LM head (yet)
        omnivec.SparseEncoder(splade_st_dir, device="cpu", backend="onnx")
    with pytest.raises(ModelLoadError, match="ForMaskedLM"):
        omnivec.SparseEncoder(bert_dir, device="cpu")  # a BertModel has no masked-LM head
    with pytest.raises(ConfigError, match="pooling_strategy"):
        SpladePooling("mean")
    with pytest.raises(ConfigError, match="activation_function"):
        SpladePooling("max", "gelu")
    empty = ours.encode([])
    assert empty.shape == (0, 400) and empty.is_sparse


def test_drop_in_paths_and_lazy_import():
    import omnivec.sparse_encoder as drop_in

    assert drop_in.SparseEncoder is omnivec.SparseEncoder
    assert drop_in.modules.SpladePooling is drop_in.models.SpladePooling is omnivec.modules.SpladePooling
    code = ("import sys, omnivec, omnivec.sparse_encoder; assert 'torch' not in sys.modules, 'torch imported'; "
            "print('ok')")
    src = str(Path(omnivec.__file__).parents[1])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": src},
                            timeout=60)
    assert result.stdout.strip() == "ok", result.stderr


def test_model_card(pairs, tmp_path):
    ours, _ = pairs["inference_free_st_dir"]
    ours.save(str(tmp_path))
    card = (tmp_path / "README.md").read_text()
    assert "- sparse-encoder" in card and "Model Type:** Sparse Encoder" in card
    assert "Output Dimensionality:** 400 dimensions" in card and "from omnivec import SparseEncoder" in card


def test_outputs_are_ordinary_tensors(pairs):
    """Rows can be coalesced and changed in place (no inference-mode tensors leak out of encode)."""
    ours, _ = pairs["splade_st_dir"]
    for row in ours.encode(TEXTS[:2], convert_to_tensor=False):
        assert row.coalesce().values().numel() > 0
    dense_rows = ours.encode(TEXTS[:2], convert_to_sparse_tensor=False)
    dense_rows.mul_(2)


@pytest.mark.slow
def test_multi_process_equals_one_process(pairs):
    """One pool of two worker processes (spawned: a few seconds), chunks of 3 and 2 texts: the same sparse rows, in
    order."""
    ours, _ = pairs["inference_free_st_dir"]
    pool = ours.start_multi_process_pool(["cpu", "cpu"])
    try:
        pooled = ours.encode_query(TEXTS, pool=pool, chunk_size=3, max_active_dims=6)
        rows = ours.encode(TEXTS, pool=pool, chunk_size=2, convert_to_tensor=False)
    finally:
        ours.stop_multi_process_pool(pool)
    assert pooled.is_sparse and max_diff(pooled, ours.encode_query(TEXTS, max_active_dims=6)) == 0
    assert len(rows) == len(TEXTS) and max_diff(torch.stack(rows), ours.encode(TEXTS)) < ATOL
