"""Inter-annotator agreement over labels in long format (one row per item, annotator and label).

Every measure here takes an :class:`Annotations` table (built with :func:`annotations_from_frame`),
works with any number of annotators per item, and treats a missing label as missing, not as a
class. Items with fewer than two labels carry no information about agreement and are left out of
the pairwise measures.

- :func:`percent_agreement`: the share of agreeing annotator pairs, averaged over items.
- :func:`consistency`: the share of items on which every annotator agrees.
- :func:`cohen_kappa_pairs`: Cohen's kappa for every pair of annotators that share items.
- :func:`fleiss_kappa`: Fleiss' kappa (the varying-raters form when items have different counts).
- :func:`krippendorff_alpha`: nominal Krippendorff's alpha from the coincidence matrix.
- :func:`class_agreement`: specific agreement per class.
- :func:`annotator_agreement`: each annotator's agreement with a consensus.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.brief import BriefRepr
from workbench.errors import DataError


@dataclass(repr=False)
class Annotations(BriefRepr):
    """Labels in long format, as integer codes.

    Attributes
    ----------
    item, annotator, label : numpy.ndarray
        ``(n_rows,)`` int codes into ``items``, ``annotators`` and ``classes``.
    items, annotators, classes : list of str
    """

    item: np.ndarray
    annotator: np.ndarray
    label: np.ndarray
    items: list[str]
    annotators: list[str]
    classes: list[str]

    def __len__(self) -> int:
        return len(self.item)

    def counts(self) -> np.ndarray:
        """``(n_items, n_classes)``: how many annotators gave each item each class."""
        out = np.zeros((len(self.items), len(self.classes)), dtype=np.int64)
        np.add.at(out, (self.item, self.label), 1)
        return out


def judged(frame: pd.DataFrame, *, label: str = "label") -> pd.DataFrame:
    """The rows that carry a label: a missing or empty cell (CSVs and Excel are read as text) records no
    judgement and is no class."""
    values = frame[label]
    return frame[values.notna() & (values.astype(str).str.strip() != "")]


def annotations_from_frame(frame: pd.DataFrame, *, item: str = "item_id", annotator: str = "annotator",
                           label: str = "label", classes: Sequence[str] | None = None,
                           repeats: str = "error") -> Annotations:
    """Encode a long-format table (one row per item, annotator and label).

    Rows with a missing or empty label are dropped (missing is not a class). ``classes`` fixes the class
    order (default: sorted labels).

    Parameters
    ----------
    repeats : {"error", "first", "last"}
        What to do when an annotator labelled the same item more than once: refuse (naming the
        row), or keep their first / last label.

    Raises
    ------
    DataError
        A column is missing, a label is not in ``classes``, or (``repeats="error"``) an annotator
        labelled the same item twice.
    """
    if repeats not in ("error", "first", "last"):
        raise DataError(f"repeats={repeats!r}; use 'error', 'first' or 'last'")
    missing = [c for c in (item, annotator, label) if c not in frame.columns]
    if missing:
        raise DataError(f"the annotation table has no column {missing[0]!r}; its columns are "
                        f"{list(frame.columns)} (pass item=, annotator=, label= to name them)")
    table = judged(frame[[item, annotator, label]], label=label).astype({item: str, annotator: str, label: str})
    repeated = table.duplicated(subset=[item, annotator], keep=False)
    if repeated.any() and repeats == "error":
        row = table[repeated].iloc[0]
        raise DataError(f"annotator {row[annotator]!r} labelled item {row[item]!r} more than once (row "
                        f"{table.index[repeated][0]}); keep one label per annotator and item, or pass "
                        "repeats='first' / 'last'")
    if repeated.any():
        table = table.drop_duplicates(subset=[item, annotator], keep="first" if repeats == "first" else "last")
    found = sorted(table[label].unique())
    classes = list(classes) if classes is not None else found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise DataError(f"label {unknown[0]!r} in column {label!r} is not one of the classes {classes}")
    items, item_codes = np.unique(table[item].to_numpy(), return_inverse=True)
    annotators, annotator_codes = np.unique(table[annotator].to_numpy(), return_inverse=True)
    index = {c: i for i, c in enumerate(classes)}
    return Annotations(item_codes.astype(np.int64), annotator_codes.astype(np.int64),
                       table[label].map(index).to_numpy(dtype=np.int64), [str(v) for v in items],
                       [str(v) for v in annotators], classes)


def _multi(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts and per-item totals of the items with at least two labels."""
    n = counts.sum(axis=1)
    keep = n >= 2
    return counts[keep], n[keep]


def percent_agreement(ann: Annotations) -> float:
    """Mean over items (with two or more labels) of the share of annotator pairs that agree."""
    counts, n = _multi(ann.counts())
    if len(n) == 0:
        raise DataError("no item has two or more labels; agreement needs items labelled by several annotators")
    return float(np.mean((counts * (counts - 1)).sum(axis=1) / (n * (n - 1))))


def consistency(ann: Annotations) -> float:
    """Share of items (with two or more labels) on which every annotator gave the same label."""
    counts, n = _multi(ann.counts())
    if len(n) == 0:
        raise DataError("no item has two or more labels; agreement needs items labelled by several annotators")
    return float(np.mean(counts.max(axis=1) == n))


def fleiss_kappa(ann: Annotations) -> float:
    """Fleiss' kappa over items with two or more labels.

    With the same number of labels on every item this is Fleiss (1971); with varying numbers each
    item's agreement uses its own count and the class shares are pooled over all labels.
    """
    counts, n = _multi(ann.counts())
    if len(n) == 0:
        raise DataError("no item has two or more labels; agreement needs items labelled by several annotators")
    p_items = (counts * (counts - 1)).sum(axis=1) / (n * (n - 1))
    share = counts.sum(axis=0) / counts.sum()
    p_bar, p_e = float(p_items.mean()), float((share ** 2).sum())
    return float("nan") if p_e >= 1.0 else (p_bar - p_e) / (1.0 - p_e)


def krippendorff_alpha(ann: Annotations) -> float:
    """Nominal Krippendorff's alpha: ``1 - D_o / D_e`` from the coincidence matrix.

    Any number of annotators per item; items with a single label are not pairable and left out.
    """
    counts, n = _multi(ann.counts())
    if len(n) == 0:
        raise DataError("no item has two or more labels; agreement needs items labelled by several annotators")
    weights = 1.0 / (n - 1)
    # o_ck = sum_i n_ic n_ik / (m_i - 1) for c != k, and n_ic (n_ic - 1) / (m_i - 1) on the diagonal.
    coincidence = (counts * weights[:, None]).T @ counts - np.diag((counts * weights[:, None]).sum(axis=0))
    n_c = coincidence.sum(axis=1)
    total = n_c.sum()
    observed = coincidence.sum() - np.trace(coincidence)
    expected = (total ** 2 - (n_c ** 2).sum()) / (total - 1)
    return float("nan") if expected == 0 else float(1.0 - observed / expected)


def cohen_kappa_pairs(ann: Annotations, *, min_items: int = 1) -> pd.DataFrame:
    """Cohen's kappa for every pair of annotators that labelled at least ``min_items`` items in common.

    Returns
    -------
    pandas.DataFrame
        ``(n_pairs, 5)``: annotator_a, annotator_b, n_items, agreement, kappa (NaN when both used a
        single, identical class, as scikit-learn gives).
    """
    k = len(ann.classes)
    frame = pd.DataFrame({"item": ann.item, "annotator": ann.annotator, "label": ann.label})
    pairs = frame.merge(frame, on="item", suffixes=("_a", "_b"))
    pairs = pairs[pairs["annotator_a"] < pairs["annotator_b"]]
    if pairs.empty:
        return pd.DataFrame(columns=["annotator_a", "annotator_b", "n_items", "agreement", "kappa"])
    pair_codes, pair_index = np.unique(pairs[["annotator_a", "annotator_b"]].to_numpy(), axis=0,
                                       return_inverse=True)
    pair_index = pair_index.ravel()
    la, lb = pairs["label_a"].to_numpy(), pairs["label_b"].to_numpy()
    n = np.bincount(pair_index, minlength=len(pair_codes)).astype(float)
    agree = np.bincount(pair_index, weights=(la == lb).astype(float), minlength=len(pair_codes))
    marg_a = np.zeros((len(pair_codes), k))
    marg_b = np.zeros((len(pair_codes), k))
    np.add.at(marg_a, (pair_index, la), 1.0)
    np.add.at(marg_b, (pair_index, lb), 1.0)
    po = agree / n
    pe = (marg_a * marg_b).sum(axis=1) / n ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(pe < 1.0, (po - pe) / (1.0 - pe), np.nan)
    out = pd.DataFrame({"annotator_a": [ann.annotators[i] for i in pair_codes[:, 0]],
                        "annotator_b": [ann.annotators[i] for i in pair_codes[:, 1]],
                        "n_items": n.astype(np.int64), "agreement": po, "kappa": kappa})
    return out[out["n_items"] >= min_items].reset_index(drop=True)


def class_agreement(ann: Annotations) -> pd.DataFrame:
    """Specific agreement per class: of the annotator pairs where one said the class, the share where both did.

    Returns
    -------
    pandas.DataFrame
        ``(n_classes, 3)``: class, n_labels, agreement.
    """
    counts, n = _multi(ann.counts())
    agreeing = (counts * (counts - 1)).sum(axis=0)
    possible = (counts * (n[:, None] - 1)).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(possible > 0, agreeing / possible, np.nan)
    return pd.DataFrame({"class": ann.classes, "n_labels": counts.sum(axis=0), "agreement": share})


def annotator_agreement(ann: Annotations, consensus: Sequence[str | None]) -> pd.DataFrame:
    """Each annotator's agreement with a consensus label per item (``consensus[i]`` for ``ann.items[i]``).

    Returns
    -------
    pandas.DataFrame
        ``(n_annotators, 3)``: annotator, n_labels, agreement, sorted by agreement ascending (the
        annotators to look at first on top).
    """
    if len(consensus) != len(ann.items):
        raise DataError(f"consensus has {len(consensus)} labels for {len(ann.items)} items")
    index = {c: i for i, c in enumerate(ann.classes)}
    codes = np.array([index.get(c, -1) if c is not None else -1 for c in consensus])
    hit = (codes[ann.item] == ann.label).astype(float)
    n = np.bincount(ann.annotator, minlength=len(ann.annotators))
    agree = np.bincount(ann.annotator, weights=hit, minlength=len(ann.annotators))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = agree / n
    out = pd.DataFrame({"annotator": ann.annotators, "n_labels": n, "agreement": share})
    return out.sort_values(["agreement", "annotator"], kind="stable").reset_index(drop=True)


@dataclass(repr=False)
class AgreementReport(BriefRepr):
    """Agreement measures over one annotation table; ``seconds`` says how long each took."""

    n_items: int
    n_annotators: int
    n_labels: int
    summary: dict[str, float]
    pairs: pd.DataFrame
    per_class: pd.DataFrame
    per_annotator: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"n_items": self.n_items, "n_annotators": self.n_annotators, "n_labels": self.n_labels,
                "summary": self.summary, "per_class": self.per_class.to_dict("records"),
                "pair_kappa_median": float(self.pairs["kappa"].median()) if len(self.pairs) else None,
                "seconds": self.seconds}


def agreement_report(ann: Annotations, *, min_pair_items: int = 5) -> AgreementReport:
    """Every measure in this module, with majority-vote consensus for the per-annotator table."""
    from workbench.consensus import majority_vote

    seconds: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        started = time.perf_counter()
        value = fn(ann)
        seconds[name] = time.perf_counter() - started
        return value

    summary = {name: timed(name, fn) for name, fn in (
        ("percent_agreement", percent_agreement), ("consistency", consistency), ("fleiss_kappa", fleiss_kappa),
        ("krippendorff_alpha", krippendorff_alpha))}
    pairs = timed("cohen_kappa_pairs", lambda a: cohen_kappa_pairs(a, min_items=min_pair_items))
    per_class = timed("class_agreement", class_agreement)
    vote = majority_vote(ann)
    per_annotator = timed("annotator_agreement", lambda a: annotator_agreement(a, vote["label"].tolist()))
    return AgreementReport(len(ann.items), len(ann.annotators), len(ann), summary, pairs, per_class, per_annotator,
                           seconds)
