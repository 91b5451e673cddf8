"""Load a labelled dataset from any supported source into one validated table.

The table has one row per item and these columns, in this order:

- text classification: ``item_id, text, label, split, content_hash`` and the source's other columns;
- token classification: ``item_id, tokens, tags, split, content_hash`` and the other columns.

``table.attrs["workbench"]`` records the task, the label (or tag) set, the
normalisation used for hashes and ids, and the source, so nothing is done silently.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.bio import OTHER_PREFIXES, as_iob2, find_bio_error, is_tag, split_tag, tag_set
from workbench.bio import repair_bio as _repair_bio
from workbench.errors import ColumnError, DataError, DataFileError, ValueProblem
from workbench.normalize import DEFAULT_NORMALIZATION, NORMALIZATIONS, content_hash, make_item_ids, normalize_text
from workbench.readers import read_source
from workbench.spans import SPAN_COLUMNS, looks_like_spans, read_spans, spans_to_tokens

TASKS = ("text-classification", "token-classification")
TAG_SCHEMES = ("auto", "io")
TEXT_COLUMNS = ("text", "sentence", "content")
LABEL_COLUMNS = ("label", "labels", "class", "category", "intent")
TOKEN_COLUMNS = ("tokens", "words")
TAG_COLUMNS = ("tags", "ner_tags", "labels")
SPLIT_COLUMNS = ("split",)
#: An integer class id as a CSV cell holds it: ``3``, or ``3.0`` where pandas wrote a column with blanks as floats.
_INT_TEXT = re.compile(r"\s*-?\d+(?:\.0*)?\s*")


def load_dataset(
    source: Any,
    *,
    task: str = "auto",
    text_column: str | None = None,
    label_column: str | None = None,
    id_column: str | None = None,
    split_column: str | None = None,
    split: str | None = None,
    labels: Sequence[str] | None = None,
    label_names: Sequence[str] | None = None,
    sheet: str | None = None,
    normalization: str = DEFAULT_NORMALIZATION,
    encoding: str = "utf-8",
    allow_missing_labels: bool = False,
    drop_empty_texts: bool = False,
    repair_bio: bool = False,
    tag_scheme: str = "auto",
) -> pd.DataFrame:
    """Load and validate a labelled text dataset.

    Parameters
    ----------
    source : path, pandas.DataFrame, datasets.Dataset or datasets.DatasetDict
        CSV, TSV, JSONL, JSON, Parquet, Excel or CoNLL file, also compressed (``train.jsonl.gz``, ``.bz2``,
        ``.xz``, a ``.zip`` of one file); a folder from ``datasets.save_to_disk``; or an in-memory table.
    task : {"auto", "text-classification", "token-classification"}
        What the labels are: one class per text, or one IOB2 tag per token. ``auto`` (the default): token
        classification when the table has a tokens column (``text_column``, or one of ``tokens``/``words``)
        holding lists and no text column, or a text column with its entities as character-offset spans (a
        ``spans`` / ``entities`` column, or the label column, holding ``[start, end, label]`` lists or dicts, as
        Doccano, spaCy, Prodigy and Label Studio write them: see :mod:`workbench.spans`; the text is kept as
        ``source_text`` and each token's offset in it as ``token_starts``); else text classification.
    text_column, label_column : str, optional
        Columns of the text and label (for token classification: of the token
        list and the tag list). Found by common names when not given.
    id_column : str, optional
        A column of unique item ids. Without one, ids are derived from the
        content, so they survive re-ordering and insertions.
    split_column : str, optional
        A column naming each item's split (``train``, ``test`` ...).
    split : str, optional
        Keep only this split. A source with no split column (a ``dev.csv`` of its own, a single
        ``datasets.Dataset``) is taken to be that split: every row gets it, and the ids derived from the content
        carry it, so a dev sentence that also occurs in train stays an item of its own.
    labels : sequence of str, optional
        The full label set in display order, so that classes with no example
        yet exist. Every label in the data must be in it.
    label_names : sequence of str, optional
        Names for integer labels: label ``i`` becomes ``label_names[i]``.
    sheet : str, optional
        The sheet of an Excel workbook to read. Default: the sheet named as ``split`` if there is one, else the
        first. ``attrs["workbench"]`` names the sheet read and the workbook's other sheets.
    normalization : {"none", "NFC", "NFC+whitespace", "NFKC+whitespace"}
        Used for content hashes and ids only; the text is kept as given.
    encoding : str
        Encoding of text files.
    allow_missing_labels : bool
        Keep items without a label (a pool for active learning) instead of failing.
    drop_empty_texts : bool
        Drop items whose text is empty or whitespace instead of failing; the
        count is recorded in ``attrs``.
    repair_bio : bool
        Turn IOB1-style stray ``I-X`` tags into ``B-X`` instead of failing.
    tag_scheme : {"auto", "io"}
        How the tags are written. ``auto``: IOB2, or BIOES / BILOU, whose ``S-``/``U-``/``E-``/``L-`` tags are
        rewritten as IOB2 (nothing is lost; ``attrs["workbench"]["n_tags_rewritten"]`` counts them). ``io``: entity
        types alone (``PER PER O``), each run of a type one entity.

    Returns
    -------
    pandas.DataFrame
        ``(n_items, 5 + extra)`` as described in the module docstring.

    Raises
    ------
    workbench.errors.DataError
        Naming the file, column, row and value at fault and what to do.
    """
    if task not in (*TASKS, "auto"):
        raise DataError(f"unknown task {task!r}; use one of {[*TASKS, 'auto']}")
    if normalization not in NORMALIZATIONS:
        raise DataError(f"unknown normalization {normalization!r}; use one of {list(NORMALIZATIONS)}")
    if tag_scheme not in TAG_SCHEMES:
        raise DataError(f"unknown tag_scheme {tag_scheme!r}; use one of {list(TAG_SCHEMES)}")
    raw, name = read_source(source, encoding=encoding, split=split, sheet=sheet)
    # which sheet of a workbook was read, and what else it holds: kept for the caller to say
    sheets = {key: raw.attrs[key] for key in ("sheet", "other_sheets") if key in raw.attrs}
    read_notes = list(raw.attrs.get("notes", []))  # what a reader chose that the user should know
    tool_names = dict(raw.attrs.get("label_studio", {}))  # a Label Studio export's names, for the way back
    if label_column is None and find_column(raw.columns, LABEL_COLUMNS) is None:
        label_column = raw.attrs.get("label_column")  # what a tool's layout says holds the labels
    raw = raw.reset_index(drop=True)  # a stored pandas index (e.g. from a sampled frame) is not the row order
    # ... but it is how the caller finds a row of their frame, so messages give it too
    locate = _locator(raw, index=source.index if isinstance(source, pd.DataFrame) else None)
    if len(raw) == 0:
        raise DataFileError(f"{name} has a header but no rows")
    if id_column is not None:  # a misnamed column first: the rows are read through it
        _require_column(raw, id_column, "id_column", name)
    if split_column is None:
        split_column = find_column(raw.columns, SPLIT_COLUMNS)
    if split_column is None and split is not None:
        raw = raw.assign(split=split)
        split_column = "split"
    if split_column is not None:
        _require_column(raw, split_column, "split_column", name)
        if split is not None:
            present = raw[split_column].astype(str)
            if not (present == split).any():
                raise DataError(f"{name}: no rows have {split_column} == {split!r}; its splits are "
                                f"{sorted(present.unique())[:10]}")
            rows = np.flatnonzero((present == split).to_numpy())
            raw = raw.iloc[rows].reset_index(drop=True)
            locate = _through(locate, rows)  # the file's own lines, not the split's
    texts, token_lists = _text_column(raw, text_column), find_column(raw.columns, TOKEN_COLUMNS)
    span_column = _span_column(raw, label_column) if texts is not None else None
    if task == "auto":
        task = "token-classification" if span_column is not None else guess_task(raw, text_column)
    # texts with spans, or texts alone to tag (a tagger's input; not texts with class labels): cut into tokens
    classes = find_column(raw.columns, LABEL_COLUMNS) if label_column is None else label_column
    texts_alone = (token_lists is None and texts is not None
                   and (classes not in raw.columns or raw[classes].map(is_missing).all()))
    n_rows = len(raw)
    if task == "token-classification" and texts is not None and (span_column is not None or texts_alone):
        raw, kept = _spans_as_tokens(raw, name, locate, texts=texts, span_column=span_column,
                                     token_lists=token_lists, drop_empty=drop_empty_texts)
        if len(kept) < n_rows:  # rows left out for an empty text: later errors still name the file's own rows
            locate = _through(locate, kept)
        text_column, label_column = "tokens", "tags"
    if task == "text-classification":
        table, label_set = _build_classification(
            raw, name, locate, text_column=text_column, label_column=label_column, labels=labels,
            label_names=label_names, allow_missing=allow_missing_labels, drop_empty=drop_empty_texts,
            normalization=normalization,
        )
    else:
        table, label_set = _build_tokens(
            raw, name, locate, tokens_column=text_column, tags_column=label_column, labels=labels,
            label_names=label_names, allow_missing=allow_missing_labels, repair=repair_bio,
            normalization=normalization, io=tag_scheme == "io",
        )
    content_col = "text" if task == "text-classification" else "tokens"
    label_col = "label" if task == "text-classification" else "tags"
    # a blank split cell (or None) is no split, not a split named '' or 'None': such items count as train
    table["split"] = ([None if is_missing(v) or not str(v).strip() else str(v).strip()
                       for v in raw.loc[table.index, split_column]] if split_column is not None else None)
    table["content_hash"] = [content_hash(c, normalization=normalization) for c in table[content_col]]
    table["item_id"] = _item_ids(raw.loc[table.index], table, name, locate, id_column)
    content_src, label_src = table.attrs.pop("_content_src"), table.attrs.pop("_label_src")
    used = {c for c in (split_column, id_column, content_src, label_src) if c}
    extras = [c for c in raw.columns if c not in used and c not in ("item_id", "content_hash")]
    out = table[["item_id", content_col, label_col, "split", "content_hash"]].copy()
    for col in extras:
        if col in out.columns:
            continue
        values = raw.loc[table.index, col]
        if task == "token-classification":
            values = _decode_json_lists(values)
        out[col] = values.to_numpy()
    out = out.reset_index(drop=True)
    n_changed = 0
    if task == "text-classification":
        n_changed = int(sum(normalize_text(t, normalization=normalization) != t for t in out["text"]))
    out.attrs["workbench"] = {
        "task": task,
        "labels": label_set,
        # named by the caller (a pool's classes) rather than read off the rows: a store takes them all
        "labels_declared": labels is not None,
        "normalization": normalization,
        "n_changed_by_normalization": n_changed,
        "n_dropped_empty": int(n_rows - len(out)),
        "n_tags_rewritten": int(table.attrs.pop("_tags_rewritten", 0)),
        "read_notes": read_notes,
        "tag_scheme": tag_scheme,
        "source": name,
    }
    out.attrs["workbench"].update(sheets)
    names = tool_names.get(span_column or label_src)
    if names:  # the control the labels came from, and the task field the text came from
        out.attrs["workbench"]["label_studio"] = {**names, "data_field": texts or content_src}
    return out


def as_dataset(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` as :func:`load_dataset` returns it: as it is when it came from there (or from a store), else
    loaded with the defaults, so a table of one's own (``text``/``label`` columns, integer class ids, no ids)
    is validated, named and given stable ids as a file would be."""
    if isinstance(table.attrs.get("workbench"), dict) and "item_id" in table.columns:
        return table
    return load_dataset(table)


def sheet_note(table: pd.DataFrame, source: Any) -> str | None:
    """``read sheet 'labels' of book.xlsx; it also has 'notes'`` for a table :func:`load_dataset` read from a workbook
    with other sheets (which would otherwise go unread unsaid); None for any other table."""
    meta = table.attrs.get("workbench", {})
    if not meta.get("other_sheets"):
        return None
    from workbench.report import first_few

    return f"read sheet {meta['sheet']!r} of {source}; it also has {first_few(map(repr, meta['other_sheets']))}"


def looks_like_class_id(label: str) -> bool:
    """Whether a label reads as an integer class id (``3``, or ``3.0`` as pandas writes an integer column with blanks)
    rather than a class name."""
    return _INT_TEXT.fullmatch(label) is not None


def _locator(raw: pd.DataFrame, *, index: pd.Index | None = None) -> Any:
    """Describe row ``i`` the way the user can find it in their source; ``index``: an in-memory frame's own index
    (its label is named beside the position when it is not 0, 1, 2, ...: a filtered or sampled frame)."""
    kind = raw.attrs.get("file_kind")  # set by the file readers, compressed or not
    if kind in ("csv", "tsv"):
        return lambda i: f"line {i + 2}"
    if raw.attrs.get("objects"):  # JSON Lines, or a JSON list of objects
        if "source_rows" in raw.attrs:  # a reader left some out (Prodigy's rejects): the file's own objects
            return _through(lambda i: f"object {i + 1}", raw.attrs["source_rows"].value)
        return lambda i: f"object {i + 1}"
    if kind == "excel":  # as the spreadsheet numbers it, the header being row 1; the sheet, when there are several
        sheet = f"sheet {raw.attrs['sheet']!r}" if raw.attrs.get("other_sheets") else "sheet"
        return lambda i: f"{sheet} row {i + 2}"
    if "line" in raw.columns and "tokens" in raw.columns and "doc_id" in raw.columns:
        return lambda i: f"sentence {i + 1} (line {raw['line'].iloc[i]})"
    if index is not None and not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1):
        return lambda i: f"row {i} (index {_plain(index[i])!r})"
    return lambda i: f"row {i}"


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds: ``14``, not ``np.int64(14)``, in a message."""
    return value.item() if isinstance(value, np.generic) else value


def _through(locate: Any, rows: Sequence[int] | np.ndarray) -> Any:
    """A locator for a table cut down to ``rows`` of the one ``locate`` describes: row ``i`` is its ``rows[i]``."""
    return lambda i: locate(int(rows[i]))


def _text_column(raw: pd.DataFrame, text_column: str | None) -> str | None:
    """The column of texts (strings, not token lists) to cut into tokens."""
    text = text_column if text_column in raw.columns else find_column(raw.columns, TEXT_COLUMNS)
    if text is None or not any(isinstance(v, str) and not v.startswith("[") for v in raw[text].head(50)):
        return None
    return text


def _span_column(raw: pd.DataFrame, label_column: str | None) -> str | None:
    """The column holding character-offset entity spans, of a table with a text column (:func:`_text_column`)."""
    if label_column is not None:
        candidates = [label_column] if label_column in raw.columns else []
    else:
        candidates = [c for c in (find_column(raw.columns, [n]) for n in (*SPAN_COLUMNS, *LABEL_COLUMNS)) if c]
    for column in candidates:
        values = [as_list(v) for v in raw[column].head(200) if not is_missing(v)]
        if any(looks_like_spans(v) for v in values) or (column in SPAN_COLUMNS and values and all(
                v == [] for v in values)):
            return column
    return None


def _spans_as_tokens(raw: pd.DataFrame, name: str, locate: Any, *, texts: str, span_column: str | None,
                     token_lists: str | None, drop_empty: bool) -> tuple[pd.DataFrame, list[int]]:
    """``raw`` with its ``texts`` column cut into ``tokens`` tagged from the spans (``tags``; None where a row has no
    spans cell, or the table no span column), the text as ``source_text`` and each token's offset as
    ``token_starts``; the span column is gone. A ``token_lists`` column beside the text (a span export of this
    package) gives the tokens, kept rather than cut anew. With ``drop_empty``, rows with an empty text are left out;
    the second value lists the positions in ``raw`` of the rows kept."""
    tcol, kcol = texts, token_lists
    given = raw[span_column].tolist() if span_column is not None else [None] * len(raw)
    known = raw[kcol].tolist() if kcol is not None else [None] * len(raw)
    tokens, tags, starts, kept = [], [], [], []
    for i, (text, value, listed) in enumerate(zip(raw[tcol].tolist(), given, known)):
        where = f"{name}: {locate(i)}, column {span_column!r}"
        if (is_missing(text) or isinstance(text, str) and not text.strip()) and drop_empty:
            continue
        if not isinstance(text, str) or not text.strip():
            what = "missing" if is_missing(text) else "empty" if isinstance(text, str) else f"{text!r}, not a string"
            raise ValueProblem(f"{name}: {locate(i)}, column {tcol!r}: the text is {what}; every row needs a text to "
                               "tag. Fill it in, drop the row, or pass drop_empty_texts=True")
        parsed = as_list(value)
        spans = [] if is_missing(value) else read_spans(parsed if parsed is not None else value, where=where)
        tok, tg, st = spans_to_tokens(text, spans, tokens=None if is_missing(listed) else as_list(listed),
                                      where=where)
        tokens.append(tok)
        tags.append(None if is_missing(value) else tg)
        starts.append(st)
        kept.append(i)
    out = raw.iloc[kept].reset_index(drop=True).drop(columns=[c for c in (span_column, tcol, kcol) if c is not None])
    for column in ("tokens", "tags", "source_text", "token_starts"):
        if column in out.columns:
            raise ColumnError(f"{name} has a column {column!r} beside texts to cut into tokens ({tcol!r}); the "
                              f"workbench writes that column from them: rename {column!r}")
    # object columns of lists: assign() would read a list of lists as rows of a table
    return out.assign(tokens=pd.Series(tokens, index=out.index, dtype=object),
                      tags=pd.Series(tags, index=out.index, dtype=object),
                      source_text=raw[tcol].iloc[kept].tolist(),
                      token_starts=pd.Series(starts, index=out.index, dtype=object)), kept


def _require_column(raw: pd.DataFrame, column: str, option: str, name: str) -> None:
    if column not in raw.columns:
        near = find_column(raw.columns, [column.strip().lower()])
        hint = f". Did you mean {option}={near!r}?" if near is not None else ""
        raise ColumnError(
            f"{name} has no column {column!r} (named by {option}={column!r}); its columns are "
            f"{list(map(str, raw.columns))}{hint}"
        )


def guess_task(raw: pd.DataFrame, text_column: str | None = None) -> str:
    """``token-classification`` when the table's content column holds token lists (``text_column``, or else
    the first of :data:`TOKEN_COLUMNS` when no :data:`TEXT_COLUMNS` column is there), else
    ``text-classification`` (whose errors then say which column is missing)."""
    column = text_column
    if column is None and find_column(raw.columns, TEXT_COLUMNS) is None:
        column = find_column(raw.columns, TOKEN_COLUMNS)
    if column is None or column not in raw.columns:
        return "text-classification"
    first = next((v for v in raw[column].tolist() if v is not None), None)
    # lists, or a CSV's JSON-encoded lists
    listed = isinstance(first, (list, tuple, np.ndarray)) or (isinstance(first, str) and first.startswith("["))
    return "token-classification" if listed else "text-classification"


def find_column(columns: Iterable[Any], candidates: Sequence[str]) -> str | None:
    """The first of ``candidates`` found among ``columns``: spelt exactly, or else in another case or with spaces
    around it (a spreadsheet's ``Text``, `` Label ``) when only one column reads so. None when none is there."""
    columns = list(columns)
    for cand in candidates:
        if cand in columns:
            return cand
        loose = [c for c in columns if isinstance(c, str) and c.strip().lower() == cand]
        if len(loose) == 1:
            return loose[0]
    return None


def _pick_column(raw: pd.DataFrame, given: str | None, candidates: Sequence[str], option: str, what: str,
                 name: str) -> str:
    if given is not None:
        _require_column(raw, given, option, name)
        return given
    found = find_column(raw.columns, candidates)
    if found is not None:
        return found
    # a header of sentences is the file's first row of data: it has no header
    headless = any(len(str(c).split()) >= 3 for c in raw.columns)
    hint = (" If its first line is a row of data, the file has no header: add a first line that names the columns "
            "(e.g. text and label)") if headless else ""
    if raw.attrs.get("file_kind") == "lines":
        raise ColumnError(f"{name} was read as one text per line (a .txt that is neither CoNLL nor a tab-separated "
                          f"table), so it holds only texts (no {what} column). To label them, import them as a pool: "
                          "allow_missing_labels=True, with the classes named by labels=... "
                          "(workbench import: --labels A B C)")
    raise ColumnError(
        f"{name} has no {what} column (looked for {list(candidates)}); its columns are "
        f"{list(map(str, raw.columns))}. Name it with {option}=...{hint}"
    )


def is_missing(value: Any) -> bool:
    """A missing value as tables hold one: None, pd.NA or NaN."""
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def _build_classification(raw: pd.DataFrame, name: str, locate: Any, *, text_column: str | None,
                          label_column: str | None, labels: Sequence[str] | None,
                          label_names: Sequence[str] | None, allow_missing: bool, drop_empty: bool,
                          normalization: str) -> tuple[pd.DataFrame, list[str]]:
    tcol = _pick_column(raw, text_column, TEXT_COLUMNS, "text_column", "text", name)
    lcol: str | None
    if label_column is None and allow_missing and find_column(raw.columns, LABEL_COLUMNS) is None:
        lcol = None
    else:
        lcol = _pick_column(raw, label_column, LABEL_COLUMNS, "label_column", "label", name)
    texts = raw[tcol].tolist()
    keep = []
    for i, text in enumerate(texts):
        where = f"{name}: {locate(i)}, column {tcol!r}"
        if is_missing(text):
            if drop_empty:
                continue
            raise ValueProblem(f"{where}: the text is missing. Fill it in, drop the row, or pass drop_empty_texts=True")
        if not isinstance(text, str):
            raise ValueProblem(f"{where}: the text is {text!r} of type {type(text).__name__}, not a string")
        if not text.strip():
            if drop_empty:
                continue
            raise ValueProblem(f"{where}: the text is empty. Fill it in, drop the row, or pass drop_empty_texts=True")
        keep.append(i)
    table = pd.DataFrame({"text": [texts[i] for i in keep]}, index=keep)
    values = raw[lcol].tolist() if lcol is not None else [None] * len(raw)
    # object dtype: pandas 3 would turn a missing label (None) into NaN in a string column
    table["label"] = pd.Series(_clean_labels([values[i] for i in keep], keep, name, lcol, locate,
                                             label_names=label_names, allow_missing=allow_missing),
                               index=table.index, dtype=object)
    label_set = _label_set(table["label"], keep, name, lcol, locate, labels=labels)
    table.attrs["_content_src"] = tcol
    table.attrs["_label_src"] = lcol
    return table, label_set


def _clean_labels(values: list[Any], rows: list[int], name: str, column: str | None, locate: Any, *,
                  label_names: Sequence[str] | None, allow_missing: bool) -> list[str | None]:
    """Turn a label column into strings, refusing missing, empty and mixed-type values."""
    kinds: dict[str, tuple[int, Any]] = {}
    out: list[str | None] = []

    def blank(value: Any) -> bool:
        return is_missing(value) or (isinstance(value, str) and not value.strip())

    # a class in a list of one (Doccano's export, a single-label project's; none: not labelled yet) is that class
    values = [(v[0] if len(v) else None) if isinstance(v, (list, tuple, np.ndarray)) and len(v) <= 1 else v
              for v in values]
    for i, value in zip(rows, values):
        where = f"{name}: {locate(i)}, column {column!r}"
        if blank(value):
            if allow_missing:
                out.append(None)
                continue
            # how many: one stray blank is a row to fix, most of a file blank is a pool to label
            n_blank = sum(map(blank, values))
            raise ValueProblem(
                f"{where}: the label is missing ({n_blank} of {len(values)} rows have none). Label the item, drop "
                "the row, or pass allow_missing_labels=True to keep unlabelled items as a pool (to label them with "
                "active learning: notebooks/05_active_learning)"
            )
        if isinstance(value, (bool, np.bool_)):
            kind, text = "bool", str(bool(value))
        elif isinstance(value, numbers.Integral):
            kind, text = "int", str(int(value))
        elif isinstance(value, numbers.Real):
            if float(value).is_integer():
                kind, text = "int", str(int(float(value)))
            else:
                raise ValueProblem(f"{where}: the label {value!r} is a fractional number; labels must be class names "
                                   "or integer class ids")
        elif isinstance(value, str):
            # a CSV's cells are read as text: "0" / "1" are ids when names for them are given
            as_id = label_names is not None and looks_like_class_id(value)
            kind, text = ("int", str(int(float(value)))) if as_id else ("str", value)
        elif isinstance(value, (list, tuple, np.ndarray)):
            shown = [str(v) for v in value][:5]
            raise ValueProblem(f"{where}: the label is a list ({shown}); text classification takes one class per "
                               "text (multi-label data is not supported: keep one label per row). Tags per token? "
                               "Use task='token-classification' with the tokens as a list too")
        else:
            raise ValueProblem(f"{where}: the label is a {type(value).__name__} ({value!r}); expected a class name")
        kinds.setdefault(kind, (i, value))
        if len(kinds) > 1:
            examples = ", ".join(f"{locate(r)}: {v!r} ({k})" for k, (r, v) in kinds.items())
            raise ValueProblem(
                f"{name}: column {column!r} mixes label types ({examples}). Use one type: all class names or all "
                "integer ids"
            )
        if kind == "int" and label_names is not None:
            idx = int(text)
            if not 0 <= idx < len(label_names):
                raise ValueProblem(f"{where}: label id {idx} has no name: label_names=... names the ids 0 to "
                                   f"{len(label_names) - 1}, id 0 first")
            text = label_names[idx]
        out.append(text)
    if label_names is not None and kinds and "int" not in kinds:
        # names for ids that are not there: a silent no-op would leave the user believing they renamed something
        row, value = next(iter(kinds.values()))
        raise ValueProblem(f"{name}: column {column!r} holds class names ({locate(row)}: {value!r}), not integer "
                           "ids, so there is nothing for label_names=... to name; leave it out (a Parquet file written "
                           "by datasets names its ClassLabel ids itself)")
    return out


def _label_set(values: pd.Series, rows: list[int], name: str, column: str | None, locate: Any, *,
               labels: Sequence[str] | None) -> list[str]:
    present = [v for v in values if isinstance(v, str)]
    if labels is None:
        found = sorted(set(present))
        if not found:
            # a pool to label from scratch is fine, but its classes must be named somewhere
            where = f"column {column!r} holds no labels at all" if column else "it has no label column"
            raise ValueProblem(f"{name}: {where}; to start labelling from an unlabelled pool, name the classes: "
                               "labels=... with allow_missing_labels=True (workbench import: --labels A B C; "
                               "the active-learning notebook: its LABELS parameter)")
        return found
    allowed = list(labels)
    known = set(allowed)
    for i, v in zip(rows, values):
        if isinstance(v, str) and v not in known:
            raise ValueProblem(f"{name}: {locate(i)}, column {column!r}: label {v!r} is not in labels={allowed}")
    return allowed


def as_list(value: Any) -> list[Any] | None:
    """A cell holding a list (tokens, tags, spans) as a list: a list, tuple or 1-d array, or the JSON text a CSV / TSV
    export holds it as; None for anything else."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, np.ndarray) and value.ndim == 1:
        return value.tolist()
    if isinstance(value, str) and value.startswith("["):
        # CSV/TSV exports hold token and tag lists as JSON.
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, list) else None
    return None


def _build_tokens(raw: pd.DataFrame, name: str, locate: Any, *, tokens_column: str | None, tags_column: str | None,
                  labels: Sequence[str] | None, label_names: Sequence[str] | None, allow_missing: bool,
                  repair: bool, normalization: str, io: bool) -> tuple[pd.DataFrame, list[str]]:
    tcol = _pick_column(raw, tokens_column, TOKEN_COLUMNS, "text_column", "tokens", name)
    gcol: str | None
    if tags_column is None and allow_missing and find_column(raw.columns, TAG_COLUMNS) is None:
        gcol = None  # sentences to tag, or a pool to tag from scratch
    else:
        gcol = _pick_column(raw, tags_column, TAG_COLUMNS, "label_column", "tags", name)
    all_tokens: list[list[Any]] = []
    all_tags: list[list[Any] | None] = []
    rewritten = 0  # BIOES / BILOU / IO tags written as IOB2
    given = raw[gcol].tolist() if gcol is not None else [None] * len(raw)
    for i, (tokens, tags) in enumerate(zip(raw[tcol].tolist(), given)):
        where = f"{name}: {locate(i)}"
        tok = as_list(tokens)
        if tok is None:
            raise ValueProblem(f"{where}, column {tcol!r}: expected a list of tokens, got {type(tokens).__name__} "
                               f"({str(tokens)[:60]!r})")
        if not tok:
            raise ValueProblem(f"{where}, column {tcol!r}: the sentence has no tokens")
        for j, t in enumerate(tok):
            if not isinstance(t, str) or not t:
                raise ValueProblem(f"{where}, column {tcol!r}: token {j} is {t!r}; every token must be a non-empty "
                                   "string")
        tg = as_list(tags)
        if tg is None:
            if allow_missing and is_missing(tags):
                all_tokens.append(tok)
                all_tags.append(None)
                continue
            if is_missing(tags):
                raise ValueProblem(f"{where}: the sentence has no tags. Tag it, drop it, or pass "
                                   "allow_missing_labels=True to keep untagged sentences (a pool to tag)")
            raise ValueProblem(f"{where}, column {gcol!r}: expected a list of tags, got {type(tags).__name__}")
        if label_names is not None:
            ids = [int(t) for t in tg if isinstance(t, numbers.Integral) and not isinstance(t, bool)]
            if tg and not ids:
                raise ValueProblem(f"{where}, column {gcol!r}: the tags are names ({tg[0]!r}), not integer ids, so "
                                   "there is nothing for label_names=... to name; leave it out")
            bad_id = next((t for t in ids if not 0 <= t < len(label_names)), None)
            if bad_id is not None:
                raise ValueProblem(f"{where}, column {gcol!r}: tag id {bad_id} has no name: label_names=... "
                                   f"names the ids 0 to {len(label_names) - 1}, id 0 first")
            tg = [label_names[int(t)] if isinstance(t, numbers.Integral) else t for t in tg]
        if len(tg) != len(tok):
            raise ValueProblem(f"{where}: {len(tok)} tokens but {len(tg)} tags; each token needs exactly one tag")
        bad = next((j for j, t in enumerate(tg) if not isinstance(t, str)), None)
        if bad is not None:
            raise ValueProblem(f"{where}, column {gcol!r}: tag {bad} is {tg[bad]!r}; tags are strings like 'B-PER'. "
                               "Pass label_names=... for integer tag ids")
        iob2 = as_iob2(tg, io=io)
        rewritten += sum(a != b for a, b in zip(iob2, tg))
        err = find_bio_error(iob2)
        if err is not None:
            pos, reason = err
            if repair and "is not IOB2" not in reason:
                iob2 = _repair_bio(iob2)
            else:
                read = f" (given as {tg[pos]!r})" if tg[pos] != iob2[pos] else ""
                raise ValueProblem(f"{where}, token {pos} ({tok[pos]!r}): {reason}{read}.{_bio_hint(tg[pos], reason)}")
        tg = iob2
        all_tokens.append(tok)
        all_tags.append(tg)
    table = pd.DataFrame({"tokens": all_tokens, "tags": all_tags})
    types = {split_tag(t)[1] for tg in all_tags if tg for t in tg} - {None}
    if labels is not None:
        allowed = _tags_of(labels, name)
        for i, tg in enumerate(all_tags):
            for j, t in enumerate(tg or []):
                if t not in allowed:
                    raise ValueProblem(f"{name}: {locate(i)}, token {j}: tag {t!r} is not in labels={allowed}")
        tagset = allowed
    elif not any(tg is not None for tg in all_tags):
        raise ValueProblem(f"{name}: {'column ' + repr(gcol) if gcol else 'the file'} holds no tags at all; to start "
                           "from untagged sentences, name the entity types: labels=[...] (e.g. PER LOC ORG) with "
                           "allow_missing_labels=True")
    else:
        tagset = tag_set(t for t in types if t)
    table.attrs["_content_src"] = tcol
    table.attrs["_label_src"] = gcol
    table.attrs["_tags_rewritten"] = rewritten
    return table, tagset


def _bio_hint(given: str, reason: str) -> str:
    """What to pass when a sentence's tags fail IOB2: ``repair_bio`` for a stray ``I-``, ``tag_scheme='io'`` for a
    bare entity type."""
    if "is not IOB2" not in reason:
        return " Pass repair_bio=True to start such entities with B-."
    prefix, sep, kind = given.partition("-")
    if not (sep and kind and (prefix in ("B", "I") or prefix in OTHER_PREFIXES)):
        return (f" If the tags are entity types alone ({given!r}: IO tags), pass tag_scheme='io': each run of one type "
                "becomes one entity")
    return ""


def reading_notes(table: pd.DataFrame) -> list[str]:
    """Lines saying what reading the data chose for the user (a table from :func:`load_dataset`): tags read from
    another scheme into IOB2 (``tag_scheme``), the annotation read of a Label Studio task with several."""
    meta = table.attrs.get("workbench", {})
    notes = []
    n = meta.get("n_tags_rewritten", 0)
    if n:
        how = ("read the tags as IO tags: each run of one entity type is one entity (B- first, then I-)"
               if meta.get("tag_scheme") == "io"
               else "read the BIOES / BILOU tags as IOB2 (S-/U- -> B-, E-/L-/M- -> I-)")
        notes.append(f"{how}: {n:,} tags rewritten; the store and its exports hold IOB2")
    return [*notes, *meta.get("read_notes", [])]


def _tags_of(labels: Sequence[str], name: str) -> list[str]:
    """The tag set ``labels`` names: IOB2 tags as given (``O`` added), or entity types (``PER``) spelt out."""
    tags = [is_tag(str(label)) for label in labels]
    if all(tags):
        return list(dict.fromkeys(["O", *map(str, labels)]))
    if not any(tags):
        return tag_set(map(str, labels))
    raise ValueProblem(f"{name}: labels={list(labels)} mixes tags and entity types; give the entity types (PER LOC "
                       "...) or every tag (O B-PER I-PER ...)")


def _decode_json_lists(values: pd.Series) -> pd.Series:
    """Per-token columns (original tags, POS ...) come back from CSV as JSON; give them back as lists."""
    if values.dtype != object and not pd.api.types.is_string_dtype(values):
        return values
    texts = values.tolist()
    if not texts or not all(isinstance(v, str) and v.startswith("[") for v in texts):
        return values
    parsed = [as_list(v) for v in texts]
    if any(p is None for p in parsed):
        return values
    return pd.Series(parsed, index=values.index, dtype=object)


def _item_ids(raw: pd.DataFrame, table: pd.DataFrame, name: str, locate: Any, id_column: str | None) -> list[str]:
    if id_column is None and "item_id" in raw.columns:
        id_column = "item_id"
    if id_column is None:
        splits = [None if is_missing(s) else s for s in table["split"].tolist()]
        if any(s is not None for s in splits):
            # The same text in two splits is two items, so the split is part of the id.
            # An item without one gets the id it would have in a file without splits.
            ids: list[str] = [""] * len(table)
            for s in dict.fromkeys(splits):
                pos = [k for k, v in enumerate(splits) if v == s]
                made = make_item_ids((table["content_hash"].iloc[k] for k in pos), prefix="" if s is None else f"{s}-")
                for k, item in zip(pos, made):
                    ids[k] = item
            return ids
        return make_item_ids(table["content_hash"])
    _require_column(raw, id_column, "id_column", name)
    ids = []
    seen: dict[str, int] = {}
    for i, value in zip(table.index, raw[id_column].tolist()):
        if is_missing(value) or str(value) == "":
            raise ValueProblem(f"{name}: {locate(i)}, column {id_column!r}: the id is missing")
        key = str(value)
        if key in seen:
            raise ValueProblem(
                f"{name}: column {id_column!r} has the id {key!r} twice ({locate(seen[key])} and {locate(i)}); "
                "ids must be unique, or leave id_column out to derive ids from the content"
            )
        seen[key] = i
        ids.append(key)
    return ids


def table_fingerprint(table: pd.DataFrame) -> str:
    """Twelve hex digits naming a loaded table's items (ids and contents, not labels).

    ``Workbench(dataframe)`` names its default store with it: one fixed name put every DataFrame's items into the
    same store, mixing a second dataset into the first one's labels; the same table still finds its store (and
    the corrections in it) again.
    """
    digest = hashlib.sha256()
    for item_id, content in zip(table["item_id"].astype(str), table["content_hash"].astype(str), strict=True):
        digest.update(f"{item_id}\x1f{content}\x1e".encode())
    return digest.hexdigest()[:12]
