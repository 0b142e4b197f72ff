"""The loading layer: the default model resolved offline in one place, and LoadOptions checked once."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnivec.errors import ConfigError, ModelNotFoundError
from omnivec.loading.defaults import DEFAULT_TEXT_MODEL
from omnivec.loading.hub import HubOptions, resolve_model_dir
from omnivec.loading.options import LoadOptions


def _cached_snapshot(cache: Path, repo_id: str) -> Path:
    """A snapshot in huggingface_hub's cache layout (models--org--name/snapshots/<sha>, refs/main)."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / sha
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}", encoding="utf-8")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha, encoding="utf-8")
    return snapshot


def test_default_model_offline_resolves_to_the_package(minilm_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = resolve_model_dir(DEFAULT_TEXT_MODEL, HubOptions(cache_folder=str(tmp_path)))
    assert folder.resolve() == Path(minilm_dir).resolve()
    local_only = resolve_model_dir(DEFAULT_TEXT_MODEL, HubOptions(cache_folder=str(tmp_path), local_files_only=True))
    assert local_only.resolve() == Path(minilm_dir).resolve()


def test_default_model_in_the_cache_wins_over_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = _cached_snapshot(tmp_path, DEFAULT_TEXT_MODEL)
    assert resolve_model_dir(DEFAULT_TEXT_MODEL, HubOptions(cache_folder=str(tmp_path))) == snapshot


def test_default_model_at_another_revision_is_not_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="all-MiniLM-L6-v2"):
        resolve_model_dir(DEFAULT_TEXT_MODEL, HubOptions(cache_folder=str(tmp_path), revision="v0"))


def test_other_ids_have_no_package_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="someone/else"):
        resolve_model_dir("someone/else", HubOptions(cache_folder=str(tmp_path)))


def test_embedder_loads_the_default_id_offline(minilm_dir, tmp_path, monkeypatch):
    import numpy as np

    import omnivec

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    by_id = omnivec.Embedder(DEFAULT_TEXT_MODEL, cache_folder=str(tmp_path), device="cpu")
    by_path = omnivec.Embedder(minilm_dir, device="cpu")
    np.testing.assert_allclose(by_id.encode(["a fox"]), by_path.encode(["a fox"]), atol=0)


def test_load_options_backend_is_checked():
    assert LoadOptions().backend == "torch"
    assert LoadOptions(backend="onnx").backend == "onnx"  # accepted since the ONNX backend exists
    with pytest.raises(ConfigError, match=r"backend 'tensorrt' .*\['torch', 'onnx', 'openvino', 'onnx-int8', 'openvino-int8', 'auto'\]"):
        LoadOptions(backend="tensorrt")  # type: ignore[arg-type]  (the check under test: a value outside the Literal)


@pytest.mark.parametrize(("settings", "named"), [
    ({"max_seq_length": 0}, "max_seq_length"),
    ({"max_seq_length": True}, "max_seq_length"),
    ({"model_kwargs": ["dtype"]}, "model_kwargs"),
    ({"hub": {"revision": "main"}}, "hub"),
])
def test_load_options_name_the_bad_setting(settings, named):
    with pytest.raises(ConfigError, match=named):
        LoadOptions(**settings)


def test_load_options_are_frozen_copies():
    kwargs = {"attn_implementation": "eager"}
    options = LoadOptions(model_kwargs=kwargs, trust_remote_code=True)
    kwargs["attn_implementation"] = "sdpa"
    assert options.model_kwargs["attn_implementation"] == "eager"
    with pytest.raises(TypeError):
        options.model_kwargs["x"] = 1  # type: ignore[index]  (read-only view: the error is what is tested)
    with pytest.raises(AttributeError):
        options.backend = "torch"  # type: ignore[misc]  (frozen dataclass: the error is what is tested)
    assert options.from_pretrained_kwargs("model_kwargs") == {"trust_remote_code": True, "attn_implementation": "eager"}
    assert LoadOptions().from_pretrained_kwargs("config_kwargs") == {}
