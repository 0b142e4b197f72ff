"""CrossEncoder: sentence-transformers parity for classifier and LogitScore rerankers, the presets against
their authors' scoring code re-implemented on transformers, prefix sharing, round trips, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import omnivec
from omnivec.errors import InputError, ModelLoadError
from omnivec.models.templates import PRESETS, RerankTemplate
from tests.fixtures.checkpoints import build_gemma

ATOL = 1e-5
QUERY = "what is the capital of france"
DOCS = ["Paris is the capital of France.", "Berlin is a city in Germany.", "",
        "Cells divide by mitosis; the protein binds to the receptor in mouse cells. " * 3, "Zürich und München — café"]
PAIRS = [(QUERY, d) for d in DOCS] + [("", "empty query"), ("how do cells divide", DOCS[3])]

# Qwen3-Reranker's prompt as a chat template with query/document roles (how sentence-transformers runs it).
QWEN3_CHAT_TEMPLATE = (
    "{%- macro text(m) -%}{%- if m.content is string -%}{{ m.content }}{%- else -%}"
    "{%- for part in m.content -%}{{ part.text }}{%- endfor -%}{%- endif -%}{%- endmacro -%}"
    "{%- set ns = namespace(instruction='Given a web search query, retrieve relevant passages that answer the query',"
    " query='', document='') -%}"
    "{%- for m in messages -%}{%- if m.role == 'system' -%}{%- set ns.instruction = text(m) -%}"
    "{%- elif m.role == 'query' -%}{%- set ns.query = text(m) -%}{%- elif m.role == 'document' -%}"
    "{%- set ns.document = text(m) -%}{%- endif -%}{%- endfor -%}"
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided."
    " Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n<Instruct>: {{ ns.instruction }}\n"
    "<Query>: {{ ns.query }}\n<Document>: {{ ns.document }}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
)


@pytest.fixture(scope="module")
def gemma_lm(tmp_path_factory):
    return str(build_gemma(tmp_path_factory.mktemp("gemma-lm")))


# -- classifier cross-encoders ------------------------------------------------------------------------------
@pytest.mark.parametrize("fixture", ["bert_dir", "xlmr_dir"])
@pytest.mark.parametrize("num_labels", [1, 3])
def test_classifier_parity(fixture, num_labels, request, st, tmp_path):
    peer = st.CrossEncoder(request.getfixturevalue(fixture), num_labels=num_labels, device="cpu")
    peer.save(str(tmp_path))
    ours = omnivec.CrossEncoder(str(tmp_path), device="cpu")
    assert ours.num_labels == num_labels and ours.max_length == peer.max_length
    np.testing.assert_allclose(ours.predict(PAIRS, batch_size=3), peer.predict(PAIRS, batch_size=3), atol=ATOL)
    if num_labels == 3:
        np.testing.assert_allclose(ours.predict(PAIRS, apply_softmax=True), peer.predict(PAIRS, apply_softmax=True), atol=ATOL)
        return
    ranked, expected = ours.rank(QUERY, DOCS, return_documents=True), peer.rank(QUERY, DOCS, return_documents=True)
    by_id = {r["corpus_id"]: r for r in expected}
    for result in ranked:
        assert result["text"] == by_id[result["corpus_id"]]["text"]
        assert result["score"] == pytest.approx(by_id[result["corpus_id"]]["score"], abs=ATOL)
    assert ours.predict(PAIRS[0]) == pytest.approx(peer.predict(PAIRS[0]), abs=ATOL)


def test_round_trip_and_old_config_json_key(bert_dir, st, tmp_path):
    peer = st.CrossEncoder(bert_dir, num_labels=1, device="cpu", activation_fn=torch.nn.Identity())
    ours = omnivec.CrossEncoder(modules=list(omnivec.CrossEncoder(_saved(peer, tmp_path / "p"), device="cpu")), device="cpu")
    assert isinstance(omnivec.CrossEncoder(str(tmp_path / "p"), device="cpu").activation_fn, torch.nn.Identity)
    ours.activation_fn = torch.nn.Identity()
    ours.save(tmp_path / "o")
    back = st.CrossEncoder(str(tmp_path / "o"), device="cpu")
    np.testing.assert_allclose(back.predict(PAIRS), peer.predict(PAIRS), atol=ATOL)
    # sentence-transformers < 4 kept the activation in config.json under "sentence_transformers".
    old = tmp_path / "old"
    shutil.copytree(bert_dir, old)
    config = json.loads((old / "config.json").read_text())
    config.update(architectures=["BertForSequenceClassification"], num_labels=1,
                  sentence_transformers={"activation_fn": "torch.nn.modules.linear.Identity"})
    (old / "config.json").write_text(json.dumps(config))
    (tmp_path / "p" / "model.safetensors").replace(old / "model.safetensors")  # same trained head
    assert isinstance(omnivec.CrossEncoder(str(old), device="cpu").activation_fn, torch.nn.Identity)
    np.testing.assert_allclose(omnivec.CrossEncoder(str(old), device="cpu").predict(PAIRS),
                               st.CrossEncoder(str(old), device="cpu").predict(PAIRS), atol=ATOL)


def _saved(model, folder):
    model.save(str(folder))
    return str(folder)


# -- generative rerankers ---------------------------------------------------------------------------------
def test_logit_score_reranker_with_qwen3_template_matches_sentence_transformers(qwen3_lm, st, tmp_path):
    from sentence_transformers.cross_encoder.modules import LogitScore
    from sentence_transformers.sentence_transformer.modules import Transformer
    from transformers import AutoTokenizer

    with_template = tmp_path / "lm"
    shutil.copytree(qwen3_lm, with_template)
    tokenizer = AutoTokenizer.from_pretrained(qwen3_lm)
    tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
    tokenizer.save_pretrained(with_template)
    transformer = Transformer(str(with_template), transformer_task="text-generation")
    assert "message" in transformer.modality_config  # the peer renders pairs through the chat template
    vocab = transformer.tokenizer.get_vocab()
    peer = st.CrossEncoder(modules=[transformer, LogitScore(vocab["yes"], vocab["no"])], device="cpu")
    peer.save(str(tmp_path / "saved"))
    ours = omnivec.CrossEncoder(str(tmp_path / "saved"), device="cpu")
    np.testing.assert_allclose(ours.predict(PAIRS, batch_size=3), peer.predict(PAIRS, batch_size=3), atol=ATOL)
    instruction = "Find the passage about cell biology"
    np.testing.assert_allclose(ours.predict(PAIRS, prompt=instruction), peer.predict(PAIRS, prompt=instruction), atol=ATOL)
    # Past max_length both cut the document's end and keep the template's closing turn intact.
    long_pairs = [(QUERY, "protein cell receptor " * 150), ("cells " * 10, "mitosis binds " * 120)]
    ours.max_length = peer.max_length = 300
    np.testing.assert_allclose(ours.predict(long_pairs), peer.predict(long_pairs), atol=ATOL)
    ids = ours.scorer.encode(long_pairs[:1], None)["input_ids"][0]
    closing = ours.scorer.chat_template(None).segments[0].split("{document}")[1]  # what the template renders after it
    assert len(ids) == 300 and closing.startswith("<|im_end|>") and ours.tokenizer.decode(ids).endswith(closing)
    ours.max_length = peer.max_length = 1024
    ours_scores = {r["corpus_id"]: r["score"] for r in ours.rank(QUERY, DOCS)}
    assert ours_scores == pytest.approx({r["corpus_id"]: r["score"] for r in peer.rank(QUERY, DOCS)}, abs=ATOL)


def _reference_logits(model_dir, sequences):
    """Last-position logits of each token sequence, run one at a time (no padding involved)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    with torch.no_grad():
        return [model(input_ids=torch.tensor([ids])).logits[0, -1] for ids in sequences]


def test_qwen3_reranker_preset_equals_reference(qwen3_lm):
    from transformers import AutoTokenizer

    # Qwen3-Reranker's published scoring: prefix + tokenized body + suffix; sigmoid(yes - no) = softmax[yes].
    tok = AutoTokenizer.from_pretrained(qwen3_lm)
    prefix = ('<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct '
              'provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n')
    suffix = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    task = "Given a web search query, retrieve relevant passages that answer the query"
    bodies = [f"<Instruct>: {task}\n<Query>: {q}\n<Document>: {d}" for q, d in PAIRS]
    enc = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    logits = _reference_logits(qwen3_lm, [enc(prefix) + enc(b) + enc(suffix) for b in bodies])
    yes, no = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")
    expected = [torch.softmax(torch.stack([logit[no], logit[yes]]), dim=0)[1].item() for logit in logits]
    ours = omnivec.CrossEncoder(qwen3_lm, template="qwen3-reranker", device="cpu")
    np.testing.assert_allclose(ours.predict(PAIRS, batch_size=3), expected, atol=ATOL)


def test_bge_reranker_v2_gemma_preset_equals_reference(gemma_lm):
    from transformers import AutoTokenizer

    # FlagEmbedding's LLM reranker: [bos] + "A: {query}" + "\n" + "B: {passage}" + "\n" + prompt; raw "Yes" logit.
    tok = AutoTokenizer.from_pretrained(gemma_lm)
    enc = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    prompt = PRESETS["bge-reranker-v2-gemma"].instruction
    sequences = [[tok.bos_token_id] + enc(f"A: {q}") + enc("\n") + enc(f"B: {d}") + enc("\n") + enc(prompt) for q, d in PAIRS]
    yes = tok("Yes", add_special_tokens=False)["input_ids"][0]
    expected = [logit[yes].item() for logit in _reference_logits(gemma_lm, sequences)]
    ours = omnivec.CrossEncoder(gemma_lm, template="bge-reranker-v2-gemma", device="cpu")
    assert isinstance(ours.activation_fn, torch.nn.Identity)
    np.testing.assert_allclose(ours.predict(PAIRS, batch_size=3), expected, atol=ATOL)


def test_mxbai_rerank_v2_preset_equals_reference(qwen3_lm):
    from transformers import AutoTokenizer

    # mixedbread's mxbai-rerank-v2: chat prefix + "query: q" + sep + "document: d" + sep + task + suffix; 1 - 0.
    tok = AutoTokenizer.from_pretrained(qwen3_lm)
    enc = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    template = PRESETS["mxbai-rerank-v2"]
    prefix, task, suffix = template.segments[0], template.segments[5], template.segments[6]
    sequences = [enc(prefix) + enc(f"query: {q}") + enc("\n") + enc(f"document: {d}") + enc("\n") + enc(task) + enc(suffix)
                 for q, d in PAIRS]
    one, zero = enc("1")[0], enc("0")[0]
    expected = [(logit[one] - logit[zero]).item() for logit in _reference_logits(qwen3_lm, sequences)]
    ours = omnivec.CrossEncoder(qwen3_lm, template="mxbai-rerank-v2", device="cpu")
    np.testing.assert_allclose(ours.predict(PAIRS, batch_size=3), expected, atol=ATOL)


def test_user_template_and_save_load(qwen3_lm, tmp_path):
    template = RerankTemplate.from_string("Query: {query}\nDocument: {document}\nRelevant:", true_token="yes",
                                          false_token="no")
    ours = omnivec.CrossEncoder(qwen3_lm, template=template, device="cpu")
    ours.save(tmp_path)
    again = omnivec.CrossEncoder(str(tmp_path), device="cpu")
    assert again.template == template
    np.testing.assert_allclose(again.predict(PAIRS), ours.predict(PAIRS), atol=ATOL)


def test_a_template_gets_a_head_of_its_own_and_the_given_head_is_left_alone(qwen3_lm, bert_dir):
    from omnivec.models.scorers.causal_lm import CausalLMScorer
    from omnivec.models.scorers.classifier import ClassifierScorer
    from omnivec.modules import LogitScore, Transformer

    transformer = Transformer(qwen3_lm, transformer_task="text-generation")
    head = LogitScore.from_tokens(transformer.tokenizer, "yes", "no")
    ids = (head.true_token_id, head.false_token_id)
    model = omnivec.CrossEncoder(modules=[transformer, head], template="mxbai-rerank-v2", device="cpu")
    vocab = transformer.tokenizer.get_vocab()
    assert (head.true_token_id, head.false_token_id) == ids  # not changed in place
    assert model.logit_score is not None and model.logit_score is not head
    assert (model.logit_score.true_token_id, model.logit_score.false_token_id) == (vocab["1"], vocab["0"])
    assert isinstance(model.scorer, CausalLMScorer) and model.scorer.head is model.logit_score
    loaded = omnivec.CrossEncoder(qwen3_lm, template="mxbai-rerank-v2", device="cpu")
    np.testing.assert_allclose(model.predict(PAIRS), loaded.predict(PAIRS), atol=ATOL)
    assert isinstance(omnivec.CrossEncoder(bert_dir, device="cpu").scorer, ClassifierScorer)
    with pytest.raises(ModelLoadError, match="needs a LogitScore head"):
        omnivec.CrossEncoder(bert_dir, template="qwen3-reranker", device="cpu")


@pytest.mark.parametrize("preset", ["qwen3-reranker", "mxbai-rerank-v2"])
def test_prefix_sharing_equals_unshared_scores(preset, qwen3_lm):
    model = omnivec.CrossEncoder(qwen3_lm, template=preset, device="cpu")
    ranked = model.rank(QUERY, DOCS, batch_size=2)
    unshared = model.predict([(QUERY, d) for d in DOCS])
    assert [r["score"] for r in sorted(ranked, key=lambda r: r["corpus_id"])] == pytest.approx(unshared.tolist(), abs=1e-4)
    assert [r["score"] for r in ranked] == sorted((r["score"] for r in ranked), reverse=True)
    assert len(model.rank(QUERY, DOCS, top_k=2)) == 2


def test_truncation_keeps_the_template_fixed_parts(qwen3_lm):
    model = omnivec.CrossEncoder(qwen3_lm, template="qwen3-reranker", device="cpu", max_length=260)
    long_doc = "protein cell receptor " * 200
    ids = model.template.encode(model.tokenizer, QUERY, long_doc, None, 260, 0)
    assert len(ids) == 260
    text = model.tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system") and text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert f"<Query>: {QUERY}\n<Document>: protein" in text
    assert np.isfinite(model.predict([(QUERY, long_doc)])).all()
    with pytest.raises(InputError, match="template 'qwen3-reranker' alone takes"):
        model.template.encode(model.tokenizer, QUERY, long_doc, None, 20, 0)


# -- bad input --------------------------------------------------------------------------------------------
def test_bad_pairs_name_their_index(bert_dir):
    model = omnivec.CrossEncoder(bert_dir, device="cpu")
    with pytest.raises(InputError, match="index 1 .*got 3"):
        model.predict([("q", "d"), ("q", "d", "extra")])
    with pytest.raises(InputError, match="index 0 must hold two str"):
        model.predict([("q", 5)])


def test_template_without_document_slot_fails_at_load(qwen3_lm):
    with pytest.raises(ModelLoadError, match=r"no \{document\} slot: 'Query: \{query\} Relevant:'"):
        omnivec.CrossEncoder(qwen3_lm, template="Query: {query} Relevant:", device="cpu")


def test_tokenizer_without_yes_no_tokens_names_the_token(qwen3_dir, qwen3_lm):
    with pytest.raises(ModelLoadError, match="no single token 'yes'"):
        omnivec.CrossEncoder(qwen3_dir, device="cpu")  # its tokenizer splits "yes" into pieces
    with pytest.raises(ModelLoadError, match="no single token 'Oui'"):
        omnivec.CrossEncoder(qwen3_lm, template=RerankTemplate.from_string("{query} {document}", true_token="Oui"),
                             device="cpu")


# -- a vision-language reranker: images as documents or queries -------------------------------------------
def test_vision_language_reranker_scores_image_pairs_like_transformers(qwen2_vl_dir, coco_photos):
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    template = RerankTemplate.from_string(
        "<|im_start|>user\nQuery: {query}\nDocument: {document}\nRelevant (1 or 0)?<|im_end|>\n<|im_start|>assistant\n",
        true_token="1", false_token="0", activation="identity")
    model = omnivec.CrossEncoder(qwen2_vl_dir, template=template, device="cpu")
    assert type(model.scorer).__name__ == "VisionLanguageScorer" and model.takes_images
    photo = Image.open(coco_photos[0]).convert("RGB")
    pairs = [("a plane over a lake", photo), ("two dogs", "a text document"), (str(coco_photos[1]), "a bus")]

    processor, reference = AutoProcessor.from_pretrained(qwen2_vl_dir), AutoModelForImageTextToText.from_pretrained(qwen2_vl_dir)
    image = "<|vision_start|><|image_pad|><|vision_end|>"
    one, zero = processor.tokenizer.convert_tokens_to_ids("1"), processor.tokenizer.convert_tokens_to_ids("0")
    expected = []
    for query, document, images in (("a plane over a lake", image, [photo]), ("two dogs", "a text document", None),
                                     (image, "a bus", [Image.open(coco_photos[1]).convert("RGB")])):
        features = processor(text=[template.segments[0].format(query=query, document=document)], images=images,
                             return_tensors="pt")
        with torch.no_grad():
            logits = reference(**features).logits[0, -1]
        expected.append((logits[one] - logits[zero]).item())
    np.testing.assert_allclose(model.predict(pairs, batch_size=1), expected, atol=ATOL)
    np.testing.assert_allclose(model.predict(pairs, batch_size=3), expected, atol=1e-4)  # left-padded together
    ranked = model.rank("a plane over a lake", [photo, "a text document"])
    assert {r["corpus_id"] for r in ranked} == {0, 1}


def test_images_need_a_vision_language_reranker(bert_dir, coco_photos):
    with pytest.raises(InputError, match="index 0 must hold two str.*vision-language"):
        omnivec.CrossEncoder(bert_dir, device="cpu").predict([("q", str(coco_photos[0]).encode())])


# -- hostile sizes (issue 12) -------------------------------------------------------------------------------
def test_texts_past_max_length_score_as_sentence_transformers(bert_dir, st, tmp_path):
    """Texts are cut before pairing; what the pair's truncation keeps (both sides long, either longer) is unchanged."""
    peer = st.CrossEncoder(bert_dir, num_labels=1, device="cpu")
    peer.save(str(tmp_path))
    ours = omnivec.CrossEncoder(str(tmp_path), device="cpu")
    long_q, longer_q = "cells divide by mitosis " * 40, "protein receptor binding " * 60
    pairs = [(long_q, DOCS[0]), (QUERY, longer_q), (long_q, longer_q), (longer_q, long_q), (long_q, long_q + "x"),
             ("zz" * 5000, "yy " * 3000)]
    np.testing.assert_allclose(ours.predict(pairs), peer.predict(pairs), atol=ATOL)


@pytest.mark.parametrize("template", ["qwen3-reranker", None])
def test_long_texts_in_templates_score_as_before(template, qwen3_lm):
    """The template path gets cut texts too: the scores equal those of the uncut texts."""
    model = omnivec.CrossEncoder(qwen3_lm, template=template, device="cpu", max_length=400)
    pairs = [("mitosis cells " * 300, "protein receptor " * 10), (QUERY, "receptor binding " * 400)]
    full = model.scorer.encode(pairs, model._resolve_prompt(None, None))["input_ids"]
    cut = model.scorer.encode(model._cut_pairs(pairs), model._resolve_prompt(None, None))["input_ids"]
    assert full == cut and all(len(ids) == 400 for ids in cut)
    assert model._cut_pairs(PAIRS) == PAIRS  # texts within the limit are not touched


def test_rank_top_k(bert_dir):
    model = omnivec.CrossEncoder(bert_dir, device="cpu")
    assert len(model.rank(QUERY, DOCS, top_k=None)) == len(DOCS)
    assert len(model.rank(QUERY, DOCS, top_k=2)) == 2 and model.rank(QUERY, DOCS, top_k=0) == []
    for bad in (-1, -5, 1.5, True):
        with pytest.raises(InputError, match="top_k"):
            model.rank(QUERY, DOCS, top_k=bad)


def test_lone_surrogate_is_an_input_error_naming_the_pair(bert_dir):
    model = omnivec.CrossEncoder(bert_dir, device="cpu")
    with pytest.raises(InputError, match="index 1 .*not valid Unicode"):
        model.predict([(QUERY, "fine"), (QUERY, "bad \ud800 text")])


RERANK_MEMORY = """
import resource, sys, omnivec
model = omnivec.CrossEncoder(sys.argv[1], device="cpu", template=sys.argv[2] if len(sys.argv) > 2 else None)
model.rank("warm up", ["a", "b"])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
query = "router " * 150_000  # 1 MB
scores = model.rank(query, ["a router config " * 50, "switch", "cables " * 400, "x"])
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024, len(scores))
"""


@pytest.mark.slow  # memory measured in a subprocess per kind; the cut-pairs tests cover the truncation
@pytest.mark.parametrize("kind", ["classifier", "template"])
def test_rank_with_a_1_mb_query_stays_in_bounded_memory(kind, bert_dir, qwen3_lm):
    """Peak RSS growth of a rank() with a 1 MB query over four documents, measured in a subprocess: under 150 MB
    (uncut, pair tokenization of the full query per document takes gigabytes)."""
    import subprocess
    import sys

    args = [bert_dir] if kind == "classifier" else [qwen3_lm, "qwen3-reranker"]
    out = subprocess.run([sys.executable, "-c", RERANK_MEMORY, *args], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    grown_mb, count = map(int, out.stdout.split()[-2:])
    assert count == 4 and grown_mb < 150, grown_mb


def test_prefix_batches_count_each_rows_copy_of_the_prefix(qwen3_lm, monkeypatch):
    """Every row of a suffix batch holds a copy of the prefix's KV cache, so a batch's token budget counts
    rows x (prefix + widest suffix): a long query means fewer documents per batch, not more memory."""
    import omnivec.runtime.execute as execute  # plans the prefix-shared batches too

    batches = []
    real_plan = execute.plan_batches
    monkeypatch.setattr(execute, "plan_batches", lambda *a, **k: batches.extend(real_plan(*a, **k)) or batches)
    model = omnivec.CrossEncoder(qwen3_lm, template="qwen3-reranker", device="cpu", max_length=2048)
    query, docs = "mitosis cells " * 50, [f"doc {i} receptor" for i in range(8)]
    rows = model.scorer.encode([(query, d) for d in docs], model._resolve_prompt(None, None))["input_ids"]
    assert len(model.rank(query, docs, max_tokens_per_batch=1024)) == 8
    padded = [len(b) * max(len(rows[i]) for i in b) for b in batches]
    assert len(batches) > 1 and max(padded) <= 1024, padded
