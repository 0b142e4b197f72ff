"""CSR SparseEncoders (Transformer + mean Pooling + SparseAutoEncoder): sentence-transformers 6 parity on a tiny random
BERT: folders both ways, encode / max_active_dims / similarity / decode, CSRLoss and CSRReconstructionLoss values and
gradients, training steps on both trainers, bad settings, and the refusal of dense models (with the recipe that
builds sentence-transformers' conversion)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import omnivec
from omnivec.errors import ConfigError, ModelLoadError
from omnivec.modules import Pooling
from omnivec.sparse_encoder.losses import CSRLoss, CSRReconstructionLoss, FlopsLoss, SparseMultipleNegativesRankingLoss
from omnivec.sparse_encoder.models import SparseAutoEncoder, Transformer
from omnivec.sparse_encoder.modules import SparseAutoEncoder as SparseAutoEncoderFromModules
from omnivec.train.sparse_trainer import SparseEncoderTrainer
from omnivec.training_args import SparseEncoderTrainingArguments
from tests.fixtures.checkpoints import TEXTS
from tests.fixtures.sparse_training import POSITIVES, QUERIES

ATOL = 1e-5
PROMPTS = {"query": "query: ", "document": "passage: "}
SAE = dict(hidden_dim=64, k=8, k_aux=16)


def dense(x) -> torch.Tensor:
    return x.to_dense() if x.is_sparse else x


def max_diff(a, b) -> float:
    return (dense(a) - dense(b)).abs().max().item()


def st_csr(st, bert: str, **sae):
    """A CSR model built from sentence-transformers' modules, the autoencoder initialized from seed 0."""
    from sentence_transformers.sentence_transformer.modules import Pooling as STPooling
    from sentence_transformers.sparse_encoder.modules import SparseAutoEncoder as STSparseAutoEncoder
    from sentence_transformers.sparse_encoder.modules import Transformer as STTransformer

    transformer = STTransformer(bert)
    pooling = STPooling(transformer.get_embedding_dimension(), "mean")
    torch.manual_seed(0)
    autoencoder = STSparseAutoEncoder(pooling.get_embedding_dimension(), **{**SAE, **sae})
    return st.SparseEncoder(modules=[transformer, pooling, autoencoder], device="cpu", prompts=PROMPTS)


@pytest.fixture(scope="module")
def csr_dir(tmp_path_factory, bert_no_dropout_dir, st) -> str:
    folder = tmp_path_factory.mktemp("csr-st")
    st_csr(st, bert_no_dropout_dir).save(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def pair(csr_dir, st):
    return omnivec.SparseEncoder(csr_dir, device="cpu"), st.SparseEncoder(csr_dir, device="cpu")


def variant(csr_dir: str, folder: Path, **config) -> str:
    """A copy of the CSR folder with autoencoder settings changed (the weights stay)."""
    shutil.copytree(csr_dir, folder)
    path = folder / "2_SparseAutoEncoder" / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **config}))
    return str(folder)


def test_loads_sentence_transformers_folder_and_encodes_the_same(pair):
    ours, peer = pair
    assert [type(m).__name__ for m in ours] == ["Transformer", "Pooling", "SparseAutoEncoder"]
    assert ours.get_sentence_embedding_dimension() == 64  # the latents, known before any encode
    assert ours.max_active_dims == peer.max_active_dims == 8  # the autoencoder's k, saved by sentence-transformers
    for method in ("encode", "encode_query", "encode_document"):
        a, b = getattr(ours, method)(TEXTS, batch_size=3), getattr(peer, method)(TEXTS, batch_size=3)
        assert a.is_sparse and a.shape == b.shape == (len(TEXTS), 64)
        assert max_diff(a, b) < ATOL, (method, max_diff(a, b))
        assert ((dense(a) != 0).sum(dim=1) == 8).all() and dense(b).abs().max() > 0.1
    # the prompts reach the model: queries differ from plain encode
    assert max_diff(ours.encode_query(TEXTS), ours.encode(TEXTS)) > 1e-3
    assert max_diff(ours.encode(TEXTS[0]), peer.encode(TEXTS[0])) < ATOL
    for limit in (3, 64):  # the autoencoder keeps the call's limit of latents (all of them: the positive ones)
        a, b = ours.encode(TEXTS, max_active_dims=limit), peer.encode(TEXTS, max_active_dims=limit)
        active = (dense(a) != 0).sum(dim=1).max().item()
        assert max_diff(a, b) < ATOL and (active == 3 if limit == 3 else 8 < active < 64)
    # sentence-transformers fails above the latent count (torch.topk); omnivec keeps all of them
    assert max_diff(ours.encode(TEXTS, max_active_dims=100), peer.encode(TEXTS, max_active_dims=64)) < ATOL


def test_similarity_decode_sparsity(pair):
    ours, peer = pair
    a, b = ours.encode(TEXTS), peer.encode(TEXTS)
    q, qp = ours.encode_query(QUERIES), peer.encode_query(QUERIES)
    assert max_diff(ours.similarity(q, a), peer.similarity(qp, b)) < ATOL
    pairwise = peer.similarity_pairwise(dense(qp), dense(b)[:6])
    assert max_diff(ours.similarity_pairwise(dense(q), dense(a)[:6]), pairwise) < ATOL
    ours.similarity_fn_name = peer.similarity_fn_name = "cosine"
    try:
        assert max_diff(ours.similarity(q, a), peer.similarity(qp, b)) < ATOL
    finally:
        ours.similarity_fn_name, peer.similarity_fn_name = "dot", None
    assert ours.sparsity(a) == pytest.approx(peer.sparsity(b), abs=1e-6)
    for top_k in (None, 3):
        decoded, oracle = ours.decode(a, top_k=top_k), peer.decode(b, top_k=top_k)
        assert [[t for t, _ in row] for row in decoded] == [[t for t, _ in row] for row in oracle]
        assert all(w == pytest.approx(v, abs=ATOL) for row, orow in zip(decoded, oracle, strict=True)
                   for (_, w), (_, v) in zip(row, orow, strict=True))


def test_saved_by_omnivec_loads_in_sentence_transformers(pair, bert_no_dropout_dir, st, tmp_path):
    ours, _ = pair
    ours.save(str(tmp_path / "resaved"))
    peer = st.SparseEncoder(str(tmp_path / "resaved"), device="cpu")
    for method in ("encode", "encode_query", "encode_document"):
        assert max_diff(getattr(ours, method)(TEXTS), getattr(peer, method)(TEXTS)) < ATOL, method
    # built from omnivec's modules: the same seed gives sentence-transformers' initial weights
    transformer = Transformer(bert_no_dropout_dir)
    pooling = Pooling(transformer.get_embedding_dimension(), "mean")
    torch.manual_seed(0)
    built = omnivec.SparseEncoder(modules=[transformer, pooling, SparseAutoEncoder(32, **SAE)], device="cpu",
                                  prompts=PROMPTS)
    assert built.max_active_dims == 8 and built.get_sentence_embedding_dimension() == 64
    built.save(str(tmp_path / "built"))
    config = json.loads((tmp_path / "built" / "2_SparseAutoEncoder" / "config.json").read_text())
    assert config == {"input_dim": 32, "hidden_dim": 64, "k": 8, "k_aux": 16, "normalize": False, "dead_threshold": 30}
    peer = st.SparseEncoder(str(tmp_path / "built"), device="cpu")
    oracle = st_csr(st, bert_no_dropout_dir)
    assert max_diff(built.encode(TEXTS), peer.encode(TEXTS)) < ATOL
    assert max_diff(built.encode_document(TEXTS), oracle.encode_document(TEXTS)) < ATOL


def test_reads_a_legacy_bin_with_both_weight_names(pair, csr_dir, st, tmp_path):
    """sentence-transformers' state_dict holds the tied matrix twice (encoder.weight, decoder.linear.weight)."""
    folder = Path(shutil.copytree(csr_dir, tmp_path / "bin"))
    sae = folder / "2_SparseAutoEncoder"
    state = pair[1][2].state_dict()
    assert {"encoder.weight", "decoder.linear.weight"} <= state.keys()
    (sae / "model.safetensors").unlink()
    torch.save(state, sae / "pytorch_model.bin")
    assert max_diff(omnivec.SparseEncoder(str(folder), device="cpu").encode(TEXTS), pair[1].encode(TEXTS)) < ATOL


@pytest.mark.parametrize("settings", [{}, {"normalize": True, "dead_threshold": 0}])
def test_csr_losses_and_gradients_equal_sentence_transformers(settings, csr_dir, st, tmp_path):
    """One training-mode batch: every loss part, a gradient of the autoencoder and of the BERT, and the dead-latent
    counts equal the oracle's. ``dead_threshold=0`` makes latents dead after one pass, so the auxiliary code is not
    empty."""
    from sentence_transformers.sparse_encoder import losses as st_losses

    folder = variant(csr_dir, tmp_path / "csr", **settings) if settings else csr_dir
    ours, peer = omnivec.SparseEncoder(folder, device="cpu").train(), st.SparseEncoder(folder, device="cpu").train()
    columns = [QUERIES, POSITIVES]
    got = CSRLoss(ours, beta=0.1)(ours, [ours.prepare(c) for c in columns], None)
    expected = st_losses.CSRLoss(peer, beta=0.1)([peer.preprocess(c) for c in columns], None)
    assert got.keys() == expected.keys() == {"reconstruction_loss_k", "reconstruction_loss_4k",
                                             "reconstruction_loss_aux", "base_loss"}
    for key, value in expected.items():
        assert got[key].item() == pytest.approx(value.item(), abs=ATOL), key
    sum(got.values()).backward()
    sum(expected.values()).backward()
    assert max_diff(ours[2].encoder.weight.grad, peer[2].encoder.weight.grad) < ATOL
    assert max_diff(ours[2].pre_bias.grad, peer[2].pre_bias.grad) < ATOL
    ours_bert = dict(ours[0].named_parameters())["model.encoder.layer.0.attention.self.query.weight"]
    peer_bert = dict(peer[0].named_parameters())["model.encoder.layer.0.attention.self.query.weight"]
    assert ours_bert.grad.abs().max() > 0 and max_diff(ours_bert.grad, peer_bert.grad) < ATOL
    assert torch.equal(ours[2].stats_last_nonzero, peer[2].stats_last_nonzero)
    assert ours[2].stats_last_nonzero.max().item() == 4  # two columns, two codes (k, 4k) each
    # another base loss, and the reconstruction part alone on the same outputs
    ours.eval(), peer.eval()
    with torch.no_grad():
        outputs = [ours.embed_features(c) for c in columns]
        parts = CSRReconstructionLoss(ours, beta=0.5).compute(outputs)
        oracle = st_losses.CSRReconstructionLoss(peer, beta=0.5).compute_loss_from_embeddings(
            [peer(peer.preprocess(c)) for c in columns])
    assert {k: v.item() for k, v in parts.items()} == pytest.approx({k: v.item() for k, v in oracle.items()}, abs=ATOL)
    # the auxiliary code holds dead latents only: none after 4 passes with the default threshold of 30
    assert (outputs[0]["auxiliary_embedding"].abs().sum().item() > 0) == bool(settings)


def _args(tmp_path, cls=SparseEncoderTrainingArguments):
    return cls(output_dir=str(tmp_path / "run"), report_to="none", save_strategy="no", disable_tqdm=True,
               per_device_train_batch_size=6, seed=0, optim="sgd", learning_rate=0.5, num_train_epochs=3,
               logging_steps=1)


def test_trainers_reach_the_same_vectors(csr_dir, st, tmp_path):
    """Three SGD steps of one batch with CSRLoss on both trainers: the same model afterwards (SGD, not Adam: Adam
    turns rounding-level gradient differences into whole steps)."""
    from datasets import Dataset
    from sentence_transformers.sparse_encoder import SparseEncoderTrainer as OracleTrainer
    from sentence_transformers.sparse_encoder import SparseEncoderTrainingArguments as OracleArguments
    from sentence_transformers.sparse_encoder import losses as st_losses

    data = Dataset.from_dict({"anchor": QUERIES, "positive": POSITIVES})
    ours, peer = omnivec.SparseEncoder(csr_dir, device="cpu"), st.SparseEncoder(csr_dir, device="cpu")
    before = ours.encode(TEXTS, convert_to_sparse_tensor=False)
    trainer = SparseEncoderTrainer(ours, _args(tmp_path), train_dataset=data, loss=CSRLoss(ours))
    trainer.train()
    OracleTrainer(peer, _args(tmp_path, OracleArguments), train_dataset=data, loss=st_losses.CSRLoss(peer)).train()
    ours.eval(), peer.eval()
    after = ours.encode(TEXTS, convert_to_sparse_tensor=False)
    assert max_diff(after, peer.encode(TEXTS, convert_to_sparse_tensor=False)) < ATOL
    assert max_diff(after, before) > 0.01  # the steps moved the model
    assert torch.equal(ours[2].stats_last_nonzero, peer[2].stats_last_nonzero)
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == 3 and {"reconstruction_loss_k", "base_loss"} <= logged[-1].keys()


def test_bad_settings_are_refused_by_name(csr_dir, bert_dir, pair, tmp_path):
    for kwargs, name in [({"k": 65}, "k"), ({"k": 0}, "k"), ({"k_aux": 65}, "k_aux"), ({"k_aux": -1}, "k_aux"),
                         ({"hidden_dim": 0}, "hidden_dim"), ({"dead_threshold": 1.5}, "dead_threshold"),
                         ({"normalize": "yes"}, "normalize")]:
        with pytest.raises(ConfigError, match=rf"SparseAutoEncoder {name} must be"):
            SparseAutoEncoder(32, **{**SAE, **kwargs})
    with pytest.raises(ConfigError, match="input_dim"):
        SparseAutoEncoder(0)
    with pytest.raises(ModelLoadError, match=r"2_SparseAutoEncoder.*SparseAutoEncoder k must be an integer from 1 to "
                                             r"hidden_dim \(64\), got 100"):
        omnivec.SparseEncoder(variant(csr_dir, tmp_path / "bad", k=100), device="cpu")
    # a plain BertModel checkpoint: refused, with the modules that build a CSR model
    with pytest.raises(ModelLoadError, match=r"ForMaskedLM.*SparseAutoEncoder\(32, hidden_dim=4 \* 32, k=256"):
        omnivec.SparseEncoder(bert_dir, device="cpu")
    ours = pair[0]
    with pytest.raises(TypeError, match="CSRLoss: argument 'loss'"):
        CSRLoss(ours, loss=FlopsLoss(ours))
    with pytest.raises(ConfigError, match="CSRReconstructionLoss is a part of CSRLoss"):
        CSRReconstructionLoss(ours)(ours, [ours.prepare(QUERIES)], None)
    assert SparseAutoEncoderFromModules is SparseAutoEncoder is omnivec.modules.SparseAutoEncoder
    assert CSRLoss(ours).config() == {"beta": 0.1, "gamma": 1.0, "loss": "SparseMultipleNegativesRankingLoss"}
    assert isinstance(CSRLoss(ours).loss, SparseMultipleNegativesRankingLoss)


def test_csr_loss_on_a_splade_model_names_the_missing_autoencoder(splade_st_dir):
    splade = omnivec.SparseEncoder(splade_st_dir, device="cpu")
    with pytest.raises(ConfigError, match="ending in a SparseAutoEncoder"):
        CSRLoss(splade)(splade, [splade.prepare(QUERIES), splade.prepare(POSITIVES)], None)


def test_a_dense_model_folder_is_refused_with_sentence_transformers_conversion_as_recipe(bert_no_dropout_dir, st,
                                                                                        tmp_path):
    """sentence-transformers turns a SentenceTransformer folder into a CSR model with an untrained autoencoder;
    omnivec refuses it (no dense vectors passed off as sparse), and the recipe its message gives builds exactly
    sentence-transformers' converted model (same seed, same weights, same vectors). A folder without model_type
    (sentence-transformers 2) counts as a SentenceTransformer one, as there."""
    from sentence_transformers.base.modules import Transformer as STTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling as STPooling

    folder = tmp_path / "dense"
    st.SentenceTransformer(modules=[STTransformer(bert_no_dropout_dir), STPooling(32, "mean")], device="cpu").save(str(folder))
    recipe = r"SparseAutoEncoder\(32, hidden_dim=4 \* 32, k=32 // 4, k_aux=32 // 2\)"
    with pytest.raises(ModelLoadError, match=rf"dense SentenceTransformer model, not a SparseEncoder.*{recipe}"):
        omnivec.SparseEncoder(str(folder), device="cpu")
    config_path = folder / "config_sentence_transformers.json"
    config_path.write_text(json.dumps({k: v for k, v in json.loads(config_path.read_text()).items()
                                       if k != "model_type"}))
    with pytest.raises(ModelLoadError, match="dense SentenceTransformer model"):
        omnivec.SparseEncoder(str(folder), device="cpu")
    torch.manual_seed(0)
    converted = st.SparseEncoder(str(folder), device="cpu")
    torch.manual_seed(0)
    dense_model = omnivec.SentenceTransformer(str(folder), device="cpu")
    ours = omnivec.SparseEncoder(modules=[*dense_model, SparseAutoEncoder(32, hidden_dim=4 * 32, k=32 // 4,
                                                                          k_aux=32 // 2)], device="cpu")
    assert ours.max_active_dims == converted.max_active_dims == 8
    assert max_diff(ours.encode(TEXTS), converted.encode(TEXTS)) < ATOL


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_a_csr_model_runs_on_the_exported_backends(pair, csr_dir, tmp_path, backend):
    """Only its dense backbone is exported: the autoencoder runs in torch on what the runtime returns."""
    ours, _ = pair
    folder = tmp_path / "csr"
    shutil.copytree(csr_dir, folder)  # the export is written into the model's folder
    exported = omnivec.SparseEncoder(str(folder), device="cpu", backend=backend)
    assert max_diff(exported.encode(TEXTS), ours.encode(TEXTS)) <= ATOL
    assert max_diff(exported.encode_query(TEXTS[:2]), ours.encode_query(TEXTS[:2])) <= ATOL
