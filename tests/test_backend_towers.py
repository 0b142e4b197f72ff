"""Dual encoders on backend="onnx" / "openvino": CLIP and SigLIP (text and image towers) and CLAP (text and audio
towers) run as one exported graph per modality; their vectors equal torch's within 1e-4, each tower's files are
named ``<modality>_<file>`` (``onnx/image_model.onnx``, ``openvino/text_openvino_model.xml``), made once and reused,
kept by save(), and picked by ``model_kwargs={"file_name": ...}`` per tower."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from PIL import Image

import omnivec
from omnivec.errors import ModelLoadError
from omnivec.modules.backends import onnx as onnx_backend
from omnivec.modules.backends import openvino as openvino_backend
from omnivec.modules.backends.base import tower_file_name
from omnivec.modules.backends.towers import BackendTowers, TowerOutput
from tests.fixtures import media

# Slow lane: the session fixture exports six towers to ONNX and OpenVINO (about a minute on two cores).
pytestmark = pytest.mark.slow

ATOL = 1e-4
TEXTS = ["a plane over a lake", "two dogs playing in the snow on a sunny winter afternoon", "", "a red bus"]
MODELS = {"clip": "image", "siglip": "image", "clap": "audio"}  # each model's second tower
FILES = {"onnx": ("onnx", "model.onnx"), "openvino": ("openvino", "openvino_model.xml")}


def _images() -> list[Image.Image]:
    """Noise pictures of different sizes and aspect ratios (the processor resizes and crops each its own way)."""
    rng = np.random.default_rng(3)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in ((40, 56), (90, 30), (64, 64))]


def _tones() -> list[dict[str, Any]]:
    # Shorter than the tiny CLAP extractor's 2 s, which it would crop at random.
    return [{"array": media.sine(s, 48000, freq=f), "sampling_rate": 48000} for s, f in ((1.0, 440), (1.5, 880), (0.4, 220))]


def _inputs(modality: str) -> list[Any]:
    return _images() if modality == "image" else _tones()


def _max_diff(a: Any, b: Any) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def _paths(towers: Any) -> list[Path]:
    """The file each tower's backend model runs (OnnxModel.path, OpenVINOModel.path)."""
    assert isinstance(towers, BackendTowers)
    return [cast(Any, model).path for model in towers.towers.values()]


def _tower_files(folder: Path, backend: str, modalities: tuple[str, ...], file_name: str | None = None) -> list[Path]:
    subfolder, default = FILES[backend]
    return [folder / subfolder / tower_file_name(file_name or default, m) for m in modalities]


@pytest.fixture
def no_export(monkeypatch):
    """Fail the test if anything exports: the tower files must be reused."""
    def refuse(*args, **kwargs):
        raise AssertionError("an export ran although the tower's file exists")

    monkeypatch.setattr(onnx_backend, "export_onnx", refuse)
    monkeypatch.setattr(openvino_backend, "_export_tower", refuse)


@pytest.fixture(scope="module")
def exported(tower_exports) -> dict[str, tuple[Path, dict[str, np.ndarray]]]:
    """Copies of the tiny dual encoders (exports write into the model folder), each loaded once with
    backend="openvino" (traced from torch) and once with backend="onnx" (torch.onnx) (tests/fixtures/backend_exports.py:
    made once per session, shared with tests/test_backend_int8_towers.py), and torch's vectors for TEXTS and the
    second tower's inputs."""
    result = {}
    for name in MODELS:
        folder = tower_exports(name)
        torch_model = omnivec.Embedder(str(folder), device="cpu")
        # One batch for the texts: SigLIP pools the last position, so its text vectors depend on the padding.
        expected = {"text": torch_model.encode(TEXTS, batch_size=8), MODELS[name]: torch_model.encode(_inputs(MODELS[name]))}
        result[name] = (folder, expected)
    return result


# -- parity ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["onnx", "openvino"])
@pytest.mark.parametrize("name", list(MODELS))
def test_tower_vectors_equal_torch(name, backend, exported, no_export):
    folder, expected = exported[name]
    other = MODELS[name]
    model = omnivec.Embedder(str(folder), backend=backend)
    towers = model.transformer.model
    assert isinstance(towers, BackendTowers) and list(towers.towers) == ["text", other]
    assert _paths(towers) == _tower_files(folder, backend, ("text", other))
    assert model.modalities == list(omnivec.Embedder(str(folder), device="cpu").modalities)
    assert _max_diff(model.encode(TEXTS, batch_size=8), expected["text"]) <= ATOL
    assert _max_diff(model.encode(_inputs(other)), expected[other]) <= ATOL
    assert _max_diff(model.encode(_inputs(other)[1:2]), expected[other][1:2]) <= ATOL  # a batch of one


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_mixed_text_and_image_batch(backend, exported, no_export):
    folder, expected = exported["clip"]
    model = omnivec.Embedder(str(folder), backend=backend)
    images = _images()
    mixed = [TEXTS[0], images[0], TEXTS[1], images[1], images[2], TEXTS[3]]
    vectors = np.asarray(model.encode(mixed, batch_size=8))
    want = np.stack([expected["text"][0], expected["image"][0], expected["text"][1], expected["image"][1],
                     expected["image"][2], expected["text"][3]])
    assert vectors.shape == want.shape and _max_diff(vectors, want) <= ATOL


# -- files: made once, named per tower, reused, saved --------------------------------------------------------
@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_each_tower_is_exported_once_then_reused(backend, clip_dir, tmp_path, monkeypatch):
    folder = tmp_path / "model"
    shutil.copytree(clip_dir, folder)
    calls: list[str] = []
    module, function = (onnx_backend, "export_onnx") if backend == "onnx" else (openvino_backend, "_export_tower")
    real = getattr(module, function)

    def counted(*args, **kwargs):
        tower = kwargs.get("tower") or args[-1]
        calls.append(tower.modality)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, function, counted)
    first = omnivec.Embedder(str(folder), backend=backend)
    assert calls == ["text", "image"]
    files = _tower_files(folder, backend, ("text", "image"))
    assert all(f.is_file() for f in files)
    assert not (folder / FILES[backend][0] / FILES[backend][1]).exists()  # no single-graph file for a dual encoder
    if backend == "openvino":
        assert all(f.with_suffix(".bin").is_file() for f in files)
    stamps = [f.stat().st_mtime_ns for f in files]
    second = omnivec.Embedder(str(folder), backend=backend)
    assert calls == ["text", "image"] and [f.stat().st_mtime_ns for f in files] == stamps
    images = _images()
    assert _max_diff(first.encode(images), second.encode(images)) == 0


def test_openvino_converts_the_towers_onnx_files_without_torch_weights(exported, tmp_path, monkeypatch):
    folder = tmp_path / "model"
    shutil.copytree(exported["clip"][0], folder)
    shutil.rmtree(folder / "openvino")
    (folder / "model.safetensors").unlink()  # an export-only folder (with weights, the torch model is traced)

    def no_trace(*args, **kwargs):
        raise AssertionError("the torch model was traced although onnx/<modality>_model.onnx exists")

    monkeypatch.setattr(openvino_backend, "tower_inputs", no_trace)
    model = omnivec.Embedder(str(folder), backend="openvino")
    assert all(f.is_file() for f in _tower_files(folder, "openvino", ("text", "image")))
    assert _max_diff(model.encode(_images()), exported["clip"][1]["image"]) <= ATOL


def test_save_keeps_every_towers_files(exported, tmp_path, no_export):
    source, expected = exported["clip"]
    loaded = omnivec.Embedder(str(source), backend="onnx")
    target = tmp_path / "saved"
    loaded.save(target)
    for backend in ("onnx", "openvino"):
        assert all(f.is_file() for f in _tower_files(target, backend, ("text", "image")))
    assert (target / "model.safetensors").is_file()
    images = _images()
    for backend in ("onnx", "openvino"):
        again = omnivec.Embedder(str(target), backend=backend)
        assert _max_diff(again.encode(images), expected["image"]) <= ATOL
        assert _max_diff(again.encode(TEXTS, batch_size=8), expected["text"]) <= ATOL
    assert _max_diff(omnivec.Embedder(str(target), device="cpu").encode(images), expected["image"]) <= ATOL


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_file_name_selects_each_towers_variant(backend, exported, tmp_path, no_export):
    folder = tmp_path / "model"
    shutil.copytree(exported["clip"][0], folder)
    subfolder, default = FILES[backend]
    variant = default.replace("model", "model_qint8_avx512_vnni")
    suffixes = (".onnx",) if backend == "onnx" else (".xml", ".bin")
    for old, new in zip(_tower_files(folder, backend, ("text", "image")),
                        _tower_files(folder, backend, ("text", "image"), variant), strict=True):
        for suffix in suffixes:
            old.with_suffix(suffix).rename(new.with_suffix(suffix))
    model = omnivec.Embedder(str(folder), backend=backend, model_kwargs={"file_name": variant})
    assert [p.name for p in _paths(model.transformer.model)] == [f"text_{variant}", f"image_{variant}"]
    assert _max_diff(model.encode(_images()), exported["clip"][1]["image"]) <= ATOL
    missing = default.replace("model", "model_missing")
    with pytest.raises(ModelLoadError, match=f"text_{missing.split('.')[0]}"):
        omnivec.Embedder(str(folder), backend=backend, model_kwargs={"file_name": missing})


def test_tower_file_names():
    assert tower_file_name("model.onnx", None) == "model.onnx"
    assert tower_file_name("model.onnx", "image") == "image_model.onnx"
    assert tower_file_name("model_qint8_avx512_vnni.onnx", "text") == "text_model_qint8_avx512_vnni.onnx"
    assert tower_file_name("onnx/model_O3.onnx", "audio") == "onnx/audio_model_O3.onnx"
    assert tower_file_name("openvino_model.xml", "text") == "text_openvino_model.xml"


# -- a tower the exporter cannot handle ----------------------------------------------------------------------
def _fail_image_tower(real: Any) -> Any:
    def export(model, *args, **kwargs):
        if isinstance(model, TowerOutput) and model.method == "get_image_features":
            raise RuntimeError("unsupported operator aten::fancy_op")
        return real(model, *args, **kwargs)

    return export


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_an_exporter_failure_names_the_tower_model_and_reason(backend, exported, tmp_path, monkeypatch):
    import openvino
    import torch

    folder = tmp_path / "model"
    shutil.copytree(exported["clip"][0], folder)
    # The text tower's files are kept (reused, not exported again: the failing image tower is what is under test);
    # the image tower's are removed, the ONNX one too, so OpenVINO traces the torch tower instead of converting it.
    for subfolder in ("onnx", "openvino"):
        for path in (folder / subfolder).glob("image_*"):
            path.unlink()
    if backend == "onnx":
        monkeypatch.setattr(torch.onnx, "export", _fail_image_tower(torch.onnx.export))
    else:
        monkeypatch.setattr(openvino, "convert_model", _fail_image_tower(openvino.convert_model))
    with pytest.raises(ModelLoadError, match=r"the image tower \(get_image_features\) of CLIPModel.*RuntimeError: "
                                             r"unsupported operator aten::fancy_op"):
        omnivec.Embedder(str(folder), backend=backend)
