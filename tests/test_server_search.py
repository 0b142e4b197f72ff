"""``POST /v1/search`` over a knowledge base: the same results as ``omnivec search``, thumbnails served, bad queries
answered with a 4xx."""

from __future__ import annotations

import base64
import contextlib
import io

import pytest
from fastapi.testclient import TestClient

from omnivec.cli import main
from omnivec.kb.config import load_config
from omnivec.kb.ingest.sample import sample_folder
from omnivec.kb.search import Searcher
from omnivec.serve.app import create_app


@pytest.fixture(scope="module")
def served(tmp_path_factory, minilm_dir, clip_dir):
    root = tmp_path_factory.mktemp("served-kb")
    docs, kb, config = root / "docs", root / "kb", root / "kb.toml"
    sample_folder(docs)
    config.write_text(f'[spaces]\ntext = "{minilm_dir}"\nimage = "{clip_dir}"\n', encoding="utf-8")
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(["index", str(docs), "--kb", str(kb), "--config", str(config)]) == 0
    searcher = Searcher(kb, load_config(kb, config), device="cpu")
    with TestClient(create_app({}, {}, kb=searcher, api_key="key")) as client:
        yield client, searcher, docs
    searcher.close()


AUTH = {"Authorization": "Bearer key"}


def test_search_matches_the_library_and_links_thumbnails(served):
    client, searcher, docs = served
    reply = client.post("/v1/search", json={"query": "How much did revenue grow?", "k": 5,
                                            "filters": {"modalities": ["text"]}}, headers=AUTH)
    assert reply.status_code == 200, reply.text
    data = reply.json()["data"]
    expected = searcher.search("How much did revenue grow?", k=5, where=_text_only())
    assert [r["id"] for r in data] == [r.id for r in expected]
    assert data[0]["location"].endswith("report.pdf p.1")
    photo = (docs / "red_circle.png").read_bytes()
    image = "data:image/png;base64," + base64.b64encode(photo).decode()
    hits = client.post("/v1/search", json={"image": image, "k": 3}, headers=AUTH).json()["data"]
    assert hits[0]["file"].endswith("red_circle.png") and hits[0]["thumbnail_url"]
    picture = client.get(hits[0]["thumbnail_url"], headers=AUTH)
    assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8"  # a JPEG


def _text_only():
    from omnivec.kb.stores.base import Filter

    return Filter(modalities=("text",))


@pytest.mark.parametrize("body, status, needle", [
    ({}, 400, "needs a text query, an image, or both"),
    ({"image": "/etc/passwd"}, 400, "must be a data: URI"),
    ({"image": "data:image/png;base64,not-an-image"}, 400, "cannot be decoded"),
    ({"query": "x", "k": 0}, 422, "k"),
    ({"query": "x", "filters": {"colour": "red"}}, 422, "colour"),
])
def test_bad_searches_are_4xx(served, body, status, needle):
    client, _, _ = served
    reply = client.post("/v1/search", json=body, headers=AUTH)
    assert reply.status_code == status and needle in reply.text, reply.text
    assert client.get("/health").status_code == 200


def test_search_needs_the_key_and_thumbnails_stay_in_their_folder(served):
    client, _, _ = served
    assert client.post("/v1/search", json={"query": "lamp"}).status_code == 401
    assert client.get("/v1/kb/thumbs/..%2F..%2Fmanifest.sqlite", headers=AUTH).status_code == 404
