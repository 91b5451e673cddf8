"""The attention view: a small head trained per fold on the encoder's frozen token vectors.

The embedding view reads one vector per text, the mean over its tokens, and a sentiment that turns on a word or two
("... but the ending is a mess") is averaged away there. This head learns where to look: a few attention heads score
every token, each head pools the text's tokens by its softmax over them, and a linear layer reads the pooled vectors
beside the plain mean. Pooled with the scan's two views it lifted quick out-of-fold accuracy on SST-2 from 0.845 to
0.859 and on TREC from 0.905 to 0.925 (means of five fold seeds), and left banking77 level (BENCHMARKS.md, "Quick-mode
out-of-fold accuracy", the run with ``--views``). Its training costs about a second per thousand short texts on a
2-core CPU, and its token vectors are not cached, so it is an option of the quick scan (``views``), not part of the
default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench.errors import DataError, require

#: Training settings, measured on SST-2 (BENCHMARKS.md): 4 heads read 0.2-0.4 point better than 1; 10 epochs better
#: than 6; batches of 256 at lr 1e-2 as good as 32 at 2e-3 and twice as fast.
EPOCHS = 10
HEADS = 4
BATCH_SIZE = 256
LEARNING_RATE = 1e-2
WEIGHT_DECAY = 1e-4


def fit_attention_oof(states: Sequence[np.ndarray], y: np.ndarray, n_classes: int,
                      splits: Sequence[tuple[np.ndarray, np.ndarray]], *, seed: int = 0, epochs: int = EPOCHS,
                      heads: int = HEADS, batch_size: int = BATCH_SIZE,
                      learning_rate: float = LEARNING_RATE) -> np.ndarray:
    """Out-of-fold class probabilities from an attention-pooling head per fold.

    Parameters
    ----------
    states : sequence of numpy.ndarray
        ``(n_tokens_i, hidden)`` per item (:meth:`workbench.embed.Encoder.token_states`).
    y : numpy.ndarray
        ``(n_items,)`` int labels.
    n_classes : int
    splits : sequence of (train, test) index arrays
        Every item in exactly one test part.
    seed : int
        The heads' initialisation and the batch order.

    Returns
    -------
    numpy.ndarray
        ``(n_items, n_classes)`` float64; row ``i`` from the head that did not train on item ``i``.
    """
    torch: Any = require("torch", extra="train", purpose="the attention view")
    if len(states) != len(y):
        raise DataError(f"token states for {len(states)} items but {len(y)} labels")
    lengths = np.array([len(s) for s in states])
    if len(states) and lengths.min() == 0:
        raise DataError(f"item {int(np.argmin(lengths))} has no token states; embed its text again")
    probs = np.zeros((len(y), n_classes))
    # the user's own torch random state is left as it was: the heads' initialisation draws from a forked one
    with torch.random.fork_rng():
        for fold, (train, test) in enumerate(splits):
            torch.manual_seed(seed * 1000 + fold)
            model = _Head(torch, int(states[0].shape[1]), heads, n_classes)
            optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=WEIGHT_DECAY)
            # padded once: rebuilding each batch's tensor every epoch cost more than the training
            batches = [(_padded(torch, states, rows, lengths), torch.from_numpy(y[rows]))
                       for rows in _length_batches(train, lengths, batch_size)]
            order = torch.Generator().manual_seed(seed * 1000 + fold)
            for _ in range(epochs):
                for b in torch.randperm(len(batches), generator=order).tolist():
                    (x, mask), target = batches[b]
                    loss = torch.nn.functional.cross_entropy(model(x, mask), target)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
            with torch.no_grad():
                for rows in _length_batches(test, lengths, batch_size):
                    x, mask = _padded(torch, states, rows, lengths)
                    probs[rows] = torch.softmax(model(x, mask), 1).double().numpy()
    return probs


class _Head:
    """Attention heads over the tokens, each head's pooled vector and the tokens' mean, a linear layer to classes."""

    def __init__(self, torch: Any, dim: int, heads: int, n_classes: int) -> None:
        self.torch = torch
        self.score = torch.nn.Linear(dim, heads)
        self.out = torch.nn.Linear((heads + 1) * dim, n_classes)

    def parameters(self) -> list[Any]:
        return [*self.score.parameters(), *self.out.parameters()]

    def __call__(self, x: Any, mask: Any) -> Any:
        """``x`` ``(b, width, dim)``, ``mask`` ``(b, width)`` bool -> logits ``(b, n_classes)``."""
        torch = self.torch
        weights = torch.softmax(self.score(x).masked_fill(~mask.unsqueeze(-1), float("-inf")), 1)  # (b, width, h)
        pooled = torch.einsum("bwh,bwd->bhd", weights, x).flatten(1)
        mean = (x * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
        return self.out(torch.cat([pooled, mean], 1))


def _length_batches(rows: np.ndarray, lengths: np.ndarray, size: int) -> list[np.ndarray]:
    """``rows`` in batches of ``size`` items of similar length (little padding)."""
    ordered = rows[np.argsort(lengths[rows], kind="stable")]
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]


def _padded(torch: Any, states: Sequence[np.ndarray], rows: np.ndarray, lengths: np.ndarray) -> tuple[Any, Any]:
    """The rows' token vectors as one zero-padded float32 tensor ``(b, width, dim)`` and its mask ``(b, width)``."""
    width = int(lengths[rows].max())
    x = np.zeros((len(rows), width, states[rows[0]].shape[1]), dtype=np.float32)
    mask = np.zeros((len(rows), width), dtype=bool)
    for r, i in enumerate(rows):
        x[r, :lengths[i]] = states[i]
        mask[r, :lengths[i]] = True
    return torch.from_numpy(x), torch.from_numpy(mask)
