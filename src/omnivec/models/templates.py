"""Prompt templates of generative (LLM yes/no) rerankers, and the published presets.

A template is a list of segments, each tokenized on its own (as the models' authors do), holding the
slots ``{query}``, ``{document}`` and ``{instruction}``; a segment ``{bos}`` stands for the tokenizer's BOS
token. Truncation removes document tokens first, then query tokens, and never the fixed text.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from omnivec.errors import ConfigError, InputError, ModelLoadError

_SLOTS = re.compile(r"\{(query|document|instruction)\}")


@dataclass(frozen=True)
class RerankTemplate:
    """How a (query, document) pair becomes a causal LM prompt, and which next tokens score it."""

    segments: tuple[str, ...]
    instruction: str | None = None  # the default for {instruction}
    true_token: str = "yes"
    false_token: str | None = "no"
    activation: str = "sigmoid"  # applied to the score by predict/rank: "sigmoid" or "identity"
    name: str = "custom"

    def __post_init__(self) -> None:
        text = "".join(self.segments)
        if "{document}" not in text:
            raise ModelLoadError(f"Reranker template {self.name!r} has no {{document}} slot: {text!r}")
        if "{instruction}" in text and self.instruction is None:
            raise ModelLoadError(f"Reranker template {self.name!r} uses {{instruction}} but sets no default "
                                 f"instruction: {text!r}")
        if self.activation not in ("sigmoid", "identity"):
            raise ModelLoadError(f"Reranker template activation must be 'sigmoid' or 'identity', got {self.activation!r}.")

    @classmethod
    def from_string(cls, text: str, **options: Any) -> RerankTemplate:
        """A one-segment template, e.g. ``"Query: {query}\\nDocument: {document}\\nRelevant:"``."""
        return cls(segments=(text,), **options)

    def to_config(self) -> dict[str, Any]:
        config = asdict(self)
        config["segments"] = list(self.segments)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RerankTemplate:
        known = {k: v for k, v in config.items() if k in cls.__dataclass_fields__}
        known["segments"] = tuple(known.get("segments") or ())
        return cls(**known)

    def encode(self, tokenizer: Any, query: str, document: str, instruction: str | None, max_length: int,
               index: int) -> list[int]:
        """Token ids of the filled template, at most ``max_length`` long (document, then query, shortened)."""
        values = {"query": query, "document": document, "instruction": instruction or self.instruction or ""}
        pieces: list[tuple[list[int], list[str]]] = []  # (ids, slot owning each id or "" for fixed text)
        for segment in self.segments:
            if segment == "{bos}":
                if tokenizer.bos_token_id is None:
                    raise ModelLoadError(f"Reranker template {self.name!r} starts with {{bos}}, but the tokenizer "
                                         "has no BOS token.")
                pieces.append(([tokenizer.bos_token_id], [""]))
                continue
            text, spans = fill_slots(segment, values)
            # Untruncated on purpose (verbose=False: no "longer than max length" warning): cut below, by slot.
            encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
            owners = [_owner(start, end, spans) for start, end in encoded["offset_mapping"]]
            pieces.append((list(encoded["input_ids"]), owners))
        ids = [i for piece_ids, _ in pieces for i in piece_ids]
        owners = [o for _, piece_owners in pieces for o in piece_owners]
        excess = len(ids) - max_length
        for slot in ("document", "query"):  # the slot's last tokens go, in one linear pass per slot
            drop = set()
            for position in range(len(owners) - 1, -1, -1):
                if len(drop) >= excess:
                    break
                if owners[position] == slot:
                    drop.add(position)
            if drop:
                ids = [t for position, t in enumerate(ids) if position not in drop]
                owners = [o for position, o in enumerate(owners) if position not in drop]
                excess -= len(drop)
        if excess > 0:
            raise InputError(f"Pair at index {index}: the template {self.name!r} alone takes {len(ids)} tokens, more than "
                             f"max_length={max_length}; raise max_length or shorten the instruction.")
        return ids


def fill_slots(segment: str, values: dict[str, str]) -> tuple[str, list[tuple[int, int, str]]]:
    """The segment with its slots filled, and the character span of each filled slot."""
    out, spans, cursor = [], [], 0
    length = 0
    for match in _SLOTS.finditer(segment):
        literal = segment[cursor : match.start()]
        out.append(literal)
        length += len(literal)
        value = values[match.group(1)]
        spans.append((length, length + len(value), match.group(1)))
        out.append(value)
        length += len(value)
        cursor = match.end()
    out.append(segment[cursor:])
    return "".join(out), spans


def _owner(start: int, end: int, spans: list[tuple[int, int, str]]) -> str:
    """The slot a token belongs to: the one its last character falls in ("" for the template's own text)."""
    for span_start, span_end, slot in spans:
        if span_start < end <= span_end and slot != "instruction":
            return slot
    return ""


_QWEN3_SYSTEM = ('<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the '
                 'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n')
_MXBAI_TASK = ("You are a search relevance expert who evaluates how well documents match search queries. For each "
               "query-document pair, carefully analyze the semantic relationship between them, then provide your "
               "binary relevance judgment (0 for not relevant, 1 for relevant).\nRelevance:")

PRESETS: dict[str, RerankTemplate] = {
    # Qwen3-Reranker: system/instruct/query/document chat, an empty think block; sigmoid(yes - no).
    "qwen3-reranker": RerankTemplate(
        segments=(_QWEN3_SYSTEM, "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}",
                  "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"),
        instruction="Given a web search query, retrieve relevant passages that answer the query",
        true_token="yes", false_token="no", activation="sigmoid", name="qwen3-reranker"),
    # BAAI/bge-reranker-v2-gemma: "A: {query}" / "B: {document}" / fixed instruction; the raw "Yes" logit.
    "bge-reranker-v2-gemma": RerankTemplate(
        segments=("{bos}", "A: {query}", "\n", "B: {document}", "\n", "{instruction}"),
        instruction=("Given a query A and a passage B, determine whether the passage contains an answer to the "
                     "query by providing a prediction of either 'Yes' or 'No'."),
        true_token="Yes", false_token=None, activation="identity", name="bge-reranker-v2-gemma"),
    # mixedbread-ai/mxbai-rerank-*-v2: its relevance prompt; logit("1") - logit("0").
    "mxbai-rerank-v2": RerankTemplate(
        segments=("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                  "<|im_start|>user\n", "query: {query}", "\n", "document: {document}", "\n", _MXBAI_TASK,
                  "<|im_end|>\n<|im_start|>assistant\n"),
        true_token="1", false_token="0", activation="identity", name="mxbai-rerank-v2"),
}


def resolve_template(template: RerankTemplate | str | dict[str, Any] | None) -> RerankTemplate | None:
    """A template from a preset name, a one-segment string, a saved config dict, or itself."""
    if template is None or isinstance(template, RerankTemplate):
        return template
    if isinstance(template, dict):
        return RerankTemplate.from_config(template)
    if template in PRESETS:
        return PRESETS[template]
    if "{" not in template:
        raise ConfigError(f"Unknown reranker template preset {template!r}; presets: {sorted(PRESETS)}, or pass a "
                          "template string with {query} and {document}.")
    return RerankTemplate.from_string(template)
