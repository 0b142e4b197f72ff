"""omnivec.ray on a local Ray instance: docs/ray.md's example (a Parquet file of texts and image paths embedded with a
text model and a CLIP model on actor pools, written into a KB, searched), the vectors and scores equal to the
models' own encode / predict, unreadable rows, the settings' checks and the stores' write modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omnivec.errors import ConfigError, InputError

pytestmark = pytest.mark.slow  # a Ray instance starts (about 10 s); the whole file runs in about 40 s

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
    kb.mkdir()
    store_line = f'store = "{store}"\n' if store else ""
    (kb / "kb.toml").write_text(f'{store_line}[spaces]\ntext = "{text_model}"\nimage = "{image_model}"\n',
                                encoding="utf-8")
    return kb


def test_the_docs_example(ray_local, products, bert_dir, clip_dir, tmp_path):
    """Texts and images of a Parquet file embedded on actor pools equal the models' own encode (1e-6); written into
    a KB, the text and image searches find the right product; the missing image is a null row, skipped."""
    import omnivec
    import omnivec.ray as ovr

    ray = ray_local
    kb = _kb(tmp_path, bert_dir, clip_dir)
    ds = ray.data.read_parquet(str(products))
    text = ds.map_batches(ovr.Embed, fn_constructor_kwargs={"settings": ovr.EmbedSettings(
        model=bert_dir, column="text", normalize=True)}, compute=ray.data.ActorPoolStrategy(size=1), batch_size=4)
    images = ds.map_batches(ovr.Embed, fn_constructor_kwargs={"settings": ovr.EmbedSettings(
        model=clip_dir, column="image_path", modality="image", normalize=True, on_error="null", id_column="id")},
        compute=ray.data.ActorPoolStrategy(size=1), batch_size=4)
    text, images = text.materialize(), images.materialize()

    rows = sorted(text.take_all(), key=lambda r: r["id"])
    expected = omnivec.Embedder(bert_dir, device="cpu").encode(TEXTS, normalize_embeddings=True)
    np.testing.assert_allclose(np.stack([r["embedding"] for r in rows]), expected, atol=ATOL)
    assert str(text.schema().base_schema.field("embedding").type).startswith("ArrowTensorType")

    rows = sorted(images.take_all(), key=lambda r: r["id"])
    assert [r["embedding_error"] is not None for r in rows] == [False, False, False, True, False, False]
    assert rows[3]["embedding"] is None and "p3.png" in rows[3]["embedding_error"]
    clip = omnivec.Embedder(clip_dir, device="cpu")
    readable = [r["image_path"] for r in rows if r["embedding"] is not None]
    np.testing.assert_allclose(np.stack([r["embedding"] for r in rows if r["embedding"] is not None]),
                               clip.encode(readable, modality="image", normalize_embeddings=True), atol=ATOL)

    written = ovr.write_kb(text, kb=str(kb), space="text", model=bert_dir,
                           payload_columns={"text": "text", "file": "image_path"})
    assert (written.written, written.skipped) == (6, 0)
    written = ovr.write_kb(images, kb=str(kb), space="image", model=clip_dir, error_column="embedding_error",
                           payload_columns={"text": "text", "file": "image_path"})
    assert (written.written, written.skipped) == (5, 1) and written.examples[0][0] == "p3"

    from omnivec.kb.search import Searcher
    from omnivec.kb.settings import kb_settings

    searcher = Searcher(*kb_settings(str(kb), None, existing=True))
    try:
        for i, query in enumerate(TEXTS):  # a product's own text: its text vector is the nearest (cosine 1)
            hits = searcher.search(query, k=1, spaces=["text"])
            assert hits[0].id == f"p{i}" and hits[0].similarity == pytest.approx(1.0, abs=1e-5)
        hits = searcher.search(image=str(products.parent / "p4.png"), k=1, spaces=["image"])
        assert hits[0].id == "p4" and hits[0].location.file.endswith("p4.png")
        assert searcher.search("garden hose", k=1, spaces=["lexical"])[0].id == "p2"  # the lexical space too
        assert searcher.store.count("image") == 5 and searcher.store.count("text") == 6
    finally:
        searcher.close()


def test_an_unreadable_row_fails_the_job_naming_it(ray_local, products, clip_dir):
    """With on_error="raise" (the default), the missing image fails the job; the message names the row's id, the
    column and the file."""
    import omnivec.ray as ovr

    ray = ray_local
    ds = ray.data.read_parquet(str(products))
    embedded = ds.map_batches(ovr.Embed, fn_constructor_kwargs={"model": clip_dir, "column": "image_path",
                                                                "modality": "image", "id_column": "id"},
                              compute=ray.data.ActorPoolStrategy(size=1), batch_size=6)
    with pytest.raises(Exception) as caught:
        embedded.materialize()
    message = str(caught.value)
    assert "row 3 of this batch (id 'p3'), column 'image_path'" in message and "p3.png' does not exist" in message


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


def test_qdrant_local_is_written_from_the_driver(ray_local, products, bert_dir, clip_dir, tmp_path):
    """Qdrant's local mode takes one process: KBSink refuses it, naming the store; write_kb writes it from the
    driver, and the search finds every product."""
    import omnivec.ray as ovr

    ray = ray_local
    kb = _kb(tmp_path, bert_dir, clip_dir, store=f"qdrant://{tmp_path / 'qdrant'}")
    ds = ray.data.read_parquet(str(products)).map_batches(
        ovr.Embed, fn_constructor_kwargs={"model": bert_dir, "column": "text", "normalize": True},
        compute=ray.data.ActorPoolStrategy(size=1), batch_size=4)
    settings = ovr.KBWriteSettings(kb=str(kb), space="text", model=bert_dir, lexical=False,
                                   payload_columns={"text": "text", "file": "image_path"})
    with pytest.raises(ConfigError, match="Qdrant in local mode.*write_kb"):
        ovr.KBSink(settings)
    assert ovr.write_kb(ds, settings).written == 6

    from omnivec.kb.search import Searcher
    from omnivec.kb.settings import kb_settings

    searcher = Searcher(*kb_settings(str(kb), None, existing=True))
    try:
        assert [searcher.search(t, k=1, spaces=["text"])[0].id for t in TEXTS] == [f"p{i}" for i in range(6)]
    finally:
        searcher.close()


# -- without Ray: the callables on plain dict batches, and the settings -----------------------------------------
def test_audio_column_of_waveforms(clap_dir):
    """Bare waveforms with ``sampling_rate`` set embed as ``encode`` of ``{"array", "sampling_rate"}`` does."""
    import omnivec
    from omnivec.models.ray_embed import Embed

    rng = np.random.default_rng(0)
    waves = np.empty(3, dtype=object)
    waves[:] = [rng.uniform(-0.5, 0.5, n).astype(np.float32) for n in (48_000, 24_000, 60_000)]
    out = Embed(model=clap_dir, column="audio", modality="audio", sampling_rate=48_000)({"audio": waves})
    expected = omnivec.Embedder(clap_dir, device="cpu").encode(
        [{"array": w, "sampling_rate": 48_000} for w in waves])
    np.testing.assert_allclose(out["embedding"], expected, atol=ATOL)


def test_null_rows_keep_the_others_exact(bert_dir):
    """A null text, with on_error="null", gets a null vector and its reason; the other rows equal encode."""
    import omnivec
    from omnivec.models.ray_embed import Embed

    batch = {"text": np.array(["one", None, "three"], dtype=object)}
    table = Embed(model=bert_dir, column="text", on_error="null")(batch)
    vectors = table.column("embedding").to_pylist()
    assert vectors[1] is None and table.column("embedding_error").to_pylist() == [None, "the value is null", None]
    expected = omnivec.Embedder(bert_dir, device="cpu").encode(["one", "three"])
    np.testing.assert_allclose(np.array([vectors[0], vectors[2]]), expected, atol=ATOL)
    with pytest.raises(InputError, match=r"row 1 of this batch, column 'text' = None: the value is null"):
        Embed(model=bert_dir, column="text")(dict(batch))


@pytest.mark.parametrize(("fields", "message"), [
    ({"model": "m", "column": "text", "modality": "picture"}, r"modality='picture' is not allowed"),
    ({"model": "m", "column": "text", "normalise": True}, r"unknown setting\(s\) \['normalise'\]"),
    ({"model": "m", "column": "text", "sampling_rate": 16000}, r"sampling_rate is for modality='audio'"),
    ({"model": "m", "column": "text", "output_column": "text"}, r"would overwrite the input column"),
    ({"model": "m", "column": "text", "batch_size": 0}, r"batch_size must be a whole number >= 1"),
    ({"model": "m", "column": "text", "on_error": "skip"}, r"on_error='skip' is not allowed"),
])
def test_embed_settings_are_checked(fields, message):
    from omnivec.models.ray_embed import Embed

    with pytest.raises(ConfigError, match=message):
        Embed(**fields)


def test_writer_settings_are_checked(tmp_path, bert_dir, clip_dir):
    from omnivec.ray import KBWriteSettings
    from omnivec.kb.ray_target import KBTarget

    with pytest.raises(ConfigError, match="needs a payload 'file'"):
        KBWriteSettings(kb="kb", space="text", model="m")
    with pytest.raises(ConfigError, match="space='lexical': the writer fills a dense space"):
        KBWriteSettings(kb="kb", space="lexical", model="m", payload_values={"file": "f"})
    kb = _kb(tmp_path, bert_dir, clip_dir)
    with pytest.raises(ConfigError, match="embeds its 'image' space with"):
        KBTarget(KBWriteSettings(kb=str(kb), space="image", model=bert_dir, payload_values={"file": "f"}))
