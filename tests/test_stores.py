"""Vector stores: one suite run against LanceDB and Qdrant local mode (the ``opener`` fixture of
tests/fixtures/stores.py), checked against brute-force cosine."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from omnivec.errors import InputError
from omnivec.kb.stores.base import PAYLOAD_DEFAULTS, Filter, Record, path_ancestors
from omnivec.kb.stores.uri import open_store

DIM = 32
# Paths a filter must get right: a quote, spaces, SQL wildcards, a sibling sharing a name prefix, backslashes.
PATHS = ["/kb/docs/a.txt", "/kb/docs/b.PDF", "/kb/docs/sub/c.md", "/kb/docsx/d.txt", "/kb/it's mine/e.txt",
         "/kb/with space/f g.png", "/kb/100%_off/h.txt", "/kb/docs_/i.txt", "C:\\kb\\win\\j.txt", "rel/k.wav"]


def _unit(rows: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(rows, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _records(vectors: np.ndarray, files: list[str], prefix: str = "r") -> list[Record]:
    modalities = ("text", "image", "audio")
    return [Record(f"{prefix}{i}", vector, {"file": files[i % len(files)], "modality": modalities[i % 3],
                                            "kind": "text", "chunk": i, "page": i % 5 or None, "note": f"n{i}"})
            for i, vector in enumerate(vectors)]


def _exact(vectors: np.ndarray, records: list[Record], query: np.ndarray, k: int,
           where: Filter | None = None) -> list[tuple[str, float]]:
    """Brute-force cosine ranking of the records ``where`` keeps (payloads normalised as the stores do)."""
    from omnivec.kb.stores.base import normalize_payload

    keep = [i for i, r in enumerate(records) if where is None or where.matches(normalize_payload(r.payload, ""))]
    scores = vectors[keep] @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return [(records[keep[i]].id, float(scores[i])) for i in order]


@pytest.fixture
def store(opener):
    store = opener()
    store.ensure_collection("text", DIM)
    return store


def test_ensure_collection_and_dim_mismatch(store):
    store.ensure_collection("text", DIM)  # again: fine
    with pytest.raises(InputError, match=r"'text'.*32.*16"):
        store.ensure_collection("text", 16)
    with pytest.raises(InputError, match="collection name"):
        store.ensure_collection("no/slash", DIM)
    store.ensure_collection("image", 8)
    assert store.collections() == ["image", "text"]


def test_upsert_replaces_by_id(store):
    vectors = _unit(6, seed=1)
    store.upsert("text", _records(vectors[:3], ["/x/a.txt"]))
    assert store.count("text") == 3
    replaced = Record("r1", vectors[3], {"file": "/x/b.md", "modality": "text", "kind": "page", "page": 7})
    store.upsert("text", [replaced])
    assert store.count("text") == 3
    hit = store.search("text", vectors[3], 1)[0]
    assert hit.id == "r1" and hit.score == pytest.approx(1.0, abs=1e-5)
    assert hit.payload == {**PAYLOAD_DEFAULTS, "file": "/x/b.md", "file_type": "md", "modality": "text",
                           "kind": "page", "page": 7}
    # a repeated id within one call keeps the last record
    store.upsert("text", [Record("dup", vectors[4], replaced.payload), Record("dup", vectors[5], replaced.payload)])
    assert store.count("text") == 4
    assert store.search("text", vectors[5], 1)[0].id == "dup"
    store.upsert("text", [])


def test_upsert_rejects_bad_input(store):
    vector = _unit(1, seed=2)[0]
    with pytest.raises(InputError, match="'missing'.*ensure_collection"):
        store.upsert("missing", [Record("a", vector, {"file": "f", "modality": "text", "kind": "text"})])
    with pytest.raises(InputError, match="dimension 32"):
        store.upsert("text", [Record("a", vector[:5], {"file": "f", "modality": "text", "kind": "text"})])
    with pytest.raises(InputError, match="lacks kind"):
        store.upsert("text", [Record("a", vector, {"file": "f", "modality": "text"})])
    with pytest.raises(InputError, match="'page' must be an int"):
        store.upsert("text", [Record("a", vector, {"file": "f", "modality": "text", "kind": "text", "page": "2"})])
    with pytest.raises(InputError, match="reserved"):
        store.upsert("text", [Record("a", vector, {"file": "f", "modality": "text", "kind": "text", "dirs": "x"})])
    with pytest.raises(InputError, match="dimension 32"):
        store.search("text", vector[:5], 3)
    assert store.count("text") == 0


def test_search_equals_brute_force(store):
    vectors = _unit(2000, seed=3)
    records = _records(vectors, PATHS)
    store.upsert("text", records[:1000])
    store.upsert("text", records[1000:])
    for query in _unit(5, seed=4):
        hits = store.search("text", query, 10)
        expected = _exact(vectors, records, query, 10)
        assert [h.id for h in hits] == [i for i, _ in expected]
        np.testing.assert_allclose([h.score for h in hits], [s for _, s in expected], atol=1e-5)
    hit = store.search("text", vectors[7], 1)[0]
    assert hit.id == "r7" and hit.payload["note"] == "n7" and hit.payload["chunk"] == 7
    assert set(hit.payload) == set(PAYLOAD_DEFAULTS) | {"note"}


@pytest.mark.parametrize("where", [
    Filter(path_prefix="/kb/docs"), Filter(path_prefix="/kb/docs/"), Filter(path_prefix="/kb/it's mine"),
    Filter(path_prefix="/kb/with space/f g.png"), Filter(path_prefix="/kb/100%_off"), Filter(path_prefix="/kb/docs_"),
    Filter(path_prefix="C:\\kb"), Filter(path_prefix="rel"), Filter(path_prefix="/"), Filter(path_prefix="/kb/doc"),
    Filter(modalities=("image", "audio")), Filter(modalities="text"), Filter(file_types=("pdf", ".TXT")),
    Filter(path_prefix="/kb", modalities=("text",), file_types=("txt", "md")), Filter(modalities=()),
], ids=repr)
def test_filters(store, where):
    vectors = _unit(300, seed=5)
    records = _records(vectors, PATHS)
    store.upsert("text", records)
    query = _unit(1, seed=6)[0]
    hits = store.search("text", query, 300, where)
    expected = _exact(vectors, records, query, 300, where)
    assert [h.id for h in hits] == [i for i, _ in expected]
    assert all(where.matches(h.payload) for h in hits)


def test_path_prefix_semantics():
    assert path_ancestors("/a/b/c.txt") == ["/", "/a", "/a/b", "/a/b/c.txt"]
    assert path_ancestors("C:\\a\\b.txt") == ["C:", "C:\\a", "C:\\a\\b.txt"]
    assert path_ancestors("rel/x") == ["rel", "rel/x"]
    assert Filter(path_prefix="/a/b/").matches({"file": "/a/b/c.txt"})
    assert not Filter(path_prefix="/a/b").matches({"file": "/a/bc.txt"})
    assert Filter(path_prefix="").path_prefix is None


def test_delete_files_count_files(store):
    vectors = _unit(60, seed=7)
    records = _records(vectors, PATHS[:6])  # 10 records per file
    store.upsert("text", records)
    assert store.files("text") == set(PATHS[:6])
    assert store.delete_files("text", [PATHS[0], PATHS[4], "/not/there"]) == 20
    assert store.count("text") == 40
    assert store.files("text") == set(PATHS[:6]) - {PATHS[0], PATHS[4]}
    assert store.delete_files("text", [PATHS[0]]) == 0
    assert store.delete_files("text", []) == 0
    assert store.delete_files("missing", [PATHS[1]]) == 0
    assert all(h.payload["file"] not in (PATHS[0], PATHS[4]) for h in store.search("text", vectors[0], 40))


def test_missing_and_empty_collections(store):
    query = _unit(1, seed=8)[0]
    assert store.search("text", query, 5) == []
    assert store.search("missing", query, 5) == []
    assert store.count("missing") == 0 and store.files("missing") == set()
    assert store.count("text") == 0 and store.files("text") == set()
    assert store.search("text", query, 0) == []


def test_persistence(opener, store):
    vectors = _unit(100, seed=9)
    records = _records(vectors, PATHS)
    store.upsert("text", records)
    store.close()
    reopened = opener()
    assert reopened.collections() == ["text"] and reopened.count("text") == 100
    assert [h.id for h in reopened.search("text", vectors[3], 3)] == [i for i, _ in _exact(vectors, records,
                                                                                          vectors[3], 3)]
    with pytest.raises(InputError, match="16"):
        reopened.ensure_collection("text", 16)


# A writer that upserts 500-record batches until killed, printing each finished call.
_WRITER = textwrap.dedent("""
    import sys, numpy as np
    from omnivec.kb.stores.base import Record
    from omnivec.kb.stores.uri import open_store
    store = open_store(sys.argv[1]); store.ensure_collection("text", 32)
    rng = np.random.default_rng(0)
    for call in range(10**6):
        v = rng.normal(size=(500, 32)).astype(np.float32)
        store.upsert("text", [Record(f"{call}-{i}", v[i], {"file": f"/f{call}", "modality": "text", "kind": "text"})
                              for i in range(500)])
        print(call, flush=True)
""")


def test_killed_writer_leaves_store_readable(opener):
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, opener.uri], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(3):  # wait for some finished calls, then kill during the next ones
            assert writer.stdout.readline(), "the writer died"
        time.sleep(0.05)
    finally:
        writer.kill()
        writer.wait()
    store = opener()
    count = store.count("text")
    assert count >= 1500
    if opener.backend == "lancedb":  # one commit per call: a killed call leaves nothing behind
        assert count % 500 == 0
    assert len(store.search("text", _unit(1, seed=10)[0], 5)) == 5


def test_lancedb_optimize_builds_ann_index(tmp_path):
    from omnivec.kb.stores.lancedb_store import LanceDBStore
    store = LanceDBStore(str(tmp_path / "v"), ann_threshold=1000)
    store.ensure_collection("text", DIM)
    vectors = _unit(3000, seed=11)
    records = _records(vectors, PATHS)
    store.upsert("text", records[:900])
    store.optimize("text")
    assert not store.has_index("text")  # below the threshold: exact search, no index
    store.upsert("text", records[900:])
    store.optimize("text")
    assert store.has_index("text")
    recall = []
    for query in _unit(30, seed=12):
        found = {h.id for h in store.search("text", query, 10)}
        recall.append(len(found & {i for i, _ in _exact(vectors, records, query, 10)}) / 10)
    assert np.mean(recall) >= 0.9, np.mean(recall)
    hits = store.search("text", vectors[5], 10, Filter(modalities=("image",)))
    assert hits and all(h.payload["modality"] == "image" for h in hits)
    store.delete_files("text", PATHS[:7])
    store.optimize("text")  # 900 rows left: back to exact search
    assert not store.has_index("text") and store.count("text") == 900


@pytest.mark.filterwarnings("ignore:Payload indexes have no effect", "ignore:Local mode performs exact")
def test_qdrant_server_code_paths():
    """What only a server runs (payload indexes, search params), through the same client API in memory."""
    from omnivec.kb.stores.qdrant_store import QdrantStore

    store = QdrantStore(path=":memory:", ann_threshold=50)
    store.local = False  # take the server branches
    store.ensure_collection("text", DIM)
    vectors = _unit(100, seed=13)
    records = _records(vectors, PATHS)
    store.upsert("text", records[:40])  # below the threshold: exact=True
    assert store.search("text", vectors[3], 1)[0].id == "r3"
    store.upsert("text", records[40:])  # past it: hnsw_ef
    where = Filter(path_prefix="/kb", modalities=("text",))
    hits = store.search("text", vectors[0], 5, where)
    assert [h.id for h in hits] == [i for i, _ in _exact(vectors, records, vectors[0], 5, where)]
    store.close()


def test_open_store_uris(tmp_path, monkeypatch):
    from omnivec.kb.stores import qdrant_store
    from omnivec.kb.stores.lancedb_store import LanceDBStore

    with pytest.raises(InputError, match=r"unknown scheme 's3://'.*lancedb://.*qdrant://.*http"):
        open_store("s3://bucket/kb")
    with pytest.raises(InputError, match="non-empty"):
        open_store("")
    with pytest.raises(InputError, match="names no path"):
        open_store("qdrant://")
    plain = open_store(str(tmp_path / "a"), ann_threshold=5)
    assert isinstance(plain, LanceDBStore) and plain.path == str(tmp_path / "a") and plain.ann_threshold == 5
    assert open_store(f"lancedb://{tmp_path / 'b'}").path == str(tmp_path / "b")
    memory = open_store("qdrant://:memory:")
    assert memory.local and memory.collections() == []
    memory.close()
    made = []
    monkeypatch.setattr(qdrant_store, "QdrantStore", lambda **kwargs: made.append(kwargs) or kwargs)
    monkeypatch.setenv("QDRANT_API_KEY", "secret")
    open_store("https://qdrant.example:6333")
    open_store(f"qdrant+path://{tmp_path / 'c'}")
    assert made == [{"url": "https://qdrant.example:6333", "api_key": "secret", "ann_threshold": None},
                    {"path": str(tmp_path / "c"), "ann_threshold": None}]


def test_file_counts_and_drop_collection(opener):
    store = opener()
    assert store.file_counts("docs") == {} and store.drop_collection("docs") is None  # missing: nothing to do
    store.ensure_collection("docs", DIM)
    store.upsert("docs", _records(_unit(7, 3), ["/a.txt", "/b.md", "/c.pdf"]))
    assert store.file_counts("docs") == {"/a.txt": 3, "/b.md": 2, "/c.pdf": 2}
    store.drop_collection("docs")
    assert "docs" not in store.collections() and store.count("docs") == 0
    store.ensure_collection("docs", DIM * 2)  # gone with its dimension: another model's vectors fit
    assert store.file_counts("docs") == {}
