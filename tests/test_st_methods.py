"""The model methods and attributes sentence-transformers code calls: tokenize, get_max_seq_length,
set_pooling_include_prompt, the truncate_embeddings context managers, evaluate, push_to_hub (against a local stand-in
for the Hub API), save with a model card, and the module / CrossEncoder attributes. Compared with
sentence-transformers on the same checkpoint."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import omnivec
from omnivec.errors import ConfigError, InputError

TEXTS = ["a fox jumps over the lazy dog", "hello world", "x"]
PAIRS = [("what is a fox", "a fox is an animal"), ("hello", "world")]


@pytest.fixture(scope="module")
def models(bert_dir, st):
    return omnivec.SentenceTransformer(bert_dir, device="cpu"), st.SentenceTransformer(bert_dir, device="cpu")


@pytest.fixture(scope="module")
def cross_encoders(bert_dir, st, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ce")
    st.CrossEncoder(bert_dir, num_labels=1, device="cpu").save(str(folder))
    return omnivec.CrossEncoder(str(folder), device="cpu"), st.CrossEncoder(str(folder), device="cpu")


def test_tokenize_and_max_seq_length(models):
    ours, theirs = models
    got, expected = ours.tokenize(TEXTS), theirs.tokenize(TEXTS)
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert torch.equal(got[key], expected[key]), key
    assert got["modality"] == expected["modality"] == "text"
    assert ours.get_max_seq_length() == theirs.get_max_seq_length() == 64
    with pytest.raises(InputError, match="list of texts"):
        ours.tokenize("one string")


def test_set_pooling_include_prompt(models):
    ours, theirs = models
    try:
        for include in (False, True):
            ours.set_pooling_include_prompt(include)
            theirs.set_pooling_include_prompt(include)
            assert ours[1].include_prompt is include
            got, expected = ours.encode(TEXTS, prompt="query: "), theirs.encode(TEXTS, prompt="query: ")
            np.testing.assert_allclose(got, expected, atol=1e-5)
        assert not np.allclose(ours.encode(TEXTS, prompt="query: "), (ours.set_pooling_include_prompt(False),
                                                                        ours.encode(TEXTS, prompt="query: "))[1])
    finally:
        ours.set_pooling_include_prompt(True)
        theirs.set_pooling_include_prompt(True)


def test_truncate_embeddings_context_managers(models):
    ours, theirs = models
    with ours.truncate_embeddings(8), theirs.truncate_embeddings(8):
        np.testing.assert_allclose(ours.encode(TEXTS), theirs.encode(TEXTS), atol=1e-5)
        assert ours.encode(TEXTS).shape == (3, 8) and ours.get_sentence_embedding_dimension() == 8
    assert ours.truncate_dim is None and ours.encode(TEXTS).shape == (3, 32)
    with pytest.warns(FutureWarning, match="truncate_embeddings"):
        with ours.truncate_sentence_embeddings(4):
            assert ours.encode(TEXTS).shape == (3, 4)
    assert ours.truncate_dim is None


def test_evaluate(models, tmp_path):
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator as TheirEvaluator

    from omnivec.train.evaluation.similarity import EmbeddingSimilarityEvaluator

    ours, theirs = models
    left, right, gold = ["a fox", "a dog", "hello", "rain"], ["an animal", "a cat", "hi", "sun"], [0.9, 0.7, 0.8, 0.1]
    got = ours.evaluate(EmbeddingSimilarityEvaluator(left, right, gold, name="sts"))
    expected = theirs.evaluate(TheirEvaluator(left, right, gold, name="sts"))
    assert got["sts_spearman_cosine"] == pytest.approx(expected["sts_spearman_cosine"], abs=1e-6)
    assert got["sts_pearson_cosine"] == pytest.approx(expected["sts_pearson_cosine"], abs=1e-5)
    # an output_path is created, and handed to evaluators that take one (as sentence-transformers' evaluators do)
    again = ours.evaluate(EmbeddingSimilarityEvaluator(left, right, gold, name="sts"), output_path=str(tmp_path / "a"))
    assert again == got and (tmp_path / "a").is_dir()

    def writes_csv(model, output_path=None, epoch=-1, steps=-1):
        Path(output_path, "results.csv").write_text("score\n0.5\n", encoding="utf-8")
        return 0.5

    assert ours.evaluate(writes_csv, output_path=str(tmp_path / "b")) == 0.5
    assert (tmp_path / "b" / "results.csv").is_file()
    with pytest.raises(InputError, match="evaluator"):
        ours.evaluate("not an evaluator")  # type: ignore[arg-type]


class FakeHub:
    """Stands in for the Hub API: records each call and keeps a copy of every uploaded folder."""

    def __init__(self, root: Path, has_readme: bool) -> None:
        self.root, self.has_readme, self.calls, self.uploads = root, has_readme, [], []

    def install(self, monkeypatch) -> None:
        import huggingface_hub
        import sentence_transformers.base.model as st_model

        hub = self

        def create_repo(api, repo_id, private=None, repo_type=None, exist_ok=False, **_):
            hub.calls.append(("create_repo", repo_id, private, exist_ok))
            return SimpleNamespace(repo_id=repo_id if "/" in repo_id else f"me/{repo_id}")

        def create_branch(api, repo_id, branch, exist_ok=False, **_):
            hub.calls.append(("create_branch", repo_id, branch))

        def upload_folder(api, repo_id, folder_path, commit_message=None, create_pr=False, revision=None, **_):
            target = hub.root / f"upload{len(hub.uploads)}"
            shutil.copytree(folder_path, target)
            hub.uploads.append(target)
            hub.calls.append(("upload_folder", repo_id, commit_message, create_pr, revision))
            return SimpleNamespace(commit_url=f"https://hub.local/{repo_id}/commit/1",
                                   pr_url=f"https://hub.local/{repo_id}/discussions/1")

        def file_exists(api, repo_id, filename, revision=None, **_):
            return hub.has_readme and filename == "README.md"

        for name, fake in [("create_repo", create_repo), ("create_branch", create_branch),
                           ("upload_folder", upload_folder), ("file_exists", file_exists)]:
            monkeypatch.setattr(huggingface_hub.HfApi, name, fake)
        monkeypatch.setattr(st_model, "load_file_path",
                            lambda *a, **k: "README.md" if hub.has_readme else None)


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_push_to_hub_uploads_what_sentence_transformers_uploads(models, tmp_path, monkeypatch, st):
    ours, theirs = models
    hub = FakeHub(tmp_path, has_readme=False)
    hub.install(monkeypatch)
    assert ours.push_to_hub("tiny") == "https://hub.local/me/tiny/commit/1"
    assert theirs.push_to_hub("tiny") == "https://hub.local/me/tiny/commit/1"
    (ours_call, theirs_call) = [c for c in hub.calls if c[0] == "upload_folder"]
    assert ours_call == theirs_call == ("upload_folder", "me/tiny", "Add new SentenceTransformer model", False, None)
    ours_upload, theirs_upload = hub.uploads
    assert "README.md" in _files(ours_upload)
    assert {f for f in _files(theirs_upload) if "tokenizer" not in f} <= _files(ours_upload)
    reloaded = st.SentenceTransformer(str(ours_upload), device="cpu")  # what was pushed loads in sentence-transformers
    np.testing.assert_allclose(reloaded.encode(TEXTS), theirs.encode(TEXTS), atol=1e-5)


def test_push_to_hub_keeps_an_existing_card_and_opens_prs(models, tmp_path, monkeypatch):
    ours, _ = models
    hub = FakeHub(tmp_path, has_readme=True)
    hub.install(monkeypatch)
    url = ours.push_to_hub("me/tiny", revision="dev", create_pr=True, commit_message="update")
    assert url == "https://hub.local/me/tiny/discussions/1"
    assert ("create_branch", "me/tiny", "dev") in hub.calls
    assert hub.calls[-1] == ("upload_folder", "me/tiny", "update", True, "dev")
    assert "README.md" not in _files(hub.uploads[0])  # the Hub's card is kept
    ours.push_to_hub("me/tiny", replace_model_card=True, exist_ok=True)
    assert "README.md" in _files(hub.uploads[1])
    ours.push_to_hub("me/tiny", local_model_path=str(hub.uploads[0]))
    assert _files(hub.uploads[2]) == _files(hub.uploads[0])


def test_save_writes_a_model_card(models, tmp_path, st):
    ours, theirs = models
    ours.save(str(tmp_path / "ours"), model_name="me/tiny-bert", train_datasets=["sentence-transformers/stsb"],
              safe_serialization=False)
    theirs.save(str(tmp_path / "theirs"), model_name="me/tiny-bert")
    card = (tmp_path / "ours" / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n") and "library_name: sentence-transformers" in card
    assert "pipeline_tag: sentence-similarity" in card and "- sentence-transformers/stsb" in card
    assert "# me/tiny-bert" in card and "**Output Dimensionality:** 32 dimensions" in card
    assert (tmp_path / "theirs" / "README.md").is_file()
    assert (tmp_path / "ours" / "model.safetensors").is_file()  # as transformers 5 writes it for both libraries
    reloaded = st.SentenceTransformer(str(tmp_path / "ours"), device="cpu")
    np.testing.assert_allclose(reloaded.encode(TEXTS), theirs.encode(TEXTS), atol=1e-5)
    ours.save_pretrained(str(tmp_path / "plain"), create_model_card=False)
    assert not (tmp_path / "plain" / "README.md").exists() and (tmp_path / "plain" / "modules.json").is_file()


def test_module_attributes(models):
    ours, theirs = models
    assert type(ours[0].auto_model) is type(theirs[0].auto_model)
    assert ours[0].auto_model is ours[0].model
    assert ours[0].tokenizer is ours.tokenizer and type(ours[0].tokenizer) is type(theirs[0].tokenizer)
    with pytest.warns(FutureWarning, match="get_embedding_dimension"):
        assert ours[0].get_word_embedding_dimension() == 32
    with pytest.warns(FutureWarning, match="get_embedding_dimension"):
        assert ours[1].get_sentence_embedding_dimension() == 32
    with pytest.warns(FutureWarning):
        assert theirs[1].get_sentence_embedding_dimension() == theirs[0].get_word_embedding_dimension() == 32


def test_cross_encoder_attributes(cross_encoders, tmp_path):
    ours, theirs = cross_encoders
    assert type(ours.model) is type(theirs.model)
    assert ours.config.num_labels == theirs.config.num_labels == 1
    assert ours.config.to_dict()["architectures"] == theirs.config.to_dict()["architectures"]
    assert type(ours.tokenizer) is type(theirs.tokenizer)
    assert ours.tokenizer("a b")["input_ids"] == theirs.tokenizer("a b")["input_ids"]
    got, expected = ours.tokenize(PAIRS), theirs.tokenize(PAIRS)
    assert torch.equal(got["input_ids"], expected["input_ids"])
    ours.save(str(tmp_path), model_name="me/tiny-ce")
    card = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "pipeline_tag: text-ranking" in card and "cross-encoder" in card


def test_model_card_data_reaches_the_card_and_sentence_transformers_evaluators_run(bert_dir, st, tmp_path, models):
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator as TheirEvaluator

    card_data = omnivec.SentenceTransformerModelCardData(language=["en", "de"], license="apache-2.0",
                                                         model_name="Tiny BERT", tags=["tiny"])
    ours = omnivec.SentenceTransformer(bert_dir, device="cpu", model_card_data=card_data)
    assert ours.model_card_data is card_data
    assert isinstance(models[0].model_card_data, omnivec.SentenceTransformerModelCardData)  # a default one
    ours.save(str(tmp_path / "card"))
    card = (tmp_path / "card" / "README.md").read_text(encoding="utf-8")
    assert "language:\n- en\n- de\n" in card and "license: apache-2.0" in card and "# Tiny BERT" in card
    assert "- tiny\n" in card
    # sentence-transformers' own evaluator reads and writes model.model_card_data: it runs on omnivec's model
    left, right, gold = ["a fox", "a dog", "hello", "rain"], ["an animal", "a cat", "hi", "sun"], [0.9, 0.7, 0.8, 0.1]
    got = TheirEvaluator(left, right, gold, name="sts")(ours)
    expected = TheirEvaluator(left, right, gold, name="sts")(models[1])
    assert got["sts_spearman_cosine"] == pytest.approx(expected["sts_spearman_cosine"], abs=1e-6)
    assert card_data.eval_results[-1]["metrics"]["sts_spearman_cosine"] == got["sts_spearman_cosine"]
    ce_card = omnivec.CrossEncoderModelCardData(license="mit")
    assert omnivec.CrossEncoder(bert_dir, num_labels=1, model_card_data=ce_card).model_card_data is ce_card
    with pytest.raises(ConfigError, match="model_card_data must be a SentenceTransformerModelCardData"):
        omnivec.SentenceTransformer(bert_dir, model_card_data={"language": "en"})  # type: ignore[arg-type]
