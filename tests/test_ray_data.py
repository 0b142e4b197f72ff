"""omnivec.ray on a local Ray instance: docs/ray.md's example (a Parquet file of texts and image paths embedded with a
text model and a CLIP model on actor pools, written into a KB, searched), the vectors and scores equal to the
models' own encode / predict, unreadable rows, the settings' checks and the stores' write modes."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest

from omnivec.errors import ConfigError

pytestmark = pytest.mark.slow  # a Ray instance starts (about 10 s); the file runs in about 60 s on 2 busy cores

ATOL = 1e-6
TEXTS = ["red running shoes", "a blue kettle for the kitchen", "green garden hose, 20 m", "yellow rain jacket",
         "black office chair", "white ceramic mug"]
COLOURS = [(220, 30, 30), (30, 30, 220), (30, 200, 30), (230, 220, 20), (10, 10, 10), (250, 250, 250)]


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def products(tmp_path_factory) -> Path:
    """docs/ray.md's Parquet file: an id, a text and an image path per product (one image file missing)."""
    import pandas as pd
    from PIL import Image

    root = tmp_path_factory.mktemp("products")
    paths = []
    for i, colour in enumerate(COLOURS):
        path = root / f"p{i}.png"
        if i != 3:  # p3.png is missing: an unreadable row
            Image.new("RGB", (40, 30), colour).save(path)
        paths.append(str(path))
    pd.DataFrame({"id": [f"p{i}" for i in range(len(TEXTS))], "text": TEXTS, "image_path": paths}).to_parquet(
        root / "products.parquet")
    return root / "products.parquet"


def _kb(root: Path, text_model: str, image_model: str, store: str | None = None) -> Path:
    kb = root / "kb"
    kb.mkdir(parents=True)
    store_line = f'store = "{store}"\n' if store else ""
    (kb / "kb.toml").write_text(f'{store_line}[spaces]\ntext = "{text_model}"\nimage = "{image_model}"\n',
                                encoding="utf-8")
    return kb


def test_the_docs_example(ray_local, products, bert_dir, clip_dir, tmp_path, capsys):
    """Texts and images of a Parquet file embedded on actor pools equal the models' own encode (1e-6); written into
    a KB, the text, image and lexical searches find the right product; the missing image is a null row, skipped.
    The same vectors written into a Qdrant local-mode KB go through the driver (KBSink refuses that store)."""
    import omnivec
    import omnivec.ray as ovr

    ray = ray_local
    kb = _kb(tmp_path / "lance", bert_dir, clip_dir)
    ds = ray.data.read_parquet(str(products))
    ds = ds.map_batches(ovr.Embed, fn_constructor_kwargs={"settings": ovr.EmbedSettings(
        model=bert_dir, column="text", output_column="text_vector", normalize=True)},
        compute=ray.data.ActorPoolStrategy(size=1), batch_size=4, num_cpus=0.5)  # two pools and a read: 2 CPUs
    ds = ds.map_batches(ovr.Embed, fn_constructor_kwargs={"settings": ovr.EmbedSettings(
        model=clip_dir, column="image_path", output_column="image_vector", modality="image", normalize=True,
        on_error="null", id_column="id")}, compute=ray.data.ActorPoolStrategy(size=1), batch_size=4, num_cpus=0.5)
    ds = ds.materialize()

    rows = sorted(ds.take_all(), key=lambda r: r["id"])
    expected = omnivec.Embedder(bert_dir, device="cpu").encode(TEXTS, normalize_embeddings=True)
    np.testing.assert_allclose(np.stack([r["text_vector"] for r in rows]), expected, atol=ATOL)
    assert [r["image_vector_error"] is not None for r in rows] == [False, False, False, True, False, False]
    assert rows[3]["image_vector"] is None and "p3.png" in rows[3]["image_vector_error"]
    readable = [r for r in rows if r["image_vector"] is not None]
    clip = omnivec.Embedder(clip_dir, device="cpu")
    np.testing.assert_allclose(np.stack([r["image_vector"] for r in readable]), clip.encode(
        [r["image_path"] for r in readable], modality="image", normalize_embeddings=True), atol=ATOL)

    payload = {"text": "text", "file": "image_path"}
    written = ovr.write_kb(ds, kb=str(kb), space="text", model=bert_dir, vector_column="text_vector",
                           payload_columns=payload)
    assert (written.written, written.skipped) == (6, 0)
    written = ovr.write_kb(ds, kb=str(kb), space="image", model=clip_dir, vector_column="image_vector",
                           error_column="image_vector_error", payload_columns=payload)
    assert (written.written, written.skipped) == (5, 1) and written.examples[0][0] == "p3"
    with _searcher(kb) as searcher:
        for i, query in enumerate(TEXTS):  # a product's own text: its text vector is the nearest (cosine 1)
            hits = searcher.search(query, k=1, spaces=["text"])
            assert hits[0].id == f"p{i}" and hits[0].similarity == pytest.approx(1.0, abs=1e-5)
        hits = searcher.search(image=str(products.parent / "p4.png"), k=1, spaces=["image"])
        assert hits[0].id == "p4" and hits[0].location.file.endswith("p4.png")
        assert searcher.search("garden hose", k=1, spaces=["lexical"])[0].id == "p2"  # the lexical space too
        assert searcher.store.count("image") == 5 and searcher.store.count("text") == 6
    from omnivec.cli import main

    capsys.readouterr()  # the docs' command: `omnivec search --image PHOTO --kb KB`
    assert main(["search", "--image", str(products.parent / "p1.png"), "--kb", str(kb), "--json", "-k", "1"]) == 0
    assert [hit["id"] for hit in json.loads(capsys.readouterr().out)] == ["p1"]

    qdrant_kb = _kb(tmp_path / "qdrant", bert_dir, clip_dir, store=f"qdrant://{tmp_path / 'qdrant' / 'store'}")
    settings = ovr.KBWriteSettings(kb=str(qdrant_kb), space="text", model=bert_dir, vector_column="text_vector",
                                   lexical=False, payload_columns=payload)
    with pytest.raises(ConfigError, match="Qdrant in local mode.*write_kb"):
        ovr.KBSink(settings)
    assert ovr.write_kb(ds, settings).written == 6
    with _searcher(qdrant_kb) as searcher:
        assert [searcher.search(t, k=1, spaces=["text"])[0].id for t in TEXTS] == [f"p{i}" for i in range(6)]


@contextlib.contextmanager
def _searcher(kb: Path):
    from omnivec.kb.search import Searcher
    from omnivec.kb.settings import kb_settings

    searcher = Searcher(*kb_settings(str(kb), None, existing=True))
    try:
        yield searcher
    finally:
        searcher.close()


def test_an_unreadable_row_fails_the_job_naming_it(ray_local, products, clip_dir):
    """With on_error="raise" (the default), the missing photo fails the Ray job; the error Ray raises names the row's
    id, the column and the file."""
    import omnivec.ray as ovr

    ray = ray_local
    embedded = ray.data.read_parquet(str(products)).map_batches(
        ovr.Embed, fn_constructor_kwargs={"model": clip_dir, "column": "image_path", "modality": "image",
                                          "id_column": "id"}, compute=ray.data.ActorPoolStrategy(size=1), batch_size=6)
    with pytest.raises(Exception, match=r"row 3 of this batch \(id 'p3'\), column 'image_path' = '.*p3.png': file "
                                        r"'.*p3.png' does not exist"):
        embedded.materialize()


def test_scores_equal_predict(ray_local, bert_dir, tmp_path):
    """CrossEncoder scores of two columns, on an actor, equal ``predict`` of the same pairs (1e-6)."""
    import omnivec
    import omnivec.ray as ovr

    ray = ray_local
    model = omnivec.CrossEncoder(bert_dir, num_labels=1, device="cpu")
    model.save(str(tmp_path / "ce"))
    pairs = [("shoes", text) for text in TEXTS]
    ds = ray.data.from_items([{"query": q, "passage": d} for q, d in pairs])
    scored = ds.map_batches(ovr.Score, fn_constructor_kwargs={"settings": ovr.ScoreSettings(
        model=str(tmp_path / "ce"), query_column="query", document_column="passage")},
        compute=ray.data.ActorPoolStrategy(size=1), batch_size=4).take_all()
    expected = omnivec.CrossEncoder(str(tmp_path / "ce"), device="cpu").predict(pairs)
    by_passage = {row["passage"]: row["score"] for row in scored}
    np.testing.assert_allclose([by_passage[d] for _, d in pairs], expected, atol=ATOL)
