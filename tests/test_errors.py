"""Bad input and broken model folders give errors that name the input or file and what was expected."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import omnivec
from omnivec.errors import InputError, ModelLoadError, ModelNotFoundError


@pytest.fixture(scope="module")
def minilm(minilm_embedder):
    return minilm_embedder


def test_missing_model_path_names_path_and_files(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelNotFoundError) as info:
        omnivec.Embedder(str(missing))
    message = str(info.value)
    assert str(missing) in message and "modules.json" in message and "config.json" in message


def test_folder_without_model_files(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelNotFoundError, match="neither modules.json nor config.json"):
        omnivec.Embedder(str(tmp_path))


def test_non_string_input_names_index_and_type(minilm):
    with pytest.raises(InputError) as info:
        minilm.encode(["fine", "also fine", 42])
    assert "index 2" in str(info.value) and "int" in str(info.value)
    with pytest.raises(InputError, match="index 0.*NoneType"):
        minilm.encode([None])


def test_empty_list_returns_empty_array_with_dimension(minilm):
    empty = minilm.encode([])
    assert isinstance(empty, np.ndarray) and empty.shape == (0, 384) and empty.dtype == np.float32
    assert minilm.encode([], precision="ubinary").shape == (0, 48)
    assert minilm.encode([], convert_to_tensor=True).shape == (0, 384)
    assert minilm.encode([], truncate_dim=64).shape == (0, 64)


def test_corrupt_weights_file_is_a_clear_error(minilm_dir, tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(minilm_dir, folder)
    (folder / "model.safetensors").write_bytes(b"\x00\x01 this is not a safetensors file")
    with pytest.raises(ModelLoadError) as info:
        omnivec.Embedder(str(folder))
    assert str(folder) in str(info.value) and "model.safetensors" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no stack of internals


def test_truncated_weights_file_is_a_clear_error(minilm_dir, tmp_path):
    folder = tmp_path / "truncated"
    shutil.copytree(minilm_dir, folder)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="model.safetensors"):
        omnivec.Embedder(str(folder))


def test_missing_weights_names_files_looked_for(minilm_dir, tmp_path):
    folder = tmp_path / "noweights"
    shutil.copytree(minilm_dir, folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="model.safetensors.*pytorch_model.bin"):
        omnivec.Embedder(str(folder))


def test_unknown_module_type_lists_supported(minilm_dir, tmp_path):
    folder = tmp_path / "custom"
    shutil.copytree(minilm_dir, folder)
    modules = json.loads((folder / "modules.json").read_text())
    modules[1]["type"] = "my_package.MyPooling"
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelLoadError, match="my_package.MyPooling.*Pooling"):
        omnivec.Embedder(str(folder))


def test_invalid_arguments(minilm):
    with pytest.raises(ValueError, match="precision"):
        minilm.encode(["x"], precision="float8")
    with pytest.raises(ValueError, match="output_value"):
        minilm.encode(["x"], output_value="cls")
    with pytest.raises(ValueError, match="batch_size"):
        minilm.encode(["x"], batch_size=0)
    with pytest.raises(ValueError, match="prompt_name 'query'"):
        minilm.encode(["x"], prompt_name="query")
    with pytest.raises(ValueError, match="similarity_fn_name"):
        minilm.similarity_fn_name = "jaccard"
    with pytest.raises(TypeError):
        minilm.encode(["x"], not_an_option=True)  # no **kwargs swallowed


# -- hostile library inputs: each is an InputError naming the input, its field and what is expected ----------------
@pytest.fixture(scope="module")
def clip(clip_embedder):
    return clip_embedder


@pytest.fixture(scope="module")
def clap(clap_embedder):
    return clap_embedder


def _tone(rate=48000):
    return np.full(4800, 0.1, np.float32), rate


def _frames(fps):
    from PIL import Image

    return {"frames": [Image.new("RGB", (8, 8))] * 3, "fps": fps}


BAD_INPUTS = [  # (model, inputs, what the message must hold)
    ("clap", [{"array": np.full(4800, np.nan, np.float32), "sampling_rate": 48000}], ["index 0", "'array'", "NaN"]),
    ("clap", ["ok", {"array": np.r_[np.zeros(9, np.float32), np.inf], "sampling_rate": 48000}],
     ["index 1", "'array'", "infinite", "sample 9"]),
    ("clap", [{"array": _tone()[0], "sampling_rate": 0}], ["index 0", "'sampling_rate'", "1000..384000", "got 0"]),
    ("clap", [{"array": _tone()[0], "sampling_rate": -1}], ["index 0", "'sampling_rate'", "1000..384000", "got -1"]),
    ("clap", [{"array": _tone()[0], "sampling_rate": 10**9}], ["'sampling_rate'", "1000..384000", "1000000000"]),
    ("clap", [{"array": _tone()[0], "sampling_rate": 10**400}], ["'sampling_rate'", "1000..384000"]),
    ("clap", [{"array": _tone()[0], "sampling_rate": 16000.5}], ["'sampling_rate'", "integer"]),
    ("clap", [{"array": ["a", "b"], "sampling_rate": 16000}], ["index 0", "'array'", "numbers"]),
    ("clip", ["fine", np.zeros((0, 0, 3), np.uint8)], ["index 1", "0x0 pixels", "at least 1x1"]),
    ("clip", [_frames(0)], ["index 0", "'fps'", "above 0", "got 0"]),
    ("clip", [_frames(-1)], ["index 0", "'fps'", "got -1"]),
    ("clip", [_frames(float("nan"))], ["index 0", "'fps'", "got nan"]),
]


@pytest.mark.parametrize("model_name, inputs, needles", BAD_INPUTS)
def test_hostile_inputs_are_named_input_errors(request, model_name, inputs, needles):
    model = request.getfixturevalue(model_name)
    with pytest.raises(InputError) as info:
        model.encode(inputs)
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))


def test_a_zero_pixel_pil_image_and_settings(clip, clip_dir):
    from PIL import Image

    with pytest.raises(InputError, match=r"index 0: the image is 0x0 pixels"):
        clip.encode([Image.new("RGB", (0, 0))])
    for bad in (0, -3, True, 2.5):
        with pytest.raises(InputError, match=rf"truncate_dim must be None or a positive integer.*got {bad!r}"):
            clip.encode(["a"], truncate_dim=bad)
    with pytest.raises(InputError, match="truncate_dim.*got 0"):
        omnivec.Embedder(clip_dir, device="cpu", truncate_dim=0)
    for field, value in (("num_frames", 0), ("max_frames", -1), ("fps", 0), ("fps", float("nan"))):
        with pytest.raises(InputError, match=f"VideoSampling.{field}"):
            omnivec.VideoSampling(**{field: value})


def test_predict_none_is_an_input_error(bert_dir):
    reranker = omnivec.CrossEncoder(bert_dir, num_labels=1, device="cpu")
    for bad in (None, 42, "just a string"):
        with pytest.raises(InputError, match=f"pairs must be a .query, document. pair or a list of pairs, got "
                                             f"{type(bad).__name__}"):
            reranker.predict(bad)


def test_good_edge_inputs_still_embed(clap, clip):
    tone, _ = _tone()
    for rate in (1000, 384000):  # the limits themselves are accepted
        assert np.isfinite(clap.encode([{"array": tone, "sampling_rate": rate}])).all()
    assert np.isfinite(clip.encode([np.zeros((1, 1, 3), np.uint8), _frames(None), _frames(1e-3)])).all()


def test_strings_that_look_like_missing_media_paths_warn_once_per_call(minilm, caplog, tmp_path):
    texts = ["/tmp/omnivec-no-such-dir/nope.jpg", "photo.png", "a photo.png of a cat", "clip.MP4", "hello"]
    with caplog.at_level("WARNING", logger="omnivec.inputs.modality"):
        minilm.encode(texts)
    warnings = [r.getMessage() for r in caplog.records if r.name == "omnivec.inputs.modality"]
    assert len(warnings) == 1
    assert "index 0" in warnings[0] and "/tmp/omnivec-no-such-dir/nope.jpg" in warnings[0]
    assert "2 more" in warnings[0] and "embedded as text" in warnings[0]
    caplog.clear()
    with caplog.at_level("WARNING", logger="omnivec.inputs.modality"):
        minilm.encode(["a sentence", "see https://example.org/cat.png", {"text": "photo.png"}, "a photo.png of x"])
        minilm.encode(["photo.png"], modality="text")
    assert not [r for r in caplog.records if r.name == "omnivec.inputs.modality"]


def test_encoding_audio_with_clap_shows_no_sampling_rate_warning(clap, capfd, caplog):
    with caplog.at_level("WARNING"):
        clap.encode([{"array": _tone()[0], "sampling_rate": 48000}, {"array": _tone(16000)[0], "sampling_rate": 16000}])
    out, err = capfd.readouterr()
    assert "sampling_rate" not in out + err and not [r for r in caplog.records if "sampling_rate" in r.getMessage()]


def test_a_float_wav_holding_nan_is_named(clap, tmp_path):
    import soundfile

    path = tmp_path / "broken-float.wav"
    samples = np.full(4800, 0.1, np.float32)
    samples[100] = np.nan
    soundfile.write(str(path), samples, 48000, subtype="FLOAT")
    with pytest.raises(InputError, match=r"index 1: .*broken-float\.wav holds NaN or infinite samples \(the first at "
                                         r"sample 100\)"):
        clap.encode(["fine", str(path)])
