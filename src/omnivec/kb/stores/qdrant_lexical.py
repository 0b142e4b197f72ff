"""BM25 in Qdrant: a lexical collection holds one named sparse vector, "bm25", with ``Modifier.IDF``; its term
weights are computed here, the IDF by Qdrant at query time (over the live points: local mode recounts document
frequencies on every write, see ``qdrant_client/local/local_collection.py``; a server from its sparse index).

A document's terms are the words of :func:`~omnivec.kb.stores.lexical.analyze` (the same tokenizer, PyStemmer's
Snowball stemmer, stop words and folding as LanceDB's FTS index) plus its
:func:`~omnivec.kb.stores.lexical.code_terms`, kept whole in a namespace of their own (``code:e-4012``, which no
word term can equal). Each term ``t`` with frequency ``tf`` gets BM25's saturated term frequency

    w(t) = tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / AVG_LENGTH)),  k1 = 1.2, b = 0.75

with ``dl`` the document's number of word terms. Qdrant then scores a query as the sum over its terms of
``idf(t) * w(t)`` with ``idf(t) = ln(1 + (N - n(t) + 0.5) / (n(t) + 0.5))``: exactly BM25 (Lucene's variant, the
one Lance uses), except that the average document length is the fixed ``AVG_LENGTH`` rather than the collection's
current mean, so that a stored weight never needs updating as the collection grows. A query's terms each weigh 1.

Term ids are the first four bytes of the term's BLAKE2b digest (stable across processes, platforms and Python
versions, unlike ``hash()``); two terms of one document that collide add their weights."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np

from omnivec.kb.stores.base import LexicalSettings, SparseVector, code_terms
from omnivec.kb.stores.lexical import analyze

K1, B = 1.2, 0.75
# A 256-token chunk (the KB's default) holds some 190 words, about 140 after stop words; page texts, headings and
# transcript windows are shorter. 128 is their typical length; BM25 is not sensitive to it within a factor of two.
AVG_LENGTH = 128.0
BM25_VECTOR, SPARSE_VECTOR = "bm25", "sparse"


def term_id(term: str) -> int:
    """A stable 32-bit id for ``term``."""
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "little")


def terms(text: str, settings: LexicalSettings) -> tuple[list[str], list[str]]:
    """The word terms and the namespaced code terms of ``text``."""
    return analyze(text, settings), [f"code:{code}" for code in code_terms(text)]


def document_vector(text: str, settings: LexicalSettings) -> SparseVector:
    """The BM25 term weights of a document whose indexed text is ``text``."""
    words, codes = terms(text, settings)
    norm = K1 * (1 - B + B * len(words) / AVG_LENGTH)
    weights: dict[int, float] = {}
    for term, tf in Counter(words + codes).items():
        index = term_id(term)
        weights[index] = weights.get(index, 0.0) + tf * (K1 + 1) / (tf + norm)
    return _sparse(weights)


def query_vector(query: str, settings: LexicalSettings) -> SparseVector:
    """Each distinct term of ``query`` with weight 1 (Qdrant multiplies in the IDF)."""
    words, codes = terms(query, settings)
    return _sparse(dict.fromkeys((term_id(t) for t in words + codes), 1.0))


def _sparse(weights: dict[int, float]) -> SparseVector:
    indices = np.fromiter(weights, dtype=np.int64, count=len(weights))
    order = np.argsort(indices)
    return SparseVector(indices[order], np.fromiter(weights.values(), dtype=np.float32, count=len(weights))[order])
