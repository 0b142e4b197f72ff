"""Hybrid retrieval in a knowledge base, the same suite on LanceDB and on Qdrant: a folder of maintenance notes whose
right file is told apart only by an error code, part number, standard, file name or version string. The lexical
space finds each first and dense search alone does not; fusion keeps it first; edits, deletions and additions keep
the lexical index equal to a clean build."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from omnivec.cli import main
from omnivec.errors import InputError
from omnivec.kb.config import load_config
from omnivec.kb.fusion import FusionSettings
from omnivec.kb.search import Searcher
from omnivec.kb.stores.uri import open_store

MACHINES = ["press", "lathe", "mill", "pump", "compressor", "conveyor"]
# Each target holds one exact token; its neighbours hold near misses of it, so only the whole token tells them apart.
TARGETS = {  # query -> (file of the note holding it, its token, near misses given to other notes)
    "E-4012 valve pressure": ("note-07.md", "E-4012", ["E-4013", "E-4021", "E-412"]),
    "part X2-15B replacement": ("note-13.md", "X2-15B", ["X2-15C", "X3-15B", "X2-16B"]),
    "ISO 9001:2015 audit": ("note-19.md", "ISO 9001:2015", ["ISO 9001:2008", "ISO 14001:2015", "ISO 9002:2015"]),
    "pump_manual_v3.pdf": ("note-23.md", "pump_manual_v3.pdf", ["pump_manual_v2.pdf", "press_manual_v3.pdf"]),
    "firmware v2.3.1 rollback": ("note-28.md", "firmware v2.3.1", ["firmware v2.3.0", "firmware v2.4.1"]),
}
# Most notes say what the queries say in plain words; the targets say it otherwise, so dense search prefers others.
PLAIN = ("The {machine} stopped with a valve pressure fault during the audit of the replacement part. The technician "
         "checked the firmware, the manual and the pressure valve, then restarted the line. Code seen: {token}.")
TARGET = ("Hydraulic circuit of the {machine} bled and resealed after the operator saw {token} on the display; no "
          "further action taken.")


def _notes(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    targets = {file: token for file, token, _ in TARGETS.values()}
    misses = [miss for _, _, near in TARGETS.values() for miss in near]
    texts = {}
    for i in range(32):
        name = f"note-{i:02d}.md"
        machine = MACHINES[i % len(MACHINES)]
        text = (TARGET.format(machine=machine, token=targets[name]) if name in targets
                else PLAIN.format(machine=machine, token=misses[i % len(misses)]))
        texts[name] = f"# Maintenance note {i}\n\n{text}\n"
        (folder / name).write_text(texts[name], encoding="utf-8")
    return texts


def _config(tmp_path: Path, minilm_dir: str, store: str | None, extra: str = "") -> Path:
    path = tmp_path / "kb.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    store_line = f'store = "{store}"\n' if store else ""
    path.write_text(f'{store_line}[spaces]\ntext = "{minilm_dir}"\n{extra}', encoding="utf-8")
    return path


@pytest.fixture(params=["lancedb", "qdrant"])
def store_uri(request, tmp_path) -> str | None:
    """The KB's store: LanceDB in the KB folder (the default), or Qdrant local mode beside it."""
    return None if request.param == "lancedb" else f"qdrant://{tmp_path / 'qdrant'}"


def _index(docs: Path, kb: Path, config: Path) -> None:
    assert main(["index", str(docs), "--kb", str(kb), "--config", str(config)]) == 0


def _files(results) -> list[str]:
    return [Path(r.location.file).name for r in results]


def test_exact_tokens_are_found_by_the_lexical_space_and_not_by_dense_alone(tmp_path, minilm_dir, store_uri):
    docs, kb = tmp_path / "docs", tmp_path / "kb"
    _notes(docs)
    config_path = _config(tmp_path, minilm_dir, store_uri)
    _index(docs, kb, config_path)
    searcher = Searcher(kb, load_config(kb, config_path))
    try:
        for query, (target, _, _) in TARGETS.items():
            lexical = searcher.search(query, k=5, spaces=["lexical"])
            dense = searcher.search(query, k=5, spaces=["text"])
            hybrid = searcher.search(query, k=5)
            assert _files(lexical)[0] == target, (query, _files(lexical))
            assert _files(dense)[0] != target, (query, _files(dense))  # what proves the lexical path
            assert _files(hybrid)[0] == target, (query, _files(hybrid))
            assert set(hybrid[0].scores) == set(hybrid[0].spaces) == {"text", "lexical"}
            assert hybrid[0].scores["lexical"] == pytest.approx(lexical[0].scores["lexical"])
            assert hybrid[0].similarity == pytest.approx(hybrid[0].scores["text"])  # the dense space's cosine
        with pytest.raises(InputError, match="sparse"):
            searcher.search("E-4012", spaces=["sparse"])  # not in this KB: the error names what it has
    finally:
        searcher.close()


def test_search_command_selects_spaces_and_fusion(tmp_path, minilm_dir, capsys):
    docs, kb = tmp_path / "docs", tmp_path / "kb"
    _notes(docs)
    config_path = _config(tmp_path, minilm_dir, None)
    _index(docs, kb, config_path)
    capsys.readouterr()
    base = ["search", "E-4012 valve pressure", "--kb", str(kb), "--config", str(config_path), "--json", "-k", "3"]
    answers = {}
    for name, extra in (("lexical", ["--spaces", "lexical"]), ("dense", ["--spaces", "text"]),
                        ("rrf", ["--fusion", "rrf", "--rrf-k", "10"]), ("dense-weighted", ["--weights", "text=1,lexical=0"])):
        assert main(base + extra) == 0
        answers[name] = json.loads(capsys.readouterr().out)
    assert all(r["spaces"] == ["lexical"] and r["similarity"] is None for r in answers["lexical"])
    assert all(r["spaces"] == ["text"] for r in answers["dense"])
    assert answers["lexical"][0]["file"].endswith("note-07.md")
    assert not answers["dense"][0]["file"].endswith("note-07.md")
    # rrf with k=10: a score is the sum of weight / (10 + rank) over the spaces that found it (a rank is at most 50;
    # the default weights: text 1, lexical 1.5)
    weight = {"text": 1.0, "lexical": 1.5}
    for r in answers["rrf"]:
        total = sum(weight[space] for space in r["spaces"])
        assert total / 60 <= r["score"] <= total / 11 + 1e-9, r
    assert answers["rrf"][0]["spaces"] == ["text", "lexical"]
    # weight 0: the lexical list no longer moves anything, so the order is dense search's
    assert [r["id"] for r in answers["dense-weighted"]] == [r["id"] for r in answers["dense"]]
    assert main(base + ["--spaces", "text,nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(base + ["--weights", "text=-1"]) == 2
    assert "--weights" in capsys.readouterr().err


def test_lexical_index_follows_edits_deletions_and_additions(tmp_path, minilm_dir, store_uri):
    docs, kb = tmp_path / "docs", tmp_path / "kb"
    _notes(docs)
    config_path = _config(tmp_path, minilm_dir, store_uri)
    _index(docs, kb, config_path)
    edited = docs / "note-07.md"
    edited.write_text(edited.read_text().replace("E-4012", "E-5012"), encoding="utf-8")
    os.utime(edited, (time.time() + 5, time.time() + 5))
    (docs / "note-13.md").unlink()
    (docs / "note-40.md").write_text("# Maintenance note 40\n\nSpindle alarm Q-7777 cleared.\n", encoding="utf-8")
    _index(docs, kb, config_path)
    clean = tmp_path / "clean"
    clean_config = _config(tmp_path / "c", minilm_dir, store_uri and f"{store_uri}-clean") if store_uri else \
        _config(tmp_path / "c", minilm_dir, None)
    _index(docs, clean, clean_config)
    queries = ["E-5012", "E-4012 valve pressure", "Q-7777 spindle", "X2-15B", "pressure valve audit"]
    runs = []
    for folder, path in ((kb, config_path), (clean, clean_config)):
        config = load_config(folder, path)
        searcher = Searcher(folder, config)
        try:
            store = searcher.store
            counts = {name: store.file_counts(name) for name in store.collections()}
            # every hit (k above the corpus size), ties in name order: the order among equal scores is the store's
            ranked = [sorted(((Path(r.location.file).name, r.scores["lexical"])
                              for r in searcher.search(q, k=50, spaces=["lexical"])),
                             key=lambda hit: (-round(hit[1], 3), hit[0])) for q in queries]
        finally:
            searcher.close()
        runs.append((counts, ranked))
    (counts, ranked), (clean_counts, clean_ranked) = runs
    assert {n: {Path(f).name: c for f, c in v.items()} for n, v in counts.items()} == \
        {n: {Path(f).name: c for f, c in v.items()} for n, v in clean_counts.items()}
    assert [[name for name, _ in run] for run in ranked] == [[name for name, _ in run] for run in clean_ranked]
    # Qdrant's scores are a clean build's. LanceDB's index counts replaced and deleted rows in its BM25 statistics
    # until optimize rebuilds it (once they pass 20 % of the table, kb/stores/lancedb_lexical.py; tested at the store
    # level): here 3 stale rows of 35 move scores by up to 24 % but not the order, which is checked above.
    if store_uri is not None:
        for run, clean_run in zip(ranked, clean_ranked, strict=True):
            assert [score for _, score in run] == pytest.approx([score for _, score in clean_run], rel=1e-6)
    assert ranked[0][0][0] == "note-07.md" and ranked[2][0][0] == "note-40.md"
    assert all(name != "note-13.md" for run in ranked for name, _ in run)
    assert ranked[1][0][0] != "note-07.md"  # its old code is gone


def test_lexical_space_can_be_turned_off_and_its_language_set(tmp_path, minilm_dir):
    docs, kb = tmp_path / "docs", tmp_path / "kb"
    _notes(docs)
    config_path = _config(tmp_path, minilm_dir, None, "[lexical]\nenabled = false\n")
    _index(docs, kb, config_path)
    store = open_store(str(kb / "vectors"))
    try:
        assert store.collections() == ["text"]
    finally:
        store.close()
    config_path.write_text(config_path.read_text().replace("enabled = false", 'language = "klingon"'))
    with pytest.raises(Exception, match="lexical.language"):
        load_config(kb, config_path)


def test_fusion_settings_from_kb_toml(tmp_path, minilm_dir):
    config_path = _config(tmp_path, minilm_dir, None,
                          '[fusion]\nmethod = "rrf"\nrrf_k = 20\nweights = { text = 0.3, lexical = 0.7 }\n')
    config = load_config(tmp_path, config_path)
    assert config.fusion == FusionSettings("rrf", 20, {"text": 0.3, "lexical": 0.7})
    for bad, named in (('[fusion]\nmethod = "max"\n', "fusion"), ('[fusion]\nrrf_k = -1\n', "rrf_k"),
                       ('[fusion]\nweights = { nope = 1.0 }\n', "nope"), ('[fusion]\nweights = { text = -2 }\n', "text"),
                       ('[fusion]\nsmoothing = 1\n', "smoothing")):
        config_path.write_text(f'[spaces]\ntext = "{minilm_dir}"\n{bad}')
        with pytest.raises(Exception, match=named):
            load_config(tmp_path, config_path)


def test_turning_the_lexical_space_on_writes_only_it(tmp_path, minilm_dir, capsys):
    """A KB indexed without the lexical space (as every KB before it existed) gains it without re-embedding: the
    unchanged files are written into the new space only, and the result equals a KB built with it from the start."""
    docs, kb = tmp_path / "docs", tmp_path / "kb"
    texts = _notes(docs)
    config_path = _config(tmp_path, minilm_dir, None, "[lexical]\nenabled = false\n")
    _index(docs, kb, config_path)
    config_path.write_text(config_path.read_text().replace("enabled = false", "enabled = true"))
    capsys.readouterr()
    _index(docs, kb, config_path)
    summary = capsys.readouterr().err
    assert f"{len(texts)} indexed ({len(texts)} only into new spaces)" in summary, summary
    assert "embed text" not in summary  # the dense model ran on nothing
    clean = tmp_path / "clean"
    _index(docs, clean, _config(tmp_path / "c", minilm_dir, None))
    found = []
    for folder in (kb, clean):
        store = open_store(str(folder / "vectors"))
        try:
            found.append(({name: store.count(name) for name in store.collections()},
                          [[h.id for h in store.search_text("lexical", q, 5)] for q in TARGETS]))
        finally:
            store.close()
    assert found[0] == found[1] and found[0][0]["lexical"] == len(texts)


def test_a_learned_sparse_space_lives_in_qdrant_and_is_refused_on_lancedb(tmp_path, minilm_dir, splade_st_dir,
                                                                        capsys):
    """``[spaces] sparse``: SPLADE vectors in Qdrant's sparse vectors, searched by dot product (equal to the
    SparseEncoder's own scores); on LanceDB, which has no sparse index, one message at index time."""
    from omnivec.models.sparse_encoder import SparseEncoder

    docs = tmp_path / "docs"
    _notes(docs)
    extra = f'sparse = "{splade_st_dir}"\n'
    lance = _config(tmp_path / "lance", minilm_dir, None, extra)
    assert main(["index", str(docs), "--kb", str(tmp_path / "lance" / "kb"), "--config", str(lance)]) == 2
    message = capsys.readouterr().err
    assert "LanceDB has no sparse" in message and "qdrant://" in message, message
    config_path = _config(tmp_path, minilm_dir, f"qdrant://{tmp_path / 'qdrant'}", extra)
    kb = tmp_path / "kb"
    _index(docs, kb, config_path)
    model = SparseEncoder(splade_st_dir, device="cpu")
    searcher = Searcher(kb, load_config(kb, config_path))
    try:
        hits = searcher.search("E-4012 valve pressure", k=40, spaces=["sparse"])
        # what the model read: the heading path above the passage (kb/ingest/chunking.embedder_text)
        stored = {hit.id: f"{hit.location.heading}\n\n{hit.text}" for hit in hits}
        assert len(hits) == 32 and all(hit.spaces == ["sparse"] for hit in hits)
        query = model.encode_query(["E-4012 valve pressure"], convert_to_tensor=True,
                                   convert_to_sparse_tensor=False)
        documents = model.encode_document(list(stored.values()), convert_to_tensor=True,
                                          convert_to_sparse_tensor=False)
        expected = (documents @ query[0]).tolist()
        assert [hit.scores["sparse"] for hit in hits] == pytest.approx(expected, rel=1e-4, abs=1e-5)
        assert expected == sorted(expected, reverse=True)  # best first
        assert {s.name for s in searcher.spaces} == {"text", "sparse", "lexical"}
        fused = searcher.search("E-4012 valve pressure", k=5)
        assert {space for r in fused for space in r.spaces} == {"text", "sparse", "lexical"}
    finally:
        searcher.close()
