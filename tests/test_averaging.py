"""The weight average the fine-tune worker keeps with ``ema_decay``."""

from __future__ import annotations

import pytest
import torch

from workbench.averaging import WeightAverage


def _params():
    torch.manual_seed(0)
    return [torch.nn.Parameter(torch.randn(3, 4)), torch.nn.Parameter(torch.randn(4))]


def test_update_is_an_exponential_moving_average():
    params = _params()
    start = [p.detach().clone() for p in params]
    average = WeightAverage(params, decay=0.9)
    with torch.no_grad():
        for p in params:
            p.add_(1.0)
    average.update()
    average.update()
    # two updates towards w + 1: the average moved 1 - 0.9**2 of the way
    for s, w in zip(average.shadow, start, strict=True):
        assert torch.allclose(s, w + (1 - 0.9**2), atol=1e-6)


def test_applied_puts_the_average_in_and_restores_the_weights():
    params = _params()
    average = WeightAverage(params, decay=0.5)
    trained = [p.detach().clone() + 2.0 for p in params]
    with torch.no_grad():
        for p, t in zip(params, trained, strict=True):
            p.copy_(t)
    average.update()
    expected = [s.clone() for s in average.shadow]
    with average.applied():
        for p, e in zip(params, expected, strict=True):
            assert torch.equal(p.detach(), e)
    for p, t in zip(params, trained, strict=True):
        assert torch.equal(p.detach(), t)


def test_state_round_trips_and_a_mismatch_is_refused():
    params = _params()
    average = WeightAverage(params, decay=0.99)
    with torch.no_grad():
        params[0].mul_(3)
    average.update()
    other = WeightAverage(_params(), decay=0.99)
    other.load_state_dict(average.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(other.shadow, average.shadow, strict=True))
    with pytest.raises(ValueError, match="does not match"):
        other.load_state_dict(average.state_dict()[:1])
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(params, decay=1.0)
