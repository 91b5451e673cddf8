"""Out-of-fold probabilities a user brings (from their own model's cross-validation): read, align and check them.

A scan given such probabilities skips its own cross-validation and ranks, flags, checks and reports as usual,
so labels scored by a production model, or cleanlab-style ``pred_probs`` saved as ``.npy``, reach the label
browser. They must be out-of-fold: each item's row from a model that did not train on that item (a model's
predictions on its own training data agree with the labels it learnt, wrong ones included).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.errors import DataError, DataFileError
from workbench.quality import check_probability_rows

#: Column prefix of a class's probability, as ``workbench predict`` and a run's predictions write it.
PROB_PREFIX = "prob_"
#: How far a row's sum may be from 1.
SUM_TOLERANCE = 1e-3


def read_pred_probs(path: str | Path) -> np.ndarray | pd.DataFrame:
    """Read probabilities from a file: ``.npy`` (an array), or a table with ``item_id`` and ``prob_<class>``
    columns (``.csv``, ``.tsv``, ``.jsonl``, ``.parquet``)."""
    source = Path(path).expanduser()
    if not source.is_file():
        raise DataFileError(f"{source}: no such file of probabilities")
    suffix = source.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(source, allow_pickle=False)
        if suffix == ".parquet":
            return pd.read_parquet(source)
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(source, sep="\t" if suffix == ".tsv" else ",", dtype={"item_id": str})
        if suffix == ".jsonl":
            return pd.read_json(source, lines=True, dtype={"item_id": str})
    except (ValueError, OSError) as exc:
        raise DataFileError(f"{source}: cannot be read as probabilities ({exc})") from exc
    raise DataFileError(f"{source}: unknown file type {suffix!r} for probabilities; use .npy, or .csv, .tsv, .jsonl or "
                        "Parquet with item_id and prob_<class> columns")


def align_pred_probs(pred_probs: np.ndarray | pd.DataFrame, *, item_ids: Sequence[str],
                     labels: Sequence[str | None], classes: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Given probabilities as one row per item, in the items' order, checked on every labelled item.

    Parameters
    ----------
    pred_probs : numpy.ndarray or pandas.DataFrame
        An array ``(n_items, n_classes)``: rows in the items' order, columns in ``classes`` order. Or a table
        with ``item_id`` and one ``prob_<class>`` column per class (any row order; more classes than the data
        has are kept, rows for other items are ignored).
    item_ids : sequence of str
        ``(n_items,)``
    labels : sequence of str or None
        ``(n_items,)`` the given labels; None: unlabelled (its row is neither needed nor checked).
    classes : sequence of str
        The data's classes, the column order an array must have.

    Returns
    -------
    probs : numpy.ndarray
        ``(n_items, n_classes')`` float64 (NaN rows for unlabelled items the table lacks).
    classes : list of str
        The column order: ``classes`` for an array, the table's ``prob_`` columns for a table.

    Raises
    ------
    DataError
        A wrong shape, a class or a labelled item without probabilities, NaNs, negative values, rows not summing
        to 1; each message names the item and what to do.
    """
    ids = [str(i) for i in item_ids]
    if isinstance(pred_probs, pd.DataFrame):
        probs, order = _from_table(pred_probs, ids, labels, classes)
    else:
        probs = np.asarray(pred_probs, dtype=np.float64)
        order = list(classes)
        if probs.shape != (len(ids), len(order)):
            raise DataError(f"pred_probs has shape {probs.shape}; this data needs ({len(ids)}, {len(order)}): one row "
                            f"per item in the data's order, one column per class in the order {order[:10]}"
                            f"{' ...' if len(order) > 10 else ''} (or pass a table with item_id and prob_<class> "
                            "columns)")
    labelled = np.flatnonzero([v is not None for v in labels])
    check_probability_rows(probs[labelled], atol=SUM_TOLERANCE, name=lambda r: f"item {ids[labelled[r]]!r}",
                           unit="labelled items")
    return probs, order


def _from_table(table: pd.DataFrame, ids: list[str], labels: Sequence[str | None],
                classes: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    columns = [str(c) for c in table.columns]
    prob_columns = [c for c in columns if c.startswith(PROB_PREFIX) and len(c) > len(PROB_PREFIX)]
    if "item_id" not in columns or not prob_columns:
        raise DataError(f"the probabilities table needs an item_id column and one prob_<class> column per class (as "
                        f"`workbench predict` writes); its columns are {columns[:12]}")
    order = [c[len(PROB_PREFIX):] for c in prob_columns]
    missing = [c for c in classes if c not in order]
    if missing:
        raise DataError(f"the data has the class(es) {missing[:5]} but the probabilities table has no "
                        f"{[PROB_PREFIX + c for c in missing[:3]]} column; it has probabilities for {order[:10]}")
    given = table["item_id"].astype(str)
    repeated = given[given.duplicated()]
    if len(repeated):
        raise DataError(f"the probabilities table has item_id {repeated.iloc[0]!r} on more than one row; give one row "
                        "per item")
    rows = pd.Index(given).get_indexer(pd.Index(ids))
    lacking = [i for i, (r, v) in enumerate(zip(rows, labels, strict=True)) if r < 0 and v is not None]
    if lacking:
        raise DataError(f"{len(lacking)} labelled item(s) have no row in the probabilities table, e.g. item_id "
                        f"{ids[lacking[0]]!r}; every labelled item needs one (its item_id as the data has it: "
                        "--id-column / id_column when the data was loaded)")
    try:
        values = table[prob_columns].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        bad = next(c for c in prob_columns if not pd.api.types.is_numeric_dtype(table[c]))
        raise DataError(f"the probabilities table's column {bad!r} holds values that are not numbers, e.g. "
                        f"{table[bad].iloc[0]!r}") from exc
    probs = np.full((len(ids), len(order)), np.nan)
    probs[rows >= 0] = values[rows[rows >= 0]]
    return probs, order
