"""Bad input and broken model folders give errors that name the input or file and what was expected."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import omnivec
from omnivec.errors import InputError, ModelLoadError, ModelNotFoundError


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    return omnivec.Embedder(minilm_dir, device="cpu")


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
