"""int8 for dual encoders: every tower of CLIP, SigLIP and CLAP is quantized (ONNX dynamic, OpenVINO static
calibrated on the model's own modality), named ``<modality>_<int8 file>``, holds int8 ops, keeps its vectors close
to torch fp32, is made once by ``backend="onnx-int8"`` and reused; OpenVINO without calibration images is refused
with a message saying what to pass."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from PIL import Image

import omnivec
from omnivec import export_dynamic_quantized_onnx_model, export_optimized_onnx_model
from omnivec.errors import ConfigError
from omnivec.models import backend_choice
from omnivec.models.exports import for_this_machine, int8_file_name
from omnivec.modules.backends.base import export_files
from omnivec.modules.backends.towers import BackendTowers
from tests.fixtures import media

# Slow lane: the module fixture exports and quantizes CLIP's two towers; others quantize SigLIP, CLAP and OpenVINO.
pytestmark = pytest.mark.slow

TEXTS = ["a plane over a lake", "two dogs playing in the snow on a sunny winter afternoon", "a red bus",
         "the cat sat on the mat"]
# Measured on the tiny random fixtures (mean / min cosine to torch fp32): ONNX int8 CLIP text 0.9994 / 0.9991, image
# 0.99994 / 0.99992; SigLIP text 0.99986 / 0.9997, image 0.9998 / 0.9997; CLAP text 0.99993 / 0.9999, audio
# 0.99992 / 0.9999. OpenVINO int8 CLIP text 0.9992 / 0.9990, image 0.99996 / 0.99994.
MEAN_COSINE, MIN_COSINE = 0.998, 0.995
INT8_ONNX_OPS = ("MatMulInteger", "DynamicQuantizeLinear")


def _images() -> list[Image.Image]:
    """Noise pictures of different sizes and aspect ratios."""
    rng = np.random.default_rng(3)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
            for h, w in ((40, 56), (90, 30), (64, 64), (120, 80))]


def _tones() -> list[dict[str, Any]]:
    return [{"array": media.sine(s, 48000, freq=f), "sampling_rate": 48000} for s, f in ((1.0, 440), (1.5, 880), (0.4, 220))]


def _cosines(a: Any, b: Any) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _assert_close(vectors: Any, expected: Any) -> None:
    cosines = _cosines(vectors, expected)
    assert cosines.mean() >= MEAN_COSINE and cosines.min() >= MIN_COSINE, cosines


def _onnx_ops(path: Path) -> Counter:
    import onnx

    return Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def _paths(model: Any) -> dict[str, Path]:
    towers = model.transformer.model
    assert isinstance(towers, BackendTowers)
    return {modality: cast(Any, tower).path for modality, tower in towers.towers.items()}


def _copy(source: str | Path, tmp_path: Path, name: str = "model") -> Path:
    folder = tmp_path / name
    shutil.copytree(source, folder)
    return folder


@pytest.fixture(scope="module")
def clip_int8(tmp_path_factory, tower_exports) -> dict[str, Any]:
    """A private copy of the tiny CLIP, torch's vectors, and its first load with backend="onnx-int8" (which makes
    the fp32 ONNX towers, then the int8 ones). The copy keeps the fp32 OpenVINO towers of the session's export
    (tests/fixtures/backend_exports.py), which the OpenVINO tests here start from."""
    folder = _copy(tower_exports("clip"), tmp_path_factory.mktemp("int8-clip"))
    shutil.rmtree(folder / "onnx")  # onnx-int8 on a folder without an ONNX graph: exported first
    torch_model = omnivec.Embedder(str(folder), device="cpu")
    expected = {"text": torch_model.encode(TEXTS), "image": torch_model.encode(_images())}
    model = omnivec.Embedder(str(folder), backend="onnx-int8")
    vectors = {"text": model.encode(TEXTS), "image": model.encode(_images())}
    return {"folder": folder, "expected": expected, "model": model, "vectors": vectors}


def _refuse_quantizing(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("quantized again although every tower's int8 file exists")

    monkeypatch.setattr(for_this_machine, "quantize_for", refuse)


# -- ONNX ------------------------------------------------------------------------------------------------------
def test_onnx_int8_makes_every_tower_on_first_use(clip_int8):
    folder, model = clip_int8["folder"], clip_int8["model"]
    name = int8_file_name("onnx")
    want = {m: folder / "onnx" / f"{m}_{name}" for m in ("text", "image")}
    assert _paths(model) == want
    for path in want.values():
        ops = _onnx_ops(path)
        assert all(ops[op] > 0 for op in INT8_ONNX_OPS), ops
    assert not (folder / "onnx" / name).exists()  # no single-graph file for a dual encoder
    for modality in ("text", "image"):
        _assert_close(clip_int8["vectors"][modality], clip_int8["expected"][modality])


def test_onnx_int8_towers_are_reused(clip_int8, monkeypatch):
    _refuse_quantizing(monkeypatch)
    again = omnivec.Embedder(str(clip_int8["folder"]), backend="onnx-int8")
    np.testing.assert_array_equal(again.encode(TEXTS), clip_int8["vectors"]["text"])
    np.testing.assert_array_equal(again.encode(_images()), clip_int8["vectors"]["image"])


def test_the_export_exists_only_with_every_tower(clip_dir, tmp_path):
    folder = tmp_path / "model"
    (folder / "onnx").mkdir(parents=True)
    shutil.copy(Path(clip_dir) / "config.json", folder / "config.json")
    name = int8_file_name("onnx")
    assert backend_choice.tower_modalities(folder) == ["text", "image"]
    assert export_files(folder, "onnx", name, ["text", "image"]) == [folder / "onnx" / f"text_{name}",
                                                                     folder / "onnx" / f"image_{name}"]
    (folder / "onnx" / f"text_{name}").write_bytes(b"")
    assert not backend_choice._has_export(folder, "onnx", name)
    (folder / "onnx" / f"image_{name}").write_bytes(b"")
    assert backend_choice._has_export(folder, "onnx", name)
    ov = export_files(folder, "openvino", "openvino_model_qint8_quantized.xml", ["text", "audio"])
    assert [p.name for p in ov] == ["text_openvino_model_qint8_quantized.xml", "text_openvino_model_qint8_quantized.bin",
                                    "audio_openvino_model_qint8_quantized.xml", "audio_openvino_model_qint8_quantized.bin"]


@pytest.mark.parametrize("name", ["siglip", "clap"])
def test_export_dynamic_quantizes_every_tower(name, tower_exports, clap_dir, tmp_path):
    # Both sources of the fp32 towers: SigLIP's loaded ONNX towers (the session's export, tests/fixtures/
    # backend_exports.py), CLAP's torch weights in memory (exported first).
    folder = _copy(tower_exports("siglip") if name == "siglip" else clap_dir, tmp_path)
    other, inputs = ("image", _images()) if name == "siglip" else ("audio", _tones())
    torch_model = omnivec.Embedder(str(folder), device="cpu")
    expected = {"text": torch_model.encode(TEXTS, batch_size=8), other: torch_model.encode(inputs)}
    source = omnivec.Embedder(str(folder), backend="onnx") if name == "siglip" else torch_model
    path = export_dynamic_quantized_onnx_model(source, "avx2")
    assert path == folder / "onnx" / "text_model_quint8_avx2.onnx"  # the text tower's; the others beside it
    assert all(_onnx_ops(folder / "onnx" / f"{m}_model_quint8_avx2.onnx")["MatMulInteger"] > 0 for m in ("text", other))
    model = omnivec.Embedder(str(folder), backend="onnx", model_kwargs={"file_name": "model_quint8_avx2.onnx"})
    _assert_close(model.encode(TEXTS, batch_size=8), expected["text"])
    _assert_close(model.encode(inputs), expected[other])


def test_export_optimized_writes_every_tower(clip_int8):
    folder = clip_int8["folder"]
    path = export_optimized_onnx_model(omnivec.Embedder(str(folder), backend="onnx"), "O2")
    assert path == folder / "onnx" / "text_model_O2.onnx" and (folder / "onnx" / "image_model_O2.onnx").is_file()
    model = omnivec.Embedder(str(folder), backend="onnx", model_kwargs={"file_name": "model_O2.onnx"})
    assert np.abs(model.encode(TEXTS) - clip_int8["expected"]["text"]).max() <= 1e-4
    assert np.abs(model.encode(_images()) - clip_int8["expected"]["image"]).max() <= 1e-4


def test_cli_export_onnx_int8_of_a_dual_encoder(tower_exports, tmp_path, capsys):
    from omnivec.cli import main

    folder = _copy(tower_exports("clip"), tmp_path)  # with its fp32 towers (made on first load: test_backend_towers)
    assert main(["export", str(folder), "--backend", "onnx", "--int8"]) == 0
    out = capsys.readouterr().out
    name = int8_file_name("onnx")
    assert all((folder / "onnx" / f"{m}_{name}").is_file() for m in ("text", "image"))
    assert f"image_{name}" in out and f"model_kwargs={{'file_name': '{name}'}}" in out


# -- OpenVINO ---------------------------------------------------------------------------------------------------
def test_openvino_int8_without_calibration_images_says_what_to_pass(clip_int8):
    folder = clip_int8["folder"]
    with pytest.raises(ConfigError, match=r"image tower .*dataset=\[.*onnx-int8"):
        omnivec.Embedder(str(folder), backend="openvino-int8")
    broken = folder.parent / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a picture")
    with pytest.raises(ConfigError, match="could not be decoded"):
        for_this_machine.quantize_for(omnivec.Embedder(str(folder), backend="openvino"), "openvino",
                                      [*TEXTS, str(broken)])
    assert not list((folder / "openvino").glob("*quantized*"))  # nothing half-made


def test_openvino_int8_calibrated_on_image_files_from_the_command_line(clip_int8, tmp_path, monkeypatch, capsys):
    from omnivec.cli import main

    folder = clip_int8["folder"]
    image_paths = []
    for index, image in enumerate(_images()):
        image_paths.append(tmp_path / f"picture{index}.png")
        image.save(image_paths[-1])
    calibration = tmp_path / "calibration.txt"
    calibration.write_text("\n".join(TEXTS + [str(p) for p in image_paths]), encoding="utf-8")
    assert main(["export", str(folder), "--backend", "openvino", "--int8", "--calibration", str(calibration)]) == 0
    assert "image_openvino_model_qint8_quantized.xml" in capsys.readouterr().out

    import openvino as ov

    _refuse_quantizing(monkeypatch)
    model = omnivec.Embedder(str(folder), backend="openvino-int8")
    for modality, path in _paths(model).items():
        assert path == folder / "openvino" / f"{modality}_openvino_model_qint8_quantized.xml"
        assert any(op.get_type_name() == "FakeQuantize" for op in ov.Core().read_model(str(path)).get_ops())
    _assert_close(model.encode(TEXTS), clip_int8["expected"]["text"])
    _assert_close(model.encode(_images()), clip_int8["expected"]["image"])
