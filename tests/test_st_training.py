"""Training code written for sentence-transformers runs on omnivec: model-first losses give sentence-transformers'
values, a wrong model fails at construction, ST-style training arguments and a dict of datasets train, evaluator
keys equal sentence-transformers', and ``model.fit()`` trains."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import omnivec
from omnivec.train import EmbedderTrainer, losses
from omnivec.train import cross_encoder_losses as ce_losses
from omnivec.train.evaluation import EmbeddingSimilarityEvaluator, InformationRetrievalEvaluator
from omnivec.training_args import BatchSamplers, MultiDatasetBatchSamplers, SentenceTransformerTrainingArguments

ATOL = 1e-5
ANCHORS = ["a fox runs", "cells divide", "paris is big", "guitar music", "rainy weather", "vector search"]
POSITIVES = ["the fox is quick", "mitosis in cells", "capital of france", "a man plays guitar", "it rains today",
             "embedding retrieval"]
NEGATIVES = POSITIVES[2:] + POSITIVES[:2]
SCORES = [0.9, 0.1, 0.5, 0.7, 0.3, 0.6]


@pytest.fixture(scope="module")
def pair(bert_dir, st):
    """A tiny BERT in both libraries, dropout off."""
    return omnivec.Embedder(bert_dir, device="cpu").eval(), st.SentenceTransformer(bert_dir, device="cpu").eval()


@pytest.fixture(scope="module")
def ce_pair(tmp_path_factory, bert_dir, st):
    folder = tmp_path_factory.mktemp("st-ce")
    st.CrossEncoder(bert_dir, num_labels=1, device="cpu").save(str(folder))
    return omnivec.CrossEncoder(str(folder), device="cpu").eval(), st.CrossEncoder(str(folder), device="cpu").eval()


def _value(model, loss, columns, labels, ours: bool, prepare: bool = True) -> float:
    with torch.no_grad():
        if ours:
            return loss(model, [model.prepare(c) for c in columns] if prepare else columns, labels).item()
        return loss([model.preprocess(c) for c in columns] if prepare else columns, labels).item()


def _embedding_cases(ours, theirs):
    """case -> (columns, labels, omnivec loss, sentence-transformers loss), both built model-first."""
    from sentence_transformers import util
    from sentence_transformers.sentence_transformer import losses as st

    triplets, pairs, scores = [ANCHORS, POSITIVES, NEGATIVES], [ANCHORS, POSITIVES], torch.tensor(SCORES)
    binary, classes = torch.tensor([1, 0, 1, 0, 0, 1]), torch.tensor([0, 1, 2, 1, 0, 2])
    softmax = dict(embedding_dimension=32, num_labels=3, concatenation_sent_multiplication=True)
    matryoshka = dict(matryoshka_dims=[32, 16, 8], matryoshka_weights=[1.0, 0.5, 0.25])
    return {
        "mnrl": (triplets, None, lambda: losses.MultipleNegativesRankingLoss(ours, scale=10.0, similarity_fct=util.dot_score),
                 lambda: st.MultipleNegativesRankingLoss(theirs, scale=10.0, similarity_fct=util.dot_score)),
        "cached_mnrl": (pairs, None, lambda: losses.CachedMultipleNegativesRankingLoss(ours, mini_batch_size=2),
                        lambda: st.CachedMultipleNegativesRankingLoss(theirs, mini_batch_size=2)),
        "mnsrl": (pairs, None, lambda: losses.MultipleNegativesSymmetricRankingLoss(ours, scale=15.0),
                  lambda: st.MultipleNegativesSymmetricRankingLoss(theirs, scale=15.0)),
        "cosent": (pairs, scores, lambda: losses.CoSENTLoss(ours, scale=20.0), lambda: st.CoSENTLoss(theirs, scale=20.0)),
        "angle": (pairs, scores, lambda: losses.AnglELoss(ours, scale=10.0), lambda: st.AnglELoss(theirs, scale=10.0)),
        "cosine": (pairs, scores, lambda: losses.CosineSimilarityLoss(ours), lambda: st.CosineSimilarityLoss(theirs)),
        "margin_mse": (triplets, scores, lambda: losses.MarginMSELoss(ours), lambda: st.MarginMSELoss(theirs)),
        # teacher vectors as labels, one per row, for each input column
        "mse": (pairs, torch.linspace(-1, 1, 6 * 32).view(6, 32), lambda: losses.MSELoss(ours),
                lambda: st.MSELoss(theirs)),
        "matryoshka": (pairs, None,
                       lambda: losses.MatryoshkaLoss(ours, losses.MultipleNegativesRankingLoss(ours), **matryoshka),
                       lambda: st.MatryoshkaLoss(theirs, st.MultipleNegativesRankingLoss(theirs), **matryoshka)),
        # sentence-transformers' metric functions work in omnivec's losses
        "triplet": (triplets, None, lambda: losses.TripletLoss(ours, st.TripletDistanceMetric.COSINE, triplet_margin=0.3),
                    lambda: st.TripletLoss(theirs, st.TripletDistanceMetric.COSINE, triplet_margin=0.3)),
        "contrastive": (pairs, binary, lambda: losses.ContrastiveLoss(ours, losses.SiameseDistanceMetric.EUCLIDEAN, 2.0),
                        lambda: st.ContrastiveLoss(theirs, st.SiameseDistanceMetric.EUCLIDEAN, margin=2.0)),
        "online_contrastive": (pairs, binary, lambda: losses.OnlineContrastiveLoss(ours, margin=0.9),
                               lambda: st.OnlineContrastiveLoss(theirs, margin=0.9)),
        "softmax": (pairs, classes, lambda: losses.SoftmaxLoss(ours, **softmax),
                    lambda: st.SoftmaxLoss(theirs, **softmax)),
    }


@pytest.mark.parametrize("case", ["mnrl", "cached_mnrl", "mnsrl", "cosent", "angle", "cosine", "margin_mse", "mse",
                                  "matryoshka", "triplet", "contrastive", "online_contrastive", "softmax"])
def test_model_first_embedding_losses_match_sentence_transformers(pair, case):
    ours, theirs = pair
    columns, labels, build_mine, build_oracle = _embedding_cases(ours, theirs)[case]
    mine, oracle = build_mine(), build_oracle()
    if case == "softmax":  # the same classifier weights in both
        mine.classifier.load_state_dict(oracle.classifier.state_dict())
    assert mine.model is ours
    expected = _value(theirs, oracle, columns, labels if labels is not None else torch.zeros(6), ours=False)
    assert _value(ours, mine, columns, labels, ours=True) == pytest.approx(expected, abs=ATOL)


@pytest.mark.parametrize("case", ["bce", "mnrl", "margin_mse", "listnet", "lambda"])
def test_model_first_cross_encoder_losses_match_sentence_transformers(ce_pair, case):
    from sentence_transformers.cross_encoder import losses as st_ce

    ours, theirs = ce_pair
    columns, labels = [ANCHORS, POSITIVES], torch.tensor(SCORES)
    if case == "bce":
        mine = ce_losses.BinaryCrossEntropyLoss(ours, activation_fn=torch.nn.Sigmoid(), pos_weight=torch.tensor(2.0))
        oracle = st_ce.BinaryCrossEntropyLoss(theirs, activation_fn=torch.nn.Sigmoid(), pos_weight=torch.tensor(2.0))
    elif case == "mnrl":
        columns, labels = [ANCHORS, POSITIVES, NEGATIVES], None
        mine = ce_losses.MultipleNegativesRankingLoss(ours, num_negatives=None, scale=5.0)
        oracle = st_ce.MultipleNegativesRankingLoss(theirs, num_negatives=None, scale=5.0)
    elif case == "margin_mse":
        columns = [ANCHORS, POSITIVES, NEGATIVES]
        mine, oracle = ce_losses.MarginMSELoss(ours), st_ce.MarginMSELoss(theirs)
    else:
        lists = [[POSITIVES[i], NEGATIVES[i], POSITIVES[(i + 3) % 6]] for i in range(6)]
        columns = [ANCHORS, lists]
        labels = [torch.tensor([2.0, 0.0, 1.0]) for _ in lists]
        if case == "listnet":
            mine, oracle = ce_losses.ListNetLoss(ours, mini_batch_size=4), st_ce.ListNetLoss(theirs, mini_batch_size=4)
        else:  # sentence-transformers' scheme objects and omnivec's carry over
            mine = ce_losses.LambdaLoss(ours, weighting_scheme=ce_losses.NDCGLoss2PPScheme(mu=5.0), k=2,
                                        reduction_log="natural")
            oracle = st_ce.LambdaLoss(theirs, weighting_scheme=st_ce.NDCGLoss2PPScheme(mu=5.0), k=2,
                                      reduction_log="natural")
    assert mine.model is ours
    expected = _value(theirs, oracle, columns, labels, ours=False, prepare=False)
    assert _value(ours, mine, columns, labels, ours=True, prepare=False) == pytest.approx(expected, abs=ATOL)


def test_wrong_model_fails_at_construction_naming_the_argument(pair, ce_pair):
    embedder, cross_encoder = pair[0], ce_pair[0]
    with pytest.raises(TypeError, match=r"BinaryCrossEntropyLoss: argument 'model' must be an omnivec\.CrossEncoder, "
                                        r"got Embedder\. For a Embedder, use the losses in omnivec\.train\.losses"):
        ce_losses.BinaryCrossEntropyLoss(embedder)
    with pytest.raises(TypeError, match=r"MultipleNegativesRankingLoss: argument 'model' must be an omnivec\.Embedder"
                                        r".*got CrossEncoder"):
        losses.MultipleNegativesRankingLoss(cross_encoder)
    with pytest.raises(TypeError, match=r"CoSENTLoss: argument 'model'.*got str"):
        losses.CoSENTLoss("all-MiniLM-L6-v2")
    with pytest.raises(TypeError, match=r"MatryoshkaLoss: argument 'loss' must be an embedding loss"):
        losses.MatryoshkaLoss(embedder, ce_losses.BinaryCrossEntropyLoss(), [8])
    # The model-free loss of the other kind is refused by the trainer before any step.
    with pytest.raises(TypeError, match=r"loss: BinaryCrossEntropyLoss is a CrossEncoder loss"):
        EmbedderTrainer(embedder, train_dataset=[{"a": "x", "b": "y", "label": 1.0}],
                        loss=ce_losses.BinaryCrossEntropyLoss())
    with pytest.raises(TypeError, match=r"CrossEncoderTrainer: argument 'model' must be an omnivec\.CrossEncoder"):
        omnivec.train.CrossEncoderTrainer(embedder, train_dataset=[{"a": "x", "b": "y", "label": 1.0}])
    # omnivec's model-free spellings still build the same losses.
    assert losses.MatryoshkaLoss(losses.CoSENTLoss(), dims=[8, 4]).dims == [8, 4]
    assert losses.MatryoshkaLoss(losses.CoSENTLoss(), [8, 4]).model is None


def test_st_training_arguments_and_import_path(tmp_path, st):
    from sentence_transformers.sentence_transformer import training_args as st_args

    assert {m.value for m in BatchSamplers} == {m.value for m in st_args.BatchSamplers}
    assert {m.value for m in MultiDatasetBatchSamplers} == {m.value for m in st_args.MultiDatasetBatchSamplers}
    kwargs = dict(output_dir=str(tmp_path), warmup_ratio=0.1, batch_sampler=BatchSamplers.NO_DUPLICATES,
                  multi_dataset_batch_sampler="round_robin", eval_strategy="steps", eval_steps=2,
                  metric_for_best_model="eval_sts_spearman_cosine", learning_rate_mapping={r"\.0\.": 1e-3},
                  report_to="none")
    ours, theirs = SentenceTransformerTrainingArguments(**kwargs), st_args.SentenceTransformerTrainingArguments(**kwargs)
    for name in ("warmup_steps", "warmup_ratio", "eval_strategy", "metric_for_best_model", "learning_rate_mapping"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.batch_sampler == theirs.batch_sampler == "no_duplicates"
    assert ours.multi_dataset_batch_sampler == theirs.multi_dataset_batch_sampler == "round_robin"
    with pytest.raises(omnivec.errors.ConfigError, match="batch_sampler 'sorted' is not one of"):
        SentenceTransformerTrainingArguments(output_dir=str(tmp_path), batch_sampler="sorted")


@pytest.mark.parametrize(("choice", "steps"), [
    (MultiDatasetBatchSamplers.ROUND_ROBIN, 4),
    pytest.param(MultiDatasetBatchSamplers.PROPORTIONAL, 6, marks=pytest.mark.slow),  # same machinery, other order
])
def test_dict_of_datasets_with_dict_of_losses_trains(tmp_path, bert_dir, choice, steps):
    model = omnivec.Embedder(bert_dir, device="cpu")
    pairs = [{"anchor": a, "positive": p} for a, p in zip(ANCHORS, POSITIVES, strict=True)] * 2
    scored = [{"s1": a, "s2": p, "score": s} for a, p, s in zip(ANCHORS, POSITIVES, SCORES, strict=True)]
    sts = EmbeddingSimilarityEvaluator(ANCHORS, POSITIVES, SCORES, name="sts")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / choice.value), report_to="none", per_device_train_batch_size=3, num_train_epochs=1,
        multi_dataset_batch_sampler=choice, batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no",
        disable_tqdm=True, learning_rate=1e-3, warmup_ratio=0.1, metric_for_best_model="eval_sts_spearman_cosine")
    seen: list[str] = []
    trainer = EmbedderTrainer(model, args, train_dataset={"pairs": pairs, "scored": scored},
                              eval_dataset={"pairs": pairs[:6], "scored": scored}, evaluator=sts,
                              loss={"pairs": losses.MultipleNegativesRankingLoss(model),
                                    "scored": losses.CoSENTLoss(model)})
    original = trainer.compute_loss
    trainer.compute_loss = lambda m, inputs, *a, **k: (seen.append(inputs["dataset"]), original(m, inputs, *a, **k))[1]
    trainer.train()
    # round robin: one batch of each in turn until "scored" (2 batches) runs out; proportional: all 6 batches
    assert len(seen) == steps and seen.count("scored") == 2
    if choice == MultiDatasetBatchSamplers.ROUND_ROBIN:
        assert seen == ["pairs", "scored", "pairs", "scored"]
    metrics = trainer.evaluate()  # one loss per evaluation dataset, and the evaluator's keys
    assert {"eval_pairs_loss", "eval_scored_loss", "eval_sts_spearman_cosine"} <= metrics.keys()
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters())


def test_evaluator_keys_equal_sentence_transformers(pair, st):
    from sentence_transformers.sentence_transformer import evaluation as st_eval

    ours, theirs = pair
    queries = {f"q{i}": text for i, text in enumerate(ANCHORS)}
    corpus = {f"d{i}": text for i, text in enumerate(POSITIVES + NEGATIVES[:2])}
    relevant = {f"q{i}": {f"d{i}"} for i in range(6)}
    ir, peer_ir = (cls(queries, corpus, relevant, name="dev") for cls in (InformationRetrievalEvaluator,
                                                                          st_eval.InformationRetrievalEvaluator))
    mine, expected = ir(ours), peer_ir(theirs)
    assert mine.keys() == expected.keys() and "dev_cosine_ndcg@10" in mine
    for key, value in expected.items():
        assert mine[key] == pytest.approx(value, abs=1e-4), key
    assert ir.primary_metric == peer_ir.primary_metric == "dev_cosine_ndcg@10"
    sts, peer_sts = (cls(ANCHORS, POSITIVES, SCORES, name="sts-dev") for cls in (
        EmbeddingSimilarityEvaluator, st_eval.EmbeddingSimilarityEvaluator))
    assert sts(ours).keys() == peer_sts(theirs).keys() == {"sts-dev_pearson_cosine", "sts-dev_spearman_cosine"}
    assert sts.primary_metric == peer_sts.primary_metric


@pytest.mark.slow  # evaluation, callback and best-model saving; the parity test below covers fit() in the fast lane
def test_fit_trains_with_input_examples(tmp_path, bert_dir):
    from torch.utils.data import DataLoader

    class InputExample:  # sentence-transformers' shape: texts and a label
        def __init__(self, texts, label=0):
            self.texts, self.label = texts, label

    model = omnivec.Embedder(bert_dir, device="cpu")
    before = next(model.parameters()).detach().clone()
    pairs = DataLoader([InputExample([a, p]) for a, p in zip(ANCHORS, POSITIVES, strict=True)], shuffle=True,
                       batch_size=3)
    scored = DataLoader([InputExample([a, p], s) for a, p, s in zip(ANCHORS, POSITIVES, SCORES, strict=True)],
                        batch_size=3)
    scores: list[tuple[float, int, int]] = []
    model.fit(train_objectives=[(pairs, losses.MultipleNegativesRankingLoss(model)), (scored, losses.CoSENTLoss(model))],
              evaluator=EmbeddingSimilarityEvaluator(ANCHORS, POSITIVES, SCORES, name="sts"), epochs=2,
              warmup_steps=1, optimizer_params={"lr": 1e-3}, output_path=str(tmp_path / "best"),
              checkpoint_path=str(tmp_path / "ckpt"), checkpoint_save_steps=1000, show_progress_bar=False,
              callback=lambda score, epoch, steps: scores.append((score, epoch, steps)))
    assert not torch.equal(before, next(model.parameters()))
    assert [(epoch, steps) for _, epoch, steps in scores] == [(1, 4), (2, 8)]  # 2 objectives x 2 batches per epoch
    assert (tmp_path / "best" / "config_sentence_transformers.json").exists() or any((tmp_path / "best").iterdir())
    reloaded = omnivec.Embedder(str(tmp_path / "best"), device="cpu")
    assert reloaded.encode(["a fox"]).shape == model.encode(["a fox"]).shape


def test_fit_gives_sentence_transformers_weights(tmp_path, bert_no_dropout_dir, st):
    """The same fit() call (one batch per epoch, so the shuffle order cannot matter) ends at the same weights."""
    from sentence_transformers.sentence_transformer import losses as st_losses
    from torch.utils.data import DataLoader

    ours = omnivec.Embedder(bert_no_dropout_dir, device="cpu")
    theirs = st.SentenceTransformer(bert_no_dropout_dir, device="cpu")
    examples = [st.InputExample(texts=[a, p]) for a, p in zip(ANCHORS, POSITIVES, strict=True)]
    settings = dict(epochs=2, warmup_steps=1, optimizer_params={"lr": 1e-3}, show_progress_bar=False,
                    checkpoint_save_steps=1000)
    ours.fit([(DataLoader(examples, shuffle=True, batch_size=6), losses.MultipleNegativesRankingLoss(ours))],
             checkpoint_path=str(tmp_path / "ours"), **settings)
    theirs.fit([(DataLoader(examples, shuffle=True, batch_size=6), st_losses.MultipleNegativesRankingLoss(theirs))],
               checkpoint_path=str(tmp_path / "theirs"), **settings)
    ours.eval(), theirs.eval()
    texts = ANCHORS + POSITIVES
    trained = ours.encode(texts, convert_to_tensor=True)
    torch.testing.assert_close(trained, theirs.encode(texts, convert_to_tensor=True), atol=1e-5, rtol=1e-4)
    untrained = omnivec.Embedder(bert_no_dropout_dir, device="cpu").encode(texts, convert_to_tensor=True)
    assert not torch.allclose(trained, untrained)


@pytest.mark.slow  # two CrossEncoder trainings; fit()'s shared machinery is checked in the fast lane by the parity test
def test_cross_encoder_fit_trains_with_default_and_torch_losses(tmp_path, bert_dir, monkeypatch):
    from torch.utils.data import DataLoader

    class InputExample:
        def __init__(self, texts, label=0):
            self.texts, self.label = texts, label

    monkeypatch.chdir(tmp_path)  # sentence-transformers' fit() names its output folder relative to the cwd
    model = omnivec.CrossEncoder(bert_dir, num_labels=1, device="cpu")
    examples = [InputExample([a, p], float(i % 2)) for i, (a, p) in enumerate(zip(ANCHORS, POSITIVES, strict=True))]
    pairs = list(zip(ANCHORS, POSITIVES, strict=True))
    before = model.predict(pairs)
    model.fit(train_dataloader=DataLoader(examples, shuffle=True, batch_size=3), epochs=1, warmup_steps=1,
              optimizer_params={"lr": 1e-3}, show_progress_bar=False)
    after_default = model.eval().predict(pairs)
    assert not numpy_allclose(before, after_default)
    model.fit(DataLoader(examples, batch_size=3), loss_fct=torch.nn.BCEWithLogitsLoss(), epochs=1, warmup_steps=0,
              optimizer_params={"lr": 1e-3}, show_progress_bar=False, output_path=str(tmp_path / "out"))
    assert not numpy_allclose(after_default, model.eval().predict(pairs))
    assert omnivec.CrossEncoder(str(tmp_path / "out"), device="cpu").predict(pairs) == pytest.approx(
        model.predict(pairs), abs=1e-5)


def numpy_allclose(a, b) -> bool:
    import numpy as np

    return bool(np.allclose(a, b, atol=1e-6))


def test_learning_rate_mapping_gives_matching_parameters_their_rate(tmp_path, bert_dir):
    model = omnivec.Embedder(bert_dir, device="cpu")
    args = SentenceTransformerTrainingArguments(output_dir=str(tmp_path), report_to="none", learning_rate=1e-5,
                                                learning_rate_mapping='{"encoder\\\\.layer\\\\.1\\\\.": 0.01}')
    trainer = EmbedderTrainer(model, args, train_dataset=[{"a": "x", "b": "y"}],
                              loss=losses.MultipleNegativesRankingLoss(model))
    optimizer = trainer.create_optimizer()
    names = {id(p): n for n, p in model.named_parameters()}
    by_rate: dict[float, set[str]] = {}
    for group in optimizer.param_groups:
        by_rate.setdefault(group["lr"], set()).update(names[id(p)] for p in group["params"])
    assert set(by_rate) == {1e-5, 0.01}
    assert by_rate[0.01] and all("encoder.layer.1." in n for n in by_rate[0.01])
    assert not any("encoder.layer.1." in n for n in by_rate[1e-5])
    assert len(by_rate[0.01] | by_rate[1e-5]) == len(names)


def test_loss_class_and_evaluator_list_as_sentence_transformers_takes_them(tmp_path, pair):
    model = pair[0]
    scored = [{"s1": a, "s2": p, "score": s} for a, p, s in zip(ANCHORS, POSITIVES, SCORES, strict=True)]
    evaluators = [EmbeddingSimilarityEvaluator(ANCHORS, POSITIVES, SCORES, name=name) for name in ("a", "b")]
    args = SentenceTransformerTrainingArguments(output_dir=str(tmp_path), report_to="none")
    trainer = EmbedderTrainer(model, args, train_dataset=scored, loss=losses.CoSENTLoss, evaluator=evaluators)
    assert isinstance(trainer.loss, losses.CoSENTLoss) and trainer.loss.model is model
    metrics = trainer.evaluate()
    assert metrics["eval_a_spearman_cosine"] == metrics["eval_b_spearman_cosine"]
    assert {"eval_a_pearson_cosine", "eval_b_pearson_cosine"} <= metrics.keys()


@pytest.mark.slow  # a fresh interpreter importing torch and transformers
def test_fit_needs_no_import_of_omnivec_train_first():
    """model.fit() is implemented in omnivec.train, which the model classes cannot import: the root package lends it,
    so a script that imports only omnivec reaches the real fit (here: its check of the dataloader argument)."""
    script = ("import sys, omnivec\n"
              "assert 'omnivec.train' not in sys.modules\n"
              "from omnivec.models import extensions\n"
              "try:\n"
              "    extensions.call('cross_encoder_fit', None, 'not a dataloader')\n"
              "except Exception as exc:\n"
              "    print(type(exc).__name__, exc)\n"
              "print('omnivec.train' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("True") and "import it" not in out, out
