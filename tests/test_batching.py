"""The batching engine: sorted by length, bounded by count and token budget, order restored."""

from __future__ import annotations

import numpy as np
import pytest

from omnivec.runtime.batching import plan_batches, restore_order


def test_batches_are_longest_first_and_bounded_by_count():
    lengths = [3, 10, 1, 7, 7, 2, 9]
    batches = plan_batches(lengths, batch_size=3)
    assert [len(b) for b in batches] == [3, 3, 1]
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)


def test_token_budget_bounds_padded_tokens():
    lengths = [100, 90, 80, 10, 10, 10, 10, 10, 10]
    batches = plan_batches(lengths, batch_size=32, max_tokens=200)
    for batch in batches:
        widest = max(lengths[i] for i in batch)
        assert len(batch) * widest <= 200 or len(batch) == 1
    assert [len(b) for b in batches] == [2, 2, 5]


def test_an_input_longer_than_the_budget_gets_its_own_batch():
    assert [len(b) for b in plan_batches([500, 5, 5], batch_size=8, max_tokens=100)] == [1, 2]


def test_restore_order_inverts_the_plan():
    lengths = list(np.random.default_rng(0).integers(1, 50, size=101))
    batches = plan_batches(lengths, batch_size=7, max_tokens=120)
    results = [f"item{i}" for i in np.concatenate(batches)]
    assert restore_order(batches, results) == [f"item{i}" for i in range(101)]


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"batch_size": 4, "max_tokens": 0}])
def test_invalid_bounds(bad):
    with pytest.raises(ValueError):
        plan_batches([1, 2, 3], **bad)


def test_progress_bar_on_request(minilm_embedder, capsys):
    model = minilm_embedder
    model.encode(["a", "b", "c"], batch_size=1, show_progress_bar=True)
    assert "Encoding" in capsys.readouterr().err
    model.encode(["a", "b", "c"], batch_size=1, show_progress_bar=False)
    assert capsys.readouterr().err == ""


def test_prefetch_keeps_order_and_surfaces_errors_in_place():
    from omnivec.runtime.prefetch import prefetched

    assert list(prefetched((lambda i=i: i * i) for i in range(7))) == [0, 1, 4, 9, 16, 25, 36]

    def boom():
        raise RuntimeError("bad batch")

    results = prefetched([lambda: 1, boom, lambda: 3])
    assert next(results) == 1
    with pytest.raises(RuntimeError, match="bad batch"):
        next(results)
