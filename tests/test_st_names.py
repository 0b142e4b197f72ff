"""sentence-transformers' import paths work on omnivec: ``from sentence_transformers[.x] import Y`` becomes
``from omnivec[.x] import Y``, and names that are one object there are one object here."""

from __future__ import annotations

import dataclasses
import importlib
import logging
import subprocess
import sys

import pytest
import torch

import omnivec

# Top-level names of sentence-transformers 6 that omnivec provides.
TOP_LEVEL = [
    "SentenceTransformer", "CrossEncoder", "SimilarityFunction", "InputExample", "LoggingHandler",
    "mine_hard_negatives", "quantize_embeddings", "SentenceTransformerTrainer", "SentenceTransformerTrainingArguments",
    "CrossEncoderTrainer", "CrossEncoderTrainingArguments", "SentenceTransformerModelCardData",
    "CrossEncoderModelCardData", "export_optimized_onnx_model", "export_dynamic_quantized_onnx_model",
    "export_static_quantized_openvino_model", "SparseEncoder", "SparseEncoderModelCardData",
]
# module path (after the package name) -> names documented there that omnivec provides.
SUBMODULE_NAMES = {
    "models": ["Transformer", "Pooling", "Dense", "Normalize", "Router", "Asym", "CLIPModel", "Module"],
    "util": ["cos_sim", "pytorch_cos_sim", "dot_score", "euclidean_sim", "manhattan_sim", "pairwise_cos_sim",
             "pairwise_dot_score", "pairwise_euclidean_sim", "pairwise_manhattan_sim", "pairwise_angle_sim",
             "normalize_embeddings", "truncate_embeddings", "semantic_search", "paraphrase_mining",
             "paraphrase_mining_embeddings", "community_detection", "mine_hard_negatives", "quantize_embeddings",
             "batch_to_device", "SimilarityFunction", "LoggingHandler", "is_sentence_transformer_model"],
    "losses": ["MultipleNegativesRankingLoss", "CachedMultipleNegativesRankingLoss", "CoSENTLoss",
               "CosineSimilarityLoss", "MarginMSELoss", "MatryoshkaLoss"],
    "evaluation": ["EmbeddingSimilarityEvaluator", "InformationRetrievalEvaluator", "RerankingEvaluator",
                   "SequentialEvaluator", "SentenceEvaluator", "SimilarityFunction"],
    "quantization": ["quantize_embeddings"],
    "cross_encoder": ["CrossEncoder", "CrossEncoderTrainer", "CrossEncoderTrainingArguments",
                      "CrossEncoderModelCardData"],
    "cross_encoder.losses": ["BinaryCrossEntropyLoss", "CrossEntropyLoss", "LambdaLoss", "ListNetLoss",
                             "MarginMSELoss", "MultipleNegativesRankingLoss"],
    "cross_encoder.evaluation": ["CrossEncoderRerankingEvaluator"],
    "sparse_encoder": ["SparseEncoder", "SparseEncoderModelCardData"],
    "sparse_encoder.modules": ["MLMTransformer", "SpladePooling", "SparseStaticEmbedding", "SparseAutoEncoder", "Router",
                               "Asym", "Transformer", "Module"],
}


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_top_level_names(st, name):
    assert hasattr(st, name), f"sentence_transformers.{name} is not a documented name any more"
    namespace: dict = {}
    exec(f"from omnivec import {name}", namespace)
    assert namespace[name] is getattr(omnivec, name)
    assert name in dir(omnivec)


@pytest.mark.parametrize(("path", "name"), [(p, n) for p, names in SUBMODULE_NAMES.items() for n in names])
def test_submodule_names(st, path, name):
    theirs = importlib.import_module(f"sentence_transformers.{path}")
    assert hasattr(theirs, name), f"sentence_transformers.{path}.{name}"
    ours = importlib.import_module(f"omnivec.{path}")
    namespace: dict = {}
    exec(f"from omnivec.{path} import {name}", namespace)
    assert namespace[name] is getattr(ours, name)


def test_same_objects_under_every_name():
    from omnivec import cross_encoder, evaluation, losses, models, modules, quantization, similarity, train, util
    from omnivec.cross_encoder import evaluation as ce_evaluation
    from omnivec.cross_encoder import losses as ce_losses
    from omnivec.train import args, mining, trainer
    from omnivec.train import cross_encoder_losses as train_ce_losses
    from omnivec.train import evaluation as train_evaluation
    from omnivec.train import losses as train_losses

    assert omnivec.SentenceTransformer is omnivec.Embedder
    assert omnivec.CrossEncoder is cross_encoder.CrossEncoder
    assert omnivec.SimilarityFunction is util.SimilarityFunction is evaluation.SimilarityFunction \
        is similarity.SimilarityFunction
    assert omnivec.LoggingHandler is util.LoggingHandler
    assert omnivec.mine_hard_negatives is util.mine_hard_negatives is mining.mine_hard_negatives \
        is train.mine_hard_negatives
    assert omnivec.quantize_embeddings is util.quantize_embeddings is quantization.quantize_embeddings
    assert omnivec.SentenceTransformerTrainer is trainer.EmbedderTrainer is train.SentenceTransformerTrainer
    assert omnivec.CrossEncoderTrainer is cross_encoder.CrossEncoderTrainer is trainer.CrossEncoderTrainer
    # One TrainingArguments class serves both kinds of model.
    assert omnivec.SentenceTransformerTrainingArguments is omnivec.CrossEncoderTrainingArguments \
        is cross_encoder.CrossEncoderTrainingArguments is args.TrainingArguments
    assert omnivec.CrossEncoderModelCardData is cross_encoder.CrossEncoderModelCardData
    for name in ("Transformer", "Pooling", "Dense", "Normalize", "Router", "CLIPModel", "Module", "LogitScore"):
        assert getattr(models, name) is getattr(modules, name) is getattr(omnivec, name, getattr(modules, name))
    assert models.Asym is models.Router
    assert evaluation.SentenceEvaluator is train_evaluation.Evaluator
    assert ce_evaluation.CrossEncoderRerankingEvaluator is train_evaluation.RerankingEvaluator
    # The re-exports follow the training packages' __all__, so names added there appear here.
    for alias, source in ((losses, train_losses), (ce_losses, train_ce_losses), (evaluation, train_evaluation)):
        assert set(source.__all__) <= set(alias.__all__)
        assert all(getattr(alias, n) is getattr(source, n) for n in source.__all__)


def test_submodules_load_lazily():
    code = ("import omnivec, sys; assert 'torch' not in sys.modules; "
            "import omnivec.models, omnivec.cross_encoder; assert 'torch' not in sys.modules, 'eager module import'")
    subprocess.run([sys.executable, "-c", code], check=True)
    # A bare ``import omnivec`` reaches the submodules as attributes (omnivec.util.cos_sim, ...).
    for name in ("util", "models", "modules", "losses", "evaluation", "cross_encoder", "quantization", "similarity"):
        assert omnivec.__getattr__(name) is importlib.import_module(f"omnivec.{name}")


def test_unknown_names_fail_as_attribute_errors():
    for module, name in ((omnivec, "StaticEmbeddingX"), (importlib.import_module("omnivec.models"), "Nope"),
                         (importlib.import_module("omnivec.cross_encoder"), "Nope"),
                         (importlib.import_module("omnivec.util"), "nope")):
        with pytest.raises(AttributeError, match="Nope|nope|StaticEmbeddingX"):
            getattr(module, name)
    with pytest.raises(ImportError):
        exec("from omnivec.models import Nope", {})


def test_input_example_behaves_like_sentence_transformers(st):
    for kwargs in ({}, {"texts": ["a", "b"], "label": 0.5}, {"guid": "x1", "texts": ["q", "p", "n"], "label": 1}):
        ours, theirs = omnivec.InputExample(**kwargs), st.InputExample(**kwargs)
        assert (ours.guid, ours.texts, ours.label) == (theirs.guid, theirs.texts, theirs.label)
        if "texts" in kwargs:
            assert str(ours) == str(theirs)
    positional = omnivec.InputExample("id", ["t"], 2)
    assert (positional.guid, positional.texts, positional.label) == ("id", ["t"], 2)


def test_logging_handler_is_a_handler(st):
    assert issubclass(omnivec.LoggingHandler, logging.Handler)
    assert omnivec.LoggingHandler(logging.INFO).level == st.LoggingHandler(logging.INFO).level == logging.INFO


@pytest.mark.parametrize("name", ["SentenceTransformerModelCardData", "CrossEncoderModelCardData"])
def test_model_card_data_fields_and_defaults(st, name, caplog):
    ours_cls, theirs_cls = getattr(omnivec, name), getattr(st, name)
    ours_init = {f.name for f in dataclasses.fields(ours_cls) if f.init}
    theirs_init = {f.name for f in dataclasses.fields(theirs_cls) if f.init}
    assert ours_init <= theirs_init
    kwargs = dict(language="en", license="apache-2.0", model_name="tiny", model_id="user/tiny",
                  train_datasets=[{"id": "sentence-transformers/all-nli"}], local_files_only=True)
    ours, theirs = ours_cls(**kwargs), theirs_cls(**kwargs)
    for field in ours_init:
        assert getattr(ours, field) == getattr(theirs, field), field
    assert ours.language == ["en"] and ours.train_datasets[0]["name"] == "sentence-transformers/all-nli"
    with caplog.at_level(logging.WARNING):
        assert ours_cls(model_id="no-slash").model_id is None
    assert "no-slash" in caplog.text
    with pytest.raises(Exception, match="train_datasets"):
        ours_cls(train_datasets=["just-a-name"])


def test_similarity_function_member_as_the_model_setting(minilm_embedder, minilm_st_model):
    a = ["A man is eating food.", "A cat sleeps."]
    b = ["Someone eats.", "The weather is nice.", "A kitten naps."]
    ours_a, ours_b = minilm_embedder.encode(a), minilm_embedder.encode(b)
    theirs_a, theirs_b = minilm_st_model.encode(a), minilm_st_model.encode(b)
    try:
        for member in (omnivec.SimilarityFunction.DOT_PRODUCT, omnivec.SimilarityFunction.MANHATTAN):
            minilm_embedder.similarity_fn_name = member
            minilm_st_model.similarity_fn_name = member.value
            # Stored as the plain name, as sentence-transformers does.
            assert type(minilm_embedder.similarity_fn_name) is str
            assert minilm_embedder.similarity_fn_name == minilm_st_model.similarity_fn_name == member.value
            torch.testing.assert_close(minilm_embedder.similarity(ours_a, ours_b),
                                       minilm_st_model.similarity(theirs_a, theirs_b), atol=1e-5, rtol=0)
    finally:
        minilm_embedder.similarity_fn_name = "cosine"
        minilm_st_model.similarity_fn_name = "cosine"
