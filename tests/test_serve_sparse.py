"""A SparseEncoder on ``omnivec serve``: TEI's ``/embed_sparse`` (and ``/v1/embed_sparse``) and sparse vectors in
``/v1/embeddings`` equal ``SparseEncoder.encode``; dense routes refuse sparse models and the other way round."""

from __future__ import annotations

import pytest
import torch
from fastapi.testclient import TestClient

import omnivec
from omnivec.serve.app import create_app
from omnivec.serve.command import load_models, saved_model_type

TEXTS = ["The quick brown fox jumps over the lazy dog.", "what is the capital of france", "Zürich und München — café"]


@pytest.fixture(scope="module")
def splade(splade_st_dir):
    return omnivec.SparseEncoder(splade_st_dir, device="cpu")


@pytest.fixture(scope="module")
def inference_free(inference_free_st_dir):
    return omnivec.SparseEncoder(inference_free_st_dir, device="cpu")


@pytest.fixture(scope="module")
def client(splade, inference_free, bert_dir):
    models = {"splade": splade, "free": inference_free, "dense": omnivec.Embedder(bert_dir, device="cpu")}
    with TestClient(create_app(models, {}, max_inputs=8)) as client:
        yield client


def _ok(reply):
    assert reply.status_code == 200, reply.text
    return reply.json()


def _dense(rows: list[tuple[list[int], list[float]]], size: int) -> torch.Tensor:
    out = torch.zeros((len(rows), size))
    for r, (indices, values) in enumerate(rows):
        assert indices == sorted(indices) and len(set(indices)) == len(indices)  # TEI's order: by index
        assert all(v != 0 for v in values)
        out[r, indices] = torch.tensor(values)
    return out


def _tei_rows(reply_json) -> list[tuple[list[int], list[float]]]:
    return [([e["index"] for e in row], [e["value"] for e in row]) for row in reply_json]


@pytest.mark.parametrize("path", ["/embed_sparse", "/v1/embed_sparse"])
def test_embed_sparse_equals_encode(client, splade, inference_free, path):
    expected = splade.encode(TEXTS).to_dense()
    got = _dense(_tei_rows(_ok(client.post(path, json={"model": "splade", "inputs": TEXTS}))), 400)
    assert (expected != 0).sum() > 100 and (got - expected).abs().max() < 1e-6
    single = _ok(client.post(path, json={"model": "splade", "inputs": TEXTS[1]}))
    assert len(single) == 1 and (_dense(_tei_rows(single), 400)[0] - expected[1]).abs().max() < 1e-6
    prompted = _dense(_tei_rows(_ok(client.post(path, json={"model": "splade", "inputs": TEXTS,
                                                            "prompt_name": "query"}))), 400)
    assert (prompted - splade.encode(TEXTS, prompt_name="query").to_dense()).abs().max() < 1e-6
    assert (prompted - expected).abs().max() > 1e-3  # the prompt reached the model
    # task routes an inference-free model: the static query side, exactly
    query = _dense(_tei_rows(_ok(client.post(path, json={"model": "free", "inputs": TEXTS, "task": "query"}))), 400)
    assert torch.equal(query, inference_free.encode_query(TEXTS).to_dense())
    document = _dense(_tei_rows(_ok(client.post(path, json={"model": "free", "inputs": TEXTS}))), 400)
    assert (document - inference_free.encode_document(TEXTS).to_dense()).abs().max() < 1e-6


def test_v1_embeddings_gives_indices_and_values(client, splade):
    reply = _ok(client.post("/v1/embeddings", json={"model": "splade", "input": TEXTS}))
    rows = [(d["embedding"]["indices"], d["embedding"]["values"]) for d in reply["data"]]
    assert [d["index"] for d in reply["data"]] == [0, 1, 2] and reply["usage"]["prompt_tokens"] > 0
    assert (_dense(rows, 400) - splade.encode(TEXTS).to_dense()).abs().max() < 1e-6  # not normalised
    for extra in ({"dimensions": 10}, {"encoding_format": "base64"}):
        refused = client.post("/v1/embeddings", json={"model": "splade", "input": TEXTS, **extra})
        assert refused.status_code == 400 and "SparseEncoder" in refused.text
    dense = _ok(client.post("/v1/embeddings", json={"model": "dense", "input": TEXTS}))
    assert len(dense["data"][0]["embedding"]) == 32  # a dense model in the same server keeps its lists


def test_dense_and_sparse_routes_refuse_the_other_kind(client):
    wrong = client.post("/embed", json={"model": "splade", "inputs": TEXTS})
    assert wrong.status_code == 422 and wrong.json()["error_type"] == "validation"
    assert "/embed_sparse" in wrong.json()["error"]
    wrong = client.post("/embed_sparse", json={"model": "dense", "inputs": TEXTS})
    assert wrong.status_code == 422 and "dense embedder" in wrong.json()["error"]
    empty = client.post("/v1/embed_sparse", json={"model": "splade", "inputs": []})
    assert empty.status_code == 400 and empty.json()["error_type"] == "empty"
    long = client.post("/embed_sparse", json={"model": "splade", "inputs": ["word " * 200], "truncate": False})
    assert long.status_code == 422 and "limit" in long.json()["error"]
    bad_task = client.post("/embed_sparse", json={"model": "free", "inputs": TEXTS, "task": "passage"})
    assert bad_task.status_code == 422


def test_serve_command_loads_a_sparse_folder_as_sparse_encoder(splade_st_dir, bert_dir):
    assert saved_model_type(splade_st_dir) == "SparseEncoder"
    embedders, rerankers, _ = load_models([f"sp={splade_st_dir}"], [])
    assert isinstance(embedders["sp"], omnivec.SparseEncoder) and not rerankers
