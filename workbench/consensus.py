"""Consensus labels from several annotators: majority vote and Dawid-Skene.

Majority vote counts labels; its tie rule is stated and selectable. Dawid-Skene (1979) learns a
confusion matrix per annotator by EM, so a careful annotator outweighs a careless one and an
annotator who systematically swaps two classes is read back correctly instead of adding noise.
Model probabilities from a scan can replace its class prior per item (the idea behind CROWDLAB):
the model then counts as one more, soft, opinion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.agreement import Annotations
from workbench.brief import BriefRepr
from workbench.errors import DataError

TIE_RULES = ("most_frequent", "none")


def majority_vote(ann: Annotations, *, tie: str = "most_frequent") -> pd.DataFrame:
    """The most frequent label per item.

    Parameters
    ----------
    tie : {"most_frequent", "none"}
        ``most_frequent``: a tie goes to the tied class given most often over the whole table,
        then to the first in class order. ``none``: a tied item gets no label (adjudicate it).

    Returns
    -------
    pandas.DataFrame
        ``(n_items, 5)``: item_id, label, share (votes for it / labels on the item), n_labels, tied.
    """
    if tie not in TIE_RULES:
        raise DataError(f"unknown tie rule {tie!r}; use one of {list(TIE_RULES)}")
    counts = ann.counts()
    n = counts.sum(axis=1)
    top = counts.max(axis=1)
    tied = (counts == top[:, None]).sum(axis=1) > 1
    overall = counts.sum(axis=0)
    # Among the tied classes, prefer the overall most frequent, then the first: a lexicographic key.
    key = (counts == top[:, None]) * (overall[None, :] * (len(ann.classes) + 1) + (len(ann.classes) - np.arange(
        len(ann.classes)))[None, :])
    best = key.argmax(axis=1)
    labels: list[str | None] = [ann.classes[b] for b in best]
    if tie == "none":
        labels = [None if t else lab for lab, t in zip(labels, tied, strict=True)]
    # object dtype: a tie left open stays None (a str column would turn it into NaN).
    return pd.DataFrame({"item_id": ann.items, "label": pd.Series(labels, dtype=object),
                         "share": top / np.maximum(n, 1), "n_labels": n, "tied": tied})


@dataclass(repr=False)
class DawidSkeneResult(BriefRepr):
    """What :func:`dawid_skene` estimated.

    Attributes
    ----------
    labels : pandas.DataFrame
        ``(n_items, 3)``: item_id, label, confidence (posterior probability of that label).
    posterior : numpy.ndarray
        ``(n_items, n_classes)``.
    confusion : numpy.ndarray
        ``(n_annotators, n_classes, n_classes)``: row = true class, column = the label given.
    annotators : pandas.DataFrame
        ``(n_annotators, 3)``: annotator, n_labels, quality (estimated accuracy: the confusion
        diagonal weighted by the class prior).
    class_prior : numpy.ndarray
        ``(n_classes,)``.
    n_iter : int
    converged : bool
    """

    labels: pd.DataFrame
    posterior: np.ndarray
    confusion: np.ndarray
    annotators: pd.DataFrame
    class_prior: np.ndarray
    n_iter: int
    converged: bool


def dawid_skene(ann: Annotations, *, max_iter: int = 200, tol: float = 1e-6, smoothing: float = 0.01,
                model_probs: np.ndarray | None = None) -> DawidSkeneResult:
    """Consensus labels and per-annotator confusion matrices by EM (Dawid and Skene, 1979).

    Parameters
    ----------
    ann : Annotations
    max_iter, tol : int, float
        Stop when no posterior moves by more than ``tol``, or after ``max_iter`` rounds.
    smoothing : float
        Pseudo-count added to every confusion cell, so an annotator seen on few items keeps a
        sensible matrix.
    model_probs : numpy.ndarray, optional
        ``(n_items, n_classes)`` in ``ann.items`` order: a model's predicted probabilities, used
        as each item's prior instead of the global class prior.

    Returns
    -------
    DawidSkeneResult
    """
    k, m = len(ann.classes), len(ann.annotators)
    if len(ann) == 0:
        raise DataError("no labels to build a consensus from")
    if model_probs is not None:
        model_probs = np.asarray(model_probs, dtype=float)
        if model_probs.shape != (len(ann.items), k):
            raise DataError(f"model_probs has shape {model_probs.shape}; expected ({len(ann.items)}, {k}) "
                            "(one row per item in the annotation table's item order)")
    counts = ann.counts().astype(float)
    posterior = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)  # start from the vote shares
    posterior[counts.sum(axis=1) == 0] = 1.0 / k
    converged = False
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        # M step: class prior and every annotator's confusion matrix from the soft labels.
        prior = (posterior.sum(axis=0) + smoothing) / (posterior.sum() + smoothing * k)
        confusion = np.full((m, k, k), smoothing)
        # For every label given: confusion[annotator, :, label] += the item's posterior over true classes.
        np.add.at(confusion, (ann.annotator, slice(None), ann.label), posterior[ann.item])  # type: ignore[arg-type]
        confusion /= confusion.sum(axis=2, keepdims=True)
        # E step: posterior over the true class from every label given to the item.
        log_post = np.log(np.clip(model_probs, 1e-12, None)) if model_probs is not None else \
            np.tile(np.log(prior), (len(ann.items), 1))
        np.add.at(log_post, ann.item, np.log(confusion[ann.annotator, :, ann.label]))
        log_post -= log_post.max(axis=1, keepdims=True)
        new = np.exp(log_post)
        new /= new.sum(axis=1, keepdims=True)
        delta = float(np.abs(new - posterior).max())
        posterior = new
        if delta < tol:
            converged = True
            break
    prior = posterior.mean(axis=0)
    quality = np.einsum("c,acc->a", prior, confusion)
    best = posterior.argmax(axis=1)
    labels = pd.DataFrame({"item_id": ann.items, "label": [ann.classes[b] for b in best],
                           "confidence": posterior[np.arange(len(best)), best]})
    annotators = pd.DataFrame({"annotator": ann.annotators,
                               "n_labels": np.bincount(ann.annotator, minlength=m), "quality": quality})
    return DawidSkeneResult(labels, posterior, confusion, annotators, prior, n_iter, converged)


def simulate_annotators(n_items: int, confusions: np.ndarray, *, per_item: int, seed: int = 0,
                        class_prior: np.ndarray | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Labels from annotators with known confusion matrices (for tests and benchmarks).

    Parameters
    ----------
    confusions : numpy.ndarray
        ``(n_annotators, k, k)``; row = true class, a probability distribution over labels given.
    per_item : int
        Annotators drawn (without replacement) for each item.

    Returns
    -------
    (pandas.DataFrame, numpy.ndarray)
        Long table (item_id, annotator, label as ``c<k>``) and the true classes ``(n_items,)``.
    """
    rng = np.random.default_rng(seed)
    m, k, _ = confusions.shape
    if per_item > m:
        raise DataError(f"per_item={per_item} but only {m} annotators")
    prior = np.full(k, 1.0 / k) if class_prior is None else np.asarray(class_prior)
    truth = rng.choice(k, size=n_items, p=prior)
    rows = []
    for i, t in enumerate(truth):
        for a in rng.choice(m, size=per_item, replace=False):
            rows.append((f"item{i}", f"a{a}", f"c{rng.choice(k, p=confusions[a, t])}"))
    return pd.DataFrame(rows, columns=["item_id", "annotator", "label"]), truth
