"""encode() inputs as sentence-transformers code passes them: NumPy string arrays, pandas Series, datasets Columns,
other sequences; ``sentences=``, ``output_value=None`` and ``chunk_size``. Vectors compared with sentence-transformers
on the same checkpoint; arrays of numbers stay refused as ambiguous."""

from __future__ import annotations

import collections
import logging

import numpy as np
import pytest

import omnivec
from omnivec.errors import InputError
from omnivec.modules import renamed_args

TEXTS = ["a fox jumps over the lazy dog", "hello world", "x", "Zürich und München — café"]


@pytest.fixture(scope="module")
def models(bert_dir, st):
    return omnivec.SentenceTransformer(bert_dir, device="cpu"), st.SentenceTransformer(bert_dir, device="cpu")


def _batches():
    import datasets
    import pandas as pd

    return {
        "numpy str": np.array(TEXTS),
        "numpy object": np.array(TEXTS, dtype=object),
        "pandas Series": pd.Series(TEXTS, index=[10, 11, 12, 13]),  # positions count, not the index labels
        "pandas column .values": pd.DataFrame({"text": TEXTS})["text"].values,
        "datasets Column": datasets.Dataset.from_dict({"text": TEXTS})["text"],
        "tuple": tuple(TEXTS),
        "UserList": collections.UserList(TEXTS),
    }


@pytest.mark.parametrize("kind", list(_batches()))
def test_sequences_of_strings_are_a_batch_of_texts(models, kind):
    ours, theirs = models
    expected = theirs.encode(list(TEXTS))
    got = ours.encode(_batches()[kind])
    assert got.shape == expected.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    if not kind.startswith("pandas") and kind != "UserList":  # sentence-transformers takes only the others as such
        np.testing.assert_allclose(got, theirs.encode(_batches()[kind]), atol=1e-5)


@pytest.mark.parametrize("numbers", [np.array([0.1, 0.2, 0.3], dtype=np.float32), np.zeros((2, 8)),
                                     np.arange(5)])
def test_arrays_of_numbers_stay_refused_as_ambiguous(models, numbers):
    with pytest.raises(InputError, match="ambiguous.*'sampling_rate'"):
        models[0].encode(numbers)


def test_a_2d_array_of_strings_is_refused_with_its_shape(models):
    with pytest.raises(InputError, match=r"1-D.*\(2, 2\)"):
        models[0].encode(np.array([["a", "b"], ["c", "d"]]))


def test_sentences_keyword_with_deprecation_warning(models, caplog):
    ours, theirs = models
    renamed_args._warned.clear()
    with caplog.at_level(logging.WARNING, logger="omnivec"):
        got = ours.encode(sentences=TEXTS)
    assert "The `sentences` argument was renamed and is now deprecated. Please use `inputs` instead." in caplog.text
    np.testing.assert_allclose(got, theirs.encode(sentences=TEXTS), atol=1e-5)


def test_output_value_none_gives_every_output_per_input(models):
    ours, theirs = models
    got, expected = ours.encode(TEXTS, output_value=None), theirs.encode(TEXTS, output_value=None)
    assert isinstance(got, list) and len(got) == len(TEXTS)
    for row, peer in zip(got, expected, strict=True):
        assert {"input_ids", "attention_mask", "token_embeddings", "sentence_embedding"} <= set(row)
        tokens = int(peer["attention_mask"].sum())  # sentence-transformers pads each row to its batch
        assert row["input_ids"].tolist() == peer["input_ids"][:tokens].tolist()
        np.testing.assert_allclose(row["token_embeddings"].numpy(), peer["token_embeddings"][:tokens].numpy(), atol=1e-5)
        np.testing.assert_allclose(row["sentence_embedding"].numpy(), peer["sentence_embedding"].numpy(), atol=1e-5)
    single = ours.encode("hello world", output_value=None)
    assert isinstance(single, dict)
    np.testing.assert_allclose(single["sentence_embedding"].numpy(),
                               theirs.encode("hello world", output_value=None)["sentence_embedding"].numpy(), atol=1e-5)
    truncated = ours.encode(TEXTS[:1], output_value=None, truncate_dim=8)[0]["sentence_embedding"]
    assert truncated.shape == (8,)


def test_chunk_size_is_accepted_and_checked(models):
    ours, theirs = models
    np.testing.assert_allclose(ours.encode(TEXTS, chunk_size=2), theirs.encode(TEXTS, chunk_size=2), atol=1e-5)
    with pytest.raises(InputError, match="chunk_size"):
        ours.encode(TEXTS, chunk_size=0)


def test_text_that_is_not_valid_unicode_is_named(models):
    ours, _ = models
    with pytest.raises(InputError, match=r"Input at index 1 holds text that is not valid Unicode"):
        ours.encode(["fine", "broken \ud800 text"])
    with pytest.raises(InputError, match=r"Input at index 0 holds text that is not valid Unicode"):
        ours.encode([{"text": "\udc80"}])
