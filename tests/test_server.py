"""HTTP server: OpenAI client parity, rerank, images, concurrency and batching, bad input, API key, backpressure."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import openai
import pytest

import omnivec
from omnivec.serve.app import create_app
from tests.fixtures.images import png_data_uri
from tests.fixtures.live_server import live_server

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def models(minilm_dir, clip_dir, bert_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("reranker")
    # Save once so the randomly initialised score head is the same in the server and in the reference.
    omnivec.CrossEncoder(bert_dir, num_labels=1, device="cpu").save(str(folder))
    return {"minilm": omnivec.Embedder(minilm_dir, device="cpu"), "clip": omnivec.Embedder(clip_dir, device="cpu"),
            "rerank": omnivec.CrossEncoder(str(folder), device="cpu")}


@pytest.fixture(scope="module")
def server(models):
    """A real uvicorn server on a loopback port, in a thread, for the real OpenAI client."""
    app = create_app({"minilm": models["minilm"], "clip": models["clip"]}, {"rerank": models["rerank"]},
                     max_wait_ms=20, api_key=KEY)
    with live_server(app) as url:
        yield url


def test_openai_client_matches_encode(server, models):
    client = openai.OpenAI(base_url=f"{server}/v1", api_key=KEY)
    texts = ["A man is eating food.", "https://example.com/cat.jpg", "The weather is lovely today."]
    expected = models["minilm"].encode(texts, modality="text", normalize_embeddings=True)

    floats = client.embeddings.create(model="minilm", input=texts, encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1, 2] and floats.model == "minilm"
    assert floats.usage.prompt_tokens > 0
    np.testing.assert_allclose(np.array([d.embedding for d in floats.data]), expected, atol=1e-5)

    # Not naming a format: the client asks for base64 and decodes it itself.
    default = client.embeddings.create(model="minilm", input=texts)
    np.testing.assert_allclose(np.array([d.embedding for d in default.data]), expected, atol=1e-5)

    raw = client.embeddings.create(model="minilm", input=texts, encoding_format="base64")
    decoded = np.stack([np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in raw.data])
    np.testing.assert_allclose(decoded, expected, atol=1e-5)

    short = client.embeddings.create(model="minilm", input=texts, dimensions=64, encoding_format="float")
    truncated = models["minilm"].encode(texts, modality="text", truncate_dim=64, normalize_embeddings=True)
    np.testing.assert_allclose(np.array([d.embedding for d in short.data]), truncated, atol=1e-5)

    single = client.embeddings.create(model="minilm", input=texts[0], encoding_format="float")
    np.testing.assert_allclose(single.data[0].embedding, expected[0], atol=1e-5)
    assert [m.id for m in client.models.list().data] == ["minilm", "clip", "rerank"]


def test_rerank_matches_cross_encoder(server, models):
    query = "How many people live in Berlin?"
    docs = ["Berlin has 3.5 million people.", "Paris is in France.", "Berlin is a city.", "Cats sleep a lot."]
    expected = models["rerank"].rank(query, docs)
    body = {"model": "rerank", "query": query, "documents": [docs[0], {"text": docs[1]}, *docs[2:]]}
    response = httpx.post(f"{server}/v1/rerank", json=body, headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == [e["corpus_id"] for e in expected]
    np.testing.assert_allclose([r["relevance_score"] for r in results], [e["score"] for e in expected], atol=1e-5)
    assert "document" not in results[0]

    top = httpx.post(f"{server}/v1/rerank", json={**body, "top_n": 2, "return_documents": True}, headers=AUTH,
                     timeout=30).json()
    assert [r["index"] for r in top["results"]] == [e["corpus_id"] for e in expected[:2]]
    assert top["results"][0]["document"] == {"text": docs[expected[0]["corpus_id"]]}
    assert top["model"] == "rerank" and "total_tokens" in top["usage"]


def test_image_content_parts_match_encode(server, models):
    from PIL import Image

    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8))
    part = {"type": "image_url", "image_url": {"url": png_data_uri(image)}}
    inputs = [part, "a photo of a cat", [{"type": "text", "text": "a photo of a cat"}, part]]
    response = httpx.post(f"{server}/v1/embeddings", json={"model": "clip", "input": inputs}, headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    got = np.array([d["embedding"] for d in response.json()["data"]])
    clip = models["clip"]
    expected = clip.encode([image, "a photo of a cat", {"text": "a photo of a cat", "image": image}],
                           normalize_embeddings=True)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def _batch_histogram(metrics: str, model: str) -> tuple[int, int]:
    """(batches of size 1, all batches) of ``model`` from the Prometheus text."""
    ones = re.search(rf'omnivec_batch_size_bucket{{model="{model}",le="1"}} (\d+)', metrics)
    count = re.search(rf'omnivec_batch_size_count{{model="{model}"}} (\d+)', metrics)
    return int(ones.group(1)), int(count.group(1))


def test_concurrent_requests_are_batched(server, models):
    # Some inputs are longer than the model's 256 tokens: counting their tokens for `usage` must not disturb the
    # truncation of the inputs being embedded at the same time (a shared tokenizer's state is not thread-safe).
    texts = [f"sentence number {i} about topic {i % 7}" + (" and more words" * 200 if i % 4 == 0 else "")
             for i in range(64)]
    before = _batch_histogram(httpx.get(f"{server}/metrics").text, "minilm")

    async def fire() -> list:
        async with httpx.AsyncClient(base_url=server, headers=AUTH, timeout=60) as client:
            calls = [client.post("/v1/embeddings", json={"model": "minilm", "input": t}) for t in texts]
            return await asyncio.gather(*calls)

    expected = models["minilm"].encode(texts, normalize_embeddings=True)
    for _ in range(3):
        responses = asyncio.run(fire())
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
        got = np.array([r.json()["data"][0]["embedding"] for r in responses])
        np.testing.assert_allclose(got, expected, atol=1e-5)

    metrics = httpx.get(f"{server}/metrics").text
    ones, count = _batch_histogram(metrics, "minilm")
    assert count - before[1] < 64 and (count - ones) > (before[1] - before[0]), "no batch held more than one item"
    assert 'omnivec_requests_total{endpoint="/v1/embeddings",status="200"}' in metrics
    assert re.search(r'omnivec_queue_depth{model="minilm"} 0', metrics)


def test_api_key(server):
    assert httpx.get(f"{server}/v1/models").status_code == 401
    wrong = httpx.get(f"{server}/v1/models", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "API key" in wrong.json()["error"]["message"]
    assert httpx.get(f"{server}/v1/models", headers=AUTH).status_code == 200
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server}/v1", api_key="nope").embeddings.create(model="minilm", input="hi")
    assert httpx.get(f"{server}/health").status_code == 200  # health needs no key


def _png_base64_of(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


BAD_INPUTS = [  # (name, request body or raw bytes, status, text in the message)
    ("malformed json", b'{"model": "minilm", "input": [', 400, "not valid JSON"),
    ("body not an object", b"[1, 2]", 400, "JSON object"),
    ("input of wrong type", {"model": "minilm", "input": 5}, 422, "'input' must be"),
    ("token ids", {"model": "minilm", "input": [[1, 2, 3]]}, 422, "token ids"),
    ("missing model", {"input": "hi"}, 422, "model"),
    ("oversize body", {"model": "minilm", "input": "x" * 5000}, 413, "exceeds"),
    ("bad base64 audio", {"model": "clip", "input": ["ok", {"type": "input_audio",
                                                             "input_audio": {"data": "@@@", "format": "wav"}}]},
     400, "input[1]"),
    ("bad base64 image", {"model": "clip", "input": [{"type": "image_url", "image_url": {"url": "data:image/png;"
                                                                                              "base64,!!!"}}]},
     400, "input[0]"),
    ("undecodable image", {"model": "clip", "input": ["a", {"type": "image_url",
                                                            "image_url": {"url": _png_base64_of(b"no png")}}]},
     400, "index 1"),
    ("local file", {"model": "clip", "input": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]},
     400, "data: URI"),
    ("remote url", {"model": "clip", "input": [{"type": "image_url", "image_url": {"url": "https://x.org/a.png"}}]},
     400, "remote image URLs are disabled"),
    ("image to a text model", {"model": "minilm", "input": [{"type": "image_url",
                                                             "image_url": {"url": _png_base64_of(b"x")}}]},
     400, "input[0]"),
    ("unknown model", {"model": "gpt-4", "input": "hi"}, 404, "available: ['clip', 'minilm']"),
    ("too many inputs", {"model": "minilm", "input": ["a"] * 5}, 413, "limit of 4"),
    ("empty input", {"model": "minilm", "input": []}, 400, "empty"),
    ("dimensions too big", {"model": "minilm", "input": "a", "dimensions": 1000}, 400, "384"),
    ("unknown rerank model", {"model": "minilm", "query": "q", "documents": ["d"]}, 404, "rerank"),
]


def test_bad_inputs_are_4xx_and_server_survives(models):
    app = create_app({"minilm": models["minilm"], "clip": models["clip"]}, {"rerank": models["rerank"]},
                     max_inputs=4, max_body_bytes=4096)

    async def check() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                for name, body, status, text in BAD_INPUTS:
                    path = "/v1/rerank" if isinstance(body, dict) and "query" in body else "/v1/embeddings"
                    if isinstance(body, bytes):
                        r = await client.post(path, content=body, headers={"Content-Type": "application/json"})
                    else:
                        r = await client.post(path, json=body)
                    assert r.status_code == status, (name, r.status_code, r.text)
                    assert text in r.json()["error"]["message"], (name, r.text)

                async def chunks():  # no Content-Length: the limit must count the bytes read
                    for _ in range(10):
                        yield b" " * 1000

                r = await client.post("/v1/embeddings", content=chunks(), headers={"Content-Type": "application/json"})
                assert r.status_code == 413, r.text
                assert (await client.get("/health")).status_code == 200
                ok = await client.post("/v1/embeddings", json={"model": "minilm", "input": "still fine"})
                assert ok.status_code == 200
                metrics = (await client.get("/metrics")).text
                assert 'status="500"' not in metrics and 'endpoint="/v1/embeddings",status="413"' in metrics

    asyncio.run(check())


class SlowModel:
    """An embedder stub whose model call takes ``delay`` seconds."""

    modalities = ["text"]

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def supports(self, modality: str) -> bool:
        return modality == "text"

    def get_sentence_embedding_dimension(self) -> int:
        return 4

    def encode(self, items: list, batch_size: int, convert_to_numpy: bool) -> np.ndarray:
        time.sleep(self.delay)
        return np.ones((len(items), 4), dtype=np.float32)


def test_full_queue_is_429_and_slow_model_is_504():
    async def fire(app, n: int) -> list:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client:
                return await asyncio.gather(*[client.post("/v1/embeddings", json={"model": "slow", "input": f"t{i}"})
                                              for i in range(n)])

    # A queue of 2 always takes the first two; a third waits only if the worker took one first.
    busy = create_app({"slow": SlowModel(0.3)}, {}, max_queue=2, max_batch_size=1, max_wait_ms=0)
    responses = asyncio.run(fire(busy, 8))
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) >= 2 and codes.count(429) >= 1 and set(codes) <= {200, 429}, codes
    refused = next(r for r in responses if r.status_code == 429)
    assert int(refused.headers["Retry-After"]) >= 1 and "retry" in refused.json()["error"]["message"]

    stuck = create_app({"slow": SlowModel(1.0)}, {}, request_timeout_s=0.1)
    (late,) = asyncio.run(fire(stuck, 1))
    assert late.status_code == 504 and "did not answer" in late.json()["error"]["message"]


@pytest.mark.slow  # `omnivec index` and `omnivec serve` subprocess runs
def test_serve_command_starts_a_server(minilm_dir, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    from omnivec.kb.ingest.sample import sample_folder

    docs, kb, config = tmp_path / "docs", tmp_path / "kb", tmp_path / "kb.toml"
    sample_folder(docs)
    config.write_text(f'[spaces]\ntext = "{minilm_dir}"\n', encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "omnivec.cli", "index", str(docs), "--kb", str(kb), "--config", str(config)],
                   check=True, env=env, capture_output=True)
    process = subprocess.Popen([sys.executable, "-m", "omnivec.cli", "serve", "--model", f"minilm={minilm_dir}",
                                "--port", str(port), "--api-key", "secret", "--kb", str(kb), "--config", str(config)],
                               stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        reply = httpx.post(f"http://127.0.0.1:{port}/v1/embeddings", json={"model": "minilm", "input": "hello"},
                           headers={"Authorization": "Bearer secret"}, timeout=30)
        assert reply.status_code == 200, reply.text
        expected = omnivec.Embedder(minilm_dir, device="cpu").encode("hello", normalize_embeddings=True)
        assert np.allclose(reply.json()["data"][0]["embedding"], expected, atol=1e-5)
        found = httpx.post(f"http://127.0.0.1:{port}/v1/search", json={"query": "return window", "k": 1},
                           headers={"Authorization": "Bearer secret"}, timeout=30)
        assert found.status_code == 200 and found.json()["data"][0]["file"].endswith("faq.md"), found.text
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_counting_usage_tokens_leaves_the_models_tokenizer_alone(models, monkeypatch):
    """Counting runs in request threads while the model thread tokenizes with truncation; they must not share a
    tokenizer, whose truncation setting is switched by each call."""
    from omnivec.serve.usage import token_counter

    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "true")  # as in a server; batches then encode outside the GIL

    model, long_text = models["minilm"], "many words here " * 300
    count, stop = token_counter(model), threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            assert count(["a short sentence"] * 4) == 4 * 5

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        lengths = {len(ids) for _ in range(300) for ids in model.transformer.tokenize_unpadded([long_text] * 8)["input_ids"]}
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert lengths == {model.max_seq_length}
