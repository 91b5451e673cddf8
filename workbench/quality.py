"""Label-issue scores and filters from out-of-fold probabilities (and, optionally, embeddings).

Conventions, as in the confident-learning literature: ``labels`` are int indices
``(n,)``; ``pred_probs`` are out-of-fold probabilities ``(n, K)`` whose rows sum to 1;
every score lies in ``[0, 1]`` and a *lower* score means the label is more likely wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import DataError

SCORES = ("self_confidence", "normalized_margin", "confidence_weighted_entropy", "label_posterior",
          "neighbor_agreement", "combined")
FILTERS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given")
#: Largest weight the neighbours' label distribution gets in ``combined`` (two equally good views: half each).
MAX_NEIGHBOR_WEIGHT = 0.5
#: The neighbour view is left out when its error against the given labels exceeds the classifier's by this factor.
NEIGHBOR_ERROR_RATIO = 2.0
#: ``combined`` reads its probabilities through the noise model (:func:`label_posterior`) from this estimated
#: noise rate up, and by the margin below it. On the label-error benchmark the posterior ranked errors better
#: than the margin on every synthetic row tested (pair-flip and uniform noise, 3% to 20%, four datasets) and
#: far worse on 20news' real errors at an estimated 1.3% (AUPRC 0.44 vs 0.90); the switch point lies between
#: those rows and is not better pinned than that (BENCHMARKS.md).
POSTERIOR_MIN_NOISE_RATE = 0.02


def validate(labels: Any, pred_probs: Any, *, atol: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert ``labels`` ``(n,)`` and ``pred_probs`` ``(n, K)``.

    Raises
    ------
    DataError
        Wrong shapes, NaNs, negative values, rows not summing to 1, labels outside ``0..K-1``.
    """
    p = np.asarray(pred_probs, dtype=np.float64)
    y = np.asarray(labels)
    if p.ndim != 2:
        raise DataError(f"pred_probs must be a 2-D array (items x classes); got shape {p.shape}")
    n, k = p.shape
    if k < 2:
        raise DataError(f"pred_probs has {k} column; label issues need at least 2 classes")
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"labels has shape {y.shape} but pred_probs has {n} rows; give one label per row")
    check_probability_rows(p, atol=atol)
    if not np.issubdtype(y.dtype, np.integer):
        if y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0):
            y = y.astype(np.int64)
        else:
            raise DataError(f"labels must be class indices 0..{k - 1}; got values like {y[:3].tolist()}. "
                            "Map class names to indices with workbench.crossval.encode_labels")
    out = np.flatnonzero((y < 0) | (y >= k))
    if len(out):
        raise DataError(f"label {y[out[0]]} at row {out[0]} is outside the classes 0..{k - 1}")
    return y.astype(np.int64), p


def check_probability_rows(p: np.ndarray, *, atol: float = 1e-3, name: Callable[[int], str] = "row {}".format,
                           unit: str = "rows") -> None:
    """Refuse NaN or infinite values, negative values and rows not summing to 1 in ``p`` ``(n, K)``.

    Parameters
    ----------
    name : callable
        Row index to the words that name it in the message (default ``row 3``; a scan names the item instead).
    unit : str
        What the rows are, in the count of bad ones ("2 of 300 rows").

    Raises
    ------
    DataError
        Naming the first bad row, how many rows are bad and what to pass instead.
    """
    checks = [(~np.isfinite(p).all(1), "have NaN or infinite values", "every scored item needs a full row"),
              ((p < 0).any(1), "have negative values", "pass probabilities, not logits or log-probabilities")]
    for bad_rows, problem, remedy in checks:
        bad = np.flatnonzero(bad_rows)
        if len(bad):
            raise DataError(f"the probabilities of {name(int(bad[0]))} {problem} ({len(bad)} of {len(p)} {unit}); "
                            f"{remedy}")
    sums = p.sum(1)
    bad = np.flatnonzero(np.abs(sums - 1) > atol)
    if len(bad):
        raise DataError(f"the probabilities of {name(int(bad[0]))} sum to {sums[bad[0]]:.4f}, not 1 ({len(bad)} of "
                        f"{len(p)} {unit}); pass probabilities (apply a softmax to logits), with a column for every "
                        "class")


def self_confidence(labels: Any, pred_probs: Any) -> np.ndarray:
    """``p[i, y_i]``, the probability of the given label. Shape ``(n,)``."""
    y, p = validate(labels, pred_probs)
    return p[np.arange(len(y)), y]


def normalized_margin(labels: Any, pred_probs: Any) -> np.ndarray:
    """``(p[i, y_i] - max_{k != y_i} p[i, k] + 1) / 2``. Shape ``(n,)``."""
    y, p = validate(labels, pred_probs)
    given = p[np.arange(len(y)), y]
    other = p.copy()
    other[np.arange(len(y)), y] = -np.inf
    return (given - other.max(1) + 1) / 2


def confidence_weighted_entropy(labels: Any, pred_probs: Any) -> np.ndarray:
    """Self-confidence divided by the prediction's normalised entropy, mapped to ``[0, 1]`` by ``x / (1 + x)``.

    A confident prediction (low entropy) that disagrees with the label scores lower than
    an unsure one, which mostly says the item is hard.
    """
    y, p = validate(labels, pred_probs)
    k = p.shape[1]
    entropy = -(p * np.log(np.clip(p, 1e-12, None))).sum(1) / np.log(k)
    ratio = p[np.arange(len(y)), y] / np.clip(entropy, 1e-6, None)
    return ratio / (1 + ratio)


def label_posterior(labels: Any, pred_probs: Any) -> np.ndarray:
    """Estimated probability that the given label is the true one, under class-conditional label noise.

    With ``N[i, j] = P(given = i | true = j)`` estimated from the confident joint and ``p`` read as the
    probability of each true class, Bayes' rule gives
    ``P(true = y | x, given = y) = N[y, y] p[y] / sum_j N[y, j] p[j]``. Unlike the margin it knows which
    confusions the data shows: a competitor class whose items are rarely given label ``y`` barely lowers
    the score, one that is often mislabelled as ``y`` lowers it much. The confident joint gets one
    pseudo-count per class spread over its off-diagonal cells, so a confusion never seen is unlikely,
    not impossible. The estimate counts the model's own confusions as noise too, so with a weak model
    (on planted data: a true class only 1.5 logits ahead) it can rank errors below self-confidence.

    Parameters
    ----------
    labels : array-like of int, ``(n,)``
    pred_probs : array-like, ``(n, K)``

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float64 in ``[0, 1]``.
    """
    y, p = validate(labels, pred_probs)
    return _posterior_of_given(y, p, confident_joint(y, p))


def _posterior_of_given(y: np.ndarray, p: np.ndarray, joint: np.ndarray) -> np.ndarray:
    """:func:`label_posterior` from a calibrated confident joint ``(K, K)`` already computed."""
    k = p.shape[1]
    smoothed = joint + (1.0 - np.eye(k)) / (k - 1)
    noise = smoothed / smoothed.sum(0, keepdims=True)  # P(given = i | true = j), columns sum to 1
    rows = np.arange(len(y))
    given = noise[y, y] * p[rows, y]
    total = np.einsum("nk,nk->n", noise[y], p)
    return np.asarray(np.where(total > 0, given / np.where(total > 0, total, 1.0), 0.0))


def neighbor_agreement(labels: Any, embeddings: np.ndarray, *, k: int = 10, chunk: int = 2048) -> np.ndarray:
    """Share of an item's ``k`` nearest neighbours (cosine) that carry the same given label. Shape ``(n,)``."""
    y = np.asarray(labels)
    return agreement_from_neighbors(y, _neighbors_of(embeddings, len(y), k=k, chunk=chunk))


def _neighbors_of(embeddings: np.ndarray, n_items: int, *, k: int, chunk: int = 2048) -> np.ndarray:
    """``(n, k)`` row indices of each item's nearest neighbours by cosine; checks one embedding per item."""
    x = unit_rows(np.asarray(embeddings, dtype=np.float32))
    if len(x) != n_items:
        raise DataError(f"{len(x)} embeddings for {n_items} labels")
    return nearest_neighbors(x, k=k, chunk=chunk)[0]


def agreement_from_neighbors(labels: Any, neighbors: np.ndarray) -> np.ndarray:
    """Share of each item's neighbours ``(n, k)`` (row indices) that carry its label. Shape ``(n,)``."""
    y = np.asarray(labels)
    return np.asarray((y[neighbors] == y[:, None]).mean(1), dtype=np.float64)


def neighbor_label_distribution(labels: Any, neighbors: np.ndarray, n_classes: int) -> np.ndarray:
    """Share of each item's neighbours ``(n, k)`` (row indices) carrying each class. Shape ``(n, n_classes)``."""
    y = np.asarray(labels)
    n, k = neighbors.shape
    out = np.zeros((n, n_classes))
    np.add.at(out, (np.repeat(np.arange(n), k), y[neighbors].ravel()), 1.0 / max(k, 1))
    return out


def _top_class_error(y: np.ndarray, probs: np.ndarray) -> float:
    """Expected share of rows whose top class (ties broken at random) is not ``y``. ``(n,), (n, K) -> float``"""
    top = probs.max(1, keepdims=True)
    is_top = probs[np.arange(len(y)), y] >= top[:, 0]
    return float(np.mean(1.0 - is_top / (probs >= top).sum(1)))


def choose_neighbor_weight(labels: Any, pred_probs: np.ndarray, neighbor_probs: np.ndarray) -> float:
    """How much the neighbours' label distribution should count next to the classifier's probabilities.

    Each view's error ``e`` is how often its top class differs from the given label, a tie among ``t``
    top classes counting ``1/t`` (so the weight does not depend on the order of the classes); the weight is
    ``MAX_NEIGHBOR_WEIGHT * e_model**2 / (e_model**2 + e_neighbors**2)`` (inverse squared error, so the
    weaker view counts less), and 0 when the neighbours err more than ``NEIGHBOR_ERROR_RATIO`` times as
    often as the classifier: then they only blur a strong model's ranking (20news with the paper's
    probabilities, BENCHMARKS.md). Both constants were chosen on the label-error benchmark's rows.
    """
    y = np.asarray(labels)
    e_model, e_neighbors = _top_class_error(y, pred_probs), _top_class_error(y, neighbor_probs)
    if e_neighbors > NEIGHBOR_ERROR_RATIO * e_model or e_model + e_neighbors == 0:
        return 0.0
    return MAX_NEIGHBOR_WEIGHT * e_model**2 / (e_model**2 + e_neighbors**2)


def combine_scores(labels: Any, pred_probs: Any, neighbors: np.ndarray, *,
                   neighbor_weight: float | None = None) -> np.ndarray:
    """The ``combined`` score: the classifier's and the neighbours' probabilities mixed, read through the noise.

    ``p' = (1 - w) * pred_probs + w * q``, with ``q`` the label distribution of each item's nearest
    neighbours, so the neighbourhood acts as a second classifier. The score is :func:`label_posterior` of
    ``p'`` when the estimated noise rate of ``p'`` is at least ``POSTERIOR_MIN_NOISE_RATE``, else its
    normalized margin. At the same weight, mixing probabilities ranked errors at least as well as
    averaging the two scores on every synthetic row of the label-error benchmark.

    Parameters
    ----------
    labels : array-like of int, ``(n,)``
    pred_probs : array-like, ``(n, K)``
    neighbors : numpy.ndarray
        ``(n, k)`` row indices of each item's nearest neighbours (itself excluded).
    neighbor_weight : float, optional
        ``w`` in ``[0, 1]``; by default :func:`choose_neighbor_weight`.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float64 in ``[0, 1]``, lower = more likely mislabelled.
    """
    y, p = validate(labels, pred_probs)
    if neighbors.ndim != 2 or len(neighbors) != len(y):
        raise DataError(f"neighbours must be an (n, k) index array for {len(y)} items, got shape {neighbors.shape}")
    q = neighbor_label_distribution(y, neighbors, p.shape[1])
    w = choose_neighbor_weight(y, p, q) if neighbor_weight is None else float(neighbor_weight)
    if not 0.0 <= w <= 1.0:
        raise DataError(f"neighbor_weight must lie in [0, 1], got {w}")
    mixed = (1.0 - w) * p + w * q
    joint = confident_joint(y, mixed)
    if _off_diagonal_share(joint) >= POSTERIOR_MIN_NOISE_RATE:
        return _posterior_of_given(y, mixed, joint)
    return normalized_margin(y, mixed)


def nearest_neighbors(x: np.ndarray, *, k: int, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine neighbours of each row of unit vectors, excluding itself.

    Returns
    -------
    idx : numpy.ndarray
        ``(n, k)`` int, nearest first.
    sim : numpy.ndarray
        ``(n, k)`` float32 cosine similarities.
    """
    n = len(x)
    k = max(1, min(k, n - 1))
    idx = np.empty((n, k), dtype=np.int64)
    sim = np.empty((n, k), dtype=np.float32)
    torch: Any
    try:
        import torch
    except ImportError:
        torch = None
    for start in range(0, n, chunk):
        block = x[start:start + chunk] @ x.T  # (b, n)
        rows = np.arange(block.shape[0])
        block[rows, start + rows] = -np.inf  # not its own neighbour
        if torch is not None:
            # torch's multithreaded top-k took half the time of argpartition + argsort on 10k x 10k
            vals_t, part_t = torch.topk(torch.from_numpy(block), k, dim=1)
            idx[start:start + chunk] = part_t.numpy()
            sim[start:start + chunk] = vals_t.numpy()
            continue
        part = np.argpartition(-block, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(block, part, 1)
        order = np.argsort(-vals, axis=1)
        idx[start:start + chunk] = np.take_along_axis(part, order, 1)
        sim[start:start + chunk] = np.take_along_axis(vals, order, 1)
    return idx, sim


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32. ``(n, d) -> (n, d)``"""
    return np.asarray(x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None), dtype=np.float32)


def label_quality_scores(labels: Any, pred_probs: Any, *, method: str = "normalized_margin",
                         embeddings: np.ndarray | None = None, k: int = 10,
                         neighbor_weight: float | None = None) -> np.ndarray:
    """One label-quality score per item, lower = more likely mislabelled.

    Parameters
    ----------
    labels : array-like of int, ``(n,)``
    pred_probs : array-like, ``(n, K)``
    method : {"self_confidence", "normalized_margin", "confidence_weighted_entropy", "label_posterior", \
"neighbor_agreement", "combined"}
        ``combined`` mixes the neighbours' label distribution into ``pred_probs`` (:func:`combine_scores`).
    embeddings : numpy.ndarray, optional
        ``(n, d)``, needed by ``neighbor_agreement`` and ``combined``.
    neighbor_weight : float, optional
        The mixing weight of ``combined``; by default chosen from the data (:func:`choose_neighbor_weight`).

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float64 in ``[0, 1]``.
    """
    if method not in SCORES:
        raise DataError(f"unknown score {method!r}; use one of {list(SCORES)}")
    if method in ("neighbor_agreement", "combined") and embeddings is None:
        raise DataError(f"the {method!r} score needs embeddings")
    if method == "self_confidence":
        return self_confidence(labels, pred_probs)
    if method == "normalized_margin":
        return normalized_margin(labels, pred_probs)
    if method == "confidence_weighted_entropy":
        return confidence_weighted_entropy(labels, pred_probs)
    if method == "label_posterior":
        return label_posterior(labels, pred_probs)
    y, _ = validate(labels, pred_probs)
    assert embeddings is not None
    neighbors = _neighbors_of(embeddings, len(y), k=k)
    if method == "neighbor_agreement":
        return agreement_from_neighbors(y, neighbors)
    return combine_scores(y, pred_probs, neighbors, neighbor_weight=neighbor_weight)


def per_class_thresholds(labels: Any, pred_probs: Any) -> np.ndarray:
    """``t_j``: the mean probability of class ``j`` over items labelled ``j``. Shape ``(K,)``.

    A class with no item gets threshold 1 (nothing is confidently counted into it... except a sure 1.0).
    """
    y, p = validate(labels, pred_probs)
    k = p.shape[1]
    counts = np.bincount(y, minlength=k)
    sums = np.zeros(k)
    np.add.at(sums, y, p[np.arange(len(y)), y])
    return np.where(counts > 0, sums / np.maximum(counts, 1), 1.0)


def confident_joint(labels: Any, pred_probs: Any, *, calibrate: bool = True) -> np.ndarray:
    """Counts ``C[i, j]`` of items labelled ``i`` that are confidently of class ``j``. Shape ``(K, K)``.

    An item counts for class ``j`` when ``p[j] >= t_j``; with several such classes,
    the most probable one. Calibrated, each row sums to the number of items labelled
    ``i`` and the whole to ``n``.
    """
    y, p = validate(labels, pred_probs)
    k = p.shape[1]
    guess, confident = _confident_class(y, p)
    joint = np.zeros((k, k), dtype=np.float64, order="F")  # the reference's layout, see the calibration below
    np.add.at(joint, (y[confident], guess[confident]), 1)
    np.fill_diagonal(joint, np.maximum(joint.diagonal(), 1))  # every class keeps one trusted example
    if not calibrate:
        return joint
    counts = np.bincount(y, minlength=k).astype(np.float64)
    row = joint.sum(1)
    # Same operations on the same memory layout as the confident-learning reference, so the total is
    # summed in the same order and the cells come out bit for bit equal: cells that are equal up to
    # rounding (1.8 vs 1.8000000000000003) then compare the same way in both, and the filters' rounding
    # picks the same cells.
    cal = (joint.T / np.where(row > 0, row, 1) * counts).T
    return np.asarray(cal / max(np.sum(cal), 1e-12) * len(y))


def _confident_class(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    thresholds = per_class_thresholds(y, p)
    above = p >= thresholds - 1e-6
    masked = np.where(above, p, -1.0)
    return np.asarray(masked.argmax(1)), np.asarray(above.any(1))


def noise_matrix(labels: Any, pred_probs: Any) -> np.ndarray:
    """Estimated ``P(given = i | true = j)``; columns sum to 1. Shape ``(K, K)``."""
    joint = confident_joint(labels, pred_probs)
    col = joint.sum(0, keepdims=True)
    return np.asarray(joint / np.where(col > 0, col, 1))


def noise_rate(labels: Any, pred_probs: Any) -> float:
    """Estimated share of wrong labels: off-diagonal mass of the calibrated confident joint."""
    return _off_diagonal_share(confident_joint(labels, pred_probs))


def _off_diagonal_share(joint: np.ndarray) -> float:
    return float(1 - np.trace(joint) / max(joint.sum(), 1e-12))


def find_label_issues(labels: Any, pred_probs: Any, *, filter_by: str = "prune_by_noise_rate",
                      min_examples_per_class: int = 1) -> np.ndarray:
    """Flag items whose given label is likely wrong.

    Parameters
    ----------
    labels : array-like of int, ``(n,)``
    pred_probs : array-like, ``(n, K)``
    filter_by : {"prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given"}
        - ``prune_by_noise_rate``: for each off-diagonal cell ``(i, j)`` of the calibrated
          confident joint, flag that many items labelled ``i`` with the largest ``p[j] - p[i]``;
        - ``prune_by_class``: for each class, flag as many items as its estimated number
          of errors, lowest self-confidence first;
        - ``both``: flagged by both;
        - ``confident_learning``: the off-diagonal items of the confident joint;
        - ``predicted_neq_given``: the most probable class is not the given one.
        Except for ``predicted_neq_given``, an item whose given label is the most
        probable class is never flagged.
    min_examples_per_class : int
        Never flag so many that fewer than this many items keep a class.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` bool.
    """
    if filter_by not in FILTERS:
        raise DataError(f"unknown filter_by {filter_by!r}; use one of {list(FILTERS)}")
    y, p = validate(labels, pred_probs)
    n, k = p.shape
    argmax_agrees = _given_is_argmax(y, p)
    if filter_by == "predicted_neq_given":
        return ~argmax_agrees
    if filter_by == "confident_learning":
        guess, confident = _confident_class(y, p)
        return confident & (guess != y) & ~argmax_agrees
    joint = confident_joint(y, p)
    counts = np.bincount(y, minlength=k)
    prune = _round_rows(joint)  # integer cells with the same row totals
    np.fill_diagonal(prune, 0)
    for i in range(k):  # leave at least min_examples_per_class in each class
        allowed = max(0, counts[i] - min_examples_per_class)
        total = prune[i].sum()
        if total > allowed:
            prune[i] = np.floor(prune[i] * allowed / total).astype(np.int64)
    by_rate = np.zeros(n, dtype=bool)
    by_class = np.zeros(n, dtype=bool)
    for i in range(k):
        members = np.flatnonzero(y == i)
        if not len(members):
            continue
        for j in np.flatnonzero(prune[i]):
            margin = p[members, j] - p[members, i]
            # NumPy's default sort, not a stable one: items tied on the margin (often exact zeros
            # in published probabilities) are then taken in the reference implementation's order
            take = members[np.argsort(-margin)[:prune[i, j]]]
            by_rate[take] = True
        n_err = int(prune[i].sum())
        if n_err:
            order = np.argsort(p[members, i])  # default sort: ties as the reference breaks them
            by_class[members[order[:n_err]]] = True
    mask = {"prune_by_noise_rate": by_rate, "prune_by_class": by_class, "both": by_rate & by_class}[filter_by]
    return np.asarray(mask & ~argmax_agrees)


def _given_is_argmax(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The given label is (tied for) the most probable class."""
    return np.asarray(p[np.arange(len(y)), y] >= p.max(1) - 1e-12)


def _round_rows(m: np.ndarray) -> np.ndarray:
    """Round each row of ``m (r, c)`` to integers keeping its (rounded) total: largest remainders first.

    Cells of a row that tie on their remainder (common: equal raw counts calibrate to equal
    values) are ordered as the confident-learning reference implementation orders them (NumPy's
    default sort of ``value - rounded``, read from the top when rounding up), so that the same
    probabilities flag the same items in both.
    """
    out = np.rint(m).astype(np.int64)
    for i, row in enumerate(m):
        short = int(np.rint(row.sum())) - int(out[i].sum())
        if short == 0:
            continue
        order = np.argsort(row - out[i])  # default kind on purpose: the reference's tie order
        picks = order[::-1][:short] if short > 0 else order[:-short]
        out[i, picks] += 1 if short > 0 else -1
    return out


def suggest_labels(pred_probs: Any) -> tuple[np.ndarray, np.ndarray]:
    """The most probable class and its probability, each ``(n,)``."""
    p = np.asarray(pred_probs, dtype=np.float64)
    best = p.argmax(1)
    return best, p[np.arange(len(p)), best]


def rank_label_issues(labels: Any, pred_probs: Any, *, classes: Sequence[str], item_ids: Sequence[str] | None = None,
                      method: str = "normalized_margin", filter_by: str = "prune_by_noise_rate",
                      embeddings: np.ndarray | None = None) -> pd.DataFrame:
    """A table of every item with its score, suggestion and whether it is flagged, worst first.

    Returns
    -------
    pandas.DataFrame
        ``(n, 7)``: item_id, given_label, score, suggested_label, suggested_prob,
        is_label_issue, rank (0 = most likely wrong).
    """
    y, p = validate(labels, pred_probs)
    if len(classes) != p.shape[1]:
        raise DataError(f"{len(classes)} class names for {p.shape[1]} columns of pred_probs")
    score = label_quality_scores(y, p, method=method, embeddings=embeddings)
    flagged = find_label_issues(y, p, filter_by=filter_by)
    best, prob = suggest_labels(p)
    names = np.asarray(list(classes), dtype=object)
    frame = pd.DataFrame({
        "item_id": list(item_ids) if item_ids is not None else np.arange(len(y)),
        "given_label": names[y], "score": score, "suggested_label": names[best], "suggested_prob": prob,
        "is_label_issue": flagged,
    })
    frame = frame.sort_values("score", kind="stable").reset_index(drop=True)
    frame["rank"] = np.arange(len(frame))
    return frame


# ---------------------------------------------------------------------- token classification
def token_scores(tags: Sequence[Sequence[int]], token_probs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per-token self-confidence for each sentence.

    Parameters
    ----------
    tags : list of int sequences
        Given tag indices, one sequence per sentence.
    token_probs : list of numpy.ndarray
        ``(n_tokens_s, n_tags)`` per sentence.
    """
    if len(tags) != len(token_probs):
        raise DataError(f"{len(tags)} tag sequences but {len(token_probs)} probability arrays")
    out = []
    for s, (t, p) in enumerate(zip(tags, token_probs)):
        p = np.asarray(p, dtype=np.float64)
        if p.ndim != 2 or len(p) != len(t):
            raise DataError(f"sentence {s}: {len(t)} tags but probabilities of shape {p.shape}")
        out.append(self_confidence(np.asarray(t, dtype=np.int64), p))
    return out


def sentence_scores(per_token: Sequence[np.ndarray], *, method: str = "min", temperature: float = 0.1) -> np.ndarray:
    """One score per sentence from its token scores: ``min`` or ``softmin`` (a soft minimum). Shape ``(n,)``."""
    if method not in ("min", "softmin"):
        raise DataError(f"unknown sentence score {method!r}; use 'min' or 'softmin'")
    out = np.empty(len(per_token))
    for i, s in enumerate(per_token):
        s = np.asarray(s, dtype=np.float64)
        if method == "min":
            out[i] = s.min()
        else:
            w = np.exp(-(s - s.min()) / temperature)
            out[i] = float((s * w).sum() / w.sum())
    return out


def token_issues(tags: Sequence[Sequence[int]], token_probs: Sequence[np.ndarray], *, tag_names: Sequence[str],
                 item_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Tokens whose given tag is not the most probable one, worst first.

    Returns
    -------
    pandas.DataFrame
        item_id, token, given_tag, suggested_tag, score, suggested_prob.
    """
    scores = token_scores(tags, token_probs)
    rows = []
    for s, (t, p, sc) in enumerate(zip(tags, token_probs, scores)):
        p = np.asarray(p)
        best = p.argmax(1)
        given = np.asarray(t, dtype=np.int64)
        for j in np.flatnonzero(best != given):
            rows.append({"item_id": item_ids[s] if item_ids is not None else s, "token": int(j),
                         "given_tag": tag_names[int(given[j])], "suggested_tag": tag_names[int(best[j])],
                         "score": float(sc[j]), "suggested_prob": float(p[j, best[j]])})
    frame = pd.DataFrame(rows, columns=["item_id", "token", "given_tag", "suggested_tag", "score", "suggested_prob"])
    return frame.sort_values("score", kind="stable").reset_index(drop=True)
