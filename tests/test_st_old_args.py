"""Older argument names sentence-transformers still accepts, with its deprecation warning: predict(sentences=,
activation_fct=), CrossEncoder(default_activation_function=, tokenizer_kwargs=...), Transformer(model_args=,
tokenizer_args=, config_args=), Pooling(word_embedding_dimension=, pooling_mode_*_tokens=). Same numbers as
sentence-transformers given the same old arguments."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

import omnivec
from omnivec.modules import renamed_args

TEXTS = ["a fox jumps over the lazy dog", "hello world", "x"]
PAIRS = [("what is a fox", "a fox is an animal"), ("hello", "world"), ("", "empty")]


@pytest.fixture
def warnings_log(caplog):
    renamed_args._warned.clear()  # each old name warns once per process; every test sees its own warnings
    caplog.set_level(logging.WARNING, logger="omnivec")
    return caplog


@pytest.fixture(scope="module")
def ce_dir(bert_dir, st, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ce")
    st.CrossEncoder(bert_dir, num_labels=1, device="cpu").save(str(folder))
    return str(folder)


def test_predict_sentences_and_activation_fct(ce_dir, st, warnings_log):
    ours, theirs = omnivec.CrossEncoder(ce_dir, device="cpu"), st.CrossEncoder(ce_dir, device="cpu")
    identity = torch.nn.Identity()
    got = ours.predict(sentences=PAIRS, activation_fct=identity, num_workers=0)
    expected = theirs.predict(sentences=PAIRS, activation_fct=identity)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert not np.allclose(got, ours.predict(PAIRS))  # the activation was applied (raw logits, not sigmoid)
    assert "The `sentences` argument was renamed and is now deprecated. Please use `pairs` instead." in warnings_log.text
    assert "The `activation_fct` argument was renamed and is now deprecated" in warnings_log.text
    assert "CrossEncoder.predict `num_workers` argument is deprecated and has no effect" in warnings_log.text
    np.testing.assert_allclose(ours.predict(inputs=PAIRS), theirs.predict(inputs=PAIRS), atol=1e-5)  # v6 name
    ranked = ours.rank("what is a fox", ["a fox is an animal", "world"], activation_fct=identity)
    expected_ranked = theirs.rank("what is a fox", ["a fox is an animal", "world"], activation_fct=identity)
    assert [r["corpus_id"] for r in ranked] == [r["corpus_id"] for r in expected_ranked]
    assert [r["score"] for r in ranked] == pytest.approx([r["score"] for r in expected_ranked], abs=1e-5)


def test_cross_encoder_old_constructor_names(ce_dir, st, warnings_log):
    old = {"default_activation_function": torch.nn.Identity(), "tokenizer_kwargs": {"model_max_length": 4}}
    ours, theirs = omnivec.CrossEncoder(ce_dir, device="cpu", **old), st.CrossEncoder(ce_dir, device="cpu", **old)
    assert isinstance(ours.activation_fn, torch.nn.Identity) and isinstance(ours.default_activation_function,
                                                                            torch.nn.Identity)
    assert ours.tokenizer.model_max_length == theirs.tokenizer.model_max_length == 4
    np.testing.assert_allclose(ours.predict(PAIRS), theirs.predict(PAIRS), atol=1e-5)
    for name, new in (("default_activation_function", "activation_fn"), ("tokenizer_kwargs", "processor_kwargs")):
        assert (f"The CrossEncoder `{name}` argument was renamed and is now deprecated. Please use `{new}` instead."
                in warnings_log.text)
    by_model_name = omnivec.CrossEncoder(model_name=ce_dir, automodel_args={"dtype": torch.float32},
                                         config_args={"hidden_dropout_prob": 0.2}, device="cpu")
    assert by_model_name.config.hidden_dropout_prob == 0.2


def test_transformer_old_kwargs_names(bert_dir, st, warnings_log):
    from sentence_transformers.sentence_transformer.modules import Pooling as TheirPooling
    from sentence_transformers.sentence_transformer.modules import Transformer as TheirTransformer

    old = {"model_args": {"dtype": torch.float32}, "tokenizer_args": {"model_max_length": 5},
           "config_args": {"hidden_dropout_prob": 0.3}}
    ours = omnivec.Transformer(bert_dir, **old)
    theirs = TheirTransformer(bert_dir, **old)
    assert ours.max_seq_length == theirs.max_seq_length == 5
    assert ours.config.hidden_dropout_prob == theirs.config.hidden_dropout_prob == 0.3
    for name, new in (("model_args", "model_kwargs"), ("tokenizer_args", "tokenizer_kwargs"),
                      ("config_args", "config_kwargs")):
        assert (f"The Transformer `{name}` argument was renamed and is now deprecated, please use `{new}` instead."
                in warnings_log.text)
    ours_model = omnivec.SentenceTransformer(modules=[ours, omnivec.Pooling(32)], device="cpu")
    theirs_model = st.SentenceTransformer(modules=[theirs, TheirPooling(32)], device="cpu")
    np.testing.assert_allclose(ours_model.encode(TEXTS), theirs_model.encode(TEXTS), atol=1e-5)
    # sentence-transformers 6's own name for the tokenizer's kwargs works as well, without a warning
    assert omnivec.Transformer(bert_dir, processor_kwargs={"model_max_length": 7}).max_seq_length == 7


@pytest.mark.parametrize("flags", [{"pooling_mode_mean_tokens": True},
                                   {"pooling_mode_cls_token": True, "pooling_mode_max_tokens": True},
                                   {"pooling_mode_mean_tokens": False}])
def test_pooling_old_arguments(bert_dir, st, warnings_log, flags):
    from sentence_transformers.sentence_transformer.modules import Pooling as TheirPooling
    from sentence_transformers.sentence_transformer.modules import Transformer as TheirTransformer

    with pytest.warns(FutureWarning, match="Please use `pooling_mode` instead"):
        ours = omnivec.Pooling(word_embedding_dimension=32, **flags)
    with pytest.warns(FutureWarning, match="Please use `pooling_mode` instead"):
        theirs = TheirPooling(word_embedding_dimension=32, **flags)
    assert ours.get_embedding_dimension() == theirs.get_embedding_dimension()
    assert ("The `word_embedding_dimension` argument was renamed and is now deprecated. Please use "
            "`embedding_dimension` instead." in warnings_log.text)
    ours_model = omnivec.SentenceTransformer(modules=[omnivec.Transformer(bert_dir), ours], device="cpu")
    theirs_model = st.SentenceTransformer(modules=[TheirTransformer(bert_dir), theirs], device="cpu")
    np.testing.assert_allclose(ours_model.encode(TEXTS), theirs_model.encode(TEXTS), atol=1e-5)


def test_cross_encoder_old_positional_arguments(ce_dir, st, warnings_log):
    ours, theirs = omnivec.CrossEncoder(ce_dir, 1, 8), st.CrossEncoder(ce_dir, 1, 8)
    assert ours.num_labels == theirs.num_labels == 1 and ours.max_length == theirs.max_seq_length == 8
    assert "Passing `max_length` as a positional argument to CrossEncoder is deprecated" in warnings_log.text
    np.testing.assert_allclose(ours.predict(PAIRS), theirs.predict(PAIRS), atol=1e-5)
