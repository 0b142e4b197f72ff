"""The sparse losses and SpladeLoss's parts equal sentence-transformers' (1e-5), on the same vectors and on the same
tiny SPLADE checkpoint and batch; a model of the wrong kind, or a sparse loss without SpladeLoss, is refused."""

from __future__ import annotations

import pytest
import torch

import omnivec
from omnivec.train import sparse_losses as losses
from omnivec.train.sparse_trainer import SparseEncoderTrainer
from tests.fixtures.sparse_training import MARGINS, NEGATIVES, POSITIVES, QUERIES, prepared_columns

ATOL = 1e-5


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
        got = {k: v.item() for k, v in mine(ours, prepared_columns(ours, columns, True), labels).items()}
        expected = {k: v.item() for k, v in oracle(prepared_columns(theirs, columns, False), labels).items()}
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
        parts = loss(ours, prepared_columns(ours, columns, True), None)
        torch.stack(list(parts.values())).sum().backward()
        results.append(({k: v.item() for k, v in parts.items()},
                        {n: p.grad.clone() for n, p in ours.named_parameters() if p.grad is not None}))
    (plain, plain_grads), (cached, cached_grads) = results
    assert cached == pytest.approx(plain, abs=ATOL) and len(cached_grads) == len(plain_grads) > 0
    for name, grad in plain_grads.items():
        torch.testing.assert_close(cached_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)
    oracle = st_losses.CachedSpladeLoss(theirs, st_losses.SparseMultipleNegativesRankingLoss(theirs), **weights,
                                        mini_batch_size=2)
    expected = {k: v.item() for k, v in oracle(prepared_columns(theirs, columns, False), None).items()}
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
