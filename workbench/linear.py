"""Multinomial logistic regression for several training sets and regularisation strengths at once, in torch.

Why not scikit-learn: choosing ``C`` by nested cross-validation means fitting one model per
(outer fold, inner fold, C). ``LogisticRegressionCV`` spent 13 s on that for 10,000
embeddings on this 2-core machine. Here every model is one block of columns of a single
weight matrix, so one L-BFGS run fits them all with one wide matrix product per step:
every ``C`` of a fold, and (with ``rows``) every fold, each model's loss counting only its
own training rows. Wide products matter: a product with a handful of columns (one model of
six classes) took as long here as one with forty. The gradient is written out rather than taken
by autograd (a third of each step went to autograd's bookkeeping), and the features are
standardised first, which cut the iterations to convergence about 4x. Together: the embedding
view of a 10,000-text quick scan took 4.2 s before, 2.0 s after (two threads, alone). Sets with
many columns (banking77's 77 classes times 7 values of ``C``) get a product each on their own rows.
The objective per model is scikit-learn's: ``sum_i CE_i + ||W||^2 / (2C)`` over its training
rows (intercept not penalised), scaled by ``1/n``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench.errors import require


def standardize(x: np.ndarray) -> np.ndarray:
    """Columns to zero mean and unit variance (constant columns left at 0). ``(n, d)`` float32.

    Computed over all rows without labels, so it leaks no label across folds.
    """
    x = np.asarray(x, dtype=np.float32)
    std = x.std(0)
    return np.asarray((x - x.mean(0)) / np.where(std > 1e-8, std, 1.0), dtype=np.float32)


def fit_softmax(x: np.ndarray, y: np.ndarray, *, n_classes: int, cs: Sequence[float] | Sequence[Sequence[float]],
                rows: Sequence[np.ndarray] | None = None, init: Any | None = None, max_iter: int = 60,
                bf16: bool = False) -> Any:
    """Fit one multinomial logistic regression per (training set, ``C``), jointly.

    Parameters
    ----------
    x : numpy.ndarray
        ``(n, d)`` features (standardised works best).
    y : numpy.ndarray
        ``(n,)`` int class indices in ``[0, n_classes)``.
    n_classes : int
    cs : sequence of float
        Inverse regularisation strengths, as in scikit-learn. Without ``rows``: one model per ``C``
        on all rows. With ``rows``: a sequence of sequences, the strengths for each training set.
    rows : sequence of numpy.ndarray, optional
        ``G`` training sets, each the row indices (into ``x``) one group of models is fitted on,
        e.g. the training part of each outer fold.
    init : torch.Tensor, optional
        ``(d + 1, n_models * n_classes)`` starting weights (a warm start).
    max_iter : int
        L-BFGS iterations.
    bf16 : bool
        The two products of each step (the logits, the gradient) in bf16, accumulated in float32 and rounded to
        bf16; the softmax, the loss and L-BFGS's state stay float32. On a CPU with native bf16 the fit then took
        2-2.7x less time (banking77's 77 classes: 14.7 s -> 5.4 s on one thread) with the same C chosen in every fold
        and out-of-fold log loss within 0.0003 (BENCHMARKS.md, "The embedding head in bf16"); elsewhere bf16 is
        emulated and slow.

    Returns
    -------
    torch.Tensor
        ``(d + 1, n_models * n_classes)``: the last row is the intercept; models are column blocks of
        ``n_classes``, in the order of ``rows`` and, within a training set, of its ``cs``.
    """
    torch: Any = require("torch", extra="train", purpose="the logistic-regression heads")
    groups: list[tuple[np.ndarray, Sequence[float]]] = (
        [(np.arange(len(y)), cs)] if rows is None else list(zip(rows, cs)))  # type: ignore[arg-type, list-item]
    xb = _with_bias(torch, x)
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64))
    n, d1 = xb.shape
    inv_c = [1.0 / (c * len(idx)) for idx, group_cs in groups for c in group_cs]
    # One product per training set, on its own rows, once each set has enough columns to fill the vector
    # units (measured per step: 42 columns 18% faster than one product over all rows, 539 columns 45%);
    # thinner sets share one product over all rows, the other sets' rows weighted 0 (six columns alone
    # were 3x slower).
    if len(groups) > 1 and min(len(c) for _, c in groups) * n_classes >= 32:
        blocks = [_Block(torch, xb[torch.as_tensor(np.asarray(idx))], yt[torch.as_tensor(np.asarray(idx))],
                         torch.tensor(1.0 / len(idx)), len(group_cs), n_classes) for idx, group_cs in groups]
    else:
        # each model's weight on each row: 1/n_g on its training rows, 0 elsewhere
        row_weight = np.zeros((n, len(inv_c)), dtype=np.float32)
        col = 0
        for idx, group_cs in groups:
            row_weight[np.asarray(idx), col:col + len(group_cs)] = 1.0 / len(idx)
            col += len(group_cs)
        blocks = [_Block(torch, xb, yt, torch.from_numpy(row_weight)[:, None, :], len(inv_c), n_classes)]
    first = 0
    for b in blocks:
        b.first, first = first, first + b.m
    # Inside the fit each block's columns are class-major (column k * m + j is class k of its model j): the
    # softmax then reduces over a short axis of contiguous rows of m models, which vectorises (a third less
    # time per step).
    penalty = torch.cat([torch.tensor(inv_c[b.first:b.first + b.m], dtype=torch.float32).repeat(n_classes)
                         for b in blocks])[None, :].expand(d1, -1).clone()
    penalty[-1] = 0.0  # the intercept is not penalised
    start = (torch.zeros(d1, len(inv_c) * n_classes) if init is None
             else _to_blocks(init.detach(), blocks, n_classes, inverse=False))
    weights = start.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([weights], lr=1, max_iter=max_iter, tolerance_grad=1e-6, tolerance_change=1e-10,
                            history_size=10, line_search_fn="strong_wolfe")

    if bf16:
        for b in blocks:
            b.x, b.xt = b.x.bfloat16(), b.xt.bfloat16()

    def closure() -> Any:
        with torch.no_grad():
            w = weights.detach()
            grad = torch.empty_like(w)
            loss = 0.5 * (penalty * w * w).sum()
            for b in blocks:
                cols = slice(b.first * n_classes, (b.first + b.m) * n_classes)
                logits = (b.x @ w[:, cols].to(b.x.dtype)).float().view(-1, n_classes, b.m)
                top = logits.amax(1, keepdim=True)
                e = (logits - top).exp_()
                total = e.sum(1, keepdim=True)
                loss += (b.weight * (total.log().add_(top) - logits.gather(1, b.target))).sum()
                # d loss / d logits = row weight * (softmax - one-hot)
                grad_logits = e.div_(total).scatter_add_(1, b.target, b.minus_one).mul_(b.weight)
                grad[:, cols] = b.xt @ grad_logits.view(-1, n_classes * b.m).to(b.xt.dtype)
            weights.grad = grad.add_(penalty * w)
        return loss

    opt.step(closure)
    return _to_blocks(weights.detach(), blocks, n_classes, inverse=True)


class _Block:
    """Rows that one product of a joint fit reads, and its ``m`` models' row weights and targets."""

    first = 0  # index of the block's first model among all models

    def __init__(self, torch: Any, x: Any, y: Any, weight: Any, m: int, n_classes: int) -> None:
        self.x, self.xt = x, x.T.contiguous()  # the gradient's product reads x transposed, row-major
        self.weight, self.m = weight, m
        self.target = y[:, None, None].expand(len(y), 1, m)
        self.minus_one = torch.full((len(y), 1, m), -1.0)


def _to_blocks(w: Any, blocks: list[_Block], k: int, *, inverse: bool) -> Any:
    """``(d1, n_models * k)`` model-major columns (a model's classes together) to each block's class-major
    ones, or back with ``inverse``."""
    parts = []
    for b in blocks:
        part = w[:, b.first * k:(b.first + b.m) * k]
        shape = (-1, k, b.m) if inverse else (-1, b.m, k)
        parts.append(part.reshape(shape).transpose(1, 2).reshape(-1, b.m * k))
    torch: Any = require("torch", extra="train", purpose="the logistic-regression heads")
    return torch.cat(parts, 1)


def predict_softmax(x: np.ndarray, weights: Any, *, n_classes: int) -> np.ndarray:
    """Class probabilities of every fitted model.

    Returns
    -------
    numpy.ndarray
        ``(n, n_models, n_classes)`` float64, rows summing to 1.
    """
    torch: Any = require("torch", extra="train", purpose="the logistic-regression heads")
    xb = _with_bias(torch, x)
    with torch.no_grad():
        logits = (xb @ weights).view(len(xb), -1, n_classes)
        return np.asarray(torch.softmax(logits.double(), -1).numpy())


def _with_bias(torch: Any, x: np.ndarray) -> Any:
    t = torch.as_tensor(np.asarray(x, dtype=np.float32))
    return torch.cat([t, torch.ones(len(t), 1)], 1)
