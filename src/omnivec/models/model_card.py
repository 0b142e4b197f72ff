"""The README.md model card ``save`` writes beside a model: what the model is and how to load it.

This is the library's own card (no training facts): ``omnivec.train`` writes the trained model's card over it after
saving, with data, loss, arguments and metrics. It lives here, in ``models``, because ``save`` and ``push_to_hub``
write it and the library never imports ``train``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omnivec._version import __version__

CARD_FILE = "README.md"

_SIMILARITY_NAMES = {"cosine": "Cosine Similarity", "dot": "Dot Product", "euclidean": "Euclidean Distance",
                     "manhattan": "Manhattan Distance"}


def model_card(model: Any, model_name: str | None = None, train_datasets: Sequence[str] | None = None) -> str:
    """The card's Markdown (YAML front matter as the Hub reads it) for an Embedder, a CrossEncoder or a SparseEncoder."""
    kind = type(model).model_type  # "SentenceTransformer", "CrossEncoder" or "SparseEncoder"
    card = getattr(model, "model_card_data", None)  # the user's ModelCardData (language, license, name, tags)
    base = model.name_or_path if _is_hub_id(model.name_or_path) else None
    title = model_name or (card and card.model_name) or base or kind
    if kind == "CrossEncoder":
        tags = ["sentence-transformers", "cross-encoder", "reranker", "omnivec"]
        pipeline = "text-ranking" if model.num_labels == 1 else "text-classification"
        facts = ["- **Model Type:** Cross Encoder", f"- **Maximum Sequence Length:** {model.max_length} tokens",
                 f"- **Number of Output Labels:** {model.num_labels} label{'s' if model.num_labels != 1 else ''}"]
        usage = [f"model = CrossEncoder({title!r})",
                 "scores = model.predict([('How many people live in Berlin?', 'Berlin has 3.5 million people.')])",
                 "ranks = model.rank('How many people live in Berlin?', ['Berlin has 3.5 million people.', 'A cat.'])"]
    elif kind == "SparseEncoder":
        tags = ["sentence-transformers", "sparse-encoder", "sparse", "feature-extraction", "omnivec"]
        pipeline = "feature-extraction"
        facts = ["- **Model Type:** Sparse Encoder",
                 f"- **Maximum Sequence Length:** {_max_seq_length(model)} tokens",
                 f"- **Output Dimensionality:** {model.get_sentence_embedding_dimension()} dimensions",
                 f"- **Similarity Function:** {_SIMILARITY_NAMES.get(model.similarity_fn_name, model.similarity_fn_name)}",
                 *([f"- **Maximum Active Dimensions:** {model.max_active_dims}"] if model.max_active_dims else [])]
        usage = [f"model = SparseEncoder({title!r})",
                 "queries = model.encode_query(['Which planet is known as the Red Planet?'])",
                 "documents = model.encode_document(['Mars is called the Red Planet.', 'Venus is the hottest.'])",
                 "similarities = model.similarity(queries, documents)",
                 "print(model.decode(documents[0], top_k=10))"]
    else:
        tags = ["sentence-transformers", "sentence-similarity", "feature-extraction", "dense", "omnivec"]
        pipeline = "sentence-similarity"
        facts = ["- **Model Type:** Sentence Transformer",
                 f"- **Maximum Sequence Length:** {_max_seq_length(model)} tokens",
                 f"- **Output Dimensionality:** {model.get_sentence_embedding_dimension()} dimensions",
                 f"- **Similarity Function:** {_SIMILARITY_NAMES.get(model.similarity_fn_name, model.similarity_fn_name)}",
                 f"- **Supported Modalities:** {', '.join(model.modalities)}"]
        usage = [f"model = SentenceTransformer({title!r})",
                 "embeddings = model.encode(['The weather is lovely today.', \"It's so sunny outside!\"])",
                 "similarities = model.similarity(embeddings, embeddings)"]
    tags += [tag for tag in (card.tags if card else []) if tag not in tags]
    front = ["---", *(["language:", *[f"- {lang}" for lang in card.language]] if card and card.language else []),
             *([f"license: {card.license}"] if card and card.license else []),
             "tags:", *[f"- {tag}" for tag in tags], f"pipeline_tag: {pipeline}",
             "library_name: sentence-transformers"]
    if base:
        front.append(f"base_model: {base}")
    if train_datasets:
        front += ["datasets:", *[f"- {name}" for name in train_datasets]]
    front.append("---")
    class_name = {"CrossEncoder": "CrossEncoder", "SparseEncoder": "SparseEncoder"}.get(kind, "SentenceTransformer")
    body = [
        "", f"# {title}", "",
        f"A {kind} model saved by omnivec {__version__} in the sentence-transformers layout: it loads with "
        f"`omnivec.{class_name}` and with "
        "sentence-transformers alike.", "",
        "## Model Details", "", *facts,
        *([f"- **Base model:** `{base}`"] if base else []),
        *([f"- **Training Datasets:** {', '.join(train_datasets)}"] if train_datasets else []),
        "", "### Full Model Architecture", "", "```", repr(model), "```", "",
        "## Usage", "", "```python",
        f"from omnivec import {class_name}", "", *usage,
        "```", "",
    ]
    return "\n".join(front + body)


def write_model_card(folder: str | Path, model: Any, model_name: str | None = None,
                     train_datasets: Sequence[str] | None = None) -> Path:
    """Write the card to ``folder/README.md`` and return its path."""
    path = Path(folder) / CARD_FILE
    path.write_text(model_card(model, model_name, train_datasets), encoding="utf-8")
    return path


def _is_hub_id(name: str | None) -> bool:
    return bool(name) and name.count("/") == 1 and not Path(name).expanduser().exists()  # type: ignore[arg-type]


def _max_seq_length(model: Any) -> int | None:
    try:
        return model.max_seq_length
    except TypeError:  # a model that does not start with a Transformer
        return None
