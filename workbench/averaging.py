"""Exponential moving average of a model's trained weights, for the fine-tune worker (``ema_decay``).

The worker updates the average after every optimizer step, evaluates and saves the average instead of
the last weights, and checkpoints it beside the optimizer so a resumed run keeps averaging where it
stopped. Averaging the weights of the last few hundred steps smooths the noise of the final steps;
on SST-2 it lifted dev accuracy (BENCHMARKS.md, "SST-2 fine-tune variants").
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


class WeightAverage:
    """``average = decay * average + (1 - decay) * weights``, one tensor per trained parameter.

    Parameters
    ----------
    params : sequence of torch.nn.Parameter
        The trained parameters (frozen ones need no average: they never move).
    decay : float
        In ``(0, 1)``; ``1 / (1 - decay)`` steps is about how far back the average reaches.
    """

    def __init__(self, params: Sequence[Any], decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.params = list(params)
        self.decay = float(decay)
        self.shadow = [p.detach().clone() for p in self.params]

    def update(self) -> None:
        """Move the average towards the current weights; call after each optimizer step."""
        import torch

        with torch.no_grad():
            for s, p in zip(self.shadow, self.params, strict=True):
                s.lerp_(p.detach(), 1.0 - self.decay)

    def swap(self) -> None:
        """Exchange the model's weights and the average (twice restores both)."""
        import torch

        with torch.no_grad():
            for s, p in zip(self.shadow, self.params, strict=True):
                held = p.detach().clone()
                p.copy_(s)
                s.copy_(held)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The average in the model inside the block (to evaluate it), the trained weights after."""
        self.swap()
        try:
            yield
        finally:
            self.swap()

    def state_dict(self) -> list[Any]:
        """The averaged tensors, in parameter order (for a checkpoint)."""
        return [s.detach().cpu() for s in self.shadow]

    def load_state_dict(self, tensors: Sequence[Any]) -> None:
        """Restore :meth:`state_dict`'s tensors; their number and shapes must match the parameters."""
        if len(tensors) != len(self.shadow) or any(t.shape != s.shape for t, s in zip(tensors, self.shadow)):
            raise ValueError("the checkpoint's weight average does not match the model's trained parameters")
        for s, t in zip(self.shadow, tensors, strict=True):
            s.copy_(t.to(s.device, s.dtype))
