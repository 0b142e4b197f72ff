"""Multi-process encoding and scoring, as sentence-transformers has it (start_multi_process_pool, encode / predict
/ rank with pool= or device=[...], chunk_size, encode_multi_process, stop_multi_process_pool): the same vectors
and scores as one process and as sentence-transformers on the same checkpoint; a worker that raises or dies is an
error in the caller that says what happened, never a hang.

Starting workers costs seconds (spawned processes import torch), so every test that starts one is slow; the
argument checks, which start nothing, run in the fast lane."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

import numpy as np
import pytest
import torch

import omnivec
from omnivec.errors import ConfigError, InputError
from omnivec.runtime.process_pool import PoolWorkerError, WorkerTraceback, run_chunks

ATOL = 1e-5
PROMPTS = {"query": "query: "}
TEXTS = ["a short one", "the cat sat on the mat and looked at the dog", "", "Zürich und München — café",
         "numbers 1 2 3 4 5 6 7 8 9 10 " * 3, "why", "mitosis: cells divide; proteins bind receptors", "x " * 40,
         "hello world", "the last text of the list"]
QUERY = "what is the capital of france"
DOCS = ["Paris is the capital of France.", "Berlin is a city in Germany.", "", "Madrid, Spain", "Rome " * 30]


@pytest.fixture(scope="module")
def embedder(bert_dir):
    return omnivec.Embedder(bert_dir, device="cpu", prompts=PROMPTS)


@pytest.fixture(scope="module")
def peer(bert_dir, st):
    return st.SentenceTransformer(bert_dir, device="cpu", prompts=PROMPTS)


@pytest.fixture(scope="module")
def pool(embedder):
    pool = embedder.start_multi_process_pool(["cpu", "cpu"])
    yield pool
    embedder.stop_multi_process_pool(pool)


def _children() -> set[int]:
    return {process.pid for process in multiprocessing.active_children()}


def _refuse_boom(model, inputs):
    """A chunk function that fails on one input (run in a worker, imported there by name)."""
    if "boom" in inputs:
        raise ValueError("cannot take 'boom'")
    return inputs


def _stall(model, inputs):
    """A chunk that never finishes on its own (run in a worker, imported there by name)."""
    time.sleep(300)


# -- checks that start no process ---------------------------------------------------------------------------
def test_pool_arguments_are_checked_before_any_worker_starts(embedder, peer, bert_dir):
    before = _children()
    for kwargs, named in [({"device": ["cpu"], "chunk_size": 0}, "chunk_size"), ({"device": []}, "device"),
                          ({"device": ["cpu", "nowhere"]}, "device[1]"), ({"pool": {"input": None}}, "pool")]:
        with pytest.raises(InputError, match=named.replace("[", r"\[")):
            embedder.encode(TEXTS, **kwargs)
    with pytest.raises(ValueError):  # sentence-transformers refuses the chunk size too (InputError is a ValueError)
        peer.encode(TEXTS, device=["cpu"], chunk_size=0)
    with pytest.raises(InputError, match="target_devices"):
        embedder.start_multi_process_pool([])
    cross_encoder = omnivec.CrossEncoder(bert_dir, num_labels=1, device="cpu")
    with pytest.raises(InputError, match="start_multi_process_pool"):
        cross_encoder.predict([(QUERY, DOCS[0])], pool={"input": None, "output": None, "processes": []})
    # Nothing to encode: the one-process empty result, and no pool is started for it.
    empty = embedder.encode([], device=["cpu", "cpu"])
    assert empty.shape == embedder.encode([]).shape == (0, 32)
    assert _children() == before


# -- a started pool -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_pool_gives_the_vectors_of_one_process_and_sentence_transformers(embedder, peer, pool):
    assert set(pool) == {"input", "output", "processes"} and len(pool["processes"]) == 2  # sentence-transformers' dict
    for kwargs in [{}, {"prompt_name": "query"}, {"normalize_embeddings": True, "truncate_dim": 16}]:
        single, theirs = embedder.encode(TEXTS, **kwargs), peer.encode(TEXTS, **kwargs)
        for chunk_size in (None, 3):
            pooled = embedder.encode(TEXTS, pool=pool, chunk_size=chunk_size, **kwargs)
            assert isinstance(pooled, np.ndarray) and pooled.shape == single.shape
            np.testing.assert_allclose(pooled, single, atol=ATOL)
            np.testing.assert_allclose(pooled, theirs, atol=ATOL)
    as_tensor = embedder.encode(TEXTS, pool=pool, chunk_size=4, convert_to_tensor=True)
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.shape == (len(TEXTS), 32)
    as_list = embedder.encode(TEXTS, pool=pool, convert_to_numpy=False)
    assert isinstance(as_list, list) and len(as_list) == len(TEXTS) and isinstance(as_list[0], torch.Tensor)
    one = embedder.encode(TEXTS[1], pool=pool)
    assert one.shape == (32,)
    np.testing.assert_allclose(one, peer.encode(TEXTS[1]), atol=ATOL)
    tokens = embedder.encode(TEXTS, pool=pool, chunk_size=3, output_value="token_embeddings")
    expected = peer.encode(TEXTS, output_value="token_embeddings")
    assert [t.shape for t in tokens] == [t.shape for t in expected]
    for ours, theirs in zip(tokens, expected, strict=True):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=ATOL)


@pytest.mark.slow
def test_precision_is_applied_to_the_whole_set_not_per_chunk(embedder, peer, pool):
    """int8 ranges come from every row (as in one process): per-chunk quantization would give other numbers."""
    for precision in ("int8", "ubinary"):
        pooled = embedder.encode(TEXTS, pool=pool, chunk_size=2, precision=precision)
        single = embedder.encode(TEXTS, precision=precision)
        theirs = peer.encode(TEXTS, precision=precision)
        assert pooled.dtype == single.dtype == theirs.dtype and pooled.shape == single.shape == theirs.shape
        # Bucket edges may flip one step on float noise; anything per-chunk would differ in many places.
        assert (pooled == single).mean() > 0.99 and (pooled == theirs).mean() > 0.99
        assert np.abs(pooled.astype(int) - single.astype(int)).max() <= 1


@pytest.mark.slow
def test_encode_multi_process_is_deprecated_as_in_sentence_transformers(embedder, peer, pool):
    with pytest.warns(DeprecationWarning, match="encode_multi_process"):
        pooled = embedder.encode_multi_process(TEXTS, pool, prompt_name="query", chunk_size=4,
                                               normalize_embeddings=True)
    with pytest.warns(DeprecationWarning):  # the oracle warns too (without a pool it encodes in one process)
        theirs = peer.encode_multi_process(TEXTS, None, prompt_name="query", normalize_embeddings=True)
    np.testing.assert_allclose(pooled, theirs, atol=ATOL)


@pytest.mark.slow
def test_an_exception_in_a_worker_is_raised_in_the_caller(embedder, pool):
    # A text the tokenizer refuses: whatever one process raises, the pool raises, with the same message.
    bad = ["fine", "a lone surrogate \ud800 that no tokenizer takes", "also fine"]
    with pytest.raises(Exception) as in_one_process:  # noqa: B017 (the type is whatever one process raises)
        embedder.encode(bad)
    with pytest.raises(type(in_one_process.value)) as in_the_pool:
        embedder.encode(bad, pool=pool, chunk_size=1)
    assert str(in_the_pool.value) == str(in_one_process.value)
    # An exception inside a worker keeps its type and message; its cause says where, with the worker's traceback.
    with pytest.raises(ValueError, match="cannot take 'boom'") as raised:
        run_chunks(pool, _refuse_boom, [["a"], ["boom"], ["c", "d"]], {})
    cause = raised.value.__cause__
    assert isinstance(cause, WorkerTraceback)
    assert "chunk 1, inputs 1 to 1" in str(cause) and "in _refuse_boom" in str(cause)
    # The pool goes on working: the other chunks of that call were collected, none leaks into the next call.
    np.testing.assert_allclose(embedder.encode(TEXTS, pool=pool, chunk_size=1), embedder.encode(TEXTS), atol=ATOL)


@pytest.mark.slow
def test_a_device_list_runs_a_pool_for_the_call(embedder, peer, pool):
    before = _children()
    np.testing.assert_allclose(embedder.encode(TEXTS, device=["cpu", "cpu"]), peer.encode(TEXTS), atol=ATOL)
    assert _children() == before  # the call's pool was stopped


@pytest.mark.slow
def test_cross_encoder_predict_and_rank_with_a_pool(st, bert_dir, tmp_path, embedder, pool):
    theirs = st.CrossEncoder(bert_dir, num_labels=1, device="cpu")
    theirs.save(str(tmp_path))
    ours = omnivec.CrossEncoder(str(tmp_path), device="cpu")
    pairs = [(QUERY, d) for d in DOCS] + [("", "empty query"), ("how do cells divide", TEXTS[6])]
    with pytest.raises(InputError, match="another model"):
        ours.predict(pairs, pool=pool)  # the embedder's pool
    before = _children()
    with ours.start_multi_process_pool(["cpu", "cpu"]) as ce_pool:
        pooled = ours.predict(pairs, pool=ce_pool, chunk_size=2, batch_size=2)
        np.testing.assert_allclose(pooled, ours.predict(pairs), atol=ATOL)
        np.testing.assert_allclose(pooled, theirs.predict(pairs), atol=ATOL)
        raw = ours.predict(pairs, pool=ce_pool, activation_fn=lambda x: x)  # applied in the caller: no pickling
        np.testing.assert_allclose(raw, theirs.predict(pairs, activation_fn=torch.nn.Identity()), atol=ATOL)
        assert ours.predict(pairs[0], pool=ce_pool) == pytest.approx(float(theirs.predict(pairs[0])), abs=ATOL)
        ranked = ours.rank(QUERY, DOCS, pool=ce_pool, chunk_size=2, return_documents=True, top_k=3)
        expected = theirs.rank(QUERY, DOCS, return_documents=True, top_k=3)
        assert [r["corpus_id"] for r in ranked] == [r["corpus_id"] for r in expected]
        for got, want in zip(ranked, expected, strict=True):
            assert got["text"] == want["text"] and got["score"] == pytest.approx(want["score"], abs=ATOL)
        # A worker killed between calls: the next call says which one and how, instead of waiting for it.
        victim = ce_pool["processes"][1]
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(30)
        with pytest.raises(PoolWorkerError, match=r"worker 1 \(pid \d+, cpu\) was killed by SIGKILL"):
            ours.predict(pairs, pool=ce_pool)
    assert _children() == before  # the with block stopped the pool


@pytest.mark.slow
def test_a_worker_that_dies_mid_call_is_an_error_not_a_hang(embedder):
    pool = embedder.start_multi_process_pool(["cpu"])
    try:
        np.testing.assert_allclose(embedder.encode(TEXTS, pool=pool), embedder.encode(TEXTS), atol=ATOL)
        worker = pool["processes"][0]
        killer = threading.Timer(2.0, os.kill, (worker.pid, signal.SIGKILL))
        killer.start()
        started = time.monotonic()
        with pytest.raises(PoolWorkerError, match="worker 0 .* was killed by SIGKILL"):
            run_chunks(pool, _stall, [["stuck"]], {})  # the worker takes the chunk and is killed while on it
        assert time.monotonic() - started < 60
        with pytest.raises(PoolWorkerError, match="start a new one"):  # the pool stays unusable
            embedder.encode(TEXTS, pool=pool)
    finally:
        embedder.stop_multi_process_pool(pool)
    embedder.stop_multi_process_pool(pool)  # a second stop does nothing
    with pytest.raises(InputError, match="was stopped"):
        embedder.encode(TEXTS, pool=pool)


@pytest.mark.slow
def test_a_model_that_cannot_be_pickled_is_refused_at_start(bert_onnx_dir):
    """An ONNX Runtime session does not pickle: the pool refuses the model when it starts, and no worker is left."""
    # The tiny BERT with its ONNX export made once per session (tests/fixtures/backend_exports.py): nothing is
    # written into the folder here.
    model = omnivec.Embedder(str(bert_onnx_dir), device="cpu", backend="onnx")
    assert model[0].backend == "onnx"
    before = _children()
    with pytest.raises(ConfigError, match="cannot be copied into a worker process.*backend='torch'"):
        model.encode(TEXTS, device=["cpu"])
    assert _children() == before
