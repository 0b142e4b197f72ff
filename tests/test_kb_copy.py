"""``omnivec kb copy`` and ``omnivec kb info``: the sample KB (text, image and audio spaces, the lexical space,
thumbnails) copied LanceDB -> Qdrant (local mode, a ``qdrant://`` KB) -> LanceDB searches the same; a copy stopped
midway resumes to the same result; destinations that cannot take it are refused before anything is written; the
info numbers are the store's counts. The stores' new ``scroll`` / ``retrieve`` are checked on both backends."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from omnivec.cli import main
from omnivec.kb.config import load_config
from omnivec.kb.copy import copy_kb
from omnivec.kb.copy_verify import CopyMismatchError, difference, verify_collection
from omnivec.kb.manifest import Manifest, state_counts
from omnivec.kb.search import Searcher
from omnivec.kb.settings import kb_settings
from omnivec.kb.spaces import load_spaces
from omnivec.kb.stores.base import LexicalSettings, Record, SparseVector
from omnivec.kb.stores.qdrant_store import QdrantStore
from omnivec.kb.stores.uri import open_store

QUERIES = ["who pays for return shipping", "dimmable desk lamp charging base", "quarterly report", "a red circle"]


def _shm_dir(request) -> Path:
    """A folder in RAM where there is one: Qdrant local mode syncs SQLite per point (tests/fixtures/stores.py)."""
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None))
    request.addfinalizer(lambda: shutil.rmtree(folder, ignore_errors=True))
    return folder


@pytest.fixture
def state_home(tmp_path, monkeypatch) -> Path:
    """Where a URI KB keeps its manifest (kb/state_dir.py), in the test's folder."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path / "data"


def _all_records(store, name: str, page: int = 7) -> dict[str, Record]:
    found, after = {}, None
    while records := store.scroll(name, after, page):
        assert all(record.id not in found for record in records)
        found.update((record.id, record) for record in records)
        after = records[-1].id
    return found


def _remember_queries(spaces: list) -> list:
    """``spaces`` embedding each query once: the KBs compared are searched with the same query vectors."""
    for space in spaces:
        embed, memory = space.embed, {}

        def remembered(inputs, *args, _embed=embed, _memory=memory, **kwargs):
            key = repr((inputs, args, kwargs))
            if key not in _memory:
                _memory[key] = _embed(inputs, *args, **kwargs)
            return _memory[key]

        space.embed = remembered
    return spaces


def _results(kb: str, spaces: list, config_path: Path | None = None, k: int = 8) -> dict[tuple[str, str], list]:
    """(query, space) -> [(id, score, thumbnail, location)] of the KB ``kb``, each space searched alone."""
    kb_dir, config = kb_settings(kb, str(config_path) if config_path else None, existing=True)
    searcher = Searcher(kb_dir, config, spaces=spaces)
    try:
        return {(query, space.name): [(r.id, r.scores[space.name], r.thumbnail, r.location)
                                      for r in searcher.search(query, k=k, spaces=[space.name])]
                for query in QUERIES for space in spaces if space.takes_query("text")}
    finally:
        searcher.close()


def _same(a: list, b: list, tolerance: float) -> None:
    assert [hit[0] for hit in a] == [hit[0] for hit in b]
    assert [hit[2:] for hit in a] == [hit[2:] for hit in b]  # thumbnails and locations
    assert np.allclose([hit[1] for hit in a], [hit[1] for hit in b], rtol=0, atol=tolerance)


def test_lancedb_to_qdrant_and_back_searches_the_same(sample_kb, tmp_path, state_home, request, capsys):
    docs, kb, config_path = sample_kb
    qdrant = f"qdrant://{_shm_dir(request) / 'copy'}"
    back = tmp_path / "back"
    assert main(["kb", "copy", "--kb", str(kb), "--config", str(config_path), "--to", qdrant]) == 0
    summary = capsys.readouterr().err
    assert "copied lancedb://" in summary and "counts equal" in summary, summary
    assert main(["kb", "copy", "--kb", qdrant, "--to", str(back)]) == 0
    capsys.readouterr()
    # the copies' kb.toml: the source's settings, the store the copy's own
    dest_dir, dest_config = kb_settings(qdrant, None, existing=True)
    assert dest_config.store == qdrant and (dest_dir / "kb.toml").read_text().startswith("store = ")
    assert load_config(back) == load_config(kb, config_path)  # a folder: default store, <back>/vectors
    assert sorted(p.name for p in (back / "thumbs").iterdir()) == sorted(p.name for p in (kb / "thumbs").iterdir())
    assert len(list((kb / "thumbs").iterdir())) >= 3
    assert state_counts(back / "manifest.sqlite") == state_counts(kb / "manifest.sqlite")

    config = load_config(kb, config_path)
    spaces, problems = load_spaces(config)
    spaces = _remember_queries(spaces)
    assert not problems and {s.name for s in spaces} == {"text", "image", "audio", "lexical"}
    original = _results(str(kb), spaces, config_path)
    in_qdrant = _results(qdrant, spaces)
    round_trip = _results(str(back), spaces)
    assert all(hits for key, hits in original.items() if key[1] != "lexical")
    assert sum(bool(hits) for key, hits in original.items() if key[1] == "lexical") >= 3
    for key, hits in original.items():
        if key[1] == "lexical":
            assert round_trip[key] == hits, key  # LanceDB's FTS index rebuilt from the same texts: exactly equal
        else:
            _same(in_qdrant[key], hits, 1e-6)
            _same(round_trip[key], hits, 1e-6)
    # Every record, not a sample: payloads equal, dense vectors within 1e-6 at both ends of both copies
    with open_store(str(kb / "vectors")) as first, open_store(str(back / "vectors")) as last:
        assert first.collections() == last.collections() == ["audio", "image", "lexical", "text"]
        for name in first.collections():
            mine, theirs = _all_records(first, name), _all_records(last, name)
            assert mine.keys() == theirs.keys() and len(mine) == first.count(name) > 0
            assert not [rid for rid, record in mine.items() if difference(record, theirs[rid])]


def test_the_lexical_copy_in_qdrant_ranks_like_a_qdrant_kb_indexed_from_the_files(sample_kb, tmp_path, state_home,
                                                                                 request, minilm_dir):
    """BM25 in Qdrant is the store's own (IDF over its points): a copy gets the same as indexing there directly."""
    docs, kb, config_path = sample_kb
    qdrant = f"qdrant://{_shm_dir(request) / 'copy'}"
    direct = f"qdrant://{_shm_dir(request) / 'direct'}"
    copy_kb(str(kb), qdrant, str(config_path))
    text_only = tmp_path / "text.toml"
    text_only.write_text(f'audio_window_s = 2.0\nvideo_segment_s = 2.0\n[spaces]\ntext = "{minilm_dir}"\n')
    assert main(["index", str(docs), "--kb", direct, "--config", str(text_only)]) == 0
    spaces, _ = load_spaces(load_config(tmp_path, str(text_only)))
    lexical = [s for s in spaces if s.name == "lexical"]
    copied, indexed = _results(qdrant, lexical, k=100), _results(direct, lexical, text_only, k=100)  # all matches
    assert sum(bool(hits) for hits in copied.values()) >= 3
    for key, hits in indexed.items():
        # equal scores tie in the order the points were inserted, which differs, and a record's id counts the file's
        # chunks of every modality (a text-only index numbers them otherwise): compared as (score, location) pairs
        assert _ranked(copied[key]) == _ranked(hits), key
        assert np.allclose([h[1] for h in copied[key]], [h[1] for h in hits], rtol=0, atol=1e-6), key


def _ranked(hits: list) -> list[tuple[float, str]]:
    return sorted((-round(h[1], 5), repr(h[3])) for h in hits)


def test_a_copy_stopped_midway_resumes_to_the_same_result(sample_kb, state_home, request, monkeypatch, capsys):
    docs, kb, config_path = sample_kb
    target = _shm_dir(request) / "copy"
    uri = f"qdrant://{target}"
    real_upsert = QdrantStore.upsert
    calls = []

    def upsert_then_die(self, name, records):
        if len(calls) == 3:
            raise RuntimeError("killed")
        calls.append(len(records))
        real_upsert(self, name, records)

    monkeypatch.setattr(QdrantStore, "upsert", upsert_then_die)
    with pytest.raises(RuntimeError, match="killed"):
        copy_kb(str(kb), uri, str(config_path), page=8)
    monkeypatch.setattr(QdrantStore, "upsert", real_upsert)
    first_run = sum(calls)
    dest_dir, _ = kb_settings(uri, None)
    assert (dest_dir / "copy-source.json").is_file() and not (dest_dir / "manifest.sqlite").exists()
    with open_store(str(kb / "vectors")) as source:
        total = sum(source.count(name) for name in source.collections())
    assert len(calls) == 3 and 0 < first_run < total
    with open_store(uri) as partial:  # a record at the destination that differs from the source's is written again
        stale = partial.scroll("audio", None, 1)[0]
        partial.upsert("audio", [Record(stale.id, stale.vector[::-1].copy(), stale.payload)])
    report = copy_kb(str(kb), uri, str(config_path), page=8, sample=10_000)  # the re-run, comparing every record
    # what the stopped run wrote is not written again, but for the one that differs
    assert sum(report.written.values()) == total - first_run + 1 and report.written["audio"] >= 1
    assert sum(report.records.values()) == sum(report.verified.values()) == total
    assert not (dest_dir / "copy-source.json").exists() and (dest_dir / "manifest.sqlite").is_file()
    # a finished copy is a KB: copying onto it again is refused
    assert main(["kb", "copy", "--kb", str(kb), "--config", str(config_path), "--to", uri]) == 2
    assert "is not empty" in capsys.readouterr().err


KILLER = """
import os, signal, sys
from omnivec.kb.copy import copy_kb
from omnivec.kb.stores.qdrant_store import QdrantStore

real, calls = QdrantStore.upsert, []

def upsert_then_die(self, name, records):
    real(self, name, records)
    calls.append(len(records))
    if len(calls) == 3:  # three pages written: killed with no chance to clean up
        print(sum(calls), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

QdrantStore.upsert = upsert_then_die
copy_kb(sys.argv[1], sys.argv[2], sys.argv[3], page=4)
"""


@pytest.mark.slow  # a second interpreter (about 5 s); the fast lane stops a copy by an exception instead
def test_a_copy_killed_with_sigkill_resumes_to_the_same_result(sample_kb, state_home, request):
    docs, kb, config_path = sample_kb
    uri = f"qdrant://{_shm_dir(request) / 'copy'}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", KILLER, str(kb), uri, str(config_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    dest_dir, _ = kb_settings(uri, None)
    assert (dest_dir / "copy-source.json").is_file() and not (dest_dir / "manifest.sqlite").exists()
    with open_store(uri) as partial:
        written = {name: partial.count(name) for name in partial.collections()}
    assert sum(written.values()) == int(done.stdout) > 0  # what the three pages held, no more
    report = copy_kb(str(kb), uri, str(config_path), sample=10_000)
    with open_store(str(kb / "vectors")) as source:
        expected = {name: source.count(name) for name in source.collections()}
    assert report.records == report.verified == expected  # every record compared at both ends
    assert sum(report.written.values()) == sum(expected.values()) - int(done.stdout)


def _tiny_kb(folder: Path, store: str, sparse: bool = False) -> Path:
    """A KB made through the store API: a manifest and two records in "text" (and "sparse")."""
    Manifest(folder / "manifest.sqlite").close()
    if store != str(folder / "vectors"):
        (folder / "kb.toml").write_text(f'store = "{store}"\n')
    with open_store(store) as handle:
        handle.ensure_collection("text", 3)
        records = [Record(f"r{i}", np.eye(3)[i], {"file": f"/d/{i}.txt", "modality": "text", "kind": "text"})
                   for i in range(2)]
        handle.upsert("text", records)
        if sparse:
            handle.ensure_sparse_collection("sparse")
            handle.upsert("sparse", [Record(r.id, SparseVector([1, 9], [0.5, 2.0 + i]), r.payload)
                                     for i, r in enumerate(records)])
    return folder


def test_refusals_name_the_problem_and_write_nothing(tmp_path, request, capsys):
    sparse_kb = _tiny_kb(tmp_path / "sparse", f"qdrant://{_shm_dir(request) / 'q'}", sparse=True)
    assert main(["kb", "copy", "--kb", str(sparse_kb), "--to", str(tmp_path / "lance")]) == 2
    message = capsys.readouterr().err
    assert "learned-sparse space (sparse)" in message and "qdrant://" in message and "Nothing was written" in message
    assert not (tmp_path / "lance").exists()

    plain = _tiny_kb(tmp_path / "plain", str(tmp_path / "plain" / "vectors"))
    other = _tiny_kb(tmp_path / "other", str(tmp_path / "other" / "vectors"))
    assert main(["kb", "copy", "--kb", str(plain), "--to", str(other)]) == 2
    message = capsys.readouterr().err
    assert "is not empty: it holds text (2 records), manifest.sqlite" in message, message
    # records without a manifest are someone else's too
    stray = f"qdrant://{_shm_dir(request) / 'stray'}"
    with open_store(stray) as store:
        store.ensure_lexical_collection("lexical", LexicalSettings())
        store.upsert("lexical", [Record("x", None, {"file": "/x.txt", "modality": "text", "kind": "text"})])
    assert main(["kb", "copy", "--kb", str(plain), "--to", stray]) == 2
    assert "holds lexical (1 records)" in capsys.readouterr().err
    assert main(["kb", "copy", "--kb", str(plain), "--to", str(plain)]) == 2
    assert "are the same KB" in capsys.readouterr().err
    # the same store under another name: the KB folder's kb.toml points at it
    q_store = load_config(sparse_kb).store
    assert main(["kb", "copy", "--kb", str(sparse_kb), "--to", q_store.replace("qdrant://", "qdrant+path://")]) == 2
    assert "are the same KB" in capsys.readouterr().err
    # an unfinished copy of another KB
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "copy-source.json").write_text(json.dumps({"source": "lancedb:///elsewhere"}))
    assert main(["kb", "copy", "--kb", str(plain), "--to", str(tmp_path / "partial")]) == 2
    assert "unfinished copy of another KB (lancedb:///elsewhere)" in capsys.readouterr().err
    with open_store(str(other / "vectors")) as store:
        assert store.count("text") == 2 and store.collections() == ["text"]


def test_sparse_vectors_copy_between_qdrant_stores(tmp_path, state_home, request, capsys):
    source = _tiny_kb(tmp_path / "sparse", f"qdrant://{_shm_dir(request) / 'q'}", sparse=True)
    uri = f"qdrant://{_shm_dir(request) / 'copy'}"
    assert main(["kb", "copy", "--kb", str(source), "--to", uri]) == 0
    query = SparseVector([9, 4], [1.0, 3.0])
    with open_store(load_config(source).store) as mine, open_store(uri) as theirs:
        assert theirs.spec("sparse") == mine.spec("sparse")
        copied = _all_records(theirs, "sparse")
        assert {rid: (r.vector.indices.tolist(), r.vector.values.tolist()) for rid, r in copied.items()} == \
            {f"r{i}": ([1, 9], [0.5, 2.0 + i]) for i in range(2)}
        assert [(h.id, h.score) for h in theirs.search_sparse("sparse", query, 5)] == \
            [(h.id, h.score) for h in mine.search_sparse("sparse", query, 5)] != []
    capsys.readouterr()
    assert main(["kb", "info", "--kb", uri, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["store"] == uri and info["size"]["store"] > 0
    # the default config's spaces (none indexed here but text), and the sparse one the store holds
    assert {name: space["records"] for name, space in info["spaces"].items()} == {
        "text": 2, "image": 0, "audio": 0, "sparse": 2, "lexical": 0}
    assert info["spaces"]["sparse"]["kind"] == "sparse" and info["spaces"]["lexical"]["kind"] is None


def test_verification_names_the_collection_and_record(tmp_path):
    plain = _tiny_kb(tmp_path / "a", str(tmp_path / "a" / "vectors"))
    copy_kb(str(plain), str(tmp_path / "b"))
    with open_store(str(plain / "vectors")) as source, open_store(str(tmp_path / "b" / "vectors")) as target:
        verify_collection(source, target, "text", ["r0", "r1"])
        target.upsert("text", [Record("r1", np.array([0, 1, 1e-5]), {"file": "/d/1.txt", "modality": "text",
                                                                    "kind": "text"})])
        with pytest.raises(CopyMismatchError, match=r"collection 'text', record 'r1': vectors differ by 1e-05"):
            verify_collection(source, target, "text", ["r0", "r1"])
        target.upsert("text", [Record("r1", np.eye(3)[1], {"file": "/d/1.txt", "modality": "text", "kind": "text",
                                                           "page": 3})])
        with pytest.raises(CopyMismatchError, match=r"record 'r1': payload differs in \['page'\]"):
            verify_collection(source, target, "text", ["r1"])
        target.upsert("text", [Record("r2", np.eye(3)[2], {"file": "/d/2.txt", "modality": "text", "kind": "text"})])
        with pytest.raises(CopyMismatchError, match="'text' has 2 records in the source and 3 in the copy"):
            verify_collection(source, target, "text", [])


def test_kb_info_numbers_are_the_stores_counts(sample_kb, capsys):
    docs, kb, config_path = sample_kb
    assert main(["kb", "info", "--kb", str(kb), "--config", str(config_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    manifest = Manifest(kb / "manifest.sqlite")
    try:
        entries = manifest.entries()
    finally:
        manifest.close()
    assert info["files"] == {"pending": 0, "done": sum(e.state == "done" for e in entries.values()),
                             "failed": sum(e.state == "failed" for e in entries.values())}
    assert info["files"]["done"] == len(entries) >= 5
    with open_store(str(kb / "vectors")) as store:
        for name in ("text", "image", "audio", "lexical"):
            space = info["spaces"][name]
            assert space["records"] == store.count(name) == sum(space["modalities"].values()) > 0
            assert space["modalities"] == store.value_counts(name, "modality")
            expected = sum((json.loads(e.records) if e.records else {}).get(name, 0) for e in entries.values())
            assert space["records"] == expected
    assert info["spaces"]["text"]["kind"] == "dense" and info["spaces"]["text"]["dim"] == 384
    assert info["spaces"]["lexical"] == {**info["spaces"]["lexical"], "kind": "lexical", "model": "BM25 (english)"}
    stored = sum(p.stat().st_size for p in (kb / "vectors").rglob("*") if p.is_file())
    assert info["size"]["store"] == stored > 0 and info["size"]["state"] > 0
    assert main(["kb", "info", "--kb", str(kb), "--config", str(config_path)]) == 0
    text = capsys.readouterr().out
    assert f"text     384-d    {info['spaces']['text']['records']:>9} records" in text, text
    assert f"files: {info['files']['done']} done, {info['files']['failed']} failed, 0 pending" in text


def test_scroll_and_retrieve_read_every_record_once(opener):
    store = opener()
    store.ensure_collection("text", 4)
    rng = np.random.default_rng(3)
    records = [Record(f"id-{i:03d}", rng.normal(size=4), {"file": f"/f/{i % 4}.md", "modality": "text",
                                                          "kind": "text", "page": i, "extra_key": "v"})
               for i in range(40)]
    store.upsert("text", records)
    found = _all_records(store, "text", page=6)
    assert sorted(found) == sorted(r.id for r in records)
    for record in records:
        vector = record.vector / np.linalg.norm(record.vector) if opener.backend == "qdrant" else record.vector
        assert np.abs(found[record.id].vector - vector).max() <= 1e-6
        assert found[record.id].payload["extra_key"] == "v" and found[record.id].payload["page"] == int(
            record.id[-3:])
    got = store.retrieve("text", ["id-007", "missing", "id-002"], with_vectors=False)
    assert [r.id for r in got] == ["id-007", "id-002"] and got[0].vector is None
    assert store.value_counts("text", "file") == {f"/f/{i}.md": 10 for i in range(4)}
    assert store.scroll("nothing", None, 5) == [] and store.retrieve("nothing", ["id-001"]) == []
