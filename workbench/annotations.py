"""Multi-annotator data into a store: long or wide tables in, items + every annotator's label + a consensus.

Long format has one row per (item, annotator, label); wide format one row per item and one
column per annotator. Either way the store gets each item once (its current label = the
consensus), every annotator's label in the annotations table, and the consensus written as a
scan (``consensus-<method>``): suggested label = consensus, score = its confidence, issue
``disagreement`` where annotators differ. So the label browser, filtered to "annotators
disagree" and sorted by score, is the adjudication queue, least certain first.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.agreement import Annotations, annotations_from_frame, judged
from workbench.consensus import dawid_skene, majority_vote
from workbench.errors import DataError
from workbench.store import LabelStore, takes_store_path

CONSENSUS_METHODS = ("majority", "dawid_skene")


def read_annotation_table(source: str | os.PathLike[str] | pd.DataFrame, *,
                          encoding: str = "utf-8") -> pd.DataFrame:
    """A DataFrame as given, or read from CSV / TSV / JSONL / JSON / Parquet by the file's extension, with the
    same reader (and the same errors, encodings and separators) as :func:`workbench.load_dataset`. A Label Studio
    export gives every annotation, one row each with its ``annotator`` (not each task's latest, as for an import)."""
    if isinstance(source, pd.DataFrame):
        return source
    from workbench.readers import read_source

    table = read_source(source, encoding=encoding)[0]
    every = table.attrs.get("every_annotation")
    return every.value if every is not None else table


def long_from_wide(table: pd.DataFrame, *, annotator_columns: Sequence[str] | str, item_column: str = "item_id",
                   ) -> pd.DataFrame:
    """Wide (one column per annotator) to long (item_id, annotator, label); empty cells are not labels.

    Parameters
    ----------
    annotator_columns : list of str, or str
        The annotators' columns, or a prefix they share (e.g. ``"rater_"``); the column name
        (without the prefix) becomes the annotator's name.
    """
    if isinstance(annotator_columns, str):
        prefix = annotator_columns
        columns = [c for c in table.columns if str(c).startswith(prefix)]
        if not columns:
            raise DataError(f"no column starts with {prefix!r}; the columns are {list(table.columns)}")
        names = {c: str(c)[len(prefix):] or str(c) for c in columns}
    else:
        columns = list(annotator_columns)
        absent = [c for c in columns if c not in table.columns]
        if absent:
            raise DataError(f"annotator column {absent[0]!r} is not in the table; its columns are "
                            f"{list(table.columns)}")
        names = {c: str(c) for c in columns}
    if item_column not in table.columns:
        raise DataError(f"the table has no item column {item_column!r}; its columns are {list(table.columns)}")
    long = table.melt(id_vars=[item_column], value_vars=columns, var_name="annotator", value_name="label")
    long["annotator"] = long["annotator"].map(names)
    return judged(long).rename(columns={item_column: "item_id"}).reset_index(drop=True)


def consensus_scores(ann: Annotations, *, method: str = "dawid_skene",
                     model_probs: np.ndarray | None = None) -> pd.DataFrame:
    """The consensus per item as a scan: item_id, score (= confidence), suggested_label, suggested_prob, issues,
    issue_details (the votes where annotators disagree).

    ``majority`` confidence is the winning share of votes; ``dawid_skene`` is the posterior.
    """
    if method not in CONSENSUS_METHODS:
        raise DataError(f"unknown consensus method {method!r}; use one of {list(CONSENSUS_METHODS)}")
    counts = ann.counts()
    disagree = (counts > 0).sum(axis=1) > 1
    if method == "majority":
        vote = majority_vote(ann)
        label, confidence = vote["label"], vote["share"].to_numpy(dtype=float)
    else:
        ds = dawid_skene(ann, model_probs=model_probs)
        label, confidence = ds.labels["label"], ds.labels["confidence"].to_numpy(dtype=float)
    # why, for the adjudicator: the votes, most first, and how sure the consensus is
    why = [None if not d else
           "disagreement: votes " + ", ".join(f"{ann.classes[k]!r} {row[k]}" for k in np.argsort(-row, kind="stable")
                                              if row[k]) + f"; consensus {lab!r} at {c:.2f}"
           for d, row, lab, c in zip(disagree, counts, label, confidence, strict=True)]
    return pd.DataFrame({"item_id": ann.items, "score": confidence, "suggested_label": label,
                         "suggested_prob": confidence,
                         "issues": [["disagreement"] if d else [] for d in disagree], "issue_details": why})


@takes_store_path("import_annotations", create=True)
def import_annotations(store: LabelStore, source: str | os.PathLike[str] | pd.DataFrame, *,
                       layout: str = "long", item_column: str = "item_id", text_column: str = "text",
                       annotator_column: str = "annotator", label_column: str = "label",
                       annotator_columns: Sequence[str] | str | None = None, labels: Sequence[str] | None = None,
                       consensus: str = "dawid_skene", repeats: str = "error",
                       author: str = "import", encoding: str = "utf-8") -> dict[str, Any]:
    """Import items labelled by several annotators.

    Parameters
    ----------
    store : LabelStore or its path
        A new store, or one holding the same items (already stored items keep their current label).
    source : path or DataFrame
        Long: ``item_column, text_column, annotator_column, label_column`` (a text repeated per
        annotator). Wide: ``item_column, text_column`` and ``annotator_columns``.
    layout : {"long", "wide"}
    labels : list of str, optional
        The class order (default: sorted labels found).
    consensus : {"dawid_skene", "majority"}
        How each item's current label is chosen.
    repeats : {"error", "first", "last"}
        An annotator who labelled an item twice: refuse, or keep their first / last label.
    encoding : str
        Of a CSV / TSV / JSON file (a UTF-8 or UTF-16 byte-order mark is followed).

    Returns
    -------
    dict
        ``{"items": n, "annotations": n, "annotators": n, "disagreements": n, "scan_id": ...}`` (``items``: those
        with a label), ``unrated`` (items no annotator labelled, stored without a label) and the import counts.
    """
    from workbench.data import load_dataset

    table = read_annotation_table(source, encoding=encoding)
    if layout not in ("long", "wide"):
        raise DataError(f"unknown layout {layout!r}; use 'long' (item, annotator, label rows) or 'wide' "
                        "(one column per annotator)")
    for column, option in ((item_column, "item_column"), (text_column, "text_column")):
        if column not in table.columns:
            raise DataError(f"the annotation table has no column {column!r}; its columns are {list(table.columns)}. "
                            f"Name the right one with {option}=...")
    # ids as text on every side: a CSV read as numbers gave 1 here and '1' in the annotations, so no item had text
    table = table.astype({item_column: str})
    if layout == "wide":
        if annotator_columns is None:
            raise DataError("a wide table needs annotator_columns: the annotators' column names or their prefix")
        long = long_from_wide(table, annotator_columns=annotator_columns, item_column=item_column)
    else:
        if label_column == "label" and "label" not in table.columns and table.attrs.get("label_column") in table:
            label_column = table.attrs["label_column"]  # a tool's layout names it (Label Studio's control)
        names = {item_column: "item_id", annotator_column: "annotator", label_column: "label"}
        # a column already called what another is renamed to gives way to it: two 'item_id' columns (a table with
        # its own, read through item_column='id') crashed the consensus with "array is not broadcastable"
        taken = [to for source, to in names.items() if source != to and to in table.columns]
        long = table.drop(columns=taken).rename(columns=names)
        if "label" in long.columns:  # the rows stored as annotations below: none without a label
            long = judged(long)
    ann = annotations_from_frame(long, classes=labels, repeats=repeats)
    if repeats != "error":
        long = long.drop_duplicates(subset=["item_id", "annotator"], keep="first" if repeats == "first" else "last")
    texts = table.drop_duplicates(subset=[item_column]).set_index(item_column)[text_column]
    scores = consensus_scores(ann, method=consensus)
    # items no annotator labelled yet come in without a label (they were dropped without a word): still to label
    rated = set(ann.items)
    unrated = [i for i in texts.index if i not in rated]
    ids = [*ann.items, *unrated]
    items = pd.DataFrame({"id": ids, "text": texts.reindex(ids).to_numpy(),
                          "label": [*scores["suggested_label"].tolist(), *([None] * len(unrated))]})
    missing_text = items["text"].isna()
    if missing_text.any():
        raise DataError(f"item {items.loc[missing_text, 'id'].iloc[0]!r} has no text in column {text_column!r}")
    counts = store.import_dataset(load_dataset(items, id_column="id", labels=ann.classes, allow_missing_labels=True),
                                  on_conflict="skip", author=author)
    known = set(store.annotations()[["item_id", "annotator"]].itertuples(index=False, name=None))
    fresh = long[[(str(i), str(a)) not in known for i, a in zip(long["item_id"], long["annotator"], strict=True)]]
    added = store.add_annotations(fresh[["item_id", "annotator", "label"]].astype(str)) if len(fresh) else 0
    scan_id = f"consensus-{consensus}"
    store.write_scores(scan_id, scores, model=consensus, params={"annotators": len(ann.annotators)})
    return {**counts, "items": len(ann.items), "annotations": added, "annotators": len(ann.annotators),
            "disagreements": int(sum(bool(v) for v in scores["issues"])), "scan_id": scan_id,
            "unrated": len(unrated), "unrated_example": unrated[0] if unrated else None}


def store_annotations(store: LabelStore) -> Annotations:
    """The store's annotations table as :class:`~workbench.agreement.Annotations` in the store's class order."""
    frame = store.annotations()
    if frame.empty:
        raise DataError(f"{store.url} holds no annotators' labels; import them with import_annotations first")
    return annotations_from_frame(frame, classes=store.labels)


def model_probs_for(ann: Annotations, probs: pd.DataFrame) -> np.ndarray:
    """A model's probabilities (DataFrame: one row per item id, one column per class) in ``ann``'s order.

    Items the model did not score get a uniform row, so they rest on the annotators alone.
    """
    missing = [c for c in ann.classes if c not in probs.columns]
    if missing:
        raise DataError(f"the model probabilities have no column for class {missing[0]!r}; columns must be the "
                        f"classes {ann.classes}")
    out = probs.reindex(index=ann.items, columns=ann.classes).to_numpy(dtype=float, copy=True)
    out[np.isnan(out).any(axis=1)] = 1.0 / len(ann.classes)
    return np.asarray(out / out.sum(axis=1, keepdims=True))


@takes_store_path("refresh_consensus")
def refresh_consensus(store: LabelStore, *, method: str = "dawid_skene",
                      model_probs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Recompute the consensus from the store's annotations and make it the active scan; returns it.

    Parameters
    ----------
    model_probs : pandas.DataFrame, optional
        A model's out-of-fold probabilities: index item_id, a column per class (items it did not
        score rest on the annotators alone). Dawid-Skene then uses them as each item's prior, so the
        model counts as one more opinion (as CROWDLAB does). Only with ``method="dawid_skene"``.
    """
    ann = store_annotations(store)
    if model_probs is not None and method != "dawid_skene":
        raise DataError("model probabilities join the consensus through Dawid-Skene; use method='dawid_skene'")
    probs = model_probs_for(ann, model_probs) if model_probs is not None else None
    scores = consensus_scores(ann, method=method, model_probs=probs)
    store.write_scores(f"consensus-{method}" + ("+model" if probs is not None else ""), scores, model=method)
    return scores
