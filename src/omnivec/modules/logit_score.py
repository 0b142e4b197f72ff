"""LogitScore: a causal LM's next-token logits -> a relevance score (logit[yes] - logit[no], or logit[yes])."""

from __future__ import annotations

from typing import Any

from omnivec.errors import ModelLoadError
from omnivec.modules.base import Module


class LogitScore(Module):
    """Score = ``logits[true_token_id] - logits[false_token_id]`` at the last position (or the true logit alone).

    The last position is the last real token: the Transformer pads causal LMs on the left, and a prefix-shared
    ``rank`` passes each row's last-token logits alone (shape (rows, 1, vocab)). This is the only place the
    yes - no formula is written: every CrossEncoder scorer gets its scores from this module.
    """

    config_keys = ("true_token_id", "false_token_id", "module_input_name")
    st_type = "sentence_transformers.cross_encoder.modules.LogitScore"

    def __init__(self, true_token_id: int, false_token_id: int | None = None, module_input_name: str = "causal_logits") -> None:
        super().__init__()
        self.true_token_id = int(true_token_id)
        self.false_token_id = None if false_token_id is None else int(false_token_id)
        self.module_input_name = module_input_name

    @classmethod
    def from_tokens(cls, tokenizer: Any, true_token: str, false_token: str | None = None) -> LogitScore:
        """Look the tokens up in the vocabulary; a token that is not one piece of it is an error naming it."""
        return cls(token_id(tokenizer, true_token), None if false_token is None else token_id(tokenizer, false_token))

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        logits = features[self.module_input_name][:, -1]
        scores = logits[:, self.true_token_id]
        if self.false_token_id is not None:
            scores = scores - logits[:, self.false_token_id]
        features["scores"] = scores.unsqueeze(1)
        return features

    def __repr__(self) -> str:
        return f"LogitScore(true_token_id={self.true_token_id}, false_token_id={self.false_token_id})"


def token_id(tokenizer: Any, token: str) -> int:
    """The id of ``token`` as a single vocabulary entry (e.g. "yes"), else a ModelLoadError naming it."""
    vocab = tokenizer.get_vocab()
    if token in vocab:
        return int(vocab[token])
    ids = tokenizer.encode(token, add_special_tokens=False)
    if len(ids) == 1:
        return int(ids[0])
    raise ModelLoadError(f"The tokenizer has no single token {token!r} (it splits into {len(ids)} pieces: "
                         f"{tokenizer.convert_ids_to_tokens(ids)}); a LogitScore head needs one vocabulary entry.")
