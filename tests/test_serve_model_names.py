"""The names ``omnivec serve`` serves models under: a Hub id as given (and its last part, as before), a folder's name,
``--model NAME=PATH`` as an alias on top; ``/v1/models`` lists every name; any of them reaches the same model, and
``model`` may be left out where one model of the kind is served."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from omnivec.errors import InputError
from omnivec.serve.app import create_app
from omnivec.serve.command import model_aliases, parse_models
from omnivec.serve.model_names import ServedModel, parse_specs, primary_name


def test_default_names_are_the_hub_id_or_the_folder_name(tmp_path):
    folder = tmp_path / "exports" / "model"
    folder.mkdir(parents=True)
    assert parse_specs(["sentence-transformers/all-MiniLM-L6-v2", f"{folder}/"]) == [
        ServedModel("sentence-transformers/all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2",
                    ("all-MiniLM-L6-v2",)),
        ServedModel("model", f"{folder}/", ()),
    ]
    assert parse_specs([f"mini={folder}"]) == [ServedModel("mini", str(folder), ("model",))]
    assert primary_name("BAAI/bge-small-en-v1.5") == "BAAI/bge-small-en-v1.5" and primary_name(f"x={folder}") == "x"
    assert parse_models(["org/a", f"b={folder}"]) == {"org/a": "org/a", "b": str(folder)}
    # An alias two models could claim, or that is another model's name, is dropped; a name given twice is an error.
    other = tmp_path / "other" / "model"
    other.mkdir(parents=True)
    assert [m.aliases for m in parse_specs([f"a={folder}", f"b={other}"])] == [(), ()]
    # "a" (org/a's last part) is another model's name; "model" both folders' name, an embedder's and a reranker's.
    assert model_aliases([f"a={folder}", "org/a"], [f"r={other}"]) == {}
    with pytest.raises(InputError, match="given twice"):
        parse_specs([str(folder), str(other)])


def test_aliases_of_embedders_and_rerankers_together(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    aliases = model_aliases([f"mini={folder}", "org/embedder"], ["org/reranker"])
    assert aliases == {"model": "mini", "embedder": "org/embedder", "reranker": "org/reranker"}


@pytest.fixture(scope="module")
def client(minilm_embedder, clip_embedder):
    app = create_app({"mini": minilm_embedder, "clip": clip_embedder}, {},
                     aliases={"sentence-transformers/all-MiniLM-L6-v2": "mini", "all-MiniLM-L6-v2": "mini"})
    with TestClient(app) as client:
        yield client


def test_models_lists_names_and_aliases_and_each_reaches_the_model(client, minilm_embedder):
    cards = client.get("/v1/models").json()["data"]
    assert [(c["id"], c["root"]) for c in cards] == [
        ("mini", "mini"), ("sentence-transformers/all-MiniLM-L6-v2", "mini"), ("all-MiniLM-L6-v2", "mini"),
        ("clip", "clip")]
    expected = minilm_embedder.encode(["hello"], normalize_embeddings=True)
    for name in ("mini", "sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"):
        reply = client.post("/v1/embeddings", json={"model": name, "input": ["hello"]})
        assert reply.status_code == 200 and reply.json()["model"] == name, reply.text
        np.testing.assert_allclose([reply.json()["data"][0]["embedding"]], expected, atol=1e-5)
        tei = client.post("/embed", json={"model": name, "inputs": "hello"})
        np.testing.assert_allclose(tei.json(), expected, atol=1e-5)


def test_model_is_required_only_where_several_are_served(client):
    missing = client.post("/v1/embeddings", json={"input": "hello"})
    assert missing.status_code == 422 and "'model' is required" in missing.json()["error"]["message"]
    assert "clip" in missing.json()["error"]["message"]
    unknown = client.post("/v1/embeddings", json={"model": "nope", "input": "hello"})
    assert unknown.status_code == 404 and "all-MiniLM-L6-v2" in unknown.json()["error"]["message"]


def test_an_alias_must_name_a_served_model(minilm_embedder):
    from omnivec.errors import ConfigError

    with pytest.raises(ConfigError, match="alias"):
        create_app({"mini": minilm_embedder}, {}, aliases={"x": "missing"})
    with pytest.raises(ConfigError, match="alias"):
        create_app({"mini": minilm_embedder, "other": minilm_embedder}, {}, aliases={"other": "mini"})
