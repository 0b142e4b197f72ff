"""Schemathesis against the server's own OpenAPI spec, in-process: no generated request, valid or not, with or
without the API key, gets a 5xx, and responses match the schemas the spec documents for them.

The spec is the app's ``/openapi.json`` with its free-form names narrowed to the ones this server has (model names,
KB file keys, thumbnail names) and a valid image and audio clip added as examples, so that generated requests reach
the models, the file routes and the media decoders instead of stopping at a 404 or a 400.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import re
import wave

import numpy as np
import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

import omnivec
from omnivec.cli import main
from omnivec.kb.config import load_config
from omnivec.kb.ingest.sample import sample_folder
from omnivec.kb.search import Searcher
from omnivec.serve.app import create_app

KEY = "fuzz-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
EMBEDDERS, RERANKERS = ["minilm", "clip"], ["rerank"]
MODEL_PATHS = ["/v1/embeddings", "/v1/rerank", "/v1/search"]  # these run a model on CPU: fewer examples

CONFIG = {
    "seed": 20240601,
    "generation": {"deterministic": True, "database": "none", "max-examples": 50},
    "phases": {"stateful": {"enabled": False}},
    "operations": [{"include-path": MODEL_PATHS, "generation": {"max-examples": 30}}],
}


@pytest.fixture(scope="module")
def served(tmp_path_factory, minilm_dir, clip_dir, bert_dir):
    """The models and a small KB searcher, loaded once."""
    root = tmp_path_factory.mktemp("openapi")
    reranker = root / "reranker"
    omnivec.CrossEncoder(bert_dir, num_labels=1, device="cpu").save(str(reranker))
    docs, kb, config = root / "docs", root / "kb", root / "kb.toml"
    sample_folder(docs)
    config.write_text(f'[spaces]\ntext = "{minilm_dir}"\nimage = "{clip_dir}"\n', encoding="utf-8")
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(["index", str(docs), "--kb", str(kb), "--config", str(config)]) == 0
    searcher = Searcher(kb, load_config(kb, config), reranker=str(reranker), device="cpu")
    embedders = dict(zip(EMBEDDERS, [omnivec.Embedder(minilm_dir, device="cpu"),
                                     omnivec.Embedder(clip_dir, device="cpu")]))
    yield embedders, {RERANKERS[0]: omnivec.CrossEncoder(str(reranker), device="cpu")}, searcher
    searcher.close()


@pytest.fixture
def app(served):
    """A fresh app per test: schemathesis ends the app's lifespan (and so its batchers) when a test ends."""
    embedders, rerankers, searcher = served
    return create_app(embedders, rerankers, api_key=KEY, kb=searcher, max_body_bytes=1024 * 1024)


@pytest.fixture
def api_schema(app):
    client = TestClient(app)
    spec = client.get("/openapi.json").json()
    found = client.post("/v1/search", json={"query": "report photo", "k": 50, "rerank": False}, headers=AUTH)
    assert found.status_code == 200, found.text
    links = set(re.findall(r"/v1/kb/(files|thumbs|pages)/([^/?#\"]+)", found.text))
    known = {route: sorted(name for kind, name in links if kind == route) for route in ("files", "thumbs", "pages")}
    assert all(known.values()), found.text  # the sample KB has files, thumbnails and a PDF
    schema = schemathesis.openapi.from_dict(_narrowed(spec, known), config=schemathesis.Config.from_dict(CONFIG))
    schema.app, schema.location = app, "/openapi.json"  # what from_asgi sets: requests go to the app in-process
    return schema


def _narrowed(spec: dict, known: dict[str, list[str]]) -> dict:
    """``spec`` with the names this server has as enums, and valid queries and media as examples. Negative cases
    still send other values; positive ones reach the models and the files instead of a 404."""
    spec = copy.deepcopy(spec)
    schemas = spec["components"]["schemas"]
    schemas["EmbeddingRequest"]["properties"]["model"]["enum"] = EMBEDDERS
    schemas["RerankRequest"]["properties"]["model"]["enum"] = RERANKERS
    schemas["ImageURL"]["properties"]["url"]["examples"] = [_png_uri()]
    schemas["InputAudio"]["properties"]["data"]["examples"] = [_wav_base64()]
    search = spec["paths"]["/v1/search"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    search = schemas[search["$ref"].rsplit("/", 1)[-1]] if "$ref" in search else search
    search["properties"]["query"]["examples"] = ["How much did revenue grow?"]
    search["properties"]["image"]["examples"] = [_png_uri()]
    for path, item in spec["paths"].items():
        route = path.split("/")[3] if path.startswith("/v1/kb/") else None
        for parameter in (p for operation in item.values() for p in operation.get("parameters", [])):
            if parameter["in"] == "path" and parameter["name"] in ("key", "name") and route in known:
                parameter["schema"]["enum"] = [*known[route], "0123456789abcdef"]  # and a well-formed unknown one
            elif parameter["in"] == "path" and parameter["name"] == "page":
                parameter["schema"]["examples"] = [1]
    return spec


def _png_uri() -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _wav_base64() -> str:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((np.sin(np.arange(1600) / 5) * 8000).astype("<i2").tobytes())
    return base64.b64encode(buffer.getvalue()).decode()


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def _node_id(request):
    """schemathesis 4.32's lazy schema renames the test node through ``_nodeid``, which pytest 9.2 dropped."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@schema.parametrize()
def test_no_request_gets_a_server_error(case):
    case.call_and_validate(checks=[not_a_server_error])  # no key: refused before any model runs
    case.call_and_validate(headers=AUTH, checks=[not_a_server_error])


@schema.parametrize()
def test_responses_match_the_spec(case):
    case.call_and_validate(headers=AUTH, checks=[response_schema_conformance])
