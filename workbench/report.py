"""The data-quality report: per class and overall counts, balance, noise, coverage, agreement and issue counts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.brief import BriefRepr
from workbench.checks import CheckResult
from workbench.errors import DataError
from workbench.vocab import describe_unknown, unknown_tokens_matter

#: Columns of :attr:`QualityReport.mixups`.
MIXUP_COLUMNS = ["given", "suggested", "items", "share_of_given"]


@dataclass(repr=False)
class QualityReport(BriefRepr):
    """What a scan found.

    Attributes
    ----------
    overall : dict
        n_items, n_labelled, n_classes, class_balance, estimated_noise_rate,
        coverage, annotator_consistency (None without annotations), issue_counts, unscored_classes, thin_classes
        (class to labelled count, for the classes under :data:`THIN_CLASS_ITEMS` the scan's own folds learnt).
    per_class : pandas.DataFrame
        One row per class: count, share, estimated_noise, flagged, and a column per issue type.
    noise_matrix : pandas.DataFrame
        Estimated ``P(given | true)``, given labels as rows, true classes as columns.
    mixups : pandas.DataFrame
        The likely wrong labels counted by (given label, suggested label), most first: columns ``given``,
        ``suggested``, ``items`` and ``share_of_given`` (of the items carrying that label). A pair with many items is
        a systematic mix-up (two classes confused by a guideline or an annotator), fixed best as a batch.
    """

    overall: dict[str, Any]
    per_class: pd.DataFrame
    noise_matrix: pd.DataFrame = field(default_factory=pd.DataFrame)
    mixups: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=MIXUP_COLUMNS))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"overall": self.overall, "per_class": self.per_class.reset_index().to_dict("records"),
                "noise_matrix": self.noise_matrix.round(4).to_dict(), "mixups": self.mixups.to_dict("records")}

    def gate(self, *, max_noise_rate: float | None = None,
             max_issues: dict[str, int] | None = None) -> list[str]:
        """What exceeds a data-quality gate (for CI: fail when the list is not empty).

        Parameters
        ----------
        max_noise_rate : float, optional
            Highest acceptable estimated share of wrong labels.
        max_issues : dict of str to int, optional
            Highest acceptable count per issue type (``label``, or a check's name such as ``exact_duplicate``).

        Returns
        -------
        list of str
            One sentence per exceeded limit; empty when the data passes.
        """
        check_gate(max_noise_rate=max_noise_rate, max_issues=max_issues)
        failures = []
        rate = self.overall.get("estimated_noise_rate")
        if max_noise_rate is not None and rate is not None and rate > max_noise_rate:
            failures.append(f"estimated noise rate {rate:.3f} is above {max_noise_rate:g}")
        counts = self.overall.get("issue_counts", {})
        for issue, limit in (max_issues or {}).items():
            found = int(counts.get(issue, 0))
            if found > limit:
                failures.append(f"{found} items with issue {issue}, more than {limit}")
        return failures

    def __str__(self) -> str:
        o = self.overall
        lines = [
            f"items {o['n_items']} (labelled {o['n_labelled']}), classes {o['n_classes']}",
            f"class balance {o['class_balance']:.3f}   estimated noise rate {o['estimated_noise_rate']:.3f}   "
            f"coverage {o['coverage']:.3f}" + (f"   annotator consistency {o['annotator_consistency']:.3f}"
                                               if o.get("annotator_consistency") is not None else ""),
            *([f"annotators {o['agreement']['n_annotators']} on {o['agreement']['n_items_multi']} items: "
               f"percent agreement {o['agreement']['percent_agreement']:.3f}   Fleiss kappa "
               f"{o['agreement']['fleiss_kappa']:.3f}   Krippendorff alpha {o['agreement']['krippendorff_alpha']:.3f}"]
              if o.get("agreement") else []),
            "issues: " + ", ".join(f"{k} {v}" for k, v in o["issue_counts"].items()),
            *([f"likely mix-ups (given -> suggested: flagged items, share of the given label): "
               f"{describe_mixups(self.mixups)}"]
              if len(self.mixups) else []),
            *report_notes(o),
            "",
            self.per_class.to_string(float_format=lambda v: f"{v:.3f}"),
        ]
        return "\n".join(lines)


# Below this many labelled items a class is learnt by each fold's model from a handful (8 of 10 at 5 folds, fewer
# with fewer items), so its out-of-fold probabilities, and the flags and suggestions read from them, are weak: on
# TREC with 6 labelled items per class a scan flagged 10 of 30 labels with an estimated noise rate of 0.28.
THIN_CLASS_ITEMS = 10


def label_mixups(labels: Sequence[str | None], suggested: Sequence[str | None],
                 flagged: Sequence[bool]) -> pd.DataFrame:
    """Count the flagged labels by (given, suggested) pair, most first.

    Parameters
    ----------
    labels, suggested, flagged : sequences of length n
        Each item's given label (None: unlabelled), the scan's suggestion, and whether the label was flagged.

    Returns
    -------
    pandas.DataFrame
        :data:`MIXUP_COLUMNS`; ``share_of_given`` is the pair's items over the items labelled ``given``.
    """
    frame = pd.DataFrame({"given": list(labels), "suggested": list(suggested), "flagged": list(flagged)})
    per_label = frame["given"].value_counts()
    pairs = frame[frame["flagged"].astype(bool) & frame["given"].notna() & frame["suggested"].notna()
                  & (frame["given"] != frame["suggested"])]
    if pairs.empty:
        return pd.DataFrame(columns=MIXUP_COLUMNS)
    out = pairs.groupby(["given", "suggested"]).size().rename("items").reset_index()
    out["share_of_given"] = out["items"] / out["given"].map(per_label)
    return out.sort_values(["items", "given", "suggested"], ascending=[False, True, True],
                           kind="stable").reset_index(drop=True)[MIXUP_COLUMNS]


def describe_mixups(mixups: pd.DataFrame, most: int = 5) -> str:
    """``'a' -> 'b' 12 (8%), ...``: the first ``most`` pairs in one line."""
    return first_few((f"{r.given!r} -> {r.suggested!r} {r.items} ({r.share_of_given:.0%})"
                      for r in mixups.itertuples()), most=most)


def report_notes(overall: dict[str, Any]) -> list[str]:
    """The sentences a report adds on what its scores cannot say: classes left unscored, classes too thin to trust,
    texts cut short, texts the model cannot read (the text report, the HTML report and the quality panel all show
    them)."""
    notes = []
    unscored = list(overall.get("unscored_classes") or [])
    if unscored:
        notes.append(f"not scored: the items of the {len(unscored)} class(es) with a single item "
                     f"({first_few(map(repr, unscored))}); no fold can learn a class from one example: label more of "
                     "them or merge them into another class")
    thin = dict(overall.get("thin_classes") or {})
    if thin:
        notes.append(f"few examples: {len(thin)} class(es) have fewer than {THIN_CLASS_ITEMS} labelled items "
                     f"({first_few(f'{name!r} {n}' for name, n in thin.items())}); each fold's model learns them "
                     "from a handful, so their flags and suggestions are weak hints: label more of them first")
    long = overall.get("long_texts") or {}
    if long.get("n_long"):
        share = long["n_long"] / long["n_texts"]
        notes.append(f"long texts: {long['n_long']} of {long['n_texts']} texts ({share:.0%}) run past the "
                     f"{long['max_length']} tokens the embedding reads (at least: counted in words), so the embedding "
                     "view and the neighbours see their beginning only (the TF-IDF view reads them "
                     "whole); a longer max_length (workbench scan --max-length 256) reads more, for more time")
    unknown = overall.get("unknown_tokens")
    if unknown is not None and unknown_tokens_matter(unknown):
        notes.append(f"unknown words: {describe_unknown(unknown)}; the embedding model embeds those texts alike, "
                     "so the embedding view, the neighbour score and the near-duplicate, conflicting-duplicate and "
                     "outlier checks cannot tell them apart (the TF-IDF view reads them). Scan with a model that "
                     "knows their language: workbench scan --model PATH (a local folder or a cached Hugging Face id, "
                     "e.g. a multilingual sentence-transformers model)")
    for view, why in (overall.get("views_left_out") or {}).items():
        notes.append(f"without the {view} view: {why}")
    return notes


def count_long_texts(texts: Sequence[str], max_length: int) -> dict[str, int]:
    """How many ``texts`` an encoder reading ``max_length`` tokens cuts short, counted from below: a text of more
    words than the tokens left beside ``[CLS]`` and ``[SEP]`` is cut whatever the tokenizer (each word is a token or
    more), without tokenizing anything (a warm scan reads its embeddings from the cache)."""
    room = max_length - 2
    return {"n_long": sum(len(text.split()) > room for text in texts), "n_texts": len(texts), "max_length": max_length}


def first_few(words: Iterable[str], most: int = 10) -> str:
    """``'a', 'b', ...``: the first ``most`` words joined for a message, and an ellipsis when there are more."""
    words = list(words)
    return ", ".join(words[:most]) + (", ..." if len(words) > most else "")


def check_gate(*, max_noise_rate: float | None = None, max_issues: dict[str, int] | None = None) -> None:
    """Refuse a quality gate that could not mean what it says, before a scan spends minutes: a noise rate is a
    share (``max_noise_rate=5`` meant 5% and would let any data pass), and a count is whole and not negative."""
    if max_noise_rate is not None and not 0 <= max_noise_rate < 1:
        raise DataError(f"max_noise_rate={max_noise_rate:g}: give the highest acceptable share of wrong labels, "
                        "between 0 and 1 (0.05 for 5%)")
    known = issue_types()
    unknown = sorted(set(max_issues or {}) - set(known))
    if unknown:
        raise DataError(f"unknown issue type(s) {unknown} in the gate; issue types are {known}")
    negative = {k: v for k, v in (max_issues or {}).items() if int(v) != v or v < 0}
    if negative:
        raise DataError(f"max_issues={negative}: give each issue type's highest acceptable count, 0 or more")


def scan_note(scan: dict[str, Any] | None) -> str:
    """One line on the scores a store carries (:meth:`LabelStore.active_scan`): which scan, when, and how many
    labels changed since, so an analyst who reopens a store knows whether the ranking is stale."""
    if scan is None:
        return "no scan yet: scan to rank the labels"
    line = (f"scores from scan {scan['scan_id']!r} ({scan['model']}, {scan['time']:%Y-%m-%d %H:%M} UTC), "
            f"{scan['n_scored']} items scored")
    n = scan["labels_changed_since"]
    if n:
        line += f"; {n} label(s) changed since, their scores judge the old label: scan again to refresh"
    return line


def issue_types() -> list[str]:
    """The issue types a scan counts: ``label`` (a likely wrong label) and each registered check's name."""
    from workbench.checks import CHECKS

    return ["label", *CHECKS]


def class_balance(counts: pd.Series) -> float:
    """``1 - sum_c (n_c/N - 1/C)^2``: 1 for perfectly balanced classes."""
    n, c = float(counts.sum()), len(counts)
    if not c or not n:
        return float("nan")
    return 1 - float((((counts / n) - 1 / c) ** 2).sum())


def agreement_section(annotations: pd.DataFrame | None, classes: list[str]) -> tuple[dict[str, Any] | None,
                                                                                     pd.Series | None]:
    """Agreement over the store's annotators (None without items labelled by two or more of them).

    Returns
    -------
    (dict or None, pandas.Series or None)
        Overall measures (percent agreement, consistency, Fleiss' kappa, Krippendorff's alpha,
        annotators, items with several labels) and the specific agreement per class.
    """
    from workbench.agreement import (
        annotations_from_frame,
        class_agreement,
        consistency,
        fleiss_kappa,
        krippendorff_alpha,
        percent_agreement,
    )
    from workbench.errors import DataError

    if annotations is None or annotations.empty:
        return None, None
    ann = annotations_from_frame(annotations, classes=sorted(set(classes) | set(annotations["label"].astype(str))),
                                 repeats="last")
    try:
        section = {"percent_agreement": percent_agreement(ann), "consistency": consistency(ann),
                   "fleiss_kappa": fleiss_kappa(ann), "krippendorff_alpha": krippendorff_alpha(ann),
                   "n_annotators": len(ann.annotators),
                   "n_items_multi": int((ann.counts().sum(axis=1) >= 2).sum())}
    except DataError:  # nobody's labels overlap: nothing to agree or disagree on
        return None, None
    return section, class_agreement(ann).set_index("class")["agreement"].reindex(classes)


def build_report(*, item_ids: list[str], labels: list[str | None], classes: list[str], issues: pd.DataFrame,
                 checks: dict[str, CheckResult], joint: np.ndarray | None,
                 annotations: pd.DataFrame | None = None, unscored_classes: Sequence[str] = (),
                 judge_thin_classes: bool = False, suggested: Sequence[str | None] | None = None,
                 long_texts: dict[str, int] | None = None,
                 unknown_tokens: dict[str, Any] | None = None,
                 views_left_out: dict[str, str] | None = None) -> QualityReport:
    """Assemble the report from a scan's pieces.

    Parameters
    ----------
    issues : pandas.DataFrame
        ``item_id, issue`` rows, one per (item, issue type), label issues included.
    suggested : sequence of str or None, optional
        Each item's suggested label, in ``item_ids`` order: with the ``label`` issues, the likely mix-ups.
    joint : numpy.ndarray, optional
        The calibrated confident joint ``(K, K)`` over ``classes``.
    unscored_classes : sequence of str
        Classes whose items got no label scores (a class with a single item).
    long_texts : dict, optional
        :func:`count_long_texts` of the texts the scan embedded: how many the embedding read only the start of.
    unknown_tokens : dict, optional
        :func:`workbench.vocab.count_unknown_tokens` of the texts the scan embedded: how much of them the
        encoder's vocabulary cannot read.
    views_left_out : dict, optional
        A default quick scan's views it went without, and why (the attention view, short of memory).
    judge_thin_classes : bool
        Name the classes with fewer than :data:`THIN_CLASS_ITEMS` labelled items (and more than one) as too thin to
        trust: for probabilities the scan's own folds learnt, not a user's own model's.
    """
    labelled = pd.Series([lab for lab in labels if lab is not None])
    counts = labelled.value_counts().reindex(classes, fill_value=0)
    per_class = pd.DataFrame({"count": counts, "share": counts / max(int(counts.sum()), 1)})
    noise = float("nan")
    matrix = pd.DataFrame()
    if joint is not None:
        rows = joint.sum(1)
        per_class["estimated_noise"] = np.where(rows > 0, 1 - np.diag(joint) / np.where(rows > 0, rows, 1), 0.0)
        noise = float(1 - np.trace(joint) / max(joint.sum(), 1e-12))
        col = joint.sum(0, keepdims=True)
        matrix = pd.DataFrame(joint / np.where(col > 0, col, 1), index=classes, columns=classes)
    label_of = dict(zip(item_ids, labels))
    issue_counts: dict[str, int] = {}
    for kind, part in issues.groupby("issue"):
        issue_counts[str(kind)] = int(part["item_id"].nunique())
        per_class[str(kind)] = (pd.Series([label_of.get(i) for i in part["item_id"].unique()])
                                .value_counts().reindex(classes, fill_value=0))
    agreement, per_class_agreement = agreement_section(annotations, classes)
    if per_class_agreement is not None:
        per_class["annotator_agreement"] = per_class_agreement
    per_class.index.name = "class"
    coverage = checks["exact_duplicate"].summary["coverage"] if "exact_duplicate" in checks else float("nan")
    overall = {
        "n_items": len(item_ids),
        "n_labelled": int(counts.sum()),
        "n_classes": int((counts > 0).sum()),
        "class_balance": class_balance(counts[counts > 0]),
        "estimated_noise_rate": noise,
        "coverage": coverage,
        "annotator_consistency": agreement["consistency"] if agreement else None,
        "agreement": agreement,
        "issue_counts": issue_counts,
        "unscored_classes": list(unscored_classes),
        "thin_classes": {str(c): int(n) for c, n in counts.items() if 2 <= n < THIN_CLASS_ITEMS}
                        if judge_thin_classes else {},
        "checks": {name: r.summary for name, r in checks.items()},
        "long_texts": long_texts,
        "unknown_tokens": unknown_tokens,
        "views_left_out": dict(views_left_out or {}),
    }
    mixups = pd.DataFrame(columns=MIXUP_COLUMNS)
    if suggested is not None:
        wrong = set(issues.loc[issues["issue"] == "label", "item_id"])
        mixups = label_mixups(labels, suggested, [i in wrong for i in item_ids])
    return QualityReport(overall, per_class, matrix, mixups)
