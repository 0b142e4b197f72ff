"""Server edges: media URLs fetched only when enabled, within size and time limits; media items capped; CORS."""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import time
from collections.abc import Awaitable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from omnivec.serve.app import create_app

LIMIT = 50_000


def _png(size: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


class _Media(BaseHTTPRequestHandler):
    """/red.png; /big.png (announces its oversize length); /endless (no length, never ends); /slow.png (trickles)."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path == "/red.png":
            body = _png()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/big.png":
            self.send_response(200)
            self.send_header("Content-Length", str(LIMIT * 10))
            self.end_headers()
        elif self.path in ("/endless", "/slow.png"):
            self.send_response(200)
            self.end_headers()
            pause, block = (0.0, b"x" * 8192) if self.path == "/endless" else (0.3, b"x")
            try:
                for _ in range(200):
                    self.wfile.write(block)
                    self.wfile.flush()
                    time.sleep(pause)
            except OSError:
                pass  # the client gave up, as it should
        else:
            self.send_error(404)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def media_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Media)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def clip(clip_embedder):
    return clip_embedder


def _image_request(url: str) -> dict:
    return {"model": "clip", "input": [[{"type": "image_url", "image_url": {"url": url}}]]}


def test_media_urls_are_fetched_only_when_enabled(clip, media_server):
    with TestClient(create_app({"clip": clip}, {})) as client:
        reply = client.post("/v1/embeddings", json=_image_request(f"{media_server}/red.png"))
        assert reply.status_code == 400 and "remote image URLs are disabled" in reply.text
    with TestClient(create_app({"clip": clip}, {}, allow_media_urls=True)) as client:
        reply = client.post("/v1/embeddings", json=_image_request(f"{media_server}/red.png"))
        assert reply.status_code == 200, reply.text
    expected = clip.encode([Image.open(io.BytesIO(_png()))], normalize_embeddings=True)[0]
    np.testing.assert_allclose(reply.json()["data"][0]["embedding"], expected, atol=1e-5)


@pytest.mark.parametrize("path, needle", [
    ("/big.png", f"over the {LIMIT}-byte limit"),
    ("/endless", f"larger than the {LIMIT}-byte limit"),
    ("/slow.png", "took longer than 1 s"),
    ("/missing.png", "404"),
])
def test_media_urls_have_size_and_time_limits(clip, media_server, path, needle):
    app = create_app({"clip": clip}, {}, allow_media_urls=True, max_media_bytes=LIMIT, media_timeout_s=1)
    with TestClient(app) as client:
        started = time.monotonic()
        reply = client.post("/v1/embeddings", json=_image_request(f"{media_server}{path}"))
        assert reply.status_code == 400 and needle in reply.text and "input[0]" in reply.text, reply.text
        assert time.monotonic() - started < 5
        assert client.get("/health").status_code == 200


def test_media_items_are_capped(clip):
    big = base64.b64encode(b"\0" * (LIMIT + 1)).decode()
    with TestClient(create_app({"clip": clip}, {}, max_media_bytes=LIMIT)) as client:
        image = client.post("/v1/embeddings", json=_image_request(f"data:image/png;base64,{big}"))
        assert image.status_code == 400 and f"over the {LIMIT}-byte limit" in image.text, image.text
        fits = base64.b64encode(_png()).decode()
        assert client.post("/v1/embeddings", json=_image_request(f"data:image/png;base64,{fits}")).status_code == 200


def test_cors_allows_only_the_configured_origins(clip):
    app = create_app({"clip": clip}, {}, cors_origins=["https://app.example.com"], api_key="k")
    with TestClient(app) as client:
        preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization,content-type"}
        allowed = client.options("/v1/embeddings", headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        refused = client.options("/v1/embeddings", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in refused.headers
        # An error reply (here 401) carries the header too, so the page can read the message.
        denied = client.post("/v1/embeddings", json={"model": "clip", "input": "x"},
                             headers={"Origin": "https://app.example.com"})
        assert denied.status_code == 401 and denied.headers["access-control-allow-origin"] == "https://app.example.com"
    with TestClient(create_app({"clip": clip}, {})) as client:  # off by default
        reply = client.get("/health", headers={"Origin": "https://app.example.com"})
        assert "access-control-allow-origin" not in reply.headers
        assert "--kb" in client.get("/").json()["search_page"]  # no KB: the root says how to get the page


def test_every_error_has_the_openai_shape_and_the_app_starts_again(clip):
    app = create_app({"clip": clip}, {})
    with TestClient(app):
        pass
    with TestClient(app) as client:  # a second lifespan gets working batchers again
        assert client.post("/v1/embeddings", json={"model": "clip", "input": "hi"}).status_code == 200
        for reply, status in [
            (client.post("/v1/embeddings", content=b"\x96\xa5\xdc", headers={"Content-Type": "application/json"}), 400),
            (client.get("/v1/embeddings"), 405),
            (client.get("/nowhere"), 404),
        ]:
            assert reply.status_code == status and reply.json()["error"]["message"], reply.text
        assert client.get("/v1/embeddings").headers["allow"] == "POST"


class _Fragile:
    """An embedder that fails (as a model bug would, not as bad input) on the text "boom"."""

    modalities, tokenizer, sampling_rate = ["text"], None, None

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def supports(self, kind: str) -> bool:
        return kind == "text"

    def get_sentence_embedding_dimension(self) -> int:
        return 2

    def encode(self, items: list, **_: object) -> np.ndarray:
        self.calls.append([item["text"] for item in items])
        time.sleep(0.3 if len(self.calls) == 1 else 0)  # the others queue behind the first call and batch together
        if any(item["text"] == "boom" for item in items):
            raise RuntimeError("CUDA error: device-side assert triggered")
        return np.array([[1.0, float(len(item["text"]))] for item in items], dtype=np.float32)


def test_a_model_failure_is_a_json_500_and_spares_its_batch_mates():
    model = _Fragile()
    app = create_app({"fragile": model}, {}, max_wait_ms=200)

    async def fire() -> list:
        import httpx

        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://omnivec") as client:
            def post(text: str) -> Awaitable[httpx.Response]:
                return client.post("/v1/embeddings", json={"model": "fragile", "input": text})

            # A first request holds the model (its call sleeps), so the next three queue and batch together.
            first = asyncio.ensure_future(post("first"))
            while not model.calls:
                await asyncio.sleep(0.005)
            # Sent now, while the first call runs: a list display would await ``first`` before starting them, and
            # they could then reach the batcher apart (seen in CI under load).
            rest = asyncio.gather(*(post(t) for t in ("fine", "boom", "also fine")))
            return [await first, *await rest]

    with TestClient(app):  # starts the batchers' lifespan
        _, good, bad, also = asyncio.run(fire())
    assert good.status_code == 200 and also.status_code == 200
    assert bad.status_code == 500 and "device-side assert" in bad.json()["error"]["message"], bad.text
    assert any(len(call) > 1 and "boom" in call for call in model.calls), model.calls  # it had batch-mates


def test_search_images_are_refused_past_the_servers_pixel_limit(tmp_path):
    """/v1/search uses create_app(max_image_pixels=) as /v1/embeddings does (it used the library's default)."""
    from types import SimpleNamespace

    searched = []
    searcher = SimpleNamespace(kb_dir=tmp_path, spaces=[], reranker=None,
                               search=lambda *args, **kwargs: searched.append(args[1].size) or [])
    image = Image.new("RGB", (100, 100), (200, 30, 30))
    with TestClient(create_app({}, {}, kb=searcher, max_image_pixels=10_000)) as client:
        small = "data:image/png;base64," + base64.b64encode(_png(100)).decode()
        assert client.post("/v1/search", json={"image": small}).status_code == 200 and searched == [image.size]
        big = "data:image/png;base64," + base64.b64encode(_png(101)).decode()
        reply = client.post("/v1/search", json={"image": big})
        assert reply.status_code == 413 and "10,000" in reply.text and "pixels" in reply.text, reply.text
