"""Fusion of per-space result lists, against the formulas written out here: weighted reciprocal rank fusion and the
normalised convex combination; settings are checked when made."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from omnivec.errors import InputError
from omnivec.kb.fusion import FusionSettings, fuse, parse_weights


@dataclass
class H:
    id: str
    score: float


LISTS = {
    "text": [H("a", 0.9), H("b", 0.8), H("c", 0.5)],
    "lexical": [H("c", 14.0), H("d", 9.0), H("a", 4.0)],
}


def test_convex_combination_normalises_each_list_and_weights_it():
    fused = fuse(LISTS, FusionSettings("convex", weights={"text": 1.0, "lexical": 3.0}))
    norm = {"text": {"a": 1.0, "b": 0.75, "c": 0.0}, "lexical": {"c": 1.0, "d": 0.5, "a": 0.0}}
    expected = {item: (1.0 * norm["text"].get(item, 0.0) + 3.0 * norm["lexical"].get(item, 0.0)) / 4.0
                for item in "abcd"}
    assert {f.id: f.score for f in fused} == pytest.approx(expected)
    assert [f.id for f in fused] == sorted(expected, key=lambda i: -expected[i])
    first = {f.id: f for f in fused}
    assert first["a"].spaces == ["text", "lexical"] and first["a"].scores == {"text": 0.9, "lexical": 4.0}
    assert first["d"].spaces == ["lexical"] and first["d"].scores == {"lexical": 9.0}


def test_weighted_reciprocal_rank_fusion():
    fused = fuse(LISTS, FusionSettings("rrf", rrf_k=10, weights={"lexical": 2.0}))
    expected = {"a": 1 / 11 + 2 / 13, "b": 1 / 12, "c": 1 / 13 + 2 / 11, "d": 2 / 12}
    assert {f.id: f.score for f in fused} == pytest.approx(expected)
    assert [f.id for f in fused] == ["c", "a", "d", "b"]


def test_a_space_of_weight_zero_changes_nothing():
    alone = fuse({"text": LISTS["text"]}, FusionSettings("convex"))
    muted = fuse(LISTS, FusionSettings("convex", weights={"lexical": 0}))
    assert [f.id for f in muted] == [f.id for f in alone] == ["a", "b", "c"]
    assert [f.score for f in muted] == pytest.approx([f.score for f in alone])
    assert fuse({"x": [H("a", 1.0), H("b", 1.0)]}, FusionSettings())[0].score == 1.0  # one score: no division by 0


def test_settings_are_checked_and_merged():
    assert FusionSettings("score").method == "convex"  # the name before 0.2
    assert FusionSettings() == FusionSettings("convex", 60, {"lexical": 1.5})  # measured: bench/eval_fusion.py
    for bad, needle in ((dict(method="max"), "max"), (dict(rrf_k=-1), "rrf_k"), (dict(rrf_k=True), "rrf_k"),
                        (dict(weights={"text": -1.0}), "text"), (dict(weights={"text": float("nan")}), "text"),
                        (dict(weights=[("text", 1.0)]), "weights")):
        with pytest.raises(InputError, match=needle):
            FusionSettings(**bad)
    base = FusionSettings("convex", 60, {"text": 0.3, "lexical": 0.7})
    assert base.merged("rrf", None, {"lexical": 1.0}) == FusionSettings("rrf", 60, {"text": 0.3, "lexical": 1.0})
    assert base.merged() == base
    assert parse_weights("text=0.4, lexical=0.6") == {"text": 0.4, "lexical": 0.6}
    for bad in ("text", "text=", "text=x", "=1", "text=-1", "text=inf"):
        with pytest.raises(InputError, match="--weights"):
            parse_weights(bad)
