"""Write a store's corrected dataset to files (Parquet, CSV, TSV, JSONL, Excel, CoNLL, HF datasets, Label Studio
tasks) with its log."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.errors import DataError, StorePermissionError, require

if TYPE_CHECKING:
    from workbench.store import LabelStore

#: ``spans``: JSONL of each text with its entities as character offsets (for span tools: Doccano, spaCy, Prodigy).
#: ``label-studio``: a JSON list of tasks Label Studio imports (:func:`workbench.label_studio.label_studio_tasks`).
#: ``doccano``: JSONL as Doccano imports it (:func:`doccano_records`).
FORMATS = ("parquet", "csv", "tsv", "jsonl", "xlsx", "conll", "spans", "hf", "label-studio", "prodigy", "doccano")
_BY_SUFFIX = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl",
              ".ndjson": "jsonl", ".xlsx": "xlsx", ".conll": "conll"}
#: Text formats written compressed when the file name ends so (``clean.jsonl.gz``), as the loader reads them.
COMPRESSORS: dict[str, Callable[..., Any]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
#: Excel's limit on the characters in one cell.
EXCEL_CELL_LIMIT = 32_767


def to_hf(store: LabelStore, *, keep_original: bool = False) -> Any:
    """The corrected dataset as a ``datasets.Dataset`` (needs the ``data`` extra)."""
    datasets = require("datasets", extra="data", purpose="exporting to Hugging Face datasets")
    frame = store.to_pandas(keep_original=keep_original)
    return datasets.Dataset.from_pandas(frame, preserve_index=False)  # type: ignore[attr-defined]


def export_store(store: LabelStore, path: str | os.PathLike[str], *, format: str | None = None,
                 keep_original: bool = False, with_log: bool = True, split: str | None = None,
                 names: dict[str, str] | None = None) -> list[Path]:
    """Write the corrected dataset and, beside it, the correction log as JSONL.

    Parameters
    ----------
    store : LabelStore
    path : path
        The file to write (for ``hf``, a folder). An existing file is replaced
        only once the new one is complete. ``-`` (or a pipe, ``/dev/stdout``) takes the data as a stream, with
        no log beside it.
    format : str, optional
        One of :data:`FORMATS`: parquet, csv, tsv, jsonl, xlsx, conll, spans, hf, label-studio, prodigy, doccano.
        Taken from the suffix when not given (``.txt``: ``conll`` for token classification, else ``tsv``, the
        layouts :func:`workbench.data.load_dataset` reads a ``.txt`` as). A text format's file ending in ``.gz``,
        ``.bz2`` or ``.xz`` (``clean.csv.gz``) is written compressed. ``spans`` (token classification) writes
        JSONL with ``text`` and ``spans`` (``start``, ``end``, ``label``, ``text`` per entity): offsets into the text
        a span import kept, or into the tokens joined by spaces. ``label-studio`` writes tasks with the current
        labels as annotations and the active scan's other suggestions as predictions, named as the Label Studio
        export the store was imported from named them (else ``names``, else
        :data:`workbench.label_studio.DEFAULT_NAMES`). ``prodigy`` writes JSONL of tasks as Prodigy's manual recipes
        write them (:func:`workbench.prodigy.prodigy_tasks`), for ``prodigy db-in`` or as a recipe's input.
        ``doccano`` writes JSONL as Doccano's dataset import reads it (:func:`doccano_records`).
    keep_original : bool
        Keep the original label in its own column (``original_label`` / ``original_tags``).
    with_log : bool
        Also write ``<path stem>.log.jsonl`` with every log row.
    split : str, optional
        Only the items of this split (e.g. to write train and dev back to files of their own); the log keeps every
        row.
    names : dict, optional
        ``label-studio`` only: ``from_name`` (the control), ``to_name`` (the object it labels), ``data_field`` (the
        task field holding the text), over what the store recorded.

    Returns
    -------
    list of Path
        The files (or folder) written; none for a stream.
    """
    path = Path(path).expanduser()
    compression = path.suffix.lower() if path.suffix.lower() in COMPRESSORS else None
    suffix = Path(path.stem if compression else path.name).suffix.lower()
    fmt = format or _BY_SUFFIX.get(suffix)
    if fmt is None and suffix == ".txt":
        fmt = "conll" if store.task == "token-classification" else "tsv"
    if fmt is None:
        tool = (" (label-studio for tasks Label Studio imports; .jsonl for one object per line)"
                if path.suffix.lower() == ".json" else "")
        raise DataError(f"cannot tell the export format of {path}; pass format= one of {list(FORMATS)}{tool}")
    if fmt not in FORMATS:
        raise DataError(f"unknown export format {fmt!r}; use one of {list(FORMATS)}")
    if compression and fmt in ("parquet", "xlsx", "hf"):
        inside = "a datasets folder" if fmt == "hf" else "Parquet and Excel compress inside the file"
        raise DataError(f"{path}: {fmt} is not compressed as a whole ({inside}); drop {compression}")
    if fmt in ("conll", "spans") and store.task != "token-classification":
        raise DataError(f"{'CoNLL' if fmt == 'conll' else 'Span'} export is for token classification; this store "
                        "holds text classification")
    if not path.parent.exists():
        raise StorePermissionError(f"cannot export to {path}: the folder {path.parent} does not exist")
    frame = store.to_pandas(keep_original=keep_original, split=split)
    if split is not None and frame.empty:
        raise DataError(f"the store has no items in split {split!r}; its splits are "
                        f"{store.splits() or 'none (no item has one)'}")
    tasks = _tool_tasks(store, frame, fmt, names) if fmt in ("label-studio", "prodigy") else None
    if _is_stream(path):
        if fmt == "hf":
            raise DataError(f"{path}: a datasets folder cannot be written to a stream; name a folder")
        # written whole first, as to a file, then copied: a failure leaves nothing half-written in the pipe
        with tempfile.TemporaryDirectory() as folder:
            whole = _write_frame(frame, Path(folder) / f"out{compression or ''}", fmt, compression=compression,
                                 tasks=tasks)
            with whole.open("rb") as src, _open_stream(path) as dst:
                shutil.copyfileobj(src, dst)
        return []  # no log: nothing beside a stream holds it
    written = [_write_frame(frame, path, fmt, compression=compression, tasks=tasks)]
    if with_log:
        log_path = path.with_name(path.name.split(".")[0] + ".log.jsonl")
        history = store.history()
        history["time"] = history["time"].map(lambda t: t.isoformat())
        _atomic_text(log_path, "".join(json.dumps(plain_row(r), ensure_ascii=False) + "\n"
                                       for r in history.to_dict("records")))
        written.append(log_path)
    return written


def _is_stream(path: Path) -> bool:
    """``-``, or an existing file that is not a regular file or a folder (``/dev/stdout``, a named pipe): written
    in place, with no temporary file or log beside it (before, the log went to ``/dev/stdout.log.jsonl``)."""
    if str(path) == "-":
        return True
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _open_stream(path: Path) -> Any:
    """Standard output for ``-`` (left open), else the device or pipe."""
    if str(path) == "-":
        sys.stdout.flush()
        return open(sys.stdout.fileno(), "wb", closefd=False)  # noqa: SIM115 (closed by the caller's with)
    return path.open("wb")


def _tool_tasks(store: LabelStore, frame: pd.DataFrame, fmt: str,
                names: dict[str, str] | None) -> list[dict[str, Any]]:
    """The items of ``frame`` as Label Studio's or Prodigy's tasks, with the active scan's scores and suggestions."""
    from workbench.label_studio import label_studio_tasks
    from workbench.prodigy import prodigy_tasks

    scan = store.active_scan()
    scores = (store.page(0, max(store.count(), 1), order_by="pos")[["item_id", "score", "suggested_label",
                                                                     "suggested_prob", "issues"]]
              if scan is not None else None)
    if fmt == "prodigy":
        return prodigy_tasks(frame, task=str(store.task), classes=store.labels, scores=scores)
    return label_studio_tasks(frame, task=str(store.task), names={**(store.tool_names("label_studio") or {}),
                                                                   **{k: v for k, v in (names or {}).items() if v}},
                              scores=scores, model_version=f"workbench scan {scan['scan_id']}" if scan else None)


def _write_frame(frame: pd.DataFrame, path: Path, fmt: str, *, compression: str | None = None,
                 tasks: list[dict[str, Any]] | None = None) -> Path:
    tmp = path.with_name(path.name + ".partial")
    if fmt == "parquet":
        frame.to_parquet(tmp, index=False)
    elif fmt in ("csv", "tsv"):
        _flat_lists(frame).to_csv(tmp, index=False, sep="," if fmt == "csv" else "\t", lineterminator="\n")
    elif fmt == "xlsx":
        _write_excel(_flat_lists(frame), tmp)
    elif fmt == "jsonl":
        _atomic_text(tmp, "".join(json.dumps(plain_row(r), ensure_ascii=False) + "\n"
                                  for r in frame.to_dict("records")), atomic=False)
    elif fmt == "conll":
        _atomic_text(tmp, conll_text(frame["tokens"], frame["tags"]), atomic=False)
    elif fmt == "spans":
        _atomic_text(tmp, "".join(json.dumps(plain_row(r), ensure_ascii=False) + "\n" for r in span_records(frame)),
                     atomic=False)
    elif fmt == "prodigy":
        _atomic_text(tmp, "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in tasks or []), atomic=False)
    elif fmt == "doccano":
        _atomic_text(tmp, "".join(json.dumps(plain_row(r), ensure_ascii=False) + "\n" for r in doccano_records(frame)),
                     atomic=False)
    elif fmt == "label-studio":
        # a task a line: json's C encoder (indent= runs the pure-Python one, 10 of 15 s on 100,000 items)
        _atomic_text(tmp, "[\n" + ",\n".join(json.dumps(t, ensure_ascii=False) for t in tasks or []) + "\n]\n",
                     atomic=False)
    elif fmt == "hf":
        datasets = require("datasets", extra="data", purpose="exporting to Hugging Face datasets")
        ds = datasets.Dataset.from_pandas(frame, preserve_index=False)  # type: ignore[attr-defined]
        ds.save_to_disk(str(tmp))
        if path.exists():
            shutil.rmtree(path)
    if compression is not None:
        packed = path.with_name(path.name + ".partial-packed")
        with tmp.open("rb") as src, COMPRESSORS[compression](packed, "wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp.unlink()
        tmp = packed
    os.replace(tmp, path)
    return path


def conll_text(tokens: Iterable[Sequence[str]], *columns: Iterable[Sequence[str] | None]) -> str:
    """CoNLL text: one word a line followed by its tag from each column, tab-separated; a blank line ends a sentence.

    Parameters
    ----------
    tokens : sequence of n word lists
    *columns : sequences of n tag lists
        E.g. the given tags, then the predicted ones (the layout ``conlleval`` reads). A sentence with no tags in a
        column (None) gets ``O`` there.
    """
    lines = []
    for words, *given in zip(tokens, *columns, strict=True):
        tags = [t if t is not None else ["O"] * len(words) for t in given]
        lines += ["\t".join([word, *(t[j] for t in tags)]) for j, word in enumerate(words)] + [""]
    return "\n".join(lines) + "\n"


def span_records(frame: pd.DataFrame) -> Iterable[dict[str, Any]]:
    """Each row of a token-classification table as its text and character-offset entities (``spans``;
    ``original_spans`` beside them where the table has ``original_tags``), the other columns (tokens too: an import
    keeps them rather than cutting the text anew) as they are."""
    hidden = {"tags", "original_tags", "source_text", "token_starts"}  # tokens kept: an import reads them back
    for row in frame.to_dict("records"):
        tags, original = row["tags"], row.get("original_tags")
        shown, spans = row_spans(row, tags if tags is not None else [])
        # an untagged sentence (a pool) has no spans at all, not an empty list of them
        out: dict[str, Any] = {"item_id": row["item_id"], "text": shown, "spans": spans if tags is not None else None}
        if "original_tags" in row:
            out["original_spans"] = row_spans(row, original)[1] if original is not None else None
        out.update((str(k), v) for k, v in row.items() if k not in hidden and k not in out)
        yield out


def doccano_records(frame: pd.DataFrame) -> Iterable[dict[str, Any]]:
    """A store's items as Doccano's JSONL import reads them: ``text`` and ``label``, a list of the item's class (empty
    for an unlabelled item) or, for a tagged sentence, ``[start, end, type]`` per entity (none for an untagged one),
    then ``item_id`` and the other columns, which Doccano keeps as the example's metadata and an import here reads
    back."""
    from workbench.data import is_missing

    if "tags" in frame.columns:
        for row in span_records(frame):
            out = {"text": row["text"]}
            if row["spans"] is not None:
                out["label"] = [[s["start"], s["end"], s["label"]] for s in row["spans"]]
            out.update((k, v) for k, v in row.items()
                       if k not in ("text", "spans", "tokens", "content_hash") and not is_missing(v))
            yield out
        return
    for item in frame.to_dict("records"):
        label = item.get("label")
        yield {"text": item["text"], "label": [label] if isinstance(label, str) else [],
               **{str(k): v for k, v in item.items()
                  if k not in ("text", "label", "content_hash") and not is_missing(v)}}


def differing_suggestion(suggested: Any, current: Any, *, tokens: Sequence[str] | None = None) -> Any:
    """A scan's suggestion where it differs from the current label, for an export back to show: a class, or with
    ``tokens`` (a tagged sentence) a list of one tag per token; None where it agrees, or fits no label here (a tag
    list of another length, no suggestion)."""
    if tokens is not None:
        if not isinstance(suggested, (list, tuple)) or len(suggested) != len(tokens):
            return None
        return None if current is not None and list(current) == list(suggested) else list(suggested)
    return suggested if isinstance(suggested, str) and suggested != current else None


def row_spans(row: dict[Any, Any], tags: Sequence[str]) -> tuple[str, list[dict[str, Any]]]:
    """A token-classification row's text and ``tags`` as character-offset entities: offsets into the text an import
    kept (``source_text``, ``token_starts``), else into the tokens joined by spaces."""
    from workbench.spans import tokens_to_spans

    source, starts = row.get("source_text"), row.get("token_starts")
    text = source if isinstance(source, str) else None
    starts = list(starts) if starts is not None and not isinstance(starts, float) else None
    return tokens_to_spans(row["tokens"], list(tags), text=text, starts=starts)


def _flat_lists(frame: pd.DataFrame) -> pd.DataFrame:
    """List cells (tokens, tags) and object cells (a tool's ``meta``) as JSON text, so the loader reads lists back as
    lists and anything else reads them as JSON (an object's cells were written as Python's repr, ``{'a': 1}``)."""
    flat = frame.copy()
    for col in flat.columns:
        if flat[col].map(lambda v: isinstance(v, (list, tuple, dict))).any():
            flat[col] = flat[col].map(_json_cell)
    return flat


def _json_cell(value: Any) -> Any:
    """A list or object cell as JSON text; a missing one (None, or the NaN pandas fills in) empty; else as it is."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value if isinstance(value, dict) else list(value), ensure_ascii=False, default=str)
    return "" if value is None or (isinstance(value, float) and value != value) else value


def _write_excel(frame: pd.DataFrame, path: Path) -> None:
    """One sheet; refused, naming the item, where Excel cannot hold a cell (too long, or a control character)."""
    require("openpyxl", extra="data", purpose="writing an Excel workbook")
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    for col in frame.columns:
        for row, value in zip(frame["item_id"], frame[col], strict=True):
            if isinstance(value, str) and (len(value) > EXCEL_CELL_LIMIT or ILLEGAL_CHARACTERS_RE.search(value)):
                why = (f"is {len(value):,} characters long (Excel holds {EXCEL_CELL_LIMIT:,} per cell)"
                       if len(value) > EXCEL_CELL_LIMIT else "holds a control character Excel cannot store")
                raise DataError(f"item {row!r}: its {col!r} {why}; export as Parquet, CSV or JSONL instead")
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        frame.to_excel(writer, index=False, sheet_name="labels")


def _atomic_text(path: Path, text: str, *, atomic: bool = True) -> None:
    target = path.with_name(path.name + ".partial") if atomic else path
    with target.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    if atomic:
        os.replace(target, path)


def plain_row(row: Any) -> dict[str, Any]:
    """A row as JSON takes it: numpy values as Python numbers and lists, a missing value (NaN, pd.NA) as None."""
    out = {}
    for k, v in row.items():
        if hasattr(v, "tolist"):
            v = v.tolist()
        elif isinstance(v, float) and v != v or v is pd.NA:
            v = None
        out[str(k)] = v
    return out
