"""Loading as sentence-transformers code writes it: short names read as the class's organization on the Hub and in
the cache, SENTENCE_TRANSFORMERS_HOME and cache_folder, backend="torch", and the kwargs dicts reaching their targets.
Each case is run through sentence-transformers too, on the same fake Hugging Face cache (HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import omnivec
from omnivec.errors import ModelNotFoundError
from omnivec.loading.hub import hub_id_for

TEXTS = ["a fox jumps over the dog", "hello world", ""]
PAIRS = [("what is a fox", "a fox is an animal"), ("hello", "world")]
SHA = "0123456789abcdef0123456789abcdef01234567"


def _cache(cache: Path, repo_id: str, source: str | Path) -> Path:
    """``source`` as the main snapshot of ``repo_id`` in huggingface_hub's cache layout under ``cache``."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(source, repo / "snapshots" / SHA)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(SHA, encoding="utf-8")
    return repo / "snapshots" / SHA


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("SENTENCE_TRANSFORMERS_HOME", raising=False)


def test_short_name_reads_as_sentence_transformers_org_in_cache_folder(bert_dir, tmp_path, st):
    _cache(tmp_path, "sentence-transformers/tiny-bert", bert_dir)
    ours = omnivec.SentenceTransformer("tiny-bert", cache_folder=str(tmp_path), device="cpu")
    theirs = st.SentenceTransformer("tiny-bert", cache_folder=str(tmp_path), device="cpu")
    assert ours.name_or_path == "sentence-transformers/tiny-bert"
    np.testing.assert_allclose(ours.encode(TEXTS), theirs.encode(TEXTS), atol=1e-5)


def test_sentence_transformers_home_is_the_cache(bert_dir, tmp_path, monkeypatch, st):
    _cache(tmp_path, "sentence-transformers/tiny-bert", bert_dir)
    monkeypatch.setenv("SENTENCE_TRANSFORMERS_HOME", str(tmp_path))
    ours = omnivec.SentenceTransformer("tiny-bert", device="cpu")  # no cache_folder: the variable names it
    theirs = st.SentenceTransformer("tiny-bert", device="cpu")
    np.testing.assert_allclose(ours.encode(TEXTS), theirs.encode(TEXTS), atol=1e-5)
    # cache_folder wins over the variable: an empty folder there finds nothing
    with pytest.raises(ModelNotFoundError, match="sentence-transformers/tiny-bert"):
        omnivec.SentenceTransformer("tiny-bert", cache_folder=str(tmp_path / "empty"), device="cpu")


def test_cross_encoder_short_name_reads_as_cross_encoder_org(bert_dir, tmp_path, st):
    saved = tmp_path / "saved"
    st.CrossEncoder(bert_dir, num_labels=1, device="cpu").save(str(saved))
    _cache(tmp_path / "hub", "cross-encoder/tiny-ce", saved)
    ours = omnivec.CrossEncoder("tiny-ce", cache_folder=str(tmp_path / "hub"), device="cpu")
    theirs = st.CrossEncoder("tiny-ce", cache_folder=str(tmp_path / "hub"), device="cpu")
    assert ours.name_or_path == "cross-encoder/tiny-ce"
    np.testing.assert_allclose(ours.predict(PAIRS), theirs.predict(PAIRS), atol=1e-5)
    # an Embedder reads the same short name under its own organization, where nothing is cached
    with pytest.raises(ModelNotFoundError, match="'sentence-transformers/tiny-ce'"):
        omnivec.SentenceTransformer("tiny-ce", cache_folder=str(tmp_path / "hub"), device="cpu")


def test_all_minilm_by_its_short_name_offline(minilm_dir, minilm_st_model, tmp_path):
    """The quick-start line: found in the (empty) cache's place by the packaged copy, same vectors as the oracle."""
    model = omnivec.SentenceTransformer("all-MiniLM-L6-v2", cache_folder=str(tmp_path), device="cpu")
    assert model.name_or_path == "sentence-transformers/all-MiniLM-L6-v2"
    np.testing.assert_allclose(model.encode(TEXTS), minilm_st_model.encode(TEXTS), atol=1e-5)


def test_which_names_get_an_organization(bert_dir, tmp_path, monkeypatch):
    assert hub_id_for("all-MiniLM-L6-v2", "sentence-transformers") == "sentence-transformers/all-MiniLM-L6-v2"
    assert hub_id_for("ms-marco-MiniLM-L6-v2", "cross-encoder") == "cross-encoder/ms-marco-MiniLM-L6-v2"
    assert hub_id_for("BAAI/bge-small-en-v1.5", "sentence-transformers") == "BAAI/bge-small-en-v1.5"
    assert hub_id_for("bert-base-uncased", "sentence-transformers") == "bert-base-uncased"  # transformers' own
    assert hub_id_for("all-MiniLM-L6-v2", None) == "all-MiniLM-L6-v2"
    monkeypatch.chdir(Path(bert_dir).parent)  # an existing folder named without a "/" stays a folder
    assert hub_id_for(Path(bert_dir).name, "sentence-transformers") == Path(bert_dir).name
    model = omnivec.SentenceTransformer(Path(bert_dir).name, device="cpu")
    assert model.name_or_path == Path(bert_dir).name


def test_backend_torch_and_kwargs_reach_their_targets(bert_dir, st):
    kwargs = {"model_kwargs": {"dtype": torch.float16}, "config_kwargs": {"hidden_dropout_prob": 0.37},
              "processor_kwargs": {"model_max_length": 16}}
    ours = omnivec.SentenceTransformer(bert_dir, backend="torch", device="cpu", **kwargs)
    theirs = st.SentenceTransformer(bert_dir, backend="torch", device="cpu", **kwargs)
    assert ours.dtype == theirs.dtype == torch.float16
    assert ours[0].auto_model.config.hidden_dropout_prob == theirs[0].auto_model.config.hidden_dropout_prob == 0.37
    assert ours.tokenizer.model_max_length == theirs.tokenizer.model_max_length == 16
    assert ours.max_seq_length == theirs.max_seq_length == 16
    # omnivec's tokenizer_kwargs is the same dict by another name
    by_tokenizer = omnivec.SentenceTransformer(bert_dir, device="cpu", tokenizer_kwargs={"model_max_length": 16})
    assert by_tokenizer.max_seq_length == 16


def test_cross_encoder_kwargs_reach_their_targets(bert_dir, tmp_path, st):
    st.CrossEncoder(bert_dir, num_labels=1, device="cpu").save(str(tmp_path))  # one head, read by both
    kwargs = {"config_kwargs": {"hidden_dropout_prob": 0.21}, "processor_kwargs": {"model_max_length": 12}}
    ours = omnivec.CrossEncoder(str(tmp_path), backend="torch", device="cpu", **kwargs)
    theirs = st.CrossEncoder(str(tmp_path), backend="torch", device="cpu", **kwargs)
    assert ours.config.hidden_dropout_prob == theirs.config.hidden_dropout_prob == 0.21
    assert ours.tokenizer.model_max_length == theirs.tokenizer.model_max_length == 12
    np.testing.assert_allclose(ours.predict(PAIRS), theirs.predict(PAIRS), atol=1e-5)


def test_short_names_are_fetched_from_the_hub_under_the_organization(bert_dir, tmp_path, monkeypatch, st):
    """Not in the cache: the Hub download asks for the organization's repository (a stand-in for the Hub here)."""
    import huggingface_hub

    asked = []

    def fake_snapshot_download(repo_id, **kwargs):
        asked.append((repo_id, kwargs.get("cache_dir")))
        return bert_dir

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    model = omnivec.SentenceTransformer("tiny-bert", cache_folder=str(tmp_path), device="cpu")
    assert asked[0] == ("sentence-transformers/tiny-bert", str(tmp_path))
    np.testing.assert_allclose(model.encode(TEXTS), st.SentenceTransformer(bert_dir, device="cpu").encode(TEXTS),
                               atol=1e-5)
    omnivec.CrossEncoder("ms-marco-MiniLM-L6-v2", num_labels=1, device="cpu")
    assert asked[-1][0] == "cross-encoder/ms-marco-MiniLM-L6-v2"
