"""The KB's value types: a ``Location`` kept by both stores under the payload keys KBs have always had, results
giving the same JSON fields, a ``FileVersion`` deciding what is unchanged, and manifest states checked on reading."""

from __future__ import annotations

import os
import sqlite3
from types import SimpleNamespace

import numpy as np
import pytest

from omnivec.kb.chunk import Chunk
from omnivec.kb.file_version import FileVersion
from omnivec.kb.location import PAYLOAD_KEYS, Location
from omnivec.kb.manifest import FILE_STATES, SCHEMA, Manifest, ManifestError, indexed_versions
from omnivec.kb.search import Result
from omnivec.kb.stores.base import PAYLOAD_DEFAULTS, Record
from omnivec.kb.stores.uri import open_store

LOCATIONS = [
    Location("/kb/report.pdf", page=3),
    Location("/kb/talk.mp3", start=70.0, end=80.5),
    Location("/kb/clip.mp4", start=4.0),
    Location("/kb/notes.md", heading="Setup > Wiring"),
    Location("/kb/photo.png"),
]


@pytest.mark.parametrize("backend", ["lancedb", "qdrant"])
def test_a_location_round_trips_through_each_store(tmp_path, backend):
    uri = str(tmp_path / "vectors") if backend == "lancedb" else "qdrant://:memory:"
    vectors = np.eye(len(LOCATIONS), 8, dtype=np.float32)
    with open_store(uri) as store:
        store.ensure_collection("text", 8)
        store.upsert("text", [Record(f"r{i}", vector, {**where.to_payload(), "modality": "text", "kind": "text"})
                              for i, (where, vector) in enumerate(zip(LOCATIONS, vectors, strict=True))])
        for where, vector in zip(LOCATIONS, vectors, strict=True):
            hit = store.search("text", vector, 1)[0]
            assert hit.location == where
            assert {key: hit.payload[key] for key in PAYLOAD_KEYS} == where.to_payload()


def test_the_location_keys_are_the_stored_ones():
    """The payload keys (LanceDB columns) stay those of earlier releases, so existing KBs read as they are."""
    assert PAYLOAD_KEYS == ("file", "page", "start", "end", "heading")
    assert set(PAYLOAD_KEYS) <= set(PAYLOAD_DEFAULTS)
    assert Location.from_payload({"file": "/kb/a.txt"}) == Location("/kb/a.txt")  # a record without them
    assert Location.from_payload({"file": "/kb/a.txt", "heading": None}).heading == ""


def test_the_indexer_writes_the_payload_it_always_wrote(tmp_path):
    from omnivec.kb.index_writer import IndexWriter

    chunk = Chunk(Location("/kb/talk.mp3", start=10.0, end=20.0), modality="audio", kind="audio", content=None,
                  extra={"record_id": 7})
    writer = SimpleNamespace(kb_dir=tmp_path)  # all _payload reads (it writes thumbnails there)
    payload = IndexWriter._payload(writer, "/kb/talk.mp3", "abc-3", 3, chunk)
    assert payload == {"file": "/kb/talk.mp3", "modality": "audio", "kind": "audio", "text": "", "page": None,
                       "start": 10.0, "end": 20.0, "heading": "", "chunk": 3, "thumbnail": "", "record": "7"}


def test_a_location_is_described_as_results_always_were():
    assert [where.describe() for where in LOCATIONS] == [
        "/kb/report.pdf p.3", "/kb/talk.mp3 01:10-01:20", "/kb/clip.mp4 00:04-00:04", "/kb/notes.md (Setup > Wiring)",
        "/kb/photo.png"]


def test_a_result_gives_the_same_json_fields_in_the_same_order():
    result = Result(id="k-1", score=0.5, location=LOCATIONS[0], modality="image", kind="page", text="Page text",
                    thumbnail="thumbs/k-1.jpg", spaces=["image"], similarity=0.25, scores={"image": 0.25})
    assert list(result.to_dict().items()) == [
        ("id", "k-1"), ("score", 0.5), ("file", "/kb/report.pdf"), ("modality", "image"), ("kind", "page"),
        ("text", "Page text"), ("page", 3), ("start", None), ("end", None), ("heading", ""),
        ("thumbnail", "thumbs/k-1.jpg"), ("record", ""), ("spaces", ["image"]), ("scores", {"image": 0.25}),
        ("similarity", 0.25),
        ("rerank_score", None)]


def test_file_versions_decide_what_is_unchanged(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("one")
    before = FileVersion.of(str(path), path.stat(), "h1")
    assert FileVersion.of(str(path), path.stat(), "h1") == before and before.shown_by(path.stat())
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    touched = FileVersion.of(str(path), path.stat(), "h1")
    assert touched != before and touched.same_content(before) and not before.shown_by(path.stat())
    path.write_text("two")  # the same size, other bytes
    assert not FileVersion.of(str(path), path.stat(), "h2").same_content(before)


def test_the_manifest_keeps_file_versions(tmp_path):
    manifest = Manifest(tmp_path / "manifest.sqlite")
    done, failed = FileVersion("/kb/a.txt", "h1", 3, 1.5), FileVersion("/kb/b.txt", "h2", 4, 2.5)
    manifest.set_states([done], "done", [2])
    manifest.set_states([failed], "failed", errors=["bad"])
    entries = manifest.entries()
    assert entries["/kb/a.txt"].version == done and entries["/kb/a.txt"].state == "done"
    assert entries["/kb/b.txt"].version == failed and entries["/kb/b.txt"].error == "bad"
    manifest.touch([FileVersion("/kb/a.txt", "h1", 3, 9.5)])
    manifest.close()
    assert indexed_versions(tmp_path / "manifest.sqlite") == [FileVersion("/kb/a.txt", "h1", 3, 9.5)]


def test_the_manifest_schema_keeps_its_state_check():
    assert FILE_STATES == ("pending", "done", "failed")
    assert "CHECK (state IN ('pending', 'done', 'failed'))" in SCHEMA


def test_an_unknown_state_in_a_manifest_is_named(tmp_path):
    """A manifest written by another version (no CHECK, another state): reading it names the file and the state."""
    path = tmp_path / "manifest.sqlite"
    with sqlite3.connect(str(path)) as db:
        db.executescript(SCHEMA.replace(" CHECK (state IN ('pending', 'done', 'failed'))", ""))
        db.execute("INSERT INTO files (path, hash, size, mtime, state, updated) "
                   "VALUES ('/kb/a.txt', 'h', 1, 1.0, 'queued', 0)")
    db.close()
    manifest = Manifest(path)
    with pytest.raises(ManifestError, match=r"'/kb/a.txt' has state 'queued'; expected one of pending, done, failed"):
        manifest.entries()
    manifest.close()
