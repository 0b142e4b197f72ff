"""Which head and which scorer a CrossEncoder's modules get, decided once when it is built."""

from __future__ import annotations

from collections.abc import Sequence

from omnivec.errors import ModelLoadError
from omnivec.models.scorers.base import Scorer, ScoringModel
from omnivec.models.scorers.causal_lm import CausalLMScorer
from omnivec.models.scorers.classifier import ClassifierScorer
from omnivec.models.scorers.vision_language import VisionLanguageScorer
from omnivec.models.templates import RerankTemplate
from omnivec.modules.base import Module
from omnivec.modules.logit_score import LogitScore
from omnivec.modules.router import Router
from omnivec.modules.transformer import Transformer


def with_template_head(modules: Sequence[Module], template: RerankTemplate | None) -> list[Module]:
    """The modules, their ``LogitScore`` head scoring the template's true/false tokens.

    A head built for other tokens (a saved yes/no head given a template answering 1/0) is replaced by a new
    head; heads are never changed in place. A template without a LogitScore head is a ModelLoadError, and so is
    a token the tokenizer does not hold as one piece.
    """
    modules = list(modules)
    if template is None:
        return modules
    positions = [i for i, module in enumerate(modules) if isinstance(module, LogitScore)]
    if not positions:
        raise ModelLoadError(f"Template {template.name!r} needs a LogitScore head (a causal LM reranker).")
    position = positions[-1]
    head = modules[position]
    assert isinstance(head, LogitScore)
    wanted = LogitScore.from_tokens(_tokenizer_of(modules), template.true_token, template.false_token)
    if (wanted.true_token_id, wanted.false_token_id) != (head.true_token_id, head.false_token_id):
        modules[position] = LogitScore(wanted.true_token_id, wanted.false_token_id, head.module_input_name)
    return modules


def build_scorer(model: ScoringModel, head: LogitScore | None, template: RerankTemplate | None) -> Scorer:
    """A LogitScore head on an any-to-any Transformer: vision-language; a LogitScore head: causal LM; else a
    classifier."""
    if head is None:
        return ClassifierScorer(model)
    text = CausalLMScorer(model, head, template)
    if model.transformer.transformer_task == "any-to-any":
        return VisionLanguageScorer(model, text)
    return text


def _tokenizer_of(modules: Sequence[Module]) -> object:
    first = modules[0] if modules else None
    if isinstance(first, Router):
        first = first.route(None, None)[0]
    if not isinstance(first, Transformer):
        raise ModelLoadError(f"A reranker template needs a Transformer as the first module, got {type(first).__name__}.")
    return first.tokenizer
