"""A model named by both ``omnivec serve --model`` (or ``--reranker``) and the KB's config is loaded once: the
``/v1/embeddings`` route and the KB search use one instance, and their calls (the batcher's thread, the search
thread) take turns on it."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

import omnivec
from omnivec.models.embedder import Embedder
from omnivec.serve.app import create_app
from omnivec.serve.command import load_models


@pytest.fixture(scope="module")
def loaded(sample_kb, minilm_dir, clip_dir, bert_dir, tmp_path_factory):
    """``load_models`` for --model minilm, again (the same folder), clip (spelled with a trailing slash) and
    --reranker rr, over the sample KB with a config naming the same minilm, clip and reranker; and the sources of
    every Embedder constructed meanwhile."""
    _, kb, _ = sample_kb
    folder = tmp_path_factory.mktemp("shared")
    reranker = folder / "reranker"
    omnivec.CrossEncoder(bert_dir, num_labels=1, device="cpu").save(str(reranker))
    config = folder / "kb.toml"
    config.write_text(f'reranker = "{reranker}"\n[spaces]\ntext = "{minilm_dir}"\nimage = "{clip_dir}"\n',
                      encoding="utf-8")
    constructed: list[str] = []
    original = Embedder.__init__

    def counting(self, model_name_or_path=None, *args, **kwargs):
        constructed.append(str(model_name_or_path))
        original(self, model_name_or_path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Embedder, "__init__", counting)
        embedders, rerankers, searcher = load_models(
            [f"minilm={minilm_dir}", f"again={minilm_dir}", f"clip={clip_dir}/"], [f"rr={reranker}"], str(kb),
            str(config))
    yield embedders, rerankers, searcher, constructed
    searcher.close()


def test_a_model_named_by_the_server_and_the_kb_is_loaded_once(loaded):
    embedders, rerankers, searcher, constructed = loaded
    assert len(constructed) == 2, constructed  # minilm and clip, once each
    spaces = {space.name: space.model for space in searcher.spaces}
    assert embedders["minilm"] is embedders["again"] is spaces["text"]
    assert embedders["clip"] is spaces["image"]
    assert rerankers["rr"] is searcher.reranker
    app = create_app(embedders, rerankers, kb=searcher)
    assert app.state.omnivec.embedders["minilm"] is spaces["text"]  # what /v1/embeddings encodes with


class Watched:
    """A model that counts calls made while another call is still inside it (each call lingers a little)."""

    def __init__(self, model) -> None:
        self.model, self.inside, self.overlaps, self._count = model, 0, 0, threading.Lock()

    def encode(self, *args, **kwargs):
        with self._count:
            self.inside += 1
            self.overlaps += self.inside > 1
        try:
            time.sleep(0.02)
            return self.model.encode(*args, **kwargs)
        finally:
            with self._count:
                self.inside -= 1

    def __getattr__(self, name):
        return getattr(self.model, name)


def test_embeddings_and_searches_on_a_shared_model_take_turns(loaded, sample_kb):
    """The batchers' threads ("minilm" and "again" are one model) and the search thread call the same model (and its
    tokenizer, which is not safe to share across threads): one call at a time, and every reply is still right."""
    from omnivec.kb.config import load_config
    from omnivec.kb.search import Searcher
    from omnivec.kb.spaces import Space

    embedders, _, _, _ = loaded
    _, kb, config = sample_kb
    model = Watched(embedders["minilm"])
    searcher = Searcher(kb, load_config(kb, config), spaces=[Space("text", "minilm", model)])
    texts = [f"question number {i} about the revenue of the company" for i in range(4)]
    expected = embedders["minilm"].encode(texts, normalize_embeddings=True)
    ranked = [r.id for r in searcher.search("How much did revenue grow?", k=3)]
    failures: list[str] = []
    app = create_app({"minilm": model, "again": model}, {}, kb=searcher, max_wait_ms=1)
    with TestClient(app) as client:

        def embed(name: str) -> None:
            for _ in range(5):
                reply = client.post("/v1/embeddings", json={"model": name, "input": texts})
                if reply.status_code != 200:
                    failures.append(reply.text)
                    continue
                got = np.array([d["embedding"] for d in reply.json()["data"]])
                if not np.allclose(got, expected, atol=1e-5):
                    failures.append(f"{name}: vectors differ")

        def search() -> None:
            for _ in range(5):
                reply = client.post("/v1/search", json={"query": "How much did revenue grow?", "k": 3})
                if reply.status_code != 200 or [r["id"] for r in reply.json()["data"]] != ranked:
                    failures.append(reply.text[:300])

        threads = [threading.Thread(target=target, args=args)
                   for target, args in ((embed, ("minilm",)), (embed, ("again",)), (search, ()), (search, ()))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    searcher.close()
    assert not failures, failures[:3]
    assert model.overlaps == 0
