"""omnivec.ray's callables and settings without a Ray instance: Embed and Score on plain dict batches (what Ray hands
them), against the models' own encode; unreadable rows; the settings' checks. tests/test_ray_data.py runs them on
Ray."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omnivec.errors import ConfigError, InputError

ATOL = 1e-6


def _kb(root: Path, text_model: str, image_model: str) -> Path:
    kb = root / "kb"
    kb.mkdir(parents=True)
    (kb / "kb.toml").write_text(f'[spaces]\ntext = "{text_model}"\nimage = "{image_model}"\n', encoding="utf-8")
    return kb


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


def test_an_unreadable_row_fails_the_batch_naming_it(clip_dir, tmp_path):
    """With on_error="raise" (the default), a missing image fails the batch; the message names the row, its id, the
    column and the file (Ray raises it from map_batches as the task's error)."""
    from PIL import Image

    from omnivec.models.ray_embed import Embed

    Image.new("RGB", (40, 30), (9, 9, 9)).save(tmp_path / "a.png")
    batch = {"id": np.array(["a", "b"], dtype=object),
             "path": np.array([str(tmp_path / "a.png"), str(tmp_path / "b.png")], dtype=object)}
    with pytest.raises(InputError, match=r"row 1 of this batch \(id 'b'\), column 'path' = '.*b.png': file "
                                         r"'.*b.png' does not exist"):
        Embed(model=clip_dir, column="path", modality="image", id_column="id")(batch)


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
    from omnivec.kb.ray_target import KBTarget
    from omnivec.ray import KBWriteSettings

    with pytest.raises(ConfigError, match="needs a payload 'file'"):
        KBWriteSettings(kb="kb", space="text", model="m")
    with pytest.raises(ConfigError, match="space='lexical': the writer fills a dense space"):
        KBWriteSettings(kb="kb", space="lexical", model="m", payload_values={"file": "f"})
    kb = _kb(tmp_path, bert_dir, clip_dir)
    with pytest.raises(ConfigError, match="embeds its 'image' space with"):
        KBTarget(KBWriteSettings(kb=str(kb), space="image", model=bert_dir, payload_values={"file": "f"}))


def test_importing_omnivec_ray_loads_neither_ray_nor_torch():
    import subprocess
    import sys

    code = ("import sys, omnivec.ray as r; assert r.EmbedSettings and r.KBWriteSettings; "
            "print(sorted(m for m in ('ray', 'torch', 'lancedb') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_image_columns_of_bytes_and_arrays(clip_dir, tmp_path):
    """An image column of PNG bytes (what Parquet holds) and one of HxWxC uint8 rows (a Ray tensor column, as
    ``ray.data.read_images`` makes) embed as ``encode`` of the same images; a pandas batch reads like a dict one."""
    import io

    import pandas as pd
    from PIL import Image

    import omnivec
    from omnivec.models.ray_embed import Embed

    images = [Image.new("RGB", (40, 30), colour) for colour in ((200, 20, 20), (20, 200, 20), (20, 20, 200))]
    pngs = []
    for image in images:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    expected = omnivec.Embedder(clip_dir, device="cpu").encode(images, modality="image")
    embed = Embed(model=clip_dir, column="image", modality="image")
    column = np.empty(3, dtype=object)
    column[:] = pngs
    np.testing.assert_allclose(embed({"image": column})["embedding"], expected, atol=ATOL)
    arrays = np.stack([np.asarray(image) for image in images])  # (3, 30, 40, 3) uint8
    np.testing.assert_allclose(embed({"image": arrays})["embedding"], expected, atol=ATOL)
    out = embed(pd.DataFrame({"image": pngs}))
    np.testing.assert_allclose(out["embedding"], expected, atol=ATOL)


def test_an_unknown_prompt_name_fails_when_the_actor_starts(bert_dir):
    from omnivec.models.ray_embed import Embed

    with pytest.raises(ConfigError, match=r"prompt_name='query' is not one of the model's prompts \[\]"):
        Embed(model=bert_dir, column="text", prompt_name="query")


def test_the_writer_refuses_a_kb_it_cannot_share(tmp_path, bert_dir, clip_dir):
    """A space the KB lacks, and a KB holding files indexed by ``omnivec index`` (whose next run would delete the
    dataset's records), are refused on the driver, naming the KB."""
    from omnivec.kb.file_version import FileVersion
    from omnivec.kb.manifest import Manifest
    from omnivec.kb.ray_target import KBTarget
    from omnivec.ray import KBWriteSettings

    kb = _kb(tmp_path, bert_dir, clip_dir)
    with pytest.raises(ConfigError, match=r"has no 'audio' space \(its spaces: \['image', 'text'\]\)"):
        KBTarget(KBWriteSettings(kb=str(kb), space="audio", model=bert_dir, payload_values={"file": "f"}))
    target = KBTarget(KBWriteSettings(kb=str(kb), space="text", model=bert_dir, payload_values={"file": "f"}))
    assert target.store_uri == str(kb / "vectors") and target.lexical_language == "english"
    manifest = Manifest(kb / "manifest.sqlite")
    manifest.set_states([FileVersion("/docs/a.txt", "h", 1, 0.0)], "done")
    manifest.close()
    with pytest.raises(ConfigError, match="holds files indexed by `omnivec index`"):
        KBTarget(KBWriteSettings(kb=str(kb), space="text", model=bert_dir, payload_values={"file": "f"}))
