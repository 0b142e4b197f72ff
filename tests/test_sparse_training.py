"""Training a SparseEncoder: SparseInformationRetrievalEvaluator's keys and values equal sentence-transformers';
SparseEncoderTrainer trains a tiny SPLADE to the weights sentence-transformers' SparseEncoderTrainer reaches with the
same data and settings, the loss falls, and the regularizer warm-up follows sentence-transformers' schedule."""

from __future__ import annotations

import importlib

import pytest
import torch
import transformers

import omnivec
from omnivec.errors import ConfigError
from omnivec.train import sparse_losses as losses
from omnivec.train.evaluation import SparseInformationRetrievalEvaluator
from omnivec.train.sparse_trainer import SparseEncoderTrainer
from omnivec.training_args import SparseEncoderTrainingArguments
from tests.fixtures.sparse_training import NEGATIVES, POSITIVES, QUERIES, prepared_columns

ATOL = 1e-5


CORPUS = {f"d{i}": text for i, text in enumerate(POSITIVES + ["dogs bark loudly", "the stock market fell", "a red apple"])}
RELEVANT = {f"q{i}": {f"d{i}"} | ({"d7"} if i == 1 else set()) for i in range(len(QUERIES))}


@pytest.mark.parametrize("settings", [{}, {"max_active_dims": 5, "corpus_chunk_size": 4}])
def test_evaluator_equals_sentence_transformers(pair, settings):
    from sentence_transformers.sparse_encoder.evaluation import SparseInformationRetrievalEvaluator as Oracle

    ours, theirs = pair
    queries = {f"q{i}": q for i, q in enumerate(QUERIES)}
    got = SparseInformationRetrievalEvaluator(queries, CORPUS, RELEVANT, name="dev", **settings)(ours)
    expected = Oracle(queries, CORPUS, RELEVANT, name="dev", write_csv=False, **settings)(theirs)
    assert got.keys() == expected.keys()
    assert {"dev_dot_ndcg@10", "dev_query_active_dims", "dev_corpus_active_dims", "dev_avg_flops"} <= got.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=ATOL, rel=0), key
    if settings:
        assert got["dev_query_active_dims"] == got["dev_corpus_active_dims"] == 5.0


# -- training ---------------------------------------------------------------------------------------------------------
def _args(tmp_path, cls=SparseEncoderTrainingArguments, **kwargs):
    defaults = dict(output_dir=str(tmp_path / "run"), report_to="none", save_strategy="no", disable_tqdm=True,
                    per_device_train_batch_size=6, seed=0, learning_rate=2e-3, num_train_epochs=6, logging_steps=1)
    return cls(**{**defaults, **kwargs})


class _Recorder(transformers.TrainerCallback):
    """What the printer and loggers receive at each log (after the warm-up callback has added its weights)."""

    def __init__(self) -> None:
        self.logs: list[dict] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs or {}))


def _batch_loss(model, weights) -> float:
    loss = losses.SpladeLoss(model, losses.SparseMultipleNegativesRankingLoss(model), **weights)
    model.eval()
    with torch.no_grad():
        parts = loss(model, prepared_columns(model, [QUERIES, POSITIVES, NEGATIVES], True), None)
    return float(sum(v.item() for v in parts.values()))


WEIGHTS = dict(document_regularizer_weight=3e-3, query_regularizer_weight=5e-3)


def test_splade_trains_the_loss_falls_the_weights_warm_up_and_the_evaluator_runs(tmp_path, splade_dir, st):
    """Six steps of one full batch: the loss falls, the regularizer weights follow the warm-up (int(6 / 3) = 2
    steps, quadratic: 0, (1/2)^2 of the weight, then the weight), the evaluator's metrics join evaluation, and
    the saved model loads in sentence-transformers with the same vectors."""
    ours = omnivec.SparseEncoder(splade_dir, device="cpu")
    start = _batch_loss(ours, WEIGHTS)
    queries = {f"q{i}": q for i, q in enumerate(QUERIES)}
    evaluator = SparseInformationRetrievalEvaluator(queries, CORPUS, RELEVANT, name="dev")
    recorder = _Recorder()
    rows = [{"query": q, "positive": p, "negative": n} for q, p, n in zip(QUERIES, POSITIVES, NEGATIVES, strict=True)]
    loss = losses.SpladeLoss(ours, losses.SparseMultipleNegativesRankingLoss(ours), **WEIGHTS)
    trainer = SparseEncoderTrainer(ours, _args(tmp_path, eval_strategy="steps", eval_steps=3), train_dataset=rows,
                                   eval_dataset=rows, loss=loss, evaluator=evaluator, callbacks=[recorder])
    trainer.train()
    assert _batch_loss(ours, WEIGHTS) < 0.7 * start
    trained = [entry for entry in recorder.logs if "loss" in entry]
    assert [entry["document_regularizer_weight"] for entry in trained] == pytest.approx([0, 3e-3 / 4] + [3e-3] * 4)
    assert [entry["query_regularizer_weight"] for entry in trained] == pytest.approx([0, 5e-3 / 4] + [5e-3] * 4)
    assert trained[0]["document_regularizer_loss"] == 0 < trained[-1]["document_regularizer_loss"]
    assert trained[-1]["loss"] == pytest.approx(trained[-1]["base_loss"] + trained[-1]["document_regularizer_loss"]
                                                + trained[-1]["query_regularizer_loss"], abs=2e-4)
    evaluated = [entry for entry in trainer.state.log_history if "eval_dev_dot_ndcg@10" in entry]
    assert {entry["step"] for entry in evaluated} == {3, 6} and "eval_dev_corpus_active_dims" in evaluated[-1]
    # the evaluation loss is logged with its parts
    evaluation = [entry for entry in trainer.state.log_history if "eval_loss" in entry]
    assert len(evaluation) == 2 and evaluation[-1]["eval_loss"] == pytest.approx(
        evaluation[-1]["eval_base_loss"] + evaluation[-1]["eval_document_regularizer_loss"]
        + evaluation[-1]["eval_query_regularizer_loss"], abs=2e-4)
    trainer.save_model(str(tmp_path / "saved"))
    assert "SpladeLoss" in (tmp_path / "saved" / "README.md").read_text()
    texts = ["a fox runs", "capital of france"]
    torch.testing.assert_close(st.SparseEncoder(str(tmp_path / "saved"), device="cpu").encode(
        texts, convert_to_sparse_tensor=False), ours.eval().encode(texts, convert_to_sparse_tensor=False),
        atol=1e-5, rtol=0)


def test_default_loss_is_sentence_transformers_default(tmp_path, pair):
    rows = [{"query": q, "answer": p} for q, p in zip(QUERIES, POSITIVES, strict=True)]
    trainer = SparseEncoderTrainer(pair[0], _args(tmp_path), train_dataset=rows)
    assert isinstance(trainer.loss, losses.SpladeLoss)
    assert isinstance(trainer.loss.loss, losses.SparseMultipleNegativesRankingLoss)
    assert trainer.loss.config() == {"loss": "SparseMultipleNegativesRankingLoss", "scale": 1.0, "similarity": "dot",
                                     "directions": ["query_to_doc"], "partition_mode": "joint",
                                     "document_regularizer_weight": 3e-5, "query_regularizer_weight": 5e-5}


@pytest.mark.slow  # two trainings, one of them sentence-transformers' (~15 s)
def test_trainer_reaches_sentence_transformers_weights(tmp_path, splade_dir, st):
    """Six steps of one full batch (the order of rows inside it cannot matter) on both trainers, the same default
    warm-up: the same model afterwards. omnivec's side runs CachedSpladeLoss (mini-batches of 4), so this also
    shows GradCache through the trainer's backward gives SpladeLoss's training. Plain SGD: Adam turns rounding-level
    gradient differences (another summation order, another CPU's kernels) into whole steps wherever a weight's gradient
    is near zero, which made this comparison fail about one run in six (up to 8e-4); with SGD they stay ~1e-6."""
    from datasets import Dataset
    from sentence_transformers.sparse_encoder import SparseEncoderTrainer as OracleTrainer
    from sentence_transformers.sparse_encoder import SparseEncoderTrainingArguments as OracleArguments
    from sentence_transformers.sparse_encoder import losses as st_losses

    data = Dataset.from_dict({"query": QUERIES, "positive": POSITIVES, "negative": NEGATIVES})
    sgd = dict(optim="sgd", learning_rate=0.05)
    ours = omnivec.SparseEncoder(splade_dir, device="cpu")
    SparseEncoderTrainer(ours, _args(tmp_path, **sgd), train_dataset=data, loss=losses.CachedSpladeLoss(
        ours, losses.SparseMultipleNegativesRankingLoss(ours), **WEIGHTS, mini_batch_size=4)).train()
    theirs = st.SparseEncoder(splade_dir, device="cpu")
    OracleTrainer(theirs, _args(tmp_path, OracleArguments, **sgd), train_dataset=data, loss=st_losses.SpladeLoss(
        theirs, st_losses.SparseMultipleNegativesRankingLoss(theirs), **WEIGHTS)).train()
    ours.eval(), theirs.eval()
    texts = QUERIES + POSITIVES
    trained = ours.encode(texts, convert_to_sparse_tensor=False)
    torch.testing.assert_close(trained, theirs.encode(texts, convert_to_sparse_tensor=False), atol=1e-5, rtol=1e-4)
    untrained = omnivec.SparseEncoder(splade_dir, device="cpu").encode(texts, convert_to_sparse_tensor=False)
    assert (trained - untrained).abs().max() > 0.1


def test_drop_in_names(st):
    for path, names in {
        "sparse_encoder.losses": ["SpladeLoss", "CachedSpladeLoss", "FlopsLoss", "SparseMultipleNegativesRankingLoss",
                                  "SparseMarginMSELoss", "SparseCoSENTLoss", "SparseAnglELoss",
                                  "SparseCosineSimilarityLoss", "SparseTripletLoss", "SparseMSELoss",
                                  "SparseDistillKLDivLoss", "CSRLoss", "CSRReconstructionLoss"],
        "sparse_encoder.evaluation": ["SparseInformationRetrievalEvaluator"],
        "sparse_encoder.callbacks": ["SpladeRegularizerWeightSchedulerCallback", "SchedulerType"],
        "sparse_encoder": ["SparseEncoderTrainer", "SparseEncoderTrainingArguments"],
        "": ["SparseEncoderTrainer", "SparseEncoderTrainingArguments"],
    }.items():
        theirs = importlib.import_module(f"sentence_transformers.{path}".rstrip("."))
        ours = importlib.import_module(f"omnivec.{path}".rstrip("."))
        for name in names:
            assert hasattr(theirs, name), f"sentence_transformers.{path}.{name}"
            assert getattr(ours, name) is not None, f"omnivec.{path}.{name}"
    assert omnivec.SparseEncoderTrainer is SparseEncoderTrainer
    assert importlib.import_module("omnivec.sparse_encoder.losses").SpladeLoss is losses.SpladeLoss


@pytest.mark.slow  # two trainings, one of them sentence-transformers' (~15 s)
def test_inference_free_splade_trains_like_sentence_transformers(tmp_path, inference_free_st_dir, st):
    """router_mapping sends the query column through the static side and the documents through SPLADE; the frozen
    static weights stay as they were, the SPLADE side ends where sentence-transformers' trainer ends."""
    from datasets import Dataset
    from sentence_transformers.sparse_encoder import SparseEncoderTrainer as OracleTrainer
    from sentence_transformers.sparse_encoder import SparseEncoderTrainingArguments as OracleArguments
    from sentence_transformers.sparse_encoder import losses as st_losses

    data = Dataset.from_dict({"query": QUERIES, "positive": POSITIVES, "negative": NEGATIVES})
    routes = dict(router_mapping={"query": "query", "positive": "document", "negative": "document"})
    ours = omnivec.SparseEncoder(inference_free_st_dir, device="cpu")
    before = ours.encode_query(QUERIES, convert_to_sparse_tensor=False)
    documents_before = ours.encode_document(POSITIVES, convert_to_sparse_tensor=False)
    SparseEncoderTrainer(ours, _args(tmp_path, **routes), train_dataset=data, loss=losses.SpladeLoss(
        ours, losses.SparseMultipleNegativesRankingLoss(ours), document_regularizer_weight=3e-3)).train()
    theirs = st.SparseEncoder(inference_free_st_dir, device="cpu")
    OracleTrainer(theirs, _args(tmp_path, OracleArguments, **routes), train_dataset=data, loss=st_losses.SpladeLoss(
        theirs, st_losses.SparseMultipleNegativesRankingLoss(theirs), document_regularizer_weight=3e-3)).train()
    ours.eval(), theirs.eval()
    torch.testing.assert_close(ours.encode_query(QUERIES, convert_to_sparse_tensor=False), before, atol=0, rtol=0)
    documents = ours.encode_document(POSITIVES, convert_to_sparse_tensor=False)
    torch.testing.assert_close(documents, theirs.encode_document(POSITIVES, convert_to_sparse_tensor=False),
                               atol=1e-5, rtol=1e-4)
    assert (documents - documents_before).abs().max() > 0.1


def test_a_sparse_loss_alone_is_refused_with_the_spladeloss_to_write(pair, tmp_path):
    ours = pair[0]
    rows = [{"query": q, "positive": p} for q, p in zip(QUERIES, POSITIVES, strict=True)]
    with pytest.raises(TypeError, match=r"loss: SparseMultipleNegativesRankingLoss trains inside SpladeLoss .*"
                                        r"loss=SpladeLoss\(model, loss=SparseMultipleNegativesRankingLoss\(model\)"):
        SparseEncoderTrainer(ours, _args(tmp_path), train_dataset=rows,
                             loss=losses.SparseMultipleNegativesRankingLoss(ours))
    with pytest.raises(ConfigError, match="FlopsLoss is a regularizer"):
        losses.FlopsLoss(ours)(ours, [], None)
    with pytest.raises(ConfigError, match="SpladeLoss needs document_regularizer_weight"):
        losses.SpladeLoss(ours, losses.SparseMultipleNegativesRankingLoss(ours))
