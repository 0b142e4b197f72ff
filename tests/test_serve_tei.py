"""text-embeddings-inference's and infinity's routes on ``omnivec serve``: ``/embed`` vectors equal ``encode`` (omnivec's
and sentence-transformers'), ``/rerank`` scores equal ``CrossEncoder.predict`` (sigmoid, or raw logits), ``/tokenize``
equals the tokenizer's ids and offsets (as UTF-8 bytes, like TEI), infinity's ``/rerank``, ``/embeddings`` and
``/models`` paths, and every refusal in TEI's ``{"error", "error_type"}`` shape with TEI's status."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

import omnivec
from omnivec.serve.app import create_app
from omnivec.serve.model_calls import RAW_SCORES, WithOptions, embed_batch

TEXTS = ["A man is eating food.", "The weather is lovely today.", "Ein Mann isst Brot, süß und groß."]
QUERY = "How many people live in Berlin?"
DOCS = ["Berlin has 3.5 million people.", "Paris is in France.", "Berlin is a city.", "Cats sleep a lot."]


@pytest.fixture(scope="module")
def reranker_dir(bert_dir, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("tei-reranker")
    # Saved once, so the randomly initialised score head is the same in the server and the references.
    omnivec.CrossEncoder(bert_dir, num_labels=1, device="cpu").save(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def reranker(reranker_dir):
    return omnivec.CrossEncoder(reranker_dir, device="cpu")


@pytest.fixture(scope="module")
def client(minilm_embedder, reranker):
    """One embedder and one reranker, as TEI serves one model: no request names one."""
    with TestClient(create_app({"minilm": minilm_embedder}, {"rerank": reranker}, max_inputs=8)) as client:
        yield client


def _ok(reply):
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_embed_matches_encode_and_sentence_transformers(client, minilm_embedder, minilm_st_model):
    expected = minilm_embedder.encode(TEXTS, normalize_embeddings=True)
    oracle = minilm_st_model.encode(TEXTS, normalize_embeddings=True)
    got = np.array(_ok(client.post("/embed", json={"inputs": TEXTS})))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(got, oracle, atol=1e-5)

    single = _ok(client.post("/embed", json={"inputs": TEXTS[0]}))  # a bare string: still a list of vectors
    assert len(single) == 1
    np.testing.assert_allclose(single[0], expected[0], atol=1e-5)

    # normalize: false gives the model's own output (MiniLM ends in Normalize, so cut it to see the difference).
    raw = np.array(_ok(client.post("/embed", json={"inputs": TEXTS, "normalize": False, "dimensions": 64})))
    np.testing.assert_allclose(raw, minilm_embedder.encode(TEXTS, truncate_dim=64), atol=1e-5)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    short = np.array(_ok(client.post("/embed", json={"inputs": TEXTS, "dimensions": 64})))
    np.testing.assert_allclose(short, minilm_st_model.encode(TEXTS, truncate_dim=64, normalize_embeddings=True),
                               atol=1e-5)


def test_huggingface_hub_inference_client(minilm_embedder, reranker, monkeypatch):
    """The client TEI's own docs use: ``InferenceClient(model=URL)`` posts to the URL as given (``/`` or ``/embed``)."""
    from huggingface_hub import InferenceClient, constants

    # Its offline switch blocks every request, even to this loopback server; the Hub itself is never asked (a URL).
    monkeypatch.setattr(constants, "is_offline_mode", lambda: False)

    from tests.fixtures.live_server import live_server

    expected = minilm_embedder.encode(TEXTS, normalize_embeddings=True)
    with live_server(create_app({"minilm": minilm_embedder}, {"rerank": reranker})) as url:
        for target in (url, f"{url}/embed"):
            got = InferenceClient(model=target).feature_extraction(TEXTS, normalize=True, truncate=True,
                                                                   truncation_direction="right")
            np.testing.assert_allclose(got, expected, atol=1e-5)


def test_embed_prompt_name_is_the_models_prompt(bert_dir):
    model = omnivec.Embedder(bert_dir, device="cpu", prompts={"query": "query: "})
    with TestClient(create_app({"tiny": model}, {})) as client:
        got = np.array(_ok(client.post("/embed", json={"inputs": TEXTS, "prompt_name": "query"})))
        plain = np.array(_ok(client.post("/embed", json={"inputs": TEXTS})))
        tokens = _ok(client.post("/tokenize", json={"inputs": "hello", "prompt_name": "query"}))
        unknown = client.post("/embed", json={"inputs": TEXTS, "prompt_name": "passage"})
    np.testing.assert_allclose(got, model.encode(TEXTS, prompt_name="query", normalize_embeddings=True), atol=1e-5)
    np.testing.assert_allclose(plain, model.encode(TEXTS, normalize_embeddings=True), atol=1e-5)
    assert not np.allclose(got, plain)
    assert [t["id"] for t in tokens[0]] == model.tokenizer("query: hello")["input_ids"]  # the prompt, then the text
    assert "".join(t["text"] for t in tokens[0] if not t["special"]) == "query:hello"
    assert unknown.status_code == 422 and unknown.json()["error_type"] == "validation"
    assert "passage" in unknown.json()["error"] and "query" in unknown.json()["error"]


def test_tei_rerank_matches_predict(client, reranker, reranker_dir, st):
    expected = reranker.predict([(QUERY, d) for d in DOCS])
    oracle = st.CrossEncoder(reranker_dir, device="cpu").predict([(QUERY, d) for d in DOCS])
    ranks = _ok(client.post("/rerank", json={"query": QUERY, "texts": DOCS}))
    assert [r["index"] for r in ranks] == list(np.argsort(-expected))
    assert all("text" not in r for r in ranks)
    np.testing.assert_allclose([r["score"] for r in ranks], np.sort(expected)[::-1], atol=1e-5)
    np.testing.assert_allclose([r["score"] for r in ranks], np.sort(oracle)[::-1], atol=1e-5)

    raw = _ok(client.post("/rerank", json={"query": QUERY, "texts": DOCS, "raw_scores": True, "return_text": True}))
    logits = reranker.predict([(QUERY, d) for d in DOCS], activation_fn=torch.nn.Identity())
    assert [r["text"] for r in raw] == [DOCS[r["index"]] for r in raw]
    np.testing.assert_allclose([r["score"] for r in raw], [logits[r["index"]] for r in raw], atol=1e-5)
    assert not np.allclose(logits, expected)


def test_infinity_rerank_shape(client, reranker):
    expected = reranker.rank(QUERY, DOCS)
    reply = _ok(client.post("/rerank", json={"model": "rerank", "query": QUERY, "documents": DOCS, "top_n": 2,
                                             "return_documents": True}))
    assert reply["object"] == "rerank" and reply["model"] == "rerank" and reply["usage"]["total_tokens"] > 0
    assert [r["index"] for r in reply["results"]] == [e["corpus_id"] for e in expected[:2]]
    assert [r["document"] for r in reply["results"]] == [DOCS[e["corpus_id"]] for e in expected[:2]]
    np.testing.assert_allclose([r["relevance_score"] for r in reply["results"]], [e["score"] for e in expected[:2]],
                               atol=1e-5)
    # infinity's clients send this model name when the caller gives none.
    unnamed = _ok(client.post("/rerank", json={"model": "default/not-specified", "query": QUERY, "documents": DOCS}))
    assert "document" not in unnamed["results"][0] and len(unnamed["results"]) == len(DOCS)


def test_tokenize_matches_the_tokenizer_offsets_in_bytes(client, minilm_embedder):
    reply = _ok(client.post("/tokenize", json={"inputs": TEXTS, "model": "minilm"}))
    assert len(reply) == len(TEXTS)
    for text, tokens in zip(TEXTS, reply, strict=True):
        encoding = minilm_embedder.tokenizer(text, return_offsets_mapping=True)
        assert [t["id"] for t in tokens] == encoding["input_ids"]
        assert [t["special"] for t in tokens] == [i in (101, 102) for i in encoding["input_ids"]]
        for token, (start, stop) in zip(tokens, encoding["offset_mapping"], strict=True):
            if token["special"]:
                assert token["start"] is None and token["stop"] is None and token["text"] in ("[CLS]", "[SEP]")
            else:
                assert token["text"] == text[start:stop]
                encoded = text.encode("utf-8")
                assert encoded[token["start"]:token["stop"]].decode("utf-8") == text[start:stop]
                assert token["start"] == len(text[:start].encode("utf-8"))
    wide = [t for t in reply[2] if not t["special"] and len(t["text"].encode()) > len(t["text"])]
    assert wide and all(t["stop"] - t["start"] == len(t["text"].encode()) for t in wide)  # bytes, not characters
    bare = _ok(client.post("/tokenize", json={"inputs": TEXTS[0], "add_special_tokens": False, "model": "minilm"}))
    assert [t["id"] for t in bare[0]] == minilm_embedder.tokenizer(TEXTS[0], add_special_tokens=False)["input_ids"]


def test_infinity_and_openai_paths_without_v1_and_without_model(client, minilm_embedder, reranker):
    reply = _ok(client.post("/embeddings", json={"input": TEXTS}))
    assert reply["model"] == "minilm"
    np.testing.assert_allclose([d["embedding"] for d in reply["data"]],
                               minilm_embedder.encode(TEXTS, normalize_embeddings=True), atol=1e-5)
    cohere = _ok(client.post("/v1/rerank", json={"query": QUERY, "documents": DOCS}))
    assert cohere["model"] == "rerank"
    assert [r["index"] for r in cohere["results"]] == [e["corpus_id"] for e in reranker.rank(QUERY, DOCS)]
    assert [m["id"] for m in _ok(client.get("/models"))["data"]] == ["minilm", "rerank"]


@pytest.mark.parametrize(("path", "body", "status", "error_type", "needle"), [
    ("/embed", {"inputs": []}, 400, "empty", "inputs"),
    ("/embed", {"inputs": ["ok", ""]}, 400, "empty", "inputs[1]"),
    ("/embed", {"inputs": ["x"] * 9}, 413, "validation", "limit of 8"),
    ("/embed", {"inputs": [[101, 102]]}, 422, "validation", "inputs"),
    ("/embed", {"inputs": "hi", "dimensions": 999}, 422, "validation", "dimensions"),
    ("/embed", {"inputs": "hi", "dimensions": 0}, 422, "validation", "dimensions"),
    ("/embed", {"inputs": "hi", "truncation_direction": "left"}, 422, "validation", "truncation_direction"),
    ("/embed", b'{"inputs": "\\ud800"}', 422, "validation", "inputs[0]"),
    ("/embed", {"inputs": "hi", "model": "nope"}, 404, "validation", "nope"),
    ("/rerank", {"query": "q", "texts": []}, 400, "empty", "texts"),
    ("/rerank", {"query": "q", "documents": []}, 400, "empty", "documents"),
    ("/rerank", {"query": "q"}, 422, "validation", "texts"),
    ("/tokenize", {"inputs": [], "model": "minilm"}, 400, "empty", "inputs"),
    ("/tokenize", {"inputs": "hi"}, 422, "validation", "'model' is required"),  # two models are served
])
def test_refusals_have_teis_shape_and_status(client, path, body, status, error_type, needle):
    if isinstance(body, bytes):  # a lone surrogate, which httpx will not encode itself
        reply = client.post(path, content=body, headers={"Content-Type": "application/json"})
    else:
        reply = client.post(path, json=body)
    assert reply.status_code == status, reply.text
    assert set(reply.json()) == {"error", "error_type"} and reply.json()["error_type"] == error_type
    assert needle in reply.json()["error"], reply.text


def test_tokenize_has_a_character_limit(client):
    from omnivec.serve.tei_tokens import MAX_TOKENIZE_CHARS

    half = "a " * (MAX_TOKENIZE_CHARS // 4)
    served = _ok(client.post("/tokenize", json={"inputs": [half, half], "model": "minilm"}))
    assert [len(tokens) for tokens in served] == [MAX_TOKENIZE_CHARS // 4 + 2] * 2  # every token, not truncated
    over = client.post("/tokenize", json={"inputs": [half, half, "a"], "model": "minilm"})
    assert over.status_code == 413 and over.json()["error_type"] == "validation"
    assert str(MAX_TOKENIZE_CHARS) in over.json()["error"]


def test_bad_json_and_oversize_bodies_have_teis_shape(minilm_embedder):
    with TestClient(create_app({"minilm": minilm_embedder}, {}, max_body_bytes=1000)) as client:
        bad = client.post("/embed", content=b"{not json", headers={"Content-Type": "application/json"})
        big = client.post("/embed", json={"inputs": "word " * 1000})
    assert bad.status_code == 400 and bad.json()["error_type"] == "validation"
    assert big.status_code == 413 and set(big.json()) == {"error", "error_type"}


def test_truncate_false_refuses_long_inputs_and_the_default_truncates(client, minilm_embedder, reranker):
    long = "word " * 400  # past MiniLM's 256 tokens
    refused = client.post("/embed", json={"inputs": ["short", long], "truncate": False})
    assert refused.status_code == 422 and refused.json()["error_type"] == "validation"
    assert "inputs[1]" in refused.json()["error"] and "256" in refused.json()["error"]
    cut = _ok(client.post("/embed", json={"inputs": long}))
    np.testing.assert_allclose(cut[0], minilm_embedder.encode(long, normalize_embeddings=True), atol=1e-5)
    assert _ok(client.post("/embed", json={"inputs": "short", "truncate": False}))
    pair = client.post("/rerank", json={"query": QUERY, "texts": ["ok", long], "truncate": False})
    assert pair.status_code == 422 and "texts[1]" in pair.json()["error"]
    scored = _ok(client.post("/rerank", json={"query": QUERY, "texts": [long]}))
    np.testing.assert_allclose(scored[0]["score"], reranker.predict([(QUERY, long)])[0], atol=1e-5)


class _Broken:
    max_seq_length = 16

    def supports(self, kind: str) -> bool:
        return True

    def get_sentence_embedding_dimension(self) -> int:
        return 4

    def encode(self, items: list, **_: object) -> np.ndarray:
        raise RuntimeError("GPU fell off")


def test_a_model_failure_is_teis_424_and_the_api_key_is_checked():
    with TestClient(create_app({"broken": _Broken()}, {}, api_key="k"), raise_server_exceptions=False) as client:
        failed = client.post("/embed", json={"inputs": "hi"}, headers={"Authorization": "Bearer k"})
        denied = client.post("/embed", json={"inputs": "hi"})
    assert failed.status_code == 424 and failed.json()["error_type"] == "backend"
    assert denied.status_code == 401 and "API key" in denied.json()["error"]


def test_a_batch_calls_the_model_once_per_set_of_options():
    """Requests with different prompts or raw scores share a batch: one model call per option set, results in
    item order."""
    calls = []

    class Recorder:
        def encode(self, items, batch_size, convert_to_numpy, **options):
            calls.append((list(items), options))
            return np.array([[len(item), len(options)] for item in items], dtype=np.float32)

    run = embed_batch(Recorder())
    prompt = (("prompt_name", "query"),)
    results = run(["ab", WithOptions("abc", prompt), WithOptions("a"), WithOptions("abcd", prompt)])
    assert [r.tolist() for r in results] == [[2, 0], [3, 1], [1, 0], [4, 1]]
    assert calls == [(["ab", "a"], {}), (["abc", "abcd"], {"prompt_name": "query"})]
    assert isinstance(dict(RAW_SCORES)["activation_fn"], torch.nn.Identity)
