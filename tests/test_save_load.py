"""Folders move both ways between omnivec and sentence-transformers; Hub ids load from the cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import omnivec
from omnivec.errors import ModelNotFoundError
from tests.fixtures.checkpoints import TEXTS

ATOL = 1e-5


def test_omnivec_save_then_sentence_transformers_load(qwen3_st_dir, st, tmp_path):
    ours = omnivec.Embedder(qwen3_st_dir, device="cpu", truncate_dim=16, similarity_fn_name="dot")
    ours.save(tmp_path / "saved")
    peer = st.SentenceTransformer(str(tmp_path / "saved"), device="cpu")
    assert peer.prompts == ours.prompts
    assert peer.similarity_fn_name == "dot" and peer.truncate_dim == 16
    np.testing.assert_allclose(ours.encode_query(TEXTS), peer.encode_query(TEXTS), atol=ATOL)
    np.testing.assert_allclose(ours.encode(TEXTS), peer.encode(TEXTS), atol=ATOL)
    modules = json.loads((tmp_path / "saved" / "modules.json").read_text())
    assert [m["type"] for m in modules] == [
        "sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
        "sentence_transformers.models.Normalize",
    ]


def test_sentence_transformers_save_then_omnivec_load(bert_dir, st, tmp_path):
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling, Transformer

    torch.manual_seed(3)
    modules = [Transformer(bert_dir, max_seq_length=20), Pooling(32, "cls"),
               Dense(32, 8, activation_function=torch.nn.GELU()), Normalize()]
    peer = st.SentenceTransformer(modules=modules, device="cpu", prompts={"query": "q: "}, default_prompt_name="query",
                                  similarity_fn_name="euclidean")
    peer.save(str(tmp_path))
    ours = omnivec.Embedder(str(tmp_path), device="cpu")
    assert ours.max_seq_length == 20 and ours.default_prompt_name == "query"
    assert ours.similarity_fn_name == "euclidean"
    assert isinstance(ours[2].activation_function, torch.nn.GELU)
    np.testing.assert_allclose(ours.encode(TEXTS), peer.encode(TEXTS), atol=ATOL)


def test_round_trip_through_both_libraries_keeps_numbers(minilm_dir, st, tmp_path):
    reference = omnivec.Embedder(minilm_dir, device="cpu").encode(TEXTS)
    omnivec.Embedder(minilm_dir, device="cpu").save(tmp_path / "a")
    st.SentenceTransformer(str(tmp_path / "a"), device="cpu").save(str(tmp_path / "b"))
    again = omnivec.Embedder(tmp_path / "b", device="cpu")
    np.testing.assert_allclose(again.encode(TEXTS), reference, atol=ATOL)
    assert again.max_seq_length == 256


def test_plain_hugging_face_checkpoint_gets_default_pooling(bert_dir, qwen3_dir):
    assert omnivec.Embedder(bert_dir, device="cpu")[1].modes == ("mean",)
    assert omnivec.Embedder(qwen3_dir, device="cpu")[1].modes == ("lasttoken",)


def test_legacy_pooling_keys_and_old_config_names(bert_dir, st, tmp_path):
    folder = tmp_path / "legacy"
    shutil.copytree(bert_dir, folder)
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 16, "do_lower_case": False}))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 32, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
    }))
    ours = omnivec.Embedder(folder, device="cpu")
    assert ours[1].modes == ("cls", "mean") and ours.max_seq_length == 16
    peer = st.SentenceTransformer(str(folder), device="cpu")
    np.testing.assert_allclose(ours.encode(TEXTS), peer.encode(TEXTS), atol=ATOL)


def test_do_lower_case(bert_dir, st, tmp_path):
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    # The fixture's tokenizer lowercases already; switch that off so do_lower_case has work to do.
    folder = tmp_path / "cased"
    shutil.copytree(bert_dir, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["do_lower_case"] = False
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    tok = json.loads((folder / "tokenizer.json").read_text())
    tok["normalizer"]["lowercase"] = False
    (folder / "tokenizer.json").write_text(json.dumps(tok))
    cased = omnivec.Embedder(modules=[omnivec.Transformer(folder), omnivec.Pooling(32)], device="cpu")
    assert not np.allclose(cased.encode("HELLO World"), cased.encode("hello world"), atol=1e-3)

    ours = omnivec.Embedder(modules=[omnivec.Transformer(folder, do_lower_case=True), omnivec.Pooling(32)], device="cpu")
    np.testing.assert_allclose(ours.encode("HELLO World"), ours.encode("hello world"), atol=ATOL)
    peer = st.SentenceTransformer(modules=[Transformer(str(folder), do_lower_case=True), Pooling(32)], device="cpu")
    np.testing.assert_allclose(ours.encode(TEXTS), peer.encode(TEXTS), atol=ATOL)
    # omnivec's save keeps do_lower_case in sentence_bert_config.json, so both libraries reload it lowercasing.
    # (sentence-transformers 6 drops the key and relies on tokenizer.json, whose normalizer transformers 5
    # rebuilds from tokenizer_config.json: its own save->load loses the lowercasing.)
    ours.save(tmp_path / "ours")
    reloaded = omnivec.Embedder(tmp_path / "ours", device="cpu")
    np.testing.assert_allclose(reloaded.encode(TEXTS), peer.encode(TEXTS), atol=ATOL)
    from_ours = st.SentenceTransformer(str(tmp_path / "ours"), device="cpu")
    np.testing.assert_allclose(from_ours.encode(TEXTS), peer.encode(TEXTS), atol=ATOL)


def _fake_hub_cache(cache: Path, repo_id: str, source: str, revision: str = "main") -> str:
    """Lay ``source`` out as huggingface_hub's cache does: models--org--name/snapshots/<sha>, refs/<rev>."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(source, repo / "snapshots" / sha)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / revision).write_text(sha)
    return sha


def test_hub_id_loads_from_cache_offline(minilm_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _fake_hub_cache(tmp_path, "sentence-transformers/all-MiniLM-L6-v2", minilm_dir)
    ours = omnivec.Embedder("sentence-transformers/all-MiniLM-L6-v2", cache_folder=str(tmp_path), device="cpu")
    local = omnivec.Embedder(minilm_dir, device="cpu")
    np.testing.assert_allclose(ours.encode(TEXTS), local.encode(TEXTS), atol=0)


def test_hub_revision_and_missing_revision(minilm_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _fake_hub_cache(tmp_path, "org/model", minilm_dir, revision="v1")
    model = omnivec.Embedder("org/model", cache_folder=str(tmp_path), revision="v1", device="cpu")
    assert model.get_sentence_embedding_dimension() == 384
    with pytest.raises(ModelNotFoundError, match="org/model"):
        omnivec.Embedder("org/model", cache_folder=str(tmp_path), revision="v2", device="cpu")


def test_hub_id_not_in_cache_offline_names_model_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as info:
        omnivec.Embedder("someone/not-cached", cache_folder=str(tmp_path), device="cpu")
    message = str(info.value)
    assert "someone/not-cached" in message and str(tmp_path) in message and "offline" in message
