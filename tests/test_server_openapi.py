"""Schemathesis against the server's own OpenAPI spec, in-process (ASGI): no generated request, valid or not, with
or without the API key, gets a 5xx, and responses match the schemas the spec documents for their status.

Every operation in the spec is run: its examples, schemathesis' coverage cases (boundary values, wrong types, missing
fields, unexpected methods) and hypothesis fuzzing, positive and negative, with a fixed seed. The spec is the app's
``/openapi.json`` with its free-form names narrowed to the ones this server has (model names, KB file keys, thumbnail
names) and valid inputs and media added as examples, so that generated requests reach the models, the file routes and
the media decoders instead of stopping at a 404 or a 400.
"""

from __future__ import annotations

import base64
import copy
import io
import re
import wave

import numpy as np
import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

import omnivec
from omnivec.kb.config import load_config
from omnivec.kb.search import Searcher
from omnivec.serve.app import create_app
from tests.fixtures.images import png_data_uri

# Hundreds of generated requests, many running a model on CPU (~35 s): the slow lane, which CI runs.
pytestmark = pytest.mark.slow

KEY = "fuzz-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
EMBEDDERS, RERANKERS, SPARSE = ["minilm", "clip"], ["rerank"], ["splade"]
MODEL_PATHS = ["/v1/embeddings", "/v1/rerank", "/v1/search"]  # these run a model on CPU: fewer examples
TEI_PATHS = ["/embed", "/embed_sparse", "/v1/embed_sparse", "/rerank", "/tokenize"]  # the same models and checks as the /v1 routes: fewer still

CONFIG = {
    "seed": 20240601,
    "generation": {"deterministic": True, "database": "none", "max-examples": 100},
    "phases": {"stateful": {"enabled": False}},
    "operations": [{"include-path": MODEL_PATHS, "generation": {"max-examples": 60}},
                   {"include-path": TEI_PATHS, "generation": {"max-examples": 10}}],
}


@pytest.fixture(scope="module")
def app(sample_kb, tmp_path_factory, minilm_dir, clip_dir, bert_dir, splade_st_dir):
    """One app for every case (schemathesis starts and ends its lifespan per test; the app starts again)."""
    _, kb, config = sample_kb
    reranker = tmp_path_factory.mktemp("openapi-reranker")
    omnivec.CrossEncoder(bert_dir, num_labels=1, device="cpu").save(str(reranker))
    searcher = Searcher(kb, load_config(kb, config), reranker=str(reranker), device="cpu")
    embedders = dict(zip(EMBEDDERS, [omnivec.Embedder(minilm_dir, device="cpu"),
                                     omnivec.Embedder(clip_dir, device="cpu")], strict=True))
    embedders[SPARSE[0]] = omnivec.SparseEncoder(splade_st_dir, device="cpu")
    rerankers = {RERANKERS[0]: omnivec.CrossEncoder(str(reranker), device="cpu")}
    yield create_app(embedders, rerankers, api_key=KEY, kb=searcher, max_body_bytes=1024 * 1024)
    searcher.close()


@pytest.fixture
def api_schema(app):
    client = TestClient(app)
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert spec["paths"]["/v1/embeddings"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in spec["paths"]["/health"]["get"]
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
    embedding = schemas["EmbeddingRequest"]["properties"]
    embedding["model"]["enum"] = EMBEDDERS + SPARSE
    for option in embedding["dimensions"]["anyOf"]:
        option.update({"maximum": 16} if option.get("type") == "integer" else {})  # the tiny CLIP's size
    png = _png_uri()
    text, image = {"type": "text", "text": "a photo of a cat"}, {"type": "image_url", "image_url": {"url": png}}
    embedding["input"]["examples"] = [["A man is eating food.", "The weather is lovely today."], [text, image,
                                                                                                 [text, image]]]
    schemas["RerankRequest"]["properties"]["model"]["enum"] = RERANKERS
    for name, models in (("TeiEmbedRequest", EMBEDDERS), ("TeiEmbedSparseRequest", SPARSE), ("TeiRerankRequest", RERANKERS),
                         ("InfinityRerankRequest", RERANKERS), ("TeiTokenizeRequest", EMBEDDERS + SPARSE + RERANKERS)):
        schemas[name]["properties"]["model"]["enum"] = models
    schemas["ImageURL"]["properties"]["url"]["examples"] = [png]
    schemas["InputAudio"]["properties"]["data"]["examples"] = [_wav_base64()]
    search = spec["paths"]["/v1/search"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    search = schemas[search["$ref"].rsplit("/", 1)[-1]] if "$ref" in search else search
    search["properties"]["query"]["examples"] = ["How much did revenue grow?"]
    search["properties"]["image"]["examples"] = [png]
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

    return png_data_uri(Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)))


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
    # Every status a route answers is documented, with its body's schema (OpenAI's error shape for the errors).
    case.call_and_validate(headers=AUTH, checks=[status_code_conformance, response_schema_conformance])
