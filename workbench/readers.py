"""Read files and in-memory datasets into plain pandas tables, with clear errors.

Readers only parse; they never judge values. Validation lives in :mod:`workbench.data`.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import json
import lzma
import re
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.argilla import argilla_questions, read_responses
from workbench.errors import DataFileError, require
from workbench.label_studio import flatten_tasks, is_label_studio_export, is_min_export, read_min_export
from workbench.prodigy import accepted_decisions, is_prodigy_export

#: File suffixes each reader accepts.
SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".conll": "conll",
    ".conllu": "conll",
    ".iob": "conll",
    ".bio": "conll",
    ".iob2": "conll",  # Universal NER's files
    ".xlsx": "excel",
    ".xlsm": "excel",
}
#: Compressed files: the suffix, the format's name and what opens it. The suffix before it (``.csv`` in
#: ``train.csv.gz``) says how to read what is inside; a ``.zip`` must hold one data file.
COMPRESSIONS = {".gz": ("gzip", gzip.decompress), ".gzip": ("gzip", gzip.decompress),
                ".bz2": ("bzip2", bz2.decompress), ".xz": ("xz", lzma.decompress),
                ".zip": ("zip", None)}
#: Field separators a delimited file may use, whatever its suffix.
SEPARATORS = (",", "\t", ";", "|")


def read_source(source: Any, *, encoding: str = "utf-8", split: str | None = None,
                sheet: str | None = None) -> tuple[pd.DataFrame, str]:
    """Read ``source`` into a DataFrame.

    Parameters
    ----------
    source : path, pandas.DataFrame, datasets.Dataset or datasets.DatasetDict
        A file (CSV, TSV, JSONL, JSON, Parquet, Excel, CoNLL; compressed as ``.gz``, ``.bz2``, ``.xz`` or a
        ``.zip`` of one file), a folder written by ``datasets.save_to_disk``, or an in-memory table.
    encoding : str
        Text encoding of CSV/TSV/JSONL/CoNLL files.
    split : str, optional
        For a ``DatasetDict``, keep only this split; an Excel workbook with a sheet of this name is read from it.
    sheet : str, optional
        The sheet of an Excel workbook to read (default: the first, or the one ``split`` names). The frame's
        ``attrs`` say which sheet was read (``sheet``) and which others the workbook has (``other_sheets``).

    Returns
    -------
    table : pandas.DataFrame
        One row per item. A ``DatasetDict`` gives a ``split`` column.
    name : str
        How to name the source in messages (the path, or the object's type).
    """
    if isinstance(source, pd.DataFrame):
        return _tool_layout(source.reset_index(drop=True), "the DataFrame")
    if _is_hf_dataset(source):
        return _tool_layout(_read_hf(source, split=split), f"the {type(source).__name__}")
    if isinstance(source, (str, Path)):
        return _tool_layout(*_read_path(Path(source).expanduser(), encoding=encoding, split=split, sheet=sheet))
    raise DataFileError(
        f"cannot load a {type(source).__name__}: pass a file path, a folder saved by "
        "datasets.save_to_disk, a pandas DataFrame or a datasets.Dataset/DatasetDict"
    )


def _tool_layout(frame: pd.DataFrame, name: str) -> tuple[pd.DataFrame, str]:
    """A table in an annotation tool's own layout, whatever the file it came in, read as labels: Argilla's records
    (:mod:`workbench.argilla`), Label Studio's one-row-per-annotation exports (JSON-MIN, CSV, TSV). JSON tools' full
    exports are told apart by their objects, in :func:`_records_table`."""
    for detect, read in ((argilla_questions, read_responses), (is_min_export, read_min_export)):
        if detect(frame):
            kept = dict(frame.attrs)
            frame, notes = read(frame, name=name)
            frame.attrs.update({k: v for k, v in kept.items() if k not in frame.attrs})
            frame.attrs["notes"] = [*kept.get("notes", []), *notes]
            break
    return frame, name


def _is_hf_dataset(obj: Any) -> bool:
    return type(obj).__module__.startswith("datasets") and type(obj).__name__ in ("Dataset", "DatasetDict")


def _read_hf(ds: Any, *, split: str | None) -> pd.DataFrame:
    if type(ds).__name__ == "DatasetDict":
        if split is not None:
            if split not in ds:
                raise DataFileError(f"the DatasetDict has no split {split!r}; its splits are {sorted(ds)}")
            frame = _hf_to_pandas(ds[split])
            frame["split"] = split
            return frame
        parts = []
        for name in ds:
            part = _hf_to_pandas(ds[name])
            part["split"] = name
            parts.append(part)
        return pd.concat(parts, ignore_index=True)
    return _hf_to_pandas(ds)


def _hf_to_pandas(ds: Any) -> pd.DataFrame:
    """Convert a ``datasets.Dataset``, turning ``ClassLabel`` ids into their names."""
    frame: pd.DataFrame = ds.to_pandas()
    return _name_class_ids(frame, _class_names(ds.features.to_dict()), name=f"the {type(ds).__name__}")


#: The JSON types ``datasets`` writes for a list feature (``Sequence`` before datasets 4, ``List`` since).
_LIST_TYPES = ("Sequence", "List", "LargeList")


def _class_names(features: dict[str, Any]) -> dict[str, tuple[list[str], bool]]:
    """The ``ClassLabel`` names of each column of ``features`` (``datasets``' JSON form of a dataset's features),
    and whether the column holds lists of ids (tags) rather than one id."""
    found: dict[str, tuple[list[str], bool]] = {}
    for column, feature in features.items():
        inner, is_list = feature, False
        if isinstance(feature, dict) and feature.get("_type") in _LIST_TYPES:
            inner, is_list = feature.get("feature"), True
        elif isinstance(feature, list) and len(feature) == 1:  # datasets' shorthand for a list feature
            inner, is_list = feature[0], True
        if isinstance(inner, dict) and inner.get("_type") == "ClassLabel" and inner.get("names"):
            found[column] = ([str(n) for n in inner["names"]], is_list)
    return found


def _name_class_ids(frame: pd.DataFrame, names: dict[str, tuple[list[str], bool]], *, name: str) -> pd.DataFrame:
    """``frame`` with the integer class ids of each column in ``names`` (:func:`_class_names`) replaced by the
    class names the data declares; ``-1`` (``datasets``' "no label", as in an unlabelled test split) becomes
    None. Values that are not integers are left as they are."""
    for column, (classes, is_list) in names.items():
        if column not in frame.columns:
            continue

        def named(value: Any, row: int, column: str = column, classes: list[str] = classes) -> Any:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                return None if value is None or (isinstance(value, float) and np.isnan(value)) else value
            if value == -1:
                return None
            if not 0 <= value < len(classes):
                raise DataFileError(f"{name}: row {row}, column {column!r}: class id {value} is outside the "
                                    f"{len(classes)} ClassLabel names the data declares (0..{len(classes) - 1})")
            return classes[value]

        values = frame[column].tolist()
        if is_list:
            mapped: list[Any] = [None if seq is None else [named(v, row) for v in seq]
                                 for row, seq in enumerate(values)]
        else:
            mapped = [named(v, row) for row, v in enumerate(values)]
        frame[column] = pd.Series(mapped, index=frame.index, dtype=object)
    return frame


def _read_path(path: Path, *, encoding: str, split: str | None, sheet: str | None) -> tuple[pd.DataFrame, str]:
    name = str(path)
    if not path.exists():
        hint = ""
        if path.parent.is_dir():
            near = sorted(p.name for p in path.parent.iterdir())[:10]
            hint = f"; files in {path.parent}: {near}"
        raise DataFileError(f"{name}: no such file or folder{hint}")
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            datasets = require("datasets", extra="data", purpose=f"loading the saved dataset {name}")
            try:
                ds = datasets.load_from_disk(str(path))  # type: ignore[attr-defined]
            except Exception as exc:  # datasets raises many kinds for a damaged folder
                raise DataFileError(f"{name}: cannot read the folder saved by datasets.save_to_disk: {exc}") from exc
            return _read_hf(ds, split=split), name
        raise DataFileError(
            f"{name} is a folder but not one written by datasets.save_to_disk "
            "(no dataset_info.json or dataset_dict.json); pass one of the files inside it"
        )
    if path.stat().st_size == 0:
        raise DataFileError(f"{name} is empty (0 bytes)")
    source: bytes | Path = path
    inner = path.name
    if path.suffix.lower() in COMPRESSIONS:
        source, inner = _decompress(path)
        if not source:
            raise DataFileError(f"{name} is empty (no bytes after decompressing)")
    kind = file_kind(inner, name=name)
    if kind in TEXT_READERS:
        text = source if isinstance(source, bytes) else source.read_bytes()
        encoding = text_encoding(text, encoding, name=name)
        if Path(inner).suffix.lower() == ".txt":
            kind = txt_layout(text, encoding)
        frame = TEXT_READERS[kind](text, name=name, encoding=encoding, sep="\t" if kind == "tsv" else ",")
    else:  # Parquet and Excel are read from the file itself where there is one (Parquet is memory-mapped)
        frame = (_read_parquet(source, name=name) if kind == "parquet" else
                 _read_excel(source, name=name, sheet=sheet, split=split))
    frame.attrs["file_kind"] = kind  # how load_dataset names a row in its messages (line, object, sheet row)
    return frame, name


def file_kind(filename: str, *, name: str) -> str:
    """How to read a file called ``filename`` (its last suffix; ``.txt`` is CoNLL until :func:`txt_layout` has read
    it); ``name`` is for messages."""
    suffix = Path(filename).suffix.lower()
    kind = SUFFIXES.get(suffix, "conll" if suffix == ".txt" else None)
    if kind is None:
        what = f"{name} holds {filename!r}, of" if filename != Path(name).name else f"{name}:"
        raise DataFileError(
            f"{what} unknown file type {suffix!r}; use one of {sorted(set(SUFFIXES))} or .txt (CoNLL, a tab-separated "
            "table or one text per line), "
            f"compressed or not ({', '.join(sorted(COMPRESSIONS))})"
        )
    return kind


def txt_layout(data: bytes, encoding: str) -> str:
    """How a ``.txt`` file is laid out, from its first 500 non-blank lines.

    ``"tsv"``: a table whose tab-separated cells hold spaces in most lines (Excel's "Unicode Text" export, a .txt);
    ``"conll"``: a token per line, its columns split by whitespace, so nearly every line has the same number of
    fields (or only the token, in a sentence to tag); ``"lines"``: anything else, one text per line (a pool of
    texts to label). Before, every .txt was read as CoNLL, and a file of sentences failed with "tag '?' is not IOB2".
    """
    head = data[:1_000_000].decode(encoding, errors="ignore")  # a cut multi-byte character at the end is dropped
    lines = [line for line in head.splitlines() if line.strip() and not line.startswith("-DOCSTART-")][:500]
    if not lines:
        return "conll"  # its reader names the problem: no sentences
    spaced_cells = sum("\t" in line and any(" " in cell.strip() for cell in line.split("\t")) for line in lines)
    if spaced_cells >= len(lines) / 2:
        return "tsv"
    widths = Counter(len(line.split()) for line in lines)
    # CoNLL lines are all as wide (a token and its columns), bar the lines of untagged sentences (the token alone)
    return "conll" if sum(n for _, n in widths.most_common(2)) >= 0.9 * len(lines) else "lines"


def _decompress(path: Path) -> tuple[bytes, str]:
    """The bytes of a compressed file and the name of what it holds (``train.csv`` for ``train.csv.gz``)."""
    fmt, opener = COMPRESSIONS[path.suffix.lower()]
    try:
        if opener is not None:
            return opener(path.read_bytes()), path.stem
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir() and not _is_zip_clutter(m.filename)]
            if len(members) != 1:
                listed = [m.filename for m in members][:10]
                raise DataFileError(
                    f"{path}: a .zip must hold exactly one data file, this one holds {len(members)} {listed}; "
                    "unzip it and pass the file you mean")
            return archive.read(members[0]), Path(members[0].filename).name
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as exc:  # gzip/bz2 raise OSError or EOFError
        raise DataFileError(f"{path}: not a readable {fmt} file ({exc}); is it damaged or cut short?") from exc


def _is_zip_clutter(member: str) -> bool:
    """Files an archiver adds beside the data: macOS's resource forks and Finder notes."""
    return member.startswith("__MACOSX/") or Path(member).name in (".DS_Store", "Thumbs.db")


#: Byte-order marks and the codec that reads past them, longest first (UTF-32's LE mark starts with UTF-16's).
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def text_encoding(data: bytes, encoding: str, *, name: str) -> str:
    """The codec to read ``data`` (the file ``name``) with: ``encoding``, unless the file starts with a byte-order
    mark of another Unicode encoding (Excel's "Unicode text" is UTF-16 with a mark, its "CSV UTF-8" has a UTF-8
    mark). A mark is unambiguous, so it wins over the UTF-8 default; an explicit non-Unicode encoding
    (``latin-1``) is kept. Raises a DataFileError naming the line and bytes when the text does not decode.
    """
    marked = None
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8", "utf-16", "utf-32", "utf-8-sig"):
        marked = next((codec for bom, codec in BOMS if data.startswith(bom)), None)
        encoding = marked or encoding
    head = data[:2000]
    # UTF-16 without a mark: every other byte of ASCII text is zero (and zeros decode as UTF-8 without error)
    zeros = head.count(0) > len(head) // 4
    utf16_hint = "it looks like UTF-16 without a byte-order mark: pass encoding='utf-16-le' (or 'utf-16-be')"
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start : exc.start + 4]
        what = f"not valid {encoding}" + (" although it starts with that encoding's byte-order mark" if marked else "")
        hint = (utf16_hint if zeros else
                "pass encoding='cp1252' (Windows) or encoding='latin-1', or the file's real encoding, "
                "or re-save the file as UTF-8")
        raise DataFileError(f"{name}: line {line} (byte {exc.start}) is {what}: bytes {bad!r}; {hint}") from exc
    if zeros and not encoding.lower().startswith(("utf-16", "utf-32", "utf16", "utf32")):
        raise DataFileError(f"{name}: the text is full of zero bytes; {utf16_hint}")
    return encoding


def _read_csv(data: bytes, *, name: str, encoding: str, sep: str) -> pd.DataFrame:
    sep = _header_separator(data, encoding, sep)
    try:
        # Every cell as text, and no 'NA'/'null' turned into missing: a text is a text.
        frame = pd.read_csv(io.BytesIO(data), sep=sep, dtype=str, keep_default_na=False, encoding=encoding)
    except pd.errors.EmptyDataError as exc:
        raise DataFileError(f"{name} has no header and no rows") from exc
    except pd.errors.ParserError as exc:
        raise DataFileError(f"{name}: malformed {'TSV' if sep == chr(9) else 'CSV'}: {str(exc).strip()}. "
                            "Check quoting and the number of fields on that line") from exc
    return frame


def _header_separator(data: bytes, encoding: str, sep: str) -> str:
    """``sep``, unless the header line lacks it and holds another separator: a file written with a ';' (Excel in
    many locales), a tab or a '|', whatever its suffix says. Read from the header, before parsing: a ';' file whose
    texts hold commas failed as "malformed CSV" when the separator was guessed only after a parse."""
    head = data[:65_536].decode(encoding, errors="ignore")
    header = next((line for line in head.splitlines() if line.strip()), "")
    if sep in header:
        return sep
    return next((other for other in SEPARATORS if other != sep and other in header), sep)


def _read_lines(data: bytes, *, name: str, encoding: str, sep: str) -> pd.DataFrame:
    """One text per line, blank lines skipped, in a ``text`` column."""
    return pd.DataFrame({"text": [line for line in _lines(data, encoding) if line.strip()]})


def _read_jsonl(data: bytes, *, name: str, encoding: str, sep: str) -> pd.DataFrame:
    rows = []
    with _text_lines(data, encoding) as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFileError(f"{name}: line {n} is not valid JSON ({exc.msg} at column {exc.colno})") from exc
            if not isinstance(row, dict):
                raise DataFileError(f"{name}: line {n} is a JSON {type(row).__name__}, expected an object per line")
            rows.append(row)
    if not rows:
        raise DataFileError(f"{name} holds no JSON objects")
    return _records_table(rows, name=name)


def _read_json(data: bytes, *, name: str, encoding: str, sep: str) -> pd.DataFrame:
    try:
        parsed = json.loads(data.decode(encoding))
    except json.JSONDecodeError as exc:
        raise DataFileError(f"{name}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if isinstance(parsed, dict) and "data" in parsed:
        parsed = parsed["data"]
    if isinstance(parsed, dict) and parsed and all(isinstance(v, (list, dict)) for v in parsed.values()):
        # columns: {"text": [...], "label": [...]}, or pandas' to_json() {"text": {"0": ...}, "label": {...}}
        lengths = {len(v) for v in parsed.values()}
        if len(lengths) != 1:
            raise DataFileError(f"{name}: its columns have different lengths {sorted(lengths)}")
        return pd.DataFrame({k: list(v.values()) if isinstance(v, dict) else v for k, v in parsed.items()})
    if not isinstance(parsed, list) or not all(isinstance(r, dict) for r in parsed):
        raise DataFileError(f"{name}: expected a JSON list of objects, an object of equally long columns, or JSON "
                            "Lines with one object per line")
    return _records_table(parsed, name=name)


def _records_table(records: list[dict[str, Any]], *, name: str) -> pd.DataFrame:
    """JSON objects as a table: one row each, or a Label Studio export's tasks flattened
    (:mod:`workbench.label_studio`), or Prodigy's accepted decisions (:mod:`workbench.prodigy`), with what that
    reading chose in ``attrs["notes"]``."""
    frame = None
    for detect, read in ((is_label_studio_export, flatten_tasks), (is_prodigy_export, accepted_decisions)):
        if detect(records):
            frame, notes = read(records, name=name)
            frame.attrs["notes"] = notes
            break
    frame = pd.DataFrame.from_records(records) if frame is None else frame
    frame.attrs["objects"] = True  # its rows are a list's objects, named so in messages as JSON Lines' are
    return frame


def _binary(data: bytes | Path) -> Any:
    """What a binary reader opens: the file, or decompressed bytes as a file object."""
    return io.BytesIO(data) if isinstance(data, bytes) else data


def _lines(data: bytes, encoding: str) -> list[str]:
    """``data``'s lines without their ends (``\n``, ``\r\n`` or ``\r``)."""
    with _text_lines(data, encoding) as fh:
        return [raw.rstrip("\n").rstrip("\r") for raw in fh]


def _text_lines(data: bytes, encoding: str) -> io.TextIOWrapper:
    """``data`` as lines of text, ended as a file opened in text mode ends them (``\\n``, ``\\r\\n`` or ``\\r``)."""
    return io.TextIOWrapper(io.BytesIO(data), encoding=encoding)


def _read_excel(data: bytes | Path, *, name: str, sheet: str | None = None, split: str | None = None) -> pd.DataFrame:
    """One sheet of an Excel workbook, every cell as text (as CSVs are read), empty cells as empty text: ``sheet``,
    else the one named as ``split`` (a workbook with a sheet per split), else the first."""
    require("openpyxl", extra="data", purpose=f"reading the Excel workbook {name}")
    try:
        book = pd.ExcelFile(_binary(data), engine="openpyxl")
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:  # a damaged or non-Excel file
        raise DataFileError(f"{name}: not a readable Excel workbook ({exc}); save it again as .xlsx or as CSV") from exc
    with book:
        sheets = [str(s) for s in book.sheet_names]
        if sheet is not None and sheet not in sheets:
            raise DataFileError(f"{name} has no sheet {sheet!r}; its sheets are {sheets}")
        chosen = sheet if sheet is not None else split if split in sheets else sheets[0]
        try:
            frame = pd.read_excel(book, sheet_name=chosen, dtype=str, keep_default_na=False)
        except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
            raise DataFileError(f"{name}: sheet {chosen!r} is not readable ({exc}); save it again as .xlsx or as "
                                "CSV") from exc
    if frame.empty and not len(frame.columns):
        raise DataFileError(f"{name}: its sheet {chosen!r} is empty; put the table there, or name the sheet that "
                            f"holds it (its sheets are {sheets})")
    frame.attrs["sheet"] = chosen
    frame.attrs["other_sheets"] = [s for s in sheets if s != chosen]
    return frame


def _read_parquet(data: bytes | Path, *, name: str) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(_binary(data))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataFileError(f"{name}: not a readable Parquet file ({exc})") from exc
    # a file written by `datasets` (Dataset.to_parquet, the Hub's Parquet files) declares its ClassLabel names in
    # the schema's metadata: read its ids as the names, as a dataset loaded through `datasets` itself would be
    return _name_class_ids(table.to_pandas(), _class_names(_hf_features(table.schema.metadata)), name=name)


def _hf_features(metadata: dict[bytes, bytes] | None) -> dict[str, Any]:
    """The features ``datasets`` wrote into a Parquet schema's metadata (``{}`` when there are none or they do not
    parse: they only name the ids, so a file without them still reads)."""
    try:
        info = json.loads((metadata or {}).get(b"huggingface", b"{}"))
        features = info.get("info", {}).get("features", {})
    except (ValueError, AttributeError):
        return {}
    return features if isinstance(features, dict) else {}


def _read_conll(data: bytes, *, name: str, encoding: str, sep: str) -> pd.DataFrame:
    """CoNLL: one token per line, the tag in the last column, sentences split by blank lines.

    A file laid out as CoNLL-U (an ID column counting each sentence's tokens, ``#`` comment lines; Universal NER
    ships its data so) takes each token from the FORM column and its tag from the last column that holds tags
    (UNER: the third), and skips comments, multi-word-token ranges and empty nodes. A sentence whose lines hold the
    token alone (text to tag), or a CoNLL-U file with no column of tags, gets no tags (None).
    """
    lines = _lines(data, encoding)
    conllu, tag_column = _conllu_layout(lines)
    sentences: list[dict[str, Any]] = []
    tokens: list[str] = []
    tags: list[str | None] = []
    numbers: list[int] = []  # each token's line
    doc = 0

    def flush() -> None:
        if tokens:
            has = [t is not None for t in tags]
            if any(has) and not all(has):
                k = has.index(not has[0])
                raise DataFileError(
                    f"{name}: line {numbers[k]} ({tokens[k]!r}) has {'a tag' if has[k] else 'no tag'} but line "
                    f"{numbers[0]} ({tokens[0]!r}), the first of its sentence, has {'one' if has[0] else 'none'}; "
                    "tag every word of a sentence (the tag last, after whitespace) or none of them")
            sentences.append({"tokens": list(tokens), "tags": list(tags) if has[0] else None, "doc_id": doc,
                              "line": numbers[0]})
            tokens.clear()
            tags.clear()
            numbers.clear()

    for n, line in enumerate(lines, start=1):
        if not line.strip():
            flush()
            continue
        if line.startswith("-DOCSTART-"):
            flush()
            doc += 1
            continue
        if conllu:
            if line.startswith("#"):
                continue
            fields = _conllu_fields(line)
            if not fields[0].isdigit():  # "3-4" (a multi-word token's range) or "3.1" (an empty node)
                continue
            tokens.append(fields[1])
            tags.append(fields[tag_column] if tag_column is not None else None)
        else:
            fields = line.split()
            tokens.append(fields[0])
            tags.append(fields[-1] if len(fields) > 1 else None)
        numbers.append(n)
    flush()
    if not sentences:
        raise DataFileError(f"{name} holds no sentences (only blank or -DOCSTART- lines)")
    return pd.DataFrame.from_records(sentences)


def _conllu_fields(line: str) -> list[str]:
    """A CoNLL-U line's columns: split at tabs (a FORM may hold a space), or at whitespace in a file without tabs."""
    return line.split("\t") if "\t" in line else line.split()


_CONLLU_ID = re.compile(r"\d+(?:-\d+|\.\d+)?")
_TAG_LIKE = re.compile(r"O|[BIESULM]-\S+")


def _conllu_layout(lines: list[str]) -> tuple[bool, int | None]:
    """Whether CoNLL lines are laid out as CoNLL-U (every token line of the first 2,000 starts with an ID, the first of
    each sentence with 1), and then the column of the tags: the last whose cells are all ``O`` or ``X-TYPE``."""
    rows: list[list[str]] = []
    first = True  # the next token line starts a sentence
    for line in lines:
        if not line.strip() or line.startswith("-DOCSTART-"):
            first = True
            continue
        if line.startswith("#"):
            continue
        fields = _conllu_fields(line)
        if len(fields) < 3 or not _CONLLU_ID.fullmatch(fields[0]) or (first and fields[0].split("-")[0] != "1"):
            return False, None
        first = False
        if fields[0].isdigit():
            rows.append(fields)
        if len(rows) >= 2000:
            break
    if not rows:
        return False, None
    width = min(len(r) for r in rows)
    tagged = [c for c in range(2, width) if all(_TAG_LIKE.fullmatch(r[c]) for r in rows)]
    return True, (tagged[-1] if tagged else None)


#: Readers of text formats: they take the file's bytes (decoded with the encoding found by :func:`text_encoding`).
TEXT_READERS: dict[str, Callable[..., pd.DataFrame]] = {"csv": _read_csv, "tsv": _read_csv, "jsonl": _read_jsonl,
                                                        "json": _read_json, "conll": _read_conll,
                                                        "lines": _read_lines}
