"""Next-token choice: greedy, temperature, top-k, top-p."""

from __future__ import annotations

import pytest
import torch

from gptedu.sampling import filter_logits, sample_next_token


def test_temperature_zero_is_argmax():
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 2.9]])
    assert sample_next_token(logits, temperature=0).tolist() == [[1], [0]]


def test_top_k_keeps_exactly_the_k_largest():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0]])
    kept = filter_logits(logits, top_k=2)
    assert torch.isfinite(kept).tolist() == [[False, True, False, True, False]]
    assert torch.equal(kept[torch.isfinite(kept)], torch.tensor([5.0, 4.0]))


def test_top_p_keeps_the_smallest_nucleus():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    kept = torch.isfinite(filter_logits(probs.log(), top_p=0.75))
    assert kept.tolist() == [[True, True, False, False]]  # 0.5 < 0.75, 0.5+0.3 >= 0.75
    kept = torch.isfinite(filter_logits(probs.log(), top_p=0.1))
    assert kept.tolist() == [[True, False, False, False]]  # the top token always stays
    shuffled = probs[:, [2, 0, 3, 1]].log()
    assert torch.isfinite(filter_logits(shuffled, top_p=0.75)).tolist() == [[False, True, False, True]]


def test_high_temperature_flattens_and_low_sharpens():
    logits = torch.tensor([[2.0, 0.0]])
    gen = torch.Generator().manual_seed(0)
    cold = torch.cat([sample_next_token(logits, 0.1, generator=gen) for _ in range(200)])
    hot = torch.cat([sample_next_token(logits, 10.0, generator=gen) for _ in range(2000)])
    assert (cold == 0).all()
    assert 0.4 < (hot == 1).float().mean().item() < 0.6


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"temperature": -1.0}, "temperature"),
    ({"top_k": 0}, "top_k"),
    ({"top_p": 1.5}, "top_p"),
])
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_next_token(torch.zeros(1, 3), **{"temperature": 1.0, **kwargs})
