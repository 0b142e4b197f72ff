"""The knowledge base over HTTP: ``POST /v1/search`` gives the same results as ``omnivec search``; the thumbnails,
files (with ranges) and PDF page images it links to are served, signed for browsers; bad queries get a 4xx."""

from __future__ import annotations

import base64
import io
import re
import time

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from omnivec.kb.config import load_config
from omnivec.kb.search import Searcher
from omnivec.serve.app import create_app


@pytest.fixture(scope="module")
def served(sample_kb):
    docs, kb, config = sample_kb
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


def test_search_chooses_spaces_and_fusion_like_the_library(served):
    """``spaces``, ``fusion``, ``rrf_k`` and ``weights`` reach the searcher; each result names the spaces that found
    it with their own scores."""
    from omnivec.kb.fusion import FusionSettings

    client, searcher, _ = served
    query = "How much did revenue grow?"
    for body, spaces, fusion in (({"spaces": ["lexical"]}, ["lexical"], None),
                                 ({"spaces": ["text", "lexical"], "fusion": "rrf", "rrf_k": 5}, ["text", "lexical"],
                                  FusionSettings("rrf", 5)),
                                 ({"weights": {"image": 0, "audio": 0}}, None,
                                  searcher.fusion.merged(weights={"image": 0, "audio": 0}))):
        reply = client.post("/v1/search", json={"query": query, "k": 5, **body}, headers=AUTH)
        assert reply.status_code == 200, reply.text
        data = reply.json()["data"]
        expected = searcher.search(query, k=5, fusion=fusion, spaces=spaces)
        assert [r["id"] for r in data] == [r.id for r in expected] and data
        assert [r["spaces"] for r in data] == [r.spaces for r in expected]
        assert all(set(r["scores"]) == set(r["spaces"]) for r in data)
        if spaces == ["lexical"]:
            assert all(r["spaces"] == ["lexical"] and r["similarity"] is None for r in data)
            assert data[0]["file"].endswith(("report.pdf", ".md", ".txt", ".html", ".jsonl")), data[0]
        if body.get("weights"):
            assert all(r["modality"] == "text" for r in data)  # image and audio lists weigh nothing


def _text_only():
    from omnivec.kb.stores.base import Filter

    return Filter(modalities=("text",))


@pytest.mark.parametrize("body, status, needle", [
    ({}, 400, "needs a text query, an image, or both"),
    ({"image": "/etc/passwd"}, 400, "must be a data: URI"),
    ({"image": "data:image/png;base64,not-an-image"}, 400, "cannot be decoded"),
    ({"query": "x", "k": 0}, 422, "k"),
    ({"query": "x", "filters": {"colour": "red"}}, 422, "colour"),
    ({"query": "x", "spaces": ["text", "nope"]}, 400, "nope"),
    ({"query": "x", "spaces": []}, 422, "spaces"),
    ({"query": "x", "spaces": ["text"] * 9}, 422, "spaces"),
    ({"query": "x", "weights": {"text": -1}}, 422, "weights"),
    ({"query": "x", "fusion": "max"}, 422, "fusion"),
    ({"query": "x", "rrf_k": 10**6}, 422, "rrf_k"),
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


def _all(client) -> list[dict]:
    reply = client.post("/v1/search", json={"query": "ball", "k": 100}, headers=AUTH)
    assert reply.status_code == 200, reply.text
    return reply.json()["data"]


def test_results_link_files_pages_and_media_ranges(served):
    client, _, docs = served
    results = _all(client)
    by_kind = {}
    for r in results:
        by_kind.setdefault((r["kind"], r["file"].rsplit("/", 1)[-1]), []).append(r)

    page = by_kind["page", "report.pdf"][0]
    assert page["page_image_url"].startswith(f"/v1/kb/pages/{page['file_url'].split('/')[4][:16]}/{page['page']}.jpg")
    shown = client.get(page["page_image_url"] + "&width=500")  # signed: no Authorization header needed
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(shown.content)).width == 640  # rounded up to a cached size
    pdf = client.get(page["file_url"])
    assert pdf.content == (docs / "report.pdf").read_bytes() and pdf.headers["content-type"] == "application/pdf"

    audio = {r["start"]: r for r in by_kind["audio", "beeps.wav"]}
    assert sorted(audio) == [0.0, 2.0, 4.0] and audio[2.0]["media_kind"] == "audio"
    assert audio[2.0]["media_url"].endswith("#t=2,4")
    source = audio[2.0]["media_url"].split("#")[0]
    part = client.get(source, headers={"Range": "bytes=100-199"})  # how players seek
    assert part.status_code == 206 and part.content == (docs / "beeps.wav").read_bytes()[100:200]
    frames = sorted(r["start"] for r in by_kind["frame", "ball.mp4"])
    assert frames == [0.0, 2.0] and all(r["media_kind"] == "video" for r in by_kind["frame", "ball.mp4"])
    assert all(r["media_url"] is None and r["page_image_url"] is None for r in by_kind["text", "manual.md"])


def test_links_are_signed_and_expire(served, monkeypatch):
    client, _, _ = served
    link = next(r["file_url"] for r in _all(client) if r["file"].endswith("red_circle.png"))
    path, _, query = link.partition("?")
    assert client.get(link).status_code == 200
    assert client.get(path).status_code == 401  # no signature, no key
    assert client.get(path, headers=AUTH).status_code == 200
    forged = query[:-1] + ("0" if query[-1] != "0" else "1")
    assert client.get(f"{path}?{forged}").status_code == 401
    other = path[:-1] + ("0" if path[-1] != "0" else "1")  # a signature is good for its own path only
    assert client.get(f"{other}?{query}").status_code == 401
    monkeypatch.setattr(time, "time", lambda: 4e9)
    assert client.get(link).status_code == 401


@pytest.mark.parametrize("path, status", [
    ("/v1/kb/files/0123456789abcdef", 404),  # not an indexed file
    ("/v1/kb/files/..%2F..%2Fetc%2Fpasswd", 404),
    ("/v1/kb/pages/{pdf}/9.jpg", 404),  # the PDF has 3 pages
    ("/v1/kb/pages/{png}/1.jpg", 404),  # not a PDF
    ("/v1/kb/pages/{pdf}/1.jpg?width=5000", 422),
])
def test_file_routes_refuse_what_is_not_there(served, path, status):
    client, _, _ = served
    keys = {r["file"].rsplit("/", 1)[-1]: r["file_url"].split("/")[4][:16] for r in _all(client)}
    reply = client.get(path.format(pdf=keys["report.pdf"], png=keys["red_circle.png"]), headers=AUTH)
    assert reply.status_code == status, reply.text


def test_kb_info_and_search_page(served):
    client, _, _ = served
    info = client.get("/v1/kb", headers=AUTH).json()
    assert info["files"] == 8 and info["reranker"] is None
    assert {s["name"]: s["queries"] for s in info["spaces"]} == {"text": ["text"], "image": ["text", "image"],
                                                                "audio": ["text"], "lexical": ["text"]}
    page = client.get("/")  # the page holds no data: no key needed; it asks for one when the API answers 401
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="query"' in page.text and "/v1/search" in page.text
    assert client.get("/v1/kb").status_code == 401


def test_files_swapped_for_a_symlink_or_changed_since_indexing_are_not_served(tmp_path, minilm_dir):
    """On a live server: a symlink put in an indexed file's place is not followed (404); a file whose size or
    modification time differ from the manifest's is not served (410) until it is indexed again."""
    import contextlib
    import os

    import httpx

    from omnivec.cli import main
    from omnivec.kb.record_ids import file_key
    from tests.fixtures.live_server import live_server

    docs, kb, config = tmp_path / "docs", tmp_path / "kb", tmp_path / "kb.toml"
    docs.mkdir()
    for name in ("swapped.md", "grown.md", "touched.md", "kept.md"):
        (docs / name).write_text(f"# {name}\n\nA note called {name}.\n", encoding="utf-8")
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the web", encoding="utf-8")
    config.write_text(f'[spaces]\ntext = "{minilm_dir}"\n', encoding="utf-8")
    index = ["index", str(docs), "--kb", str(kb), "--config", str(config)]
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(index) == 0
    searcher = Searcher(kb, load_config(kb, config), device="cpu")
    try:
        with live_server(create_app({}, {}, kb=searcher)) as url, httpx.Client(base_url=url, timeout=30) as client:
            def get(name: str) -> httpx.Response:
                return client.get(f"/v1/kb/files/{file_key(str(docs / name))}")

            assert all(get(name).status_code == 200 for name in ("swapped.md", "grown.md", "touched.md"))
            (docs / "swapped.md").unlink()
            (docs / "swapped.md").symlink_to(secret)
            with open(docs / "grown.md", "a", encoding="utf-8") as f:
                f.write("More.\n")
            later = time.time() + 5
            os.utime(docs / "touched.md", (later, later))  # same bytes, new time: the server cannot tell
            reply = get("swapped.md")
            assert reply.status_code == 404 and "symlink" in reply.json()["error"]["message"]
            assert b"not for the web" not in reply.content
            for name in ("grown.md", "touched.md"):
                reply = get(name)
                assert reply.status_code == 410 and "changed since it was indexed" in reply.text, name
            kept = get("kept.md")
            assert kept.status_code == 200 and kept.content == (docs / "kept.md").read_bytes()
            with contextlib.redirect_stderr(io.StringIO()):
                assert main(index) == 0  # indexed again: served again, the server re-reads the manifest
            assert get("grown.md").content == (docs / "grown.md").read_bytes()
            assert get("touched.md").status_code == 200 and get("swapped.md").status_code == 404
    finally:
        searcher.close()


def test_a_text_and_image_query_goes_only_to_spaces_that_take_both(served, sample_kb, minilm_dir, clap_dir):
    """CLIP (image space) takes text + image; the text model and CLAP (text + audio) do not: they sit this query
    out instead of failing it, in the library and over HTTP alike."""
    from omnivec.errors import InputError
    from omnivec.kb.config import KBConfig

    client, searcher, docs = served
    photo = docs / "red_circle.png"
    results = searcher.search("a red circle", image=str(photo), k=5, rerank=False)
    assert results and all(r.spaces == ["image"] for r in results)
    assert results[0].location.file == str(photo.resolve())
    image = "data:image/png;base64," + base64.b64encode(photo.read_bytes()).decode()
    reply = client.post("/v1/search", json={"query": "a red circle", "image": image, "k": 5}, headers=AUTH)
    assert reply.status_code == 200, reply.text
    assert [r["id"] for r in reply.json()["data"]] == [r.id for r in results]

    _, kb, _ = sample_kb
    no_image_space = Searcher(kb, KBConfig(spaces={"text": minilm_dir, "audio": clap_dir}), device="cpu")
    try:
        with pytest.raises(InputError) as info:
            no_image_space.search("a red circle", image=str(photo))
        assert str(info.value) == ("No space of this KB takes text + image queries (spaces: text: text; "
                                   "audio: text; lexical: text).")
        assert no_image_space.search("a red circle", k=3, rerank=False)  # text alone still goes to both spaces
    finally:
        no_image_space.close()


def test_a_missing_image_path_is_named_not_searched_as_text(served):
    from omnivec.errors import InputError

    _, searcher, docs = served
    for image in (str(docs / "red_circel.png"), "phto.jpg", str(docs)):
        with pytest.raises(InputError, match=f"The image query {re.escape(repr(image))} (does not exist|is a folder)"):
            searcher.search("a red circle", image=image)
        with pytest.raises(InputError, match="does not exist|is a folder"):
            searcher.search(None, image=image)
