"""Every user mistake gives a WorkbenchError that names what is wrong and where, and changes nothing stored."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from workbench import LabelStore, load_dataset
from workbench import errors as E
from workbench.models import resolve_model
from workbench.scan import scan


@dataclass
class Case:
    name: str
    call: Callable[[Path, LabelStore], object]
    error: type[E.WorkbenchError]
    says: tuple[str, ...]


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _csv(tmp: Path, body: str, name: str = "data.csv") -> Path:
    return _write(tmp / name, body)


def _df(**cols) -> pd.DataFrame:
    return pd.DataFrame(cols)


def _readonly_dir(tmp: Path) -> Path:
    if os.geteuid() == 0:
        # File modes do not stop root; sysfs refuses new files to everyone.
        return Path("/sys/labels.db")
    d = tmp / "ro"
    d.mkdir()
    os.chmod(d, 0o555)
    return d / "labels.db"


def _bell_store(tmp: Path) -> LabelStore:
    store = LabelStore.open(tmp / "bell.db")
    store.import_dataset(load_dataset(_df(text=["ring\x07bell", "ok"], label=["a", "b"])))
    return store


def _old_schema_store(tmp: Path) -> Path:
    path = tmp / "future.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    con.commit()
    con.close()
    return path


def _versionless_store(tmp: Path) -> Path:
    path = tmp / "old.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    con.commit()
    con.close()
    return path


def _foreign_db(tmp: Path) -> Path:
    path = tmp / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.commit()
    con.close()
    return path


def _first_id(store: LabelStore) -> str:
    return str(store.page(0, 1, order_by="pos")["item_id"][0])


CASES = [
    Case("missing file", lambda t, s: load_dataset(t / "nope.csv"), E.DataFileError, ("nope.csv", "no such file")),
    Case("empty file", lambda t, s: load_dataset(_csv(t, "")), E.DataFileError, ("data.csv", "empty")),
    Case("header only", lambda t, s: load_dataset(_csv(t, "text,label\n")), E.DataFileError, ("no rows",)),
    Case("unknown suffix", lambda t, s: load_dataset(_write(t / "d.docx", "x")), E.DataFileError,
         (".docx", "unknown file type")),
    Case("missing text column", lambda t, s: load_dataset(_csv(t, "body,label\nhi,a\n")), E.ColumnError,
         ("text", "'body'", "'label'", "text_column")),
    Case("missing label column", lambda t, s: load_dataset(_csv(t, "text,tag\nhi,a\n")), E.ColumnError,
         ("label", "'tag'", "label_column")),
    Case("named column absent", lambda t, s: load_dataset(_csv(t, "text,label\nhi,a\n"), label_column="intent"),
         E.ColumnError, ("'intent'", "label_column", "'text'")),
    Case("id column absent, rows with other problems", lambda t, s: load_dataset(_csv(t, "text,label\nhi,\n"),
                                                                                 id_column="key"),
         E.ColumnError, ("'key'", "id_column", "'text'")),  # the misnamed column, not the missing label it reads past
    Case("NaN label", lambda t, s: load_dataset(_df(text=["a", "b"], label=["x", None])), E.ValueProblem,
         ("row 1", "'label'", "missing")),
    Case("empty label in CSV", lambda t, s: load_dataset(_csv(t, "text,label\nhello,x\nworld,\n")), E.ValueProblem,
         ("line 3", "missing")),
    Case("empty text", lambda t, s: load_dataset(_csv(t, 'text,label\nhello,x\n"",y\n')), E.ValueProblem,
         ("line 3", "'text'", "empty", "drop_empty_texts")),
    Case("whitespace text", lambda t, s: load_dataset(_df(text=["ok", "   \n"], label=["a", "b"])), E.ValueProblem,
         ("row 1", "empty")),
    # one split of a file: the file's own line, not the line's place among the split's rows (was "line 3")
    Case("empty text in a split", lambda t, s: load_dataset(
        _csv(t, "text,label,split\na,x,train\nb,y,train\nc,x,test\nd,y,train\n ,x,test\n"), split="test"),
         E.ValueProblem, ("line 6", "empty")),
    # a filtered frame: its own index label beside the position (df.loc[14] finds it, df.loc[1] does not)
    Case("empty text in a filtered frame", lambda t, s: load_dataset(
        _df(text=["ok", "   "], label=["a", "b"], n=[0, 1]).set_axis([3, 14])), E.ValueProblem,
         ("row 1 (index 14)", "empty")),
    Case("non-string text", lambda t, s: load_dataset(_df(text=["ok", 42], label=["a", "b"])), E.ValueProblem,
         ("row 1", "type int", "42")),
    Case("non-UTF-8 bytes", lambda t, s: load_dataset(_write(t / "latin.csv", b"text,label\ncaf\xe9 ok,a\n")),
         E.DataFileError, ("latin.csv", "line 2", "utf-8", "encoding='cp1252'")),
    Case("UTF-16 without a byte-order mark",
         lambda t, s: load_dataset(_write(t / "u16.csv", "text,label\nhi,a\n".encode("utf-16-le"))),
         E.DataFileError, ("u16.csv", "UTF-16", "utf-16-le")),
    Case("a UTF-16 mark on bytes that are not UTF-16",
         lambda t, s: load_dataset(_write(t / "mark.csv", b"\xff\xfetext,label\nx,y\n")),
         E.DataFileError, ("mark.csv", "utf-16", "byte-order mark")),
    Case("duplicate ids", lambda t, s: load_dataset(_df(id=["a", "b", "a"], text=["x", "y", "z"], label=["p"] * 3),
                                                    id_column="id"),
         E.ValueProblem, ("'a'", "twice", "row 0", "row 2")),
    Case("mixed label types", lambda t, s: load_dataset(_df(text=["x", "y", "z"], label=["pos", 1, "neg"])),
         E.ValueProblem, ("mixes label types", "row 0", "row 1")),
    Case("a list as the label (multi-label data)",
         lambda t, s: load_dataset(_df(text=["x", "y"], label=[["a", "b"], ["a"]])), E.ValueProblem,
         ("row 0", "the label is a list (['a', 'b'])", "multi-label")),
    Case("fractional label", lambda t, s: load_dataset(_df(text=["x", "y"], label=[1.0, 2.5])), E.ValueProblem,
         ("2.5", "row 1")),
    Case("label not in given set", lambda t, s: load_dataset(_df(text=["x", "y"], label=["a", "c"]), labels=["a", "b"]),
         E.ValueProblem, ("'c'", "row 1", "['a', 'b']")),
    Case("malformed JSONL", lambda t, s: load_dataset(_write(t / "d.jsonl", '{"text": "a", "label": "x"}\n{oops\n')),
         E.DataFileError, ("d.jsonl", "line 2", "JSON")),
    Case("JSONL line not an object", lambda t, s: load_dataset(_write(t / "d.jsonl", '["a", "x"]\n')),
         E.DataFileError, ("line 1", "object")),
    Case("ragged CSV", lambda t, s: load_dataset(_csv(t, 'text,label\n"a",x\n"b",y,extra,more\n')), E.DataFileError,
         ("malformed CSV",)),
    Case("not parquet", lambda t, s: load_dataset(_write(t / "d.parquet", "just text")), E.DataFileError,
         ("d.parquet", "Parquet")),
    Case("folder not a dataset", lambda t, s: load_dataset(t), E.DataFileError, ("save_to_disk",)),
    Case("tokens/tags length mismatch",
         lambda t, s: load_dataset(_df(tokens=[["a", "b"]], tags=[["O"]]), task="token-classification"),
         E.ValueProblem, ("row 0", "2 tokens", "1 tags")),
    Case("invalid BIO", lambda t, s: load_dataset(_df(tokens=[["in", "New", "York"]], tags=[["O", "I-LOC", "I-LOC"]]),
                                                  task="token-classification"),
         E.ValueProblem, ("token 1", "'New'", "I-LOC", "repair_bio")),
    Case("tag not IOB2", lambda t, s: load_dataset(_df(tokens=[["Bob"]], tags=[["PERSON"]]),
                                                   task="token-classification"),
         E.ValueProblem, ("'PERSON'", "IOB2")),
    Case("tokens not a list", lambda t, s: load_dataset(_df(tokens=["a b"], tags=[["O", "O"]]),
                                                        task="token-classification"),
         E.ValueProblem, ("list of tokens",)),
    Case("CoNLL line without tag", lambda t, s: load_dataset(_write(t / "d.conll", "EU B-ORG\nrejects\n"),
                                                             task="token-classification"),
         E.DataFileError, ("line 2", "'rejects'", "has no tag but line 1 ('EU')")),
    Case("CoNLL sentence without tags", lambda t, s: load_dataset(_write(t / "d.conll", "EU B-ORG\n\nrejects\n"),
                                                                  task="token-classification"),
         E.ValueProblem, ("sentence 2 (line 3)", "has no tags", "allow_missing_labels=True")),
    Case("labels missing", lambda t, s: load_dataset(_df(text=["a", "b", "c"], label=["x", None, " "])),
         E.ValueProblem, ("row 1", "the label is missing (2 of 3 rows have none)", "allow_missing_labels=True",
                          "05_active_learning")),
    Case("tags and types mixed", lambda t, s: load_dataset(_df(tokens=[["Bob"]], tags=[None]),
                                                           task="token-classification", allow_missing_labels=True,
                                                           labels=["B-PER", "LOC"]),
         E.ValueProblem, ("mixes tags and entity types",)),
    Case("unknown task", lambda t, s: load_dataset(_df(text=["a"], label=["b"]), task="regression"), E.DataError,
         ("'regression'", "text-classification")),
    Case("unknown label in set_label", lambda t, s: s.set_label(_first_id(s), "spam", author="ann"), E.LabelError,
         ("'spam'", "label set", "set_label_set")),
    Case("unknown item in set_label", lambda t, s: s.set_label("no-such-id", "cancel_order", author="ann"),
         E.UnknownItemError, ("'no-such-id'",)),
    Case("empty author", lambda t, s: s.set_label(_first_id(s), "cancel_order", author=" "), E.DataError,
         ("author",)),
    Case("unknown source", lambda t, s: s.set_label(_first_id(s), "cancel_order", author="ann", source="oracle"),
         E.DataError, ("'oracle'", "human")),
    Case("bulk with one bad label", lambda t, s: s.set_labels({_first_id(s): "cancel_order", "x": "nope"},
                                                              author="ann"),
         E.WorkbenchError, ("nothing was changed",)),
    Case("unknown review status", lambda t, s: s.set_status(_first_id(s), "done", author="ann"), E.DataError,
         ("'done'", "reviewed")),
    Case("nothing to undo", lambda t, s: s.undo(author="nobody"), E.NothingToUndoError, ("'nobody'",)),
    Case("unknown filter", lambda t, s: s.page(filters={"colour": "red"}), E.DataError, ("colour",)),
    Case("bad regex", lambda t, s: s.page(filters={"regex": "(unclosed"}), E.DataError, ("(unclosed",)),
    Case("unknown sort column", lambda t, s: s.page(order_by="-size"), E.DataError, ("'size'",)),
    Case("re-import with changed label",
         lambda t, s: s.import_dataset(s.to_pandas().assign(label="cancel_order")), E.DataError,
         ("already in the store", "on_conflict")),
    Case("wrong task into store",
         lambda t, s: s.import_dataset(load_dataset(_df(tokens=[["a"]], tags=[["O"]]), task="token-classification")),
         E.DataError, ("text-classification", "token-classification")),
    Case("store in read-only folder", lambda t, s: LabelStore.open(_readonly_dir(t)), E.StorePermissionError,
         ("read-only", "labels.db")),
    Case("store path is a folder", lambda t, s: LabelStore.open(t), E.StorePermissionError, ("folder",)),
    Case("store folder missing", lambda t, s: LabelStore.open(t / "nowhere" / "x.db"), E.StorePermissionError,
         ("does not exist",)),
    Case("corrupt store file", lambda t, s: LabelStore.open(_write(t / "bad.db", b"\x00garbage" * 100)),
         E.StoreCorruptError, ("bad.db", "not a SQLite database", "not changed")),
    Case("store from a newer version", lambda t, s: LabelStore.open(_old_schema_store(t)), E.StoreSchemaError,
         ("schema version 99", "Upgrade")),
    Case("store from an older version with no migration", lambda t, s: LabelStore.open(_versionless_store(t)),
         E.StoreSchemaError, ("schema version 0", "no migration", "not changed")),
    Case("database that is not a store", lambda t, s: LabelStore.open(_foreign_db(t)), E.StoreSchemaError,
         ("customers", "not a label store")),
    Case("export to unknown format", lambda t, s: s.export(t / "out.docx"), E.DataError, ("out.docx", "format")),
    Case("Excel export of a text Excel cannot hold", lambda t, s: _bell_store(t).export(t / "out.xlsx"), E.DataError,
         ("control character", "Parquet, CSV or JSONL")),
    Case("CoNLL export of classification", lambda t, s: s.export(t / "out.conll"), E.DataError, ("CoNLL",)),
    Case("span export of classification", lambda t, s: s.export(t / "out.jsonl", format="spans"), E.DataError,
         ("Span export is for token classification",)),
    Case("overlapping entity spans", lambda t, s: load_dataset(_write(
        t / "spans.jsonl", '{"text": "Ana Lopez", "spans": [[0, 9, "PER"]]}\n'
                           '{"text": "New York City", "spans": [[0, 8, "LOC"], [4, 13, "LOC"]]}\n')),
         E.ValueProblem, ("spans.jsonl", "object 2", "'New York' (0-8, LOC) and 'York City' (4-13, LOC) overlap")),
    Case("entity span past the text", lambda t, s: load_dataset(_write(
        t / "spans.jsonl", '{"text": "Ana", "entities": [{"start": 0, "end": 9, "label": "PER"}]}\n')),
         E.ValueProblem, ("object 1", "column 'entities'", "outside the text, which has 3 characters")),
    Case("scan of an empty store", lambda t, s: scan(LabelStore.open(t / "empty.db")), E.DataError,
         ("empty.db", "holds no items", "workbench import")),
    Case("missing local model", lambda t, s: resolve_model(t / "my-model"), E.ModelNotFoundError, ("my-model",)),
    Case("uncached hub model", lambda t, s: resolve_model("someone/not-cached-model"), E.ModelNotFoundError,
         ("'someone/not-cached-model'", "offline")),
]


def _state(store: LabelStore) -> tuple[str, int, str]:
    return store.snapshot_hash(), len(store.history()), json.dumps(store.info().counts, sort_keys=True)


def test_there_are_enough_cases():
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_raises_clear_error_and_changes_nothing(case: Case, tmp_path: Path, store: LabelStore):
    before = _state(store)
    with pytest.raises(case.error) as info:
        case.call(tmp_path, store)
    message = str(info.value)
    for fragment in case.says:
        assert fragment in message, f"{fragment!r} not in: {message}"
    assert _state(store) == before
