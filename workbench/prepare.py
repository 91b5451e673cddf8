"""The first step every notebook shares: the demo data or the analyst's file, sampled, with a held-out test split."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.data import is_missing, load_dataset, reading_notes, sheet_note
from workbench.errors import DataError
from workbench.readers import read_source
from workbench.sample import write_samples
from workbench.splits import stratified_split


def prepare_dataset(data_path: str | os.PathLike[str] | None = None, *, out_dir: str | os.PathLike[str],
                    task: str = "text-classification", text_column: str | None = None,
                    label_column: str | None = None, id_column: str | None = None, sample_size: int | None = None,
                    test_fraction: float = 0.2, require_test: bool = False, seed: int = 0,
                    **load_options: Any) -> pd.DataFrame:
    """Load a dataset for a notebook: the embedded demo data when ``data_path`` is None.

    Parameters
    ----------
    data_path : path, optional
        A file or folder :func:`workbench.data.load_dataset` reads. None: the demo data for
        ``task`` is written to ``out_dir/data`` and used (ids from its ``id`` column).
    sample_size : int, optional
        Keep this many rows, drawn at random with ``seed`` (in file order).
    test_fraction : float
        When the data has no ``test`` split, this share (stratified by label for classification) of its training
        items (those in ``train`` or in no split) becomes one, so models before and after fixes meet the same
        held-out items; other splits (validation, dev) are kept. A pool (some items without a label, read with
        ``allow_missing_labels=True``) gets no test split: its few labels are the seed set, all needed to start
        from; give such data a ``test`` split of its own to score on.
    require_test : bool
        Raise a :class:`DataError` when no test item can be held out (every class too small to spare one):
        for the notebooks whose point is a score on held-out items.

    Returns
    -------
    pandas.DataFrame
        The table from ``load_dataset`` with a ``split`` column.
    """
    if data_path is None:
        paths = write_samples(Path(out_dir) / "data", seed=seed)
        data_path = paths["ner" if task == "token-classification" else "classification"]
        id_column = id_column or "id"
    source: Any = data_path
    if str(data_path).endswith(".parquet"):
        # sampled before validation (a Parquet file can be large); read as load_dataset reads it (ClassLabel names)
        source = read_source(data_path)[0]
    if sample_size and isinstance(source, pd.DataFrame) and len(source) > sample_size:
        source = source.sample(int(sample_size), random_state=seed).sort_index()
    table = load_dataset(source, task=task, text_column=text_column, label_column=label_column,
                         id_column=id_column, **load_options)
    note = sheet_note(table, data_path)
    if note:  # said in the notebook's output, as workbench import says it in the shell
        print(f"{note} (prepare_dataset(..., sheet='NAME') reads another)")
    for line in reading_notes(table):
        print(line)
    if sample_size and len(table) > sample_size:  # a CSV, JSONL, ... file: sampled once read (a Parquet file before)
        table = table.sample(int(sample_size), random_state=seed).sort_index()
    # held out of the training items only: a validation (or dev) split the data brings stays as it is
    pool = table.index[table["split"].isna() | (table["split"] == "train")]
    unlabelled = table["label" if task == "text-classification" else "tags"].map(is_missing)
    if "test" not in set(table["split"].dropna()) and test_fraction > 0 and len(pool) and not unlabelled.any():
        key = table.loc[pool, "label"].tolist() if task == "text-classification" else ["all"] * len(pool)
        held = stratified_split(key, validation=0.0, test=test_fraction, seed=seed)["test"]
        table.loc[pool, "split"] = "train"
        table.loc[pool[held], "split"] = "test"
    if require_test and not (table["split"] == "test").any():
        raise DataError(f"{data_path}: no test items to score a model on: its {len(table)} items are too few per "
                        f"class to hold out {test_fraction:.0%} of each (a class keeps at least one item for "
                        "training); give it a 'split' column with some 'test' rows, or more items")
    return table
