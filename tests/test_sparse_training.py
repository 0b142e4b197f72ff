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
import transformers

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
def splade_dir(tmp_path_factory, bert_mlm_dir, st) -> str:
    """The tiny SPLADE (BERT masked-LM logits + max pooling) with dropout off, saved by sentence-transformers."""
    mlm = tmp_path_factory.mktemp("mlm") / "model"
    shutil.copytree(bert_mlm_dir, mlm)
    config = json.loads((mlm / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (mlm / "config.json").write_text(json.dumps(config))
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


@pytest.mark.parametrize("case", ["cosent", "angle", "cosine", "triplet", "mse", "distill_kl"])
def test_the_other_sparse_losses_equal_sentence_transformers_on_the_same_vectors(st_splade, case):
    from sentence_transformers.sparse_encoder import losses as st

    scores = torch.tensor([0.9, 0.1, 0.5, 0.7, 0.3, 0.6])
    pairs, triplets = [_vectors(4), _vectors(5)], [_vectors(4), _vectors(5), _vectors(6)]
    mine, oracle, vectors, labels = {
        "cosent": (losses.SparseCoSENTLoss(scale=10.0), st.SparseCoSENTLoss(st_splade, scale=10.0), pairs, scores),
        "angle": (losses.SparseAnglELoss(), st.SparseAnglELoss(st_splade), pairs, scores),
        "cosine": (losses.SparseCosineSimilarityLoss(), st.SparseCosineSimilarityLoss(st_splade), pairs, scores),
        "triplet": (losses.SparseTripletLoss(triplet_margin=1.0), st.SparseTripletLoss(st_splade, triplet_margin=1.0),
                    triplets, None),
        "mse": (losses.SparseMSELoss(), st.SparseMSELoss(st_splade), pairs, _vectors(7)),
        "distill_kl": (losses.SparseDistillKLDivLoss(student_temperature=3.0),
                       st.SparseDistillKLDivLoss(st_splade, student_temperature=3.0), triplets,
                       torch.tensor([[9.0, 2.0], [1.0, 4.0], [3.0, 3.5], [7.0, 0.5], [2.0, 2.0], [5.0, 8.0]])),
    }[case]
    # sentence-transformers' MSELoss takes the teacher vectors once per column
    their_labels = [labels] * len(vectors) if case == "mse" else labels
    expected = oracle.compute_loss_from_embeddings(vectors, their_labels).item()
    assert mine.compute(vectors, labels).item() == pytest.approx(expected, abs=ATOL)
    assert mine.compute_loss_from_embeddings(vectors, labels).item() == pytest.approx(expected, abs=ATOL)


def test_flops_by_hand():
    vectors = torch.tensor([[1.0, 0.0, 2.0], [3.0, 0.0, 0.0]])
    assert losses.FlopsLoss().compute(vectors).item() == pytest.approx(2.0 ** 2 + 0 + 1.0 ** 2)
    # threshold 1: only the row with 2 active dimensions counts, the mean still divides by 2
    assert losses.FlopsLoss(threshold=1).compute(vectors).item() == pytest.approx(0.5 ** 2 + 1.0 ** 2)


# -- on the model: the same checkpoint and batch ------------------------------------------------------------------
def _columns(model, columns, ours: bool):
    return [model.prepare(c) for c in columns] if ours else [model.preprocess(c) for c in columns]


@pytest.mark.parametrize(("base", "setting"), [("mnrl", "both"), ("mnrl", "thresholds"),
                                              ("margin_mse", "documents_only")])
def test_splade_loss_equals_sentence_transformers_on_the_same_checkpoint_and_batch(pair, base, setting):
    from sentence_transformers.sparse_encoder import losses as st

    ours, theirs = pair
    mine_base, their_base, labels = _ranking_losses(ours, theirs)[base]
    settings = dict(SPLADE_SETTINGS[setting])
    columns = [QUERIES, POSITIVES, NEGATIVES]
    if setting == "thresholds":  # the medians of the active-dimension counts: some rows count, some are masked
        with torch.no_grad():
            counts = [sorted((ours.embed(ours.prepare(c)) != 0).sum(dim=1).tolist()) for c in columns]
        settings.update(document_regularizer_threshold=sorted(counts[1] + counts[2])[6],
                        query_regularizer_threshold=counts[0][3])
    mine, oracle = losses.SpladeLoss(ours, mine_base, **settings), st.SpladeLoss(theirs, their_base, **settings)
    assert mine.model is ours and mine.loss.model is ours
    with torch.no_grad():
        got = {k: v.item() for k, v in mine(ours, _columns(ours, columns, True), labels).items()}
        expected = {k: v.item() for k, v in oracle(_columns(theirs, columns, False), labels).items()}
    assert got.keys() == expected.keys()
    assert got == pytest.approx(expected, abs=ATOL)
    assert got["document_regularizer_loss"] > 0


def test_cached_splade_loss_gives_spladeloss_parts_and_gradients_and_sentence_transformers_values(splade_dir, st):
    """GradCache with mini-batches of 2: the same parts as SpladeLoss on the full batch (and as
    sentence-transformers' CachedSpladeLoss), and the same gradients on every weight."""
    from sentence_transformers.sparse_encoder import losses as st_losses

    ours, theirs = omnivec.SparseEncoder(splade_dir, device="cpu"), st.SparseEncoder(splade_dir, device="cpu")
    columns = [QUERIES, POSITIVES, NEGATIVES]
    weights = dict(document_regularizer_weight=0.03, query_regularizer_weight=0.05)
    results = []
    for loss in (losses.SpladeLoss(ours, losses.SparseMultipleNegativesRankingLoss(ours), **weights),
                 losses.CachedSpladeLoss(ours, losses.SparseMultipleNegativesRankingLoss(ours), **weights,
                                         mini_batch_size=2)):
        ours.zero_grad()
        parts = loss(ours, _columns(ours, columns, True), None)
        torch.stack(list(parts.values())).sum().backward()
        results.append(({k: v.item() for k, v in parts.items()},
                        {n: p.grad.clone() for n, p in ours.named_parameters() if p.grad is not None}))
    (plain, plain_grads), (cached, cached_grads) = results
    assert cached == pytest.approx(plain, abs=ATOL) and len(cached_grads) == len(plain_grads) > 0
    for name, grad in plain_grads.items():
        torch.testing.assert_close(cached_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)
    oracle = st_losses.CachedSpladeLoss(theirs, st_losses.SparseMultipleNegativesRankingLoss(theirs), **weights,
                                        mini_batch_size=2)
    expected = {k: v.item() for k, v in oracle(_columns(theirs, columns, False), None).items()}
    assert cached == pytest.approx(expected, abs=ATOL)


def test_inference_free_splade_loss_equals_sentence_transformers(inference_free_st_dir, st):
    """A Router model: queries through the static IDF-like side, documents through SPLADE; queries are not
    regularized (query_regularizer_weight=None)."""
    from sentence_transformers.sparse_encoder import losses as st_losses

    ours = omnivec.SparseEncoder(inference_free_st_dir, device="cpu").eval()
    theirs = st.SparseEncoder(inference_free_st_dir, device="cpu").eval()
    columns = [(QUERIES, "query"), (POSITIVES, "document"), (NEGATIVES, "document")]
    mine = losses.SpladeLoss(ours, losses.SparseMultipleNegativesRankingLoss(ours), document_regularizer_weight=0.1)
    oracle = st_losses.SpladeLoss(theirs, st_losses.SparseMultipleNegativesRankingLoss(theirs),
                                  document_regularizer_weight=0.1)
    with torch.no_grad():
        got = mine(ours, [ours.prepare(c, task=t) for c, t in columns], None)
        expected = oracle([theirs.preprocess(c, task=t) for c, t in columns], None)
    assert got.keys() == expected.keys() == {"base_loss", "document_regularizer_loss"}
    assert {k: v.item() for k, v in got.items()} == pytest.approx({k: v.item() for k, v in expected.items()}, abs=ATOL)


def test_wrong_model_fails_at_construction_naming_the_argument(pair, bert_dir):
    embedder = omnivec.Embedder(bert_dir, device="cpu")
    for build in (lambda: losses.SparseMultipleNegativesRankingLoss(embedder), lambda: losses.FlopsLoss(embedder),
                  lambda: losses.SpladeLoss(embedder, losses.SparseMarginMSELoss(), document_regularizer_weight=1.0)):
        with pytest.raises(TypeError, match=r"argument 'model' must be an omnivec\.SparseEncoder, got Embedder"):
            build()
    with pytest.raises(TypeError, match=r"MultipleNegativesRankingLoss: argument 'model' must be an omnivec\.Embedder"
                                        r".*got SparseEncoder\. For a SparseEncoder, use the losses in "
                                        r"omnivec\.sparse_encoder\.losses"):
        omnivec.losses.MultipleNegativesRankingLoss(pair[0])
    with pytest.raises(TypeError, match="SpladeLoss: argument 'loss' must be a sparse ranking loss"):
        losses.SpladeLoss(pair[0], torch.nn.MSELoss(), document_regularizer_weight=1.0)
    with pytest.raises(TypeError, match=r"SparseEncoderTrainer: argument 'model' must be an omnivec\.SparseEncoder"):
        SparseEncoderTrainer(embedder, train_dataset=[{"q": "a", "d": "b"}])


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


# -- the evaluator ---------------------------------------------------------------------------------------------------
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
        parts = loss(model, _columns(model, [QUERIES, POSITIVES, NEGATIVES], True), None)
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
    shows GradCache through the trainer's backward gives SpladeLoss's training."""
    from datasets import Dataset
    from sentence_transformers.sparse_encoder import SparseEncoderTrainer as OracleTrainer
    from sentence_transformers.sparse_encoder import SparseEncoderTrainingArguments as OracleArguments
    from sentence_transformers.sparse_encoder import losses as st_losses

    data = Dataset.from_dict({"query": QUERIES, "positive": POSITIVES, "negative": NEGATIVES})
    ours = omnivec.SparseEncoder(splade_dir, device="cpu")
    SparseEncoderTrainer(ours, _args(tmp_path), train_dataset=data, loss=losses.CachedSpladeLoss(
        ours, losses.SparseMultipleNegativesRankingLoss(ours), **WEIGHTS, mini_batch_size=4)).train()
    theirs = st.SparseEncoder(splade_dir, device="cpu")
    OracleTrainer(theirs, _args(tmp_path, OracleArguments), train_dataset=data, loss=st_losses.SpladeLoss(
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
                                  "SparseDistillKLDivLoss"],
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
