"""The attention view: a small head trained per fold on the encoder's frozen token vectors.

The embedding view reads one vector per text, the mean over its tokens, and a sentiment that turns on a word or two
("... but the ending is a mess") is averaged away there. This head learns where to look: a few attention heads score
every token, each head pools the text's tokens by its softmax over them, and a linear layer reads the pooled vectors
beside the plain mean. Pooled with the scan's two other views it lifted quick out-of-fold accuracy on SST-2 from
0.845 to 0.861 and on TREC from 0.905 to 0.928 (means of five fold seeds), and left banking77 level (BENCHMARKS.md,
"Quick-mode out-of-fold accuracy"). Its token vectors come from the scan's own forward pass and are cached beside
the sentence embeddings (:func:`workbench.embed.embed_with_tokens`, about 0.8 KB a token); its training, a quarter of
a second per thousand short texts on a 2-core CPU, runs on every scan, since the folds follow the labels. It is one of
the quick scan's default views (:data:`workbench.crossval.VIEWS`) up to
:data:`workbench.crossval.ATTENTION_DEFAULT_MAX_ITEMS` texts that fit in memory (:func:`memory_shortage`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import Cancelled, DataError, require

#: Training settings, measured on SST-2 (BENCHMARKS.md): 4 heads read 0.2-0.4 point better than 1; batches of 256 at
#: lr 1e-2 as good as 32 at 2e-3 and twice as fast; 6 epochs at lr 2e-2 then as good as 10 at 1e-2 in 60% of the time
#: (pooled quick accuracy, five fold seeds: SST-2 0.8606 vs 0.8601, TREC 0.9282 vs 0.9272; banking77, three: 0.9324 vs
#: 0.9330), where 6 at 1e-2 was worse and a learning rate decaying to 0 worse still.
EPOCHS = 6
HEADS = 4
BATCH_SIZE = 256
LEARNING_RATE = 2e-2
WEIGHT_DECAY = 1e-4
#: What a memory shortage's message tells the user to do.
_REMEDY = "scan without it (views=('embedding', 'tfidf')) or scan a sample of the texts"


def fit_attention_oof(states: Sequence[np.ndarray], y: np.ndarray, n_classes: int,
                      splits: Sequence[tuple[np.ndarray, np.ndarray]], *, seed: int = 0, epochs: int = EPOCHS,
                      heads: int = HEADS, batch_size: int = BATCH_SIZE, learning_rate: float = LEARNING_RATE,
                      precision: str = "auto", stop: threading.Event | None = None) -> np.ndarray:
    """Out-of-fold class probabilities from an attention-pooling head per fold.

    The folds' heads train together: every batch goes through all of them, and each head's loss reads only the
    batch's items outside its own test fold. A head's gradient is then what it would be alone, and the items'
    token vectors are read once per step instead of once per fold (1.6-1.8x less time than one fold after another
    on SST-2, BENCHMARKS.md).

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
    precision : {"auto", "bf16", "fp32"}
        The two products over the token vectors (the tokens' scores, the pooling) in bf16 with float32 results, or
        all in float32; ``auto``: bf16 on a CPU with native bf16 instructions (:func:`workbench.embed.cpu_has_bf16`),
        where it took a quarter less time (10,000 emotion texts: 2.1 s against 2.9 s) at the same accuracy
        (BENCHMARKS.md), else float32, since emulated bf16 is slow.
    stop : threading.Event, optional
        Set from another thread to stop between two steps with :class:`~workbench.errors.Cancelled`.

    Returns
    -------
    numpy.ndarray
        ``(n_items, n_classes)`` float64; row ``i`` from the head that did not train on item ``i``.
    """
    torch: Any = require("torch", extra="train", purpose="the attention view")
    from workbench.embed import products_in_bf16

    bf16 = products_in_bf16(precision, owner="the attention view")
    if len(states) != len(y):
        raise DataError(f"token states for {len(states)} items but {len(y)} labels")
    lengths = np.array([len(s) for s in states])
    if len(states) and lengths.min() == 0:
        raise DataError(f"item {int(np.argmin(lengths))} has no token states; embed its text again")
    fold_of = np.full(len(y), -1)
    for fold, (_, test) in enumerate(splits):
        fold_of[test] = fold
    if (fold_of < 0).any():
        raise DataError(f"item {int(np.argmin(fold_of))} is in no test fold; every item must be in one")
    k = len(splits)
    batch_rows = _length_batches(np.arange(len(y)), lengths, batch_size)
    shortage = _shortage(states, lengths, batch_rows, value_bytes=_copy_bytes(precision))
    if shortage is not None:
        raise DataError(shortage)
    # padded once: rebuilding each batch's tensor every epoch cost more than the training
    batches = [_Batch(torch, states, rows, lengths, y, fold_of, k, bf16=bf16) for rows in batch_rows]
    probs = np.zeros((len(y), n_classes))
    # the user's own torch random state is left as it was: the heads' initialisation draws from a forked one
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = _Heads(torch, int(states[0].shape[1]), heads, n_classes, k)
        optimizer = _AdamW(torch, model.parameters(), lr=learning_rate, weight_decay=WEIGHT_DECAY)
        order = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            for b in torch.randperm(len(batches), generator=order).tolist():
                if stop is not None and stop.is_set():
                    raise Cancelled("the attention view's training was stopped")
                batch = batches[b]
                losses = torch.nn.functional.cross_entropy(
                    model(batch.x, batch.mask, batch.mean).flatten(0, 1), batch.target.repeat_interleave(k),
                    reduction="none").view(-1, k)
                # each head: the mean loss over its own training items in the batch
                loss = ((losses * batch.trains).sum(0) / batch.trains.sum(0).clamp(min=1)).sum()
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            for batch in batches:
                logits = model(batch.x, batch.mask, batch.mean)[torch.arange(len(batch.rows)), batch.fold]
                probs[batch.rows] = torch.softmax(logits, 1).double().numpy()
    return probs


def memory_shortage(states: Sequence[np.ndarray], *, batch_size: int = BATCH_SIZE,
                    precision: str = "auto") -> str | None:
    """Why the padded copy the training keeps would not fit in the memory available (``MemAvailable``), with the
    usual headroom left for the rest of the scan, or None when it fits: a million short texts would need about 40 GB
    in float32, half that in bf16.

    Parameters
    ----------
    states : sequence of numpy.ndarray
        ``(n_tokens_i, hidden)`` per item.
    batch_size : int
        The training's batches, each padded to its longest item (:func:`_length_batches`).
    precision : {"auto", "bf16", "fp32"}
        The training's (:func:`fit_attention_oof`): the copy is bf16, 2 bytes a value, where its products are.
    """
    lengths = np.array([len(s) for s in states])
    return _shortage(states, lengths, _length_batches(np.arange(len(states)), lengths, batch_size),
                     value_bytes=_copy_bytes(precision))


def expected_shortage(texts: Sequence[str], *, model: str | os.PathLike[str] | None = None,
                      max_length: int = 128, precision: str = "auto") -> str | None:
    """Before the forward pass: why the texts' token vectors and the training's padded copy of them would not fit in
    the memory available, estimated from the token counts of a sample of the texts; None when they would fit, or when
    nothing can be estimated (no ``tokenizer.json``, no ``MemAvailable``).

    :func:`memory_shortage` is exact but reads the token vectors, so a shortage it finds has cost the forward pass
    (tens of minutes for a million texts) and the memory of the vectors themselves. Nothing is tokenised when every
    text at ``max_length`` tokens would fit.

    Parameters
    ----------
    texts : sequence of str
        ``(n,)`` the texts whose token vectors the forward pass would keep.
    model : path or str, optional
        The encoder (default the packaged model).
    max_length : int
        The encoder's cut, in tokens.
    precision : {"auto", "bf16", "fp32"}
        The training's, as :func:`memory_shortage`.
    """
    from workbench.models import hidden_size, resolve_model
    from workbench.vocab import sample_token_counts

    available = available_memory()
    dim = hidden_size(model)
    copy_bytes = _copy_bytes(precision)
    if available is None or dim is None or not len(texts):
        return None

    def need(tokens: float) -> float:
        # the vectors kept (float16) and twice the training's padded copy: memory_shortage's rule (the copy in at
        # most half the memory available) with the vectors already held
        return tokens * dim * (2 + 2 * copy_bytes)

    if need(len(texts) * max_length) <= available:
        return None
    counts = sample_token_counts(texts, resolve_model(model), max_length=max_length)
    if counts is None:
        return None
    tokens = len(texts) * float(counts.mean())
    if need(tokens) <= available:
        return None
    return (f"the attention view would need about {need(tokens) / 2**30:.1f} GiB for the token vectors of "
            f"{len(texts):,} texts (about {int(tokens):,} tokens, estimated from {len(counts):,} of the texts) and "
            f"{available / 2**30:.1f} GiB is available: {_REMEDY}")


def _copy_bytes(precision: str) -> int:
    """Bytes a value of the training's padded copy of the token vectors takes: bf16 where its products are."""
    from workbench.embed import products_in_bf16

    return 2 if products_in_bf16(precision, owner="the attention view") else 4


def _shortage(states: Sequence[np.ndarray], lengths: np.ndarray, batches: Sequence[np.ndarray], *,
              value_bytes: int) -> str | None:
    """:func:`memory_shortage` for the token counts ``lengths``, the training's own ``batches`` of rows and its
    padded copy's ``value_bytes``. Only one batch is ever float32 at a time, while it is padded."""
    if not len(states):
        return None
    padded = sum(int(lengths[rows].max()) * len(rows) for rows in batches)
    need = padded * int(states[0].shape[1]) * value_bytes
    available = available_memory()
    if available is None or need <= available // 2:
        return None
    return (f"the attention view would hold {need / 2**30:.1f} GiB of token vectors for {len(states):,} texts "
            f"({int(lengths.sum()):,} tokens) and {available / 2**30:.1f} GiB is available: {_REMEDY}")


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux ``MemAvailable``); None where it cannot be read."""
    try:
        lines = Path("/proc/meminfo").read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    found = [line.split() for line in lines if line.startswith("MemAvailable:")]
    return int(found[0][1]) * 1024 if found else None


class _Heads:
    """One head per fold: attention heads over the tokens, each one's pooled vector and the tokens' mean, a linear
    layer to the classes. Initialised as ``torch.nn.Linear`` layers are."""

    def __init__(self, torch: Any, dim: int, heads: int, n_classes: int, folds: int) -> None:
        self.torch, self.folds = torch, folds

        def uniform(*shape: int, fan_in: int) -> Any:
            return ((torch.rand(*shape) * 2 - 1) / fan_in ** 0.5).requires_grad_()

        self.score_weight = uniform(dim, folds * heads, fan_in=dim)
        self.score_bias = uniform(folds * heads, fan_in=dim)
        self.out_weight = uniform(folds, (heads + 1) * dim, n_classes, fan_in=(heads + 1) * dim)
        self.out_bias = uniform(folds, n_classes, fan_in=(heads + 1) * dim)

    def parameters(self) -> list[Any]:
        return [self.score_weight, self.score_bias, self.out_weight, self.out_bias]

    def __call__(self, x: Any, mask: Any, mean: Any) -> Any:
        """``x`` ``(b, width, dim)``, ``mask`` ``(b, width)`` bool, ``mean`` ``(b, dim)`` the tokens' -> logits
        ``(b, folds, n_classes)``."""
        torch = self.torch
        # bf16 token vectors (see fit_attention_oof's precision): the two products over them in bf16, the softmax
        # and everything after in float32
        scores = (x @ self.score_weight.to(x.dtype)).float() + self.score_bias
        weights = torch.softmax(scores.masked_fill(~mask.unsqueeze(-1), float("-inf")), 1)  # (b, width, folds*heads)
        pooled = torch.bmm(weights.transpose(1, 2).to(x.dtype), x).float()  # (b, folds * heads, dim)
        # (folds, b, heads * dim) @ (folds, heads * dim, n_classes): one product per fold's head
        by_fold = pooled.view(len(x), self.folds, -1).transpose(0, 1)
        logits = torch.bmm(by_fold, self.out_weight[:, :-x.shape[2]]).transpose(0, 1)
        # the mean's part of every fold's output layer in one product: (b, dim) @ (dim, folds * n_classes)
        mean_part = mean @ self.out_weight[:, -x.shape[2]:].transpose(0, 1).flatten(1)
        return logits + mean_part.view(len(x), self.folds, -1) + self.out_bias


class _AdamW:
    """AdamW (decoupled weight decay), as ``torch.optim.AdamW`` with its defaults; written out because constructing
    a ``torch.optim`` optimizer imports ``torch._dynamo``, 1.2 s of a warm scan whose target is 5 s."""

    def __init__(self, torch: Any, params: list[Any], *, lr: float, weight_decay: float, betas: tuple[float, float] =
                 (0.9, 0.999), eps: float = 1e-8) -> None:
        self.torch, self.params, self.lr, self.weight_decay, self.betas, self.eps = (
            torch, params, lr, weight_decay, betas, eps)
        self.first = [torch.zeros_like(p) for p in params]
        self.second = [torch.zeros_like(p) for p in params]
        self.steps = 0

    def step(self) -> None:
        """Update every parameter from its gradient, then clear the gradients."""
        self.steps += 1
        b1, b2 = self.betas
        with self.torch.no_grad():
            for p, m, v in zip(self.params, self.first, self.second, strict=True):
                p.mul_(1 - self.lr * self.weight_decay)
                m.lerp_(p.grad, 1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                denom = (v / (1 - b2 ** self.steps)).sqrt_().add_(self.eps)
                p.addcdiv_(m, denom, value=-self.lr / (1 - b1 ** self.steps))
                p.grad = None


class _Batch:
    """A batch's token vectors zero-padded ``x`` ``(b, width, dim)`` float32 (bf16 with ``bf16``), ``mask``
    ``(b, width)``, their ``mean`` ``(b, dim)`` float32, ``target``
    ``(b,)``, each item's test ``fold`` ``(b,)`` and ``trains`` ``(b, folds)``: 1 where the fold's head trains on
    the item."""

    def __init__(self, torch: Any, states: Sequence[np.ndarray], rows: np.ndarray, lengths: np.ndarray,
                 y: np.ndarray, fold_of: np.ndarray, folds: int, *, bf16: bool = False) -> None:
        width = int(lengths[rows].max())
        x = np.zeros((len(rows), width, states[rows[0]].shape[1]), dtype=np.float32)
        mask = np.zeros((len(rows), width), dtype=bool)
        for r, i in enumerate(rows):
            x[r, :lengths[i]] = states[i]
            mask[r, :lengths[i]] = True
        self.rows = rows
        self.x, self.mask = torch.from_numpy(x), torch.from_numpy(mask)
        self.mean = self.x.sum(1) / self.mask.sum(1, keepdim=True)
        if bf16:
            self.x = self.x.bfloat16()
        self.target, self.fold = torch.from_numpy(y[rows]), torch.from_numpy(fold_of[rows])
        self.trains = torch.from_numpy(fold_of[rows][:, None] != np.arange(folds)[None, :]).float()


def _length_batches(rows: np.ndarray, lengths: np.ndarray, size: int) -> list[np.ndarray]:
    """``rows`` in batches of ``size`` items of similar length (little padding)."""
    ordered = rows[np.argsort(lengths[rows], kind="stable")]
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]
