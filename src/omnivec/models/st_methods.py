"""The sentence-transformers methods and attributes code calls on a model, beyond encoding and scoring.

``ModelMethods`` (every model): ``tokenize``, ``get_max_seq_length``, ``evaluate``, ``push_to_hub``,
``transformers_model``. ``EmbedderMethods``: ``set_pooling_include_prompt`` and the ``truncate_embeddings``
context managers. Mixed into BaseModel and Embedder, so that code written for sentence-transformers runs unchanged.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from omnivec.errors import InputError
from omnivec.modules.pooling import Pooling
from omnivec.modules.transformer import Transformer

logger = logging.getLogger(__name__)


class ModelMethods:
    """sentence-transformers' model-level helpers, shared by Embedder and CrossEncoder."""

    def tokenize(self: Any, texts: Sequence[str] | Sequence[Sequence[str]]) -> dict[str, Any]:
        """Token ids, attention mask (and type ids) of a batch, padded to its longest and truncated to
        ``max_seq_length``: what the first module runs on. Pairs (for a CrossEncoder) are tokenized together."""
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise InputError(f"tokenize() takes a list of texts or of (text, text) pairs, got {type(texts).__name__}.")
        rows: list[Any] = [tuple(t) if isinstance(t, (list, tuple)) else t for t in texts]
        features: dict[str, Any] = dict(self.transformer.tokenize(rows))
        features["modality"] = "text"
        return features

    def get_max_seq_length(self: Any) -> int | None:
        """The token limit of the first module (sentence-transformers' older name for ``max_seq_length``)."""
        return self.max_seq_length

    @property
    def transformers_model(self: Any) -> Any:
        """The Hugging Face model inside the input Transformer module (None without one)."""
        module = _first_transformer(self)
        return module.model if module is not None else None

    def evaluate(self, evaluator: Callable[..., Any], output_path: str | None = None) -> Any:
        """``evaluator(model)``: its results (a dict of metrics, or a score). ``output_path`` is created and handed
        to evaluators that take one (sentence-transformers' evaluators write a CSV there)."""
        if not callable(evaluator):
            raise InputError(f"evaluator must be an evaluator (a callable taking the model), got "
                             f"{type(evaluator).__name__}.")
        if output_path is None:
            return evaluator(self)
        os.makedirs(output_path, exist_ok=True)
        if _takes_second_argument(evaluator):
            return evaluator(self, output_path)
        logger.info("%s does not take an output_path; nothing is written to %s.", type(evaluator).__name__, output_path)
        return evaluator(self)

    def push_to_hub(
        self: Any,
        repo_id: str,
        token: str | None = None,
        private: bool | None = None,
        safe_serialization: bool = True,
        commit_message: str | None = None,
        local_model_path: str | None = None,
        exist_ok: bool = False,
        replace_model_card: bool = False,
        train_datasets: list[str] | None = None,
        revision: str | None = None,
        create_pr: bool = False,
    ) -> str:
        """Upload the model to a Hugging Face Hub repository (created if missing), as sentence-transformers does:
        the saved folder (or ``local_model_path``) in one commit; a model card unless the repository has one
        (``replace_model_card``: write it anyway). Returns the commit URL (the pull request URL with ``create_pr``)."""
        from huggingface_hub import HfApi

        if not isinstance(repo_id, str) or not repo_id:
            raise InputError(f"repo_id must be a Hub repository name such as 'user/model', got {repo_id!r}.")
        api = HfApi(token=token)
        repo_id = api.create_repo(repo_id=repo_id, private=private, repo_type=None,
                                  exist_ok=exist_ok or create_pr).repo_id  # "name" becomes "user/name"
        if revision is not None:
            api.create_branch(repo_id=repo_id, branch=revision, exist_ok=True)
        if commit_message is None:
            backend = getattr(_first_transformer(self), "backend", "torch")
            commit_message = f"Add new {self.model_type} model" + (f" with an {backend} backend"
                                                                   if backend != "torch" else "")
        description = f"Hello!\n\nThis pull request adds {self.model_type} compatibility.\n\n```\n{self}\n```" \
            if create_pr else None
        with tempfile.TemporaryDirectory() as tmp:
            folder = local_model_path
            if folder is None:
                card = replace_model_card or not _has_card(api, repo_id, revision)
                self.save(tmp, model_name=repo_id, create_model_card=card, train_datasets=train_datasets,
                          safe_serialization=safe_serialization)
                folder = tmp
            commit = api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message,
                                       commit_description=description, create_pr=create_pr, revision=revision)
        return str(commit.pr_url if create_pr else commit.commit_url)



class EmbedderMethods:
    """sentence-transformers' SentenceTransformer helpers that change how ``encode`` embeds."""

    def set_pooling_include_prompt(self: Any, include_prompt: bool) -> None:
        """Whether the first Pooling module pools the prompt's tokens too (False for INSTRUCTOR-style models)."""
        for module in self:
            if isinstance(module, Pooling):
                module.include_prompt = bool(include_prompt)
                break

    @contextlib.contextmanager
    def truncate_embeddings(self: Any, truncate_dim: int | None) -> Iterator[None]:
        """Inside this block ``encode`` keeps only the first ``truncate_dim`` dimensions (None: all of them)."""
        original = self.truncate_dim
        try:
            self.truncate_dim = truncate_dim
            yield
        finally:
            self.truncate_dim = original

    @contextlib.contextmanager
    def truncate_sentence_embeddings(self: Any, truncate_dim: int | None) -> Iterator[None]:
        """The older name of ``truncate_embeddings`` (with sentence-transformers' FutureWarning)."""
        warnings.warn("The `truncate_sentence_embeddings` method has been renamed to `truncate_embeddings`.",
                      FutureWarning, stacklevel=3)
        with self.truncate_embeddings(truncate_dim):
            yield


def _first_transformer(model: Any) -> Transformer | None:
    """The first Transformer module, a Router's routes included."""
    return next((m for m in model.modules() if isinstance(m, Transformer)), None)


def _takes_second_argument(evaluator: Callable[..., Any]) -> bool:
    try:
        parameters = list(inspect.signature(evaluator).parameters.values())
    except (TypeError, ValueError):
        return True
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in positional)


def _has_card(api: Any, repo_id: str, revision: str | None) -> bool:
    """Whether the repository already holds a README.md; when that cannot be told, True, so that an existing card
    is never overwritten (sentence-transformers' choice)."""
    try:
        return bool(api.file_exists(repo_id, "README.md", revision=revision))
    except Exception as exc:  # noqa: BLE001 (any Hub failure: the card is then left alone)
        logger.warning("Could not check for an existing README.md on %r (%s: %s). Skipping model card creation to "
                       "avoid overwriting any existing card.", repo_id, type(exc).__name__, exc)
        return True

