"""Per-class metrics, bootstrap intervals, confusion with item ids, run-versus-run comparison, the regression gate.

Classification numbers equal scikit-learn's ``classification_report`` (``zero_division=0``);
NER entity numbers are seqeval's strict IOB2 ones. Everything returns tidy DataFrames.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.bio import entity_types
from workbench.brief import BriefRepr
from workbench.errors import DataError, require
from workbench.runs import RunView, open_run

AVERAGES = ("micro avg", "macro avg", "weighted avg")
METRICS = ("precision", "recall", "f1")


def _encode(values: Sequence[Any], labels: Sequence[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(labels)}
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        # a value outside the label set counts as "other": it is never a true positive for a listed class
        out[i] = index.get(v, len(labels))
    return out


def _counts(t: np.ndarray, p: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Confusion counts ``(k+1, k+1)``; the last row/column collects values outside the label set."""
    return np.bincount(t * (k + 1) + p, weights=weights, minlength=(k + 1) ** 2).reshape(k + 1, k + 1)


def _prf(cm: np.ndarray, k: int) -> dict[str, np.ndarray]:
    tp = np.diag(cm)[:k]
    pred = cm[:, :k].sum(0)
    true = cm[:k, :].sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pred > 0, tp / np.where(pred > 0, pred, 1), 0.0)
        recall = np.where(true > 0, tp / np.where(true > 0, true, 1), 0.0)
        denom = pred + true
        f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": true, "tp": tp, "pred": pred}


def per_class_metrics(y_true: Sequence[Any], y_pred: Sequence[Any], *, labels: Sequence[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support per class plus micro, macro and weighted averages.

    Parameters
    ----------
    y_true, y_pred : sequence, ``(n,)``
        Class names.
    labels : sequence of str
        The classes to report, in order.

    Returns
    -------
    pandas.DataFrame
        ``(len(labels) + 3, 4)`` indexed by class then ``micro avg``, ``macro avg``,
        ``weighted avg``; columns precision, recall, f1, support.
    """
    if len(y_true) != len(y_pred):
        raise DataError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    if len(y_true) == 0:
        raise DataError("no predictions to score (empty evaluation set)")
    k = len(labels)
    cm = _counts(_encode(y_true, labels), _encode(y_pred, labels), k)
    m = _prf(cm, k)
    frame = pd.DataFrame({"precision": m["precision"], "recall": m["recall"], "f1": m["f1"],
                          "support": m["support"].astype(np.int64)}, index=list(labels))
    tp, pred, true = m["tp"].sum(), m["pred"].sum(), m["support"].sum()
    micro_p = tp / pred if pred else 0.0
    micro_r = tp / true if true else 0.0
    micro_f = 2 * tp / (pred + true) if pred + true else 0.0
    support = m["support"]
    w = support / support.sum() if support.sum() else np.zeros(k)
    frame.loc["micro avg"] = [micro_p, micro_r, micro_f, int(true)]
    frame.loc["macro avg"] = [m["precision"].mean(), m["recall"].mean(), m["f1"].mean(), int(true)]
    frame.loc["weighted avg"] = [(m["precision"] * w).sum(), (m["recall"] * w).sum(), (m["f1"] * w).sum(), int(true)]
    frame["support"] = frame["support"].astype(np.int64)
    frame.index.name = "class"
    return frame


def bootstrap_intervals(y_true: Sequence[Any], y_pred: Sequence[Any], *, labels: Sequence[str],
                        n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Percentile bootstrap intervals of per-class precision, recall and F1 (items resampled with replacement).

    Returns
    -------
    pandas.DataFrame
        Indexed by class; columns ``<metric>_low`` and ``<metric>_high`` for each metric.
    """
    k = len(labels)
    t = _encode(y_true, labels)
    p = _encode(y_pred, labels)
    draws = _bootstrap_prf(t, p, k, n_resamples, seed)
    lo, hi = (1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100
    out = {}
    for metric in METRICS:
        out[f"{metric}_low"] = np.percentile(draws[metric], lo, axis=0)
        out[f"{metric}_high"] = np.percentile(draws[metric], hi, axis=0)
    frame = pd.DataFrame(out, index=list(labels))
    frame.index.name = "class"
    return frame


def _bootstrap_prf(t: np.ndarray, p: np.ndarray, k: int, n_resamples: int, seed: int,
                   idx: np.ndarray | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = len(t)
    if idx is None:
        idx = rng.integers(0, n, (n_resamples, n))
    draws: dict[str, list[np.ndarray]] = {m: [] for m in METRICS}
    for row in idx:
        m = _prf(_counts(t[row], p[row], k), k)
        for metric in METRICS:
            draws[metric].append(m[metric])
    return {metric: np.array(v) for metric, v in draws.items()}


def strict_entities(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """``(type, start, end_exclusive)`` of each entity in strict IOB2, as seqeval's strict mode reads them: a
    ``B-X`` and the ``I-X`` right after it; an ``I-`` tag that continues nothing (after ``O`` or another type)
    starts no entity."""
    out: set[tuple[str, int, int]] = set()
    kind: str | None = None
    start = 0
    for i, tag in enumerate([*tags, "O"]):
        if kind is not None and tag != f"I-{kind}":
            out.add((kind, start, i))
            kind = None
        if tag.startswith("B-"):
            kind, start = tag[2:], i
    return out


def _entity_counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], names: Sequence[str]) -> np.ndarray:
    """``(n_sentences, n_types, 3)``: per sentence and entity type, the predicted entities that match a gold one
    exactly, the predicted entities, the gold entities."""
    index = {n: j for j, n in enumerate(names)}
    out = np.zeros((len(gold), len(names), 3), dtype=np.int64)
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        eg, ep = strict_entities(list(g)), strict_entities(list(p))
        for kind, *_ in eg & ep:
            out[i, index[kind], 0] += 1
        for kind, *_ in ep:
            if kind in index:
                out[i, index[kind], 1] += 1
        for kind, *_ in eg:
            out[i, index[kind], 2] += 1
    return out


def _prf_from_counts(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall and F1 from ``(..., 3)`` summed counts (0 where a denominator is 0, as seqeval)."""
    tp, n_pred, n_gold = counts[..., 0], counts[..., 1], counts[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(n_pred > 0, tp / np.maximum(n_pred, 1), 0.0)
        recall = np.where(n_gold > 0, tp / np.maximum(n_gold, 1), 0.0)
        f1 = np.where(n_pred + n_gold > 0, 2 * tp / np.maximum(n_pred + n_gold, 1), 0.0)
    return {"precision": precision, "recall": recall, "f1": f1}


def _entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], names: Sequence[str],
                   idx: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """Per entity type: the scores on all sentences ``(n_types,)``, on each bootstrap resample ``idx``
    ``(n_resamples, n_sentences)`` of sentences ``(n_resamples, n_types)``, and the gold entities ``(n_types,)``."""
    counts = _entity_counts(gold, pred, names)
    flat = counts.reshape(len(counts), -1)
    # how often each sentence was drawn in each resample: (n_resamples, n_sentences)
    weights = np.zeros((len(idx), len(counts)), dtype=np.int64)
    for r, row in enumerate(idx):
        weights[r] = np.bincount(row, minlength=len(counts))
    resampled = (weights @ flat).reshape(len(idx), len(names), 3)
    total = counts.sum(0)
    return _prf_from_counts(total), _prf_from_counts(resampled), total[:, 2]


def _as_key(value: Any) -> Any:
    """A label or a tag sequence (list or array from Parquet) in a form ``!=`` compares as a whole."""
    return tuple(value) if isinstance(value, (list, tuple, np.ndarray)) else value


def entity_metrics(tags_true: Sequence[Sequence[str]], tags_pred: Sequence[Sequence[str]]) -> pd.DataFrame:
    """Entity-level precision/recall/F1 per entity type, seqeval strict IOB2, plus micro/macro/weighted averages."""
    seqeval = require("seqeval.metrics", extra="train", purpose="entity-level NER metrics")
    scheme = require("seqeval.scheme", extra="train", purpose="entity-level NER metrics")
    t = [list(s) for s in tags_true]
    p = [list(s) for s in tags_pred]
    if len(t) != len(p) or any(len(a) != len(b) for a, b in zip(t, p)):
        raise DataError("true and predicted tag sequences must have the same number of sentences and tokens")
    report = seqeval.classification_report(t, p, mode="strict", scheme=scheme.IOB2,  # type: ignore[attr-defined]
                                           output_dict=True, zero_division=0)
    frame = pd.DataFrame(report).T.rename(columns={"f1-score": "f1"})[["precision", "recall", "f1", "support"]]
    frame["support"] = frame["support"].astype(np.int64)
    frame.index.name = "entity"
    return frame


def token_metrics(tags_true: Sequence[Sequence[str]], tags_pred: Sequence[Sequence[str]], *,
                  labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Token-level per-tag report (B-LOC ... O) over all tokens, as :func:`per_class_metrics`."""
    flat_t = [x for s in tags_true for x in s]
    flat_p = [x for s in tags_pred for x in s]
    if labels is None:
        labels = sorted(set(flat_t) | set(flat_p), key=lambda tag: (tag == "O", tag[2:], tag))
    return per_class_metrics(flat_t, flat_p, labels=labels)


@dataclass(repr=False)
class Confusion(BriefRepr):
    """Confusion counts (true classes as rows, predictions as columns) and the items in each cell."""

    counts: pd.DataFrame
    cells: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    @property
    def normalized(self) -> pd.DataFrame:
        """Row-normalised: the share of each true class predicted as each class."""
        rows = self.counts.sum(axis=1).replace(0, 1)
        return self.counts.div(rows, axis=0)

    def top_confused(self, n: int = 10) -> pd.DataFrame:
        """The ``n`` largest off-diagonal cells: true, predicted, count, share of the true class."""
        norm = self.normalized
        rows = [(t, p, int(self.counts.loc[t, p]), float(norm.loc[t, p]))
                for t in self.counts.index for p in self.counts.columns if t != p and self.counts.loc[t, p] > 0]
        frame = pd.DataFrame(rows, columns=["true", "predicted", "count", "share"])
        return frame.sort_values(["count", "share"], ascending=False).head(n).reset_index(drop=True)


def confusion(y_true: Sequence[Any], y_pred: Sequence[Any], *, labels: Sequence[str],
              item_ids: Sequence[str] | None = None) -> Confusion:
    """Counts and, for every cell, the ids of its items (so a panel can open them)."""
    if len(y_true) != len(y_pred):
        raise DataError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    ids = list(item_ids) if item_ids is not None else [str(i) for i in range(len(y_true))]
    k = len(labels)
    cm = _counts(_encode(y_true, labels), _encode(y_pred, labels), k)[:k, :k]
    counts = pd.DataFrame(cm.astype(np.int64), index=list(labels), columns=list(labels))
    counts.index.name, counts.columns.name = "true", "predicted"
    cells: dict[tuple[str, str], list[str]] = {}
    for item, t, p in zip(ids, y_true, y_pred):
        cells.setdefault((t, p), []).append(item)
    return Confusion(counts, cells)


# ---------------------------------------------------------------------- runs
@dataclass(repr=False)
class RunScores(BriefRepr):
    """A run's evaluation: per-class table, confusion and which gold labels were used."""

    run_id: str
    split: str
    gold: str
    table: pd.DataFrame
    confusion: Confusion


def evaluate_run(run: str | os.PathLike[str] | RunView, *, split: str | None = None,
                 gold: str = "evaluated") -> RunScores:
    """Score a run's predictions.

    Parameters
    ----------
    gold : {"evaluated", "original"}
        The labels the run was evaluated against (``evaluated``, i.e. current,
        possibly corrected labels) or the labels before corrections (``original``).
    """
    view = open_run(run)
    frame = view.predictions(split)
    labels = view.labels()
    split_name: str = split or next(s for s in ("test", "validation", "eval", *view.splits()) if s in view.splits())
    if view.task() == "token-classification":
        col = "tags" if gold == "evaluated" else "original_tags"
        if col not in frame.columns:
            raise DataError(f"run {view.run_id} has no {col!r} column; gold={gold!r} is not available")
        table = entity_metrics(frame[col].tolist(), frame["pred_tags"].tolist())
        flat_t = [x for s in frame[col] for x in s]
        flat_p = [x for s in frame["pred_tags"] for x in s]
        return RunScores(view.run_id, split_name, gold, table, confusion(flat_t, flat_p, labels=labels))
    if gold not in ("evaluated", "original"):
        raise DataError(f"gold must be 'evaluated' or 'original', got {gold!r}")
    col = "label" if gold == "evaluated" else "original_label"
    if col not in frame.columns:
        raise DataError(f"run {view.run_id} has no {col!r} column; gold={gold!r} is not available")
    table = per_class_metrics(frame[col].tolist(), frame["pred"].tolist(), labels=labels)
    conf = confusion(frame[col].tolist(), frame["pred"].tolist(), labels=labels,
                     item_ids=frame["item_id"].astype(str).tolist())
    return RunScores(view.run_id, split_name, gold, table, conf)


@dataclass(repr=False)
class Comparison(BriefRepr):
    """Per-class deltas (b - a) with paired-bootstrap intervals.

    Attributes
    ----------
    table : pandas.DataFrame
        Indexed by class: ``<metric>_a``, ``<metric>_b``, ``delta``, ``delta_low``, ``delta_high``,
        ``support``, ``verdict`` (improved / regressed / unchanged) for the chosen metric.
    same_items : bool
    gold : str
        Which labels both runs were scored against, in words.
    """

    run_a: str
    run_b: str
    metric: str
    table: pd.DataFrame
    same_items: bool
    n_items: int
    gold: str
    notes: list[str] = field(default_factory=list)

    @property
    def improved(self) -> list[str]:
        return self.table.index[self.table["verdict"] == "improved"].tolist()

    @property
    def regressed(self) -> list[str]:
        return self.table.index[self.table["verdict"] == "regressed"].tolist()


def compare_runs(run_a: str | os.PathLike[str] | RunView, run_b: str | os.PathLike[str] | RunView, *,
                 split: str | None = None, metric: str = "f1", gold: str = "b", max_drop: float = 0.0,
                 n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0,
                 allow_different_items: bool = False) -> Comparison:
    """Compare two runs class by class on the same evaluation items (taggers: entity type by entity type, strict
    IOB2 entities as :func:`entity_metrics` counts them, the bootstrap resampling sentences).

    Parameters
    ----------
    gold : {"b", "a", "original", "own"}
        Labels both runs are scored against: run b's evaluated labels (default; after
        corrections these are the corrected ones), run a's, the original labels before
        any correction, or each run's own (only when they agree).
    max_drop : float
        A class regresses when its delta is below ``-max_drop`` and its whole interval
        lies below 0 (the drop is beyond noise); it improves when the interval lies above 0.
    allow_different_items : bool
        Compare on the shared items (with a note) instead of refusing.
    """
    if metric not in METRICS:
        raise DataError(f"unknown metric {metric!r}; use one of {list(METRICS)}")
    if not 0 <= max_drop < 1:  # 1 meant one point: a drop no metric (a share) can make, so nothing would regress
        raise DataError(f"max_drop={max_drop:g}: give the largest drop allowed as a share between 0 and 1 (0.01 for "
                        "one point)")
    va, vb = open_run(run_a), open_run(run_b)
    if va.task() != vb.task():
        raise DataError(f"run {va.run_id} is {va.task()} and run {vb.run_id} is {vb.task()}; compare runs of one task")
    tagger = va.task() == "token-classification"
    # the prediction files' columns: the evaluated labels, the predictions, the labels before corrections
    given, pred, original = ("tags", "pred_tags", "original_tags") if tagger else ("label", "pred", "original_label")
    la, lb = va.labels(), vb.labels()
    if la != lb:
        raise DataError(f"runs {va.run_id} and {vb.run_id} have different label sets ({la} vs {lb}); "
                        "compare runs trained on the same classes")
    fa, fb = va.predictions(split), vb.predictions(split)
    ids_a, ids_b = set(fa["item_id"].astype(str)), set(fb["item_id"].astype(str))
    notes: list[str] = []
    same = ids_a == ids_b
    if not same:
        shared = ids_a & ids_b
        msg = (f"runs were evaluated on different items ({len(ids_a)} vs {len(ids_b)}, {len(shared)} shared)")
        if not allow_different_items:
            raise DataError(msg + "; evaluate both on the same split, or pass allow_different_items=True to "
                            "compare on the shared items")
        if not shared:
            raise DataError(msg + "; nothing to compare")
        notes.append(msg + "; compared on the shared items only")
    fa = fa.assign(item_id=fa["item_id"].astype(str)).set_index("item_id")
    fb = fb.assign(item_id=fb["item_id"].astype(str)).set_index("item_id")
    items = sorted(ids_a & ids_b)
    fa, fb = fa.loc[items], fb.loc[items]
    differ = int(sum(_as_key(x) != _as_key(y) for x, y in zip(fa[given], fb[given], strict=True)))
    if gold == "b":
        truth, gold_text = fb[given], f"run {vb.run_id}'s evaluated labels"
    elif gold == "a":
        truth, gold_text = fa[given], f"run {va.run_id}'s evaluated labels"
    elif gold == "original":
        if original not in fb.columns:
            raise DataError(f"run {vb.run_id} has no {original} column; gold='original' is not available")
        truth, gold_text = fb[original], "the original labels (before corrections)"
    elif gold == "own":
        if differ:
            raise DataError(f"the runs were evaluated against different labels on {differ} items; choose "
                            "gold='a', 'b' or 'original' so both are scored against the same ones")
        truth, gold_text = fb[given], "the same evaluated labels"
    else:
        raise DataError(f"gold must be 'a', 'b', 'original' or 'own', got {gold!r}")
    if differ and gold != "own":
        notes.append(f"{differ} evaluation items carry different labels in the two runs (corrections); both runs "
                     f"are scored against {gold_text}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(items), (n_resamples, len(items)))  # the same resamples for both runs: paired
    if tagger:
        names = sorted(entity_types(la))
        whole_a, draws_a, support = _entity_scores(truth.tolist(), fa[pred].tolist(), names, idx)
        whole_b, draws_b, _ = _entity_scores(truth.tolist(), fb[pred].tolist(), names, idx)
        ma, mb, da, db = whole_a[metric], whole_b[metric], draws_a[metric], draws_b[metric]
    else:
        names, k = la, len(la)
        t = _encode(truth.tolist(), la)
        pa, pb = _encode(fa[pred].tolist(), la), _encode(fb[pred].tolist(), la)
        ca, cb = _prf(_counts(t, pa, k), k), _prf(_counts(t, pb, k), k)
        ma, mb, support = ca[metric], cb[metric], ca["support"]
        da = _bootstrap_prf(t, pa, k, n_resamples, seed, idx)[metric]
        db = _bootstrap_prf(t, pb, k, n_resamples, seed, idx)[metric]
    lo, hi = (1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100
    delta = mb - ma
    low, high = np.percentile(db - da, lo, axis=0), np.percentile(db - da, hi, axis=0)
    verdict = np.where((delta < -max_drop) & (high < 0), "regressed", np.where(low > 0, "improved", "unchanged"))
    table = pd.DataFrame({f"{metric}_a": ma, f"{metric}_b": mb, "delta": delta, "delta_low": low,
                          "delta_high": high, "support": np.asarray(support).astype(np.int64), "verdict": verdict},
                         index=names)
    table.index.name = "entity" if tagger else "class"
    return Comparison(va.run_id, vb.run_id, metric, table, same, len(items), gold_text, notes)


def check_regression(base: str | os.PathLike[str] | RunView, new: str | os.PathLike[str] | RunView, *,
                     max_drop: float = 0.01, metric: str = "f1", classes: Sequence[str] | None = None,
                     split: str | None = None, n_resamples: int = 1000, seed: int = 0) -> Comparison:
    """:func:`compare_runs` restricted to ``classes``; ``.regressed`` lists what dropped beyond the allowance."""
    comp = compare_runs(base, new, split=split, metric=metric, max_drop=max_drop, n_resamples=n_resamples,
                        seed=seed)
    if classes:
        unknown = [c for c in classes if c not in comp.table.index]
        if unknown:
            raise DataError(f"unknown class(es) {unknown} in --classes; the runs' classes are "
                            f"{comp.table.index.tolist()}")
        comp.table = comp.table.loc[list(classes)]
    return comp
