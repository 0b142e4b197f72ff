"""Every loss gives sentence-transformers' loss value and gradients on the same checkpoint and batch; GradCache
gives the full batch's gradients."""

from __future__ import annotations

import pytest
import torch

import omnivec
from omnivec.train import cross_encoder_losses as ce_losses
from omnivec.train import losses

ATOL = 1e-5
QUERIES = ["how do cells divide", "capital of france", "what is a fox", "weather today", "guitar on stage",
           "vector search engines"]
POSITIVES = ["Cells divide by mitosis into two daughter cells.", "Paris is the capital of France.",
             "The quick brown fox jumps over the lazy dog.", "The weather today is sunny with a light breeze.",
             "A man is playing a guitar on the stage tonight.", "Search engines embed queries into vector spaces."]
NEGATIVES = POSITIVES[1:] + POSITIVES[:1]
SCORES = [0.9, 0.1, 0.5, 0.7, 0.3, 0.5]


@pytest.fixture(scope="module")
def pair(minilm_dir, st):
    """The same real model in both libraries, dropout off so both see the same network."""
    ours = omnivec.Embedder(minilm_dir, device="cpu")
    theirs = st.SentenceTransformer(minilm_dir, device="cpu")
    return ours.eval(), theirs.eval()


def _first_grad(model: torch.nn.Module) -> torch.Tensor:
    return next(p for p in model.parameters() if p.grad is not None).grad.clone()


def _run_ours(model, loss, columns, labels):
    model.zero_grad()
    value = loss(model, [model.prepare(c) for c in columns], labels)
    value.backward()
    return value.item(), _first_grad(model)


def _run_theirs(model, loss, columns, labels):
    model.zero_grad()
    value = loss([model.preprocess(c) for c in columns], labels)
    value.backward()
    return value.item(), _first_grad(model)


def _assert_same(ours, theirs):
    assert ours[0] == pytest.approx(theirs[0], abs=ATOL)
    torch.testing.assert_close(ours[1], theirs[1], atol=ATOL, rtol=1e-4)


@pytest.mark.parametrize("case", ["mnrl", "mnrl_symmetric", "mnrl_all_directions", "cosent", "cosine", "margin_mse",
                                  "matryoshka"])
def test_embedder_loss_matches_sentence_transformers(pair, st, case):
    from sentence_transformers.sentence_transformer import losses as st_losses

    ours, theirs = pair
    labels = torch.tensor(SCORES)
    columns = [QUERIES, POSITIVES]
    if case == "mnrl":
        columns = [QUERIES, POSITIVES, NEGATIVES]
        mine, oracle, labels = losses.MultipleNegativesRankingLoss(), st_losses.MultipleNegativesRankingLoss(theirs), None
    elif case == "mnrl_symmetric":
        mine = losses.MultipleNegativesRankingLoss(symmetric=True)
        oracle = st_losses.MultipleNegativesRankingLoss(theirs, directions=("query_to_doc", "doc_to_query"),
                                                        partition_mode="per_direction")
        labels = None
    elif case == "mnrl_all_directions":
        directions = ("query_to_doc", "doc_to_query", "query_to_query", "doc_to_doc")
        columns = [QUERIES, POSITIVES, NEGATIVES]
        mine = losses.MultipleNegativesRankingLoss(directions=directions, scale=7.0)
        oracle = st_losses.MultipleNegativesRankingLoss(theirs, directions=directions, scale=7.0)
        labels = None
    elif case == "cosent":
        mine, oracle = losses.CoSENTLoss(), st_losses.CoSENTLoss(theirs)
    elif case == "cosine":
        mine, oracle = losses.CosineSimilarityLoss(), st_losses.CosineSimilarityLoss(theirs)
    elif case == "margin_mse":
        columns = [QUERIES, POSITIVES, NEGATIVES]
        mine, oracle = losses.MarginMSELoss(), st_losses.MarginMSELoss(theirs)
    else:
        mine = losses.MatryoshkaLoss(losses.CoSENTLoss(), dims=[384, 128, 32], weights=[1.0, 0.5, 0.25])
        oracle = st_losses.MatryoshkaLoss(theirs, st_losses.CoSENTLoss(theirs), [384, 128, 32], [1.0, 0.5, 0.25])
    expected = _run_theirs(theirs, oracle, columns, labels if labels is not None else torch.zeros(len(QUERIES)))
    _assert_same(_run_ours(ours, mine, columns, labels), expected)


def test_gradcache_gradients_equal_full_batch(pair):
    """CachedMNRL in mini-batches of 2 gives the full-batch MNRL loss and every parameter's gradient."""
    model, _ = pair
    columns = [QUERIES, POSITIVES, NEGATIVES]
    full = losses.MultipleNegativesRankingLoss(symmetric=True)
    cached = losses.CachedMultipleNegativesRankingLoss(mini_batch_size=2, symmetric=True)
    grads = []
    for loss in (full, cached):
        model.zero_grad()
        value = loss(model, [model.prepare(c) for c in columns], None)
        value.backward()
        grads.append((value.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (full_value, full_grads), (cached_value, cached_grads) = grads
    assert cached_value == pytest.approx(full_value, abs=ATOL)
    assert full_grads.keys() == cached_grads.keys() and len(full_grads) > 90
    for name, grad in full_grads.items():
        torch.testing.assert_close(cached_grads[name], grad, atol=ATOL, rtol=1e-4, msg=name)


def test_gradcache_replays_dropout(pair):
    """In training mode the second pass sees the dropout masks of the first: the cached loss's gradient equals
    the gradient of the same loss recomputed under the captured random states."""
    model, _ = pair
    model.train()
    try:
        cached = losses.CachedMultipleNegativesRankingLoss(mini_batch_size=3)
        prepared = [model.prepare(c) for c in (QUERIES, POSITIVES)]
        torch.manual_seed(7)
        model.zero_grad()
        cached(model, prepared, None).backward()
        replayed = _first_grad(model)
        torch.manual_seed(7)  # the same random stream, consumed in the same order, without caching
        model.zero_grad()
        parts = [torch.cat([model.embed(p.select(s, s + 3)) for s in range(0, len(p), 3)]) for p in prepared]
        losses.MultipleNegativesRankingLoss().compute(parts, None).backward()
        torch.testing.assert_close(replayed, _first_grad(model), atol=ATOL, rtol=1e-4)
    finally:
        model.eval()


@pytest.fixture(scope="module")
def ce_pair(tmp_path_factory, bert_dir, st):
    folder = tmp_path_factory.mktemp("ce-loss")
    st.CrossEncoder(bert_dir, num_labels=1, device="cpu").save(str(folder))
    return omnivec.CrossEncoder(str(folder), device="cpu").eval(), st.CrossEncoder(str(folder), device="cpu").eval()


def _ce_run(model, loss, columns, labels, ours: bool):
    model.zero_grad()
    value = loss(model, columns, labels) if ours else loss(columns, labels)
    value.backward()
    return value.item(), _first_grad(model)


@pytest.mark.parametrize("case", ["bce", "mnrl", "margin_mse", "listnet", "lambda", "lambda_k", "lambdarank"])
def test_cross_encoder_loss_matches_sentence_transformers(ce_pair, case):
    from sentence_transformers.cross_encoder import losses as st_ce

    ours, theirs = ce_pair
    columns, labels = [QUERIES, POSITIVES], torch.tensor(SCORES)
    if case == "bce":
        mine, oracle = ce_losses.BinaryCrossEntropyLoss(pos_weight=2.0), st_ce.BinaryCrossEntropyLoss(
            theirs, pos_weight=torch.tensor(2.0))
    elif case == "mnrl":  # every in-batch negative (no random draw), plus a hard-negative column
        columns, labels = [QUERIES, POSITIVES, NEGATIVES], None
        mine, oracle = (ce_losses.MultipleNegativesRankingLoss(num_negatives=None),
                        st_ce.MultipleNegativesRankingLoss(theirs, num_negatives=None))
    elif case == "margin_mse":
        columns = [QUERIES, POSITIVES, NEGATIVES]
        mine, oracle = ce_losses.MarginMSELoss(), st_ce.MarginMSELoss(theirs)
    else:
        lists = [[POSITIVES[i], NEGATIVES[i], POSITIVES[(i + 2) % 6]][: 1 + i % 3] + [NEGATIVES[(i + 3) % 6]]
                 for i in range(6)]
        columns = [QUERIES, lists]
        labels = [torch.tensor([3.0, 0.0, 1.0, 2.0][: len(docs) - 1] + [0.5]) for docs in lists]
        if case == "listnet":
            mine, oracle = ce_losses.ListNetLoss(mini_batch_size=5), st_ce.ListNetLoss(theirs, mini_batch_size=5)
        elif case == "lambdarank":
            mine = ce_losses.LambdaLoss(weighting="lambdarank")
            oracle = st_ce.LambdaLoss(theirs, weighting_scheme=st_ce.LambdaRankScheme())
        else:
            k = 2 if case == "lambda_k" else None
            mine, oracle = ce_losses.LambdaLoss(k=k), st_ce.LambdaLoss(theirs, k=k)
    _assert_same(_ce_run(ours, mine, columns, labels, True), _ce_run(theirs, oracle, columns, labels, False))


def test_cross_entropy_loss_matches_sentence_transformers(tmp_path, bert_dir, st):
    from sentence_transformers.cross_encoder import losses as st_ce

    st.CrossEncoder(bert_dir, num_labels=3, device="cpu").save(str(tmp_path))
    ours, theirs = omnivec.CrossEncoder(str(tmp_path), device="cpu").eval(), st.CrossEncoder(str(tmp_path)).eval()
    labels = torch.tensor([0, 1, 2, 1, 0, 2])
    _assert_same(_ce_run(ours, ce_losses.CrossEntropyLoss(), [QUERIES, POSITIVES], labels, True),
                 _ce_run(theirs, st_ce.CrossEntropyLoss(theirs), [QUERIES, POSITIVES], labels, False))


def test_generative_reranker_trains_through_logit_score(tmp_path, qwen3_lm, st):
    """BCE on a causal-LM reranker: the logit(yes) - logit(no) head gives sentence-transformers' loss and the
    gradient reaches the language model's weights."""
    from sentence_transformers.cross_encoder import losses as st_ce

    st.CrossEncoder(qwen3_lm, device="cpu").save(str(tmp_path))
    ours, theirs = omnivec.CrossEncoder(str(tmp_path), device="cpu").eval(), st.CrossEncoder(str(tmp_path)).eval()
    assert ours.logit_score.true_token_id != ours.logit_score.false_token_id
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    mine = _ce_run(ours, ce_losses.BinaryCrossEntropyLoss(), [QUERIES, POSITIVES], labels, True)
    _assert_same(mine, _ce_run(theirs, st_ce.BinaryCrossEntropyLoss(theirs), [QUERIES, POSITIVES], labels, False))
    assert mine[1].abs().sum() > 0
