"""The trainers on real training runs: a CrossEncoder learns a task, a custom loss trains and saves, checkpoints
resume to the same weights, image-text pairs train a CLIP model, and bad data is named before training starts."""

from __future__ import annotations

import random
import time

import pytest
import torch

import omnivec
from omnivec.errors import InputError
from omnivec.train import CrossEncoderTrainer, EmbedderTrainer, TrainingArguments, losses
from omnivec.train import cross_encoder_losses as ce_losses
from omnivec.train.model_card import card_facts
from omnivec.train.sampler import NoDuplicatesBatchSampler
from tests.fixtures.checkpoints import build_bert

TOPICS = [["fox", "dog", "lazy", "brown"], ["guitar", "stage", "man", "playing"],
          ["protein", "cells", "receptor", "mouse"], ["paris", "france", "capital", "tower"]]


def _args(tmp_path, **kwargs) -> TrainingArguments:
    defaults = dict(output_dir=str(tmp_path / "run"), report_to="none", save_strategy="no", disable_tqdm=True,
                    per_device_train_batch_size=8, seed=0)
    return TrainingArguments(**{**defaults, **kwargs})


def _topic_pairs(count: int, seed: int) -> list[dict]:
    """A query word and a three-word document: relevant when both come from the same topic."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        topic = rng.randrange(len(TOPICS))
        other = topic if i % 2 else rng.choice([t for t in range(len(TOPICS)) if t != topic])
        rows.append({"query": rng.choice(TOPICS[topic]), "document": " ".join(rng.sample(TOPICS[other], 3)),
                     "label": float(topic == other)})
    return rows


@pytest.mark.slow  # three epochs over 9,600 pairs; the other trainer tests cover CrossEncoderTrainer
def test_tiny_cross_encoder_learns_relevance(tmp_path, bert_dir):
    torch.manual_seed(0)  # the new head's weights, whatever the tests before left in torch's generator
    model = omnivec.CrossEncoder(bert_dir, num_labels=1, device="cpu")
    test = _topic_pairs(300, seed=1)
    start = time.perf_counter()
    args = _args(tmp_path, per_device_train_batch_size=32, num_train_epochs=3, learning_rate=2e-3, warmup_steps=20)
    CrossEncoderTrainer(model, args, train_dataset=_topic_pairs(9600, seed=0),
                        loss=ce_losses.BinaryCrossEntropyLoss()).train()
    model.eval()
    predicted = model.predict([(r["query"], r["document"]) for r in test]) > 0.5
    accuracy = (predicted == [r["label"] == 1.0 for r in test]).mean()
    elapsed = time.perf_counter() - start
    assert accuracy >= 0.9, accuracy
    assert elapsed < 60, elapsed  # 10-14 s on a quiet 2-core machine; accuracy 1.0 for 10 of 11 head seeds, 0.92


class ScaledTripletLoss(torch.nn.Module):
    """A loss the trainer has never heard of, with a weight of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.margin = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, model, inputs, labels):
        anchor, positive, negative = (model.embed(column) for column in inputs)
        gap = torch.cosine_similarity(anchor, negative) - torch.cosine_similarity(anchor, positive)
        return torch.relu(gap + self.margin).mean() + 0.01 * self.margin ** 2


def test_custom_loss_trains_saves_and_loads(tmp_path, bert_dir, st):
    model = omnivec.Embedder(bert_dir, device="cpu")
    rows = [{"a": t[0], "p": " ".join(t[1:3]), "n": " ".join(TOPICS[(i + 1) % 4][1:3])} for i, t in enumerate(TOPICS)] * 4
    before = model.encode(["fox dog", "guitar stage"])
    loss = ScaledTripletLoss()

    def loss_on_data() -> float:
        model.eval()
        with torch.no_grad():
            return loss(model, [model.prepare([r[c] for r in rows]) for c in "apn"], None).item()

    start = loss_on_data()
    trainer = EmbedderTrainer(model, _args(tmp_path, num_train_epochs=10, learning_rate=3e-3), train_dataset=rows,
                              loss=loss)
    trainer.train()
    assert loss.margin.item() != 0.5  # the loss's own weight was in the optimizer
    assert loss_on_data() < 0.5 * start
    after = model.encode(["fox dog", "guitar stage"])
    assert not torch.allclose(torch.from_numpy(before), torch.from_numpy(after))
    trainer.save_model(str(tmp_path / "saved"))
    torch.testing.assert_close(torch.from_numpy(omnivec.Embedder(str(tmp_path / "saved"), device="cpu").encode(
        ["fox dog", "guitar stage"])), torch.from_numpy(after), atol=1e-6, rtol=0)
    theirs = st.SentenceTransformer(str(tmp_path / "saved"), device="cpu").encode(["fox dog", "guitar stage"])
    torch.testing.assert_close(torch.from_numpy(theirs), torch.from_numpy(after), atol=1e-5, rtol=0)
    card = (tmp_path / "saved" / "README.md").read_text()
    assert "ScaledTripletLoss" in card and "16 training rows" in card


def test_checkpoint_resume_reaches_the_same_weights(tmp_path, bert_dir):
    rows = [{"q": r["query"], "d": r["document"], "score": r["label"]} for r in _topic_pairs(48, seed=3)]

    def run(output, resume=None, max_steps=6):
        model = omnivec.Embedder(bert_dir, device="cpu")
        args = _args(tmp_path, output_dir=str(output), max_steps=max_steps, save_strategy="steps", save_steps=3,
                     learning_rate=1e-3)
        trainer = EmbedderTrainer(model, args, train_dataset=rows, loss=losses.CoSENTLoss())
        trainer.train(resume_from_checkpoint=resume)
        return model

    straight = run(tmp_path / "straight")
    assert (tmp_path / "straight" / "checkpoint-3" / "modules.json").is_file()
    resumed = run(tmp_path / "resumed", resume=str(tmp_path / "straight" / "checkpoint-3"))
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=name)


def test_gradcache_in_the_trainer_with_accumulation_matches_the_full_batch(tmp_path, bert_dir):
    """Inside transformers.Trainer (its backward, gradient accumulation over 2 steps), CachedMNRL in mini-batches
    of 2 ends at the weights plain MNRL reaches."""
    rows = [{"q": r["query"], "d": r["document"]} for r in _topic_pairs(16, seed=6)]
    trained = []
    for loss in (losses.MultipleNegativesRankingLoss(), losses.CachedMultipleNegativesRankingLoss(mini_batch_size=2)):
        model = omnivec.Embedder(bert_dir, device="cpu")
        for module in model.modules():  # no dropout: both runs must see the same network
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        # SGD: updates linear in the gradients (Adam's first steps turn float noise on ~0 gradients into +-lr).
        args = _args(tmp_path, max_steps=2, gradient_accumulation_steps=2, per_device_train_batch_size=4,
                     learning_rate=0.1, optim="sgd")
        EmbedderTrainer(model, args, train_dataset=rows, loss=loss).train()
        trained.append(model.state_dict())
    for name, weight in trained[0].items():
        torch.testing.assert_close(trained[1][name], weight, atol=1e-5, rtol=1e-4, msg=name)
    initial = omnivec.Embedder(bert_dir, device="cpu").state_dict()
    assert any(not torch.equal(initial[name], weight) for name, weight in trained[0].items())


def test_evaluator_runs_during_training_and_lands_in_the_model_card(tmp_path, bert_dir):
    from omnivec.train.evaluation import EmbeddingSimilarityEvaluator

    rows = [{"s1": r["query"], "s2": r["document"], "score": r["label"]} for r in _topic_pairs(64, seed=4)]
    evaluator = EmbeddingSimilarityEvaluator([r["s1"] for r in rows[:32]], [r["s2"] for r in rows[:32]],
                                             [r["score"] for r in rows[:32]], name="dev")
    model = omnivec.Embedder(bert_dir, device="cpu")
    args = _args(tmp_path, num_train_epochs=1, eval_strategy="steps", eval_steps=4, learning_rate=1e-3)
    trainer = EmbedderTrainer(model, args, train_dataset=rows, evaluator=evaluator)
    assert isinstance(trainer.loss, losses.CoSENTLoss)  # a label column: the default loss
    trainer.train()
    evaluations = [e for e in trainer.state.log_history if "eval_dev_spearman_cosine" in e]
    assert {e["step"] for e in evaluations} == {4, 8}
    assert model.training  # the evaluator ran in eval mode and training mode came back
    facts = card_facts(trainer)
    assert facts["metrics"]["eval_dev_spearman_cosine"] == evaluations[-1]["eval_dev_spearman_cosine"]
    assert facts["loss"] == {"name": "CoSENTLoss", "scale": 20.0, "similarity": "cosine"}


def test_per_column_prompts_reach_the_model(tmp_path, qwen3_st_dir):
    """A column's prompt is prepended to its inputs: the trained columns embed like encode(prompt=...)."""
    model = omnivec.Embedder(qwen3_st_dir, device="cpu").eval()
    args = _args(tmp_path, prompts={"q": "query: "})
    trainer = EmbedderTrainer(model, args, train_dataset=[{"q": "fox", "d": "the lazy dog"}] * 4)
    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    with torch.no_grad():
        q, d = (model.embed(column) for column in batch["inputs"])
    torch.testing.assert_close(q[0], model.encode("fox", prompt="query: ", convert_to_tensor=True), atol=1e-5, rtol=0)
    torch.testing.assert_close(d[0], model.encode("the lazy dog", convert_to_tensor=True), atol=1e-5, rtol=0)


def test_image_text_pairs_train_a_clip_model(tmp_path, clip_dir, coco_photos):
    """MNRL on (photo, caption): the loss equals InfoNCE written on transformers' CLIP, and both towers learn."""
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    model = omnivec.Embedder(clip_dir, device="cpu").eval()
    model.fast_image_decode = False  # the reference below decodes the photos at full size
    photos, captions = [str(p) for p in coco_photos[:4]], ["a photo", "a dog", "a plate of food", "a street"]
    value = losses.MultipleNegativesRankingLoss()(model, [model.prepare(photos), model.prepare(captions)], None)
    clip, processor = CLIPModel.from_pretrained(clip_dir).eval(), CLIPProcessor.from_pretrained(clip_dir)
    with torch.no_grad():
        images = clip.get_image_features(**processor(images=[Image.open(p).convert("RGB") for p in photos],
                                                     return_tensors="pt"))
        texts = clip.get_text_features(**processor(text=captions, return_tensors="pt", padding=True))
    images, texts = (getattr(x, "pooler_output", x) for x in (images, texts))
    logits = 20 * torch.nn.functional.normalize(images, dim=-1) @ torch.nn.functional.normalize(texts, dim=-1).T
    assert value.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, torch.arange(4)).item(), abs=1e-5)

    before = {n: p.clone() for n, p in model.named_parameters()}
    rows = [{"image": p, "caption": c} for p, c in zip(photos, captions, strict=True)] * 2
    EmbedderTrainer(model, _args(tmp_path, max_steps=2, per_device_train_batch_size=4, learning_rate=1e-3),
                    train_dataset=rows).train()
    changed = {n.split(".")[2] for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert {"text_model", "vision_model"} <= changed


def test_no_duplicates_sampler_keeps_values_apart():
    from omnivec.train.data import Rows

    data = [{"a": f"q{i % 3}", "b": f"d{i}"} for i in range(12)]  # every anchor appears 4 times
    sampler = NoDuplicatesBatchSampler(Rows(data, ["a", "b"], "training data"), ["a", "b"], 3, False, seed=1)
    batches = list(sampler)
    assert sorted(i for batch in batches for i in batch) == list(range(12))
    for batch in batches:
        assert len({data[i]["a"] for i in batch}) == len(batch)


# -- bad data is named before training starts --------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = build_bert(tmp_path_factory.mktemp("bert-errors"))
    return omnivec.Embedder(str(folder), device="cpu"), omnivec.CrossEncoder(str(folder), num_labels=1, device="cpu")


@pytest.mark.parametrize("rows, kwargs, needles", [
    ([{"anchor": "a"}], {"loss": losses.MultipleNegativesRankingLoss()},
     ["MultipleNegativesRankingLoss", "'positive' column is missing"]),
    ([{"q": "a", "d": "b"}], {"loss": losses.MarginMSELoss(), "columns": ["q", "d", "neg"]}, ["MarginMSELoss", "'neg'"]),
    ([{"s1": "a", "s2": "b"}], {"loss": losses.CoSENTLoss()}, ["CoSENTLoss", "label column"]),
    ([{"s1": "a", "s2": "b", "score": 0.5}] * 3 + [{"s1": "a", "s2": "b", "score": "high"}],
     {"loss": losses.CoSENTLoss()}, ["Row 3", "CoSENTLoss", "'score'", "'high'"]),
    ([{"s1": "a", "s2": "b", "c": "x", "score": 0.5}], {"loss": losses.CoSENTLoss()}, ["exactly", "columns=["]),
    ([{"s1": "a", "s2": None, "score": 0.5}], {"loss": losses.CoSENTLoss()}, ["Row 0", "'s2'", "None"]),
])
def test_embedder_data_errors_name_the_column_and_loss(tmp_path, tiny, rows, kwargs, needles):
    with pytest.raises(InputError) as error:
        EmbedderTrainer(tiny[0], _args(tmp_path), train_dataset=rows, **kwargs)
    for needle in needles:
        assert needle in str(error.value), (needle, str(error.value))


@pytest.mark.parametrize("rows, loss, needles", [
    ([{"q": "a", "d": "b", "label": 1}, {"q": "a", "d": "b", "label": 0.5}], ce_losses.CrossEntropyLoss(),
     ["Row 1", "integer class index"]),
    ([{"q": "a", "docs": ["x", "y"], "labels": [1, 0]}, {"q": "b", "docs": ["x"], "labels": [1, 0]}],
     ce_losses.ListNetLoss(), ["Row 1", "1 documents", "2 labels"]),
    ([{"q": "a", "docs": "x", "labels": [1]}], ce_losses.LambdaLoss(), ["Row 0", "list of documents"]),
])
def test_cross_encoder_data_errors_name_the_row(tmp_path, tiny, rows, loss, needles):
    with pytest.raises(InputError) as error:
        CrossEncoderTrainer(tiny[1], _args(tmp_path), train_dataset=rows, loss=loss)
    for needle in needles:
        assert needle in str(error.value), (needle, str(error.value))


def test_an_undecodable_input_names_its_row_and_column(tmp_path, tiny):
    rows = [{"a": "fine", "b": "fine too"}] * 5 + [{"a": "fine", "b": {"sound": b"??"}}]
    trainer = EmbedderTrainer(tiny[0], _args(tmp_path, max_steps=1, per_device_train_batch_size=6), train_dataset=rows)
    with pytest.raises(InputError, match=r"Row 5 of the training data, column 'b'"):
        trainer.train()


def test_datasets_dataset_input_works_like_a_list(tmp_path, tiny):
    import datasets

    rows = [{"s1": r["query"], "s2": r["document"], "score": r["label"]} for r in _topic_pairs(16, seed=5)]
    trainer = EmbedderTrainer(tiny[0], _args(tmp_path, max_steps=1), train_dataset=datasets.Dataset.from_list(rows))
    assert trainer.train().global_step == 1


def test_bf16_mixed_precision_trains(tmp_path, tiny):
    model = omnivec.Embedder(tiny[0].name_or_path, device="cpu")
    before = {n: p.clone() for n, p in model.named_parameters()}
    rows = [{"s1": r["query"], "s2": r["document"], "score": r["label"]} for r in _topic_pairs(16, seed=7)]
    result = EmbedderTrainer(model, _args(tmp_path, max_steps=2, bf16=True, use_cpu=True), train_dataset=rows).train()
    assert torch.isfinite(torch.tensor(result.training_loss))
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast: weights stay float32
    assert any(not torch.equal(p, before[n]) for n, p in model.named_parameters())
