"""Import each format, correct labels, export, reload: texts byte-identical, labels corrected, log complete."""

from __future__ import annotations

import json
import random
from pathlib import Path

import datasets  # the 'data' extra; make test installs it
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench import LabelStore, load_dataset
from workbench.bio import spans
from workbench.data import reading_notes
from workbench.errors import DataError
from workbench.sample import make_classification_sample, make_ner_sample


def _source(name: str, shared: Path) -> tuple[pd.DataFrame, str, dict]:
    if name == "sample":
        return make_classification_sample(n_items=600, seed=3), "text-classification", {"id_column": "id"}
    if name == "sst2":
        return pd.read_parquet(shared / "sst2" / "train.parquet"), "text-classification", {}
    if name == "ner-sample":
        return make_ner_sample(n_sentences=120, seed=3), "token-classification", {"id_column": "id"}
    frame = pd.read_parquet(shared / "conll2003" / "test.parquet")
    return frame[["sent_id", "tokens", "tags"]], "token-classification", {"id_column": "sent_id"}


def _write_source(frame: pd.DataFrame, fmt: str, folder: Path, task: str):
    plain = frame.copy()
    for col in plain.columns:  # lists from parquet arrive as numpy arrays
        if plain[col].map(lambda v: hasattr(v, "tolist")).any():
            plain[col] = plain[col].map(lambda v: v.tolist())
    if fmt == "dataframe":
        return plain
    if fmt == "hf-memory":
        return datasets.Dataset.from_pandas(plain, preserve_index=False)
    path = folder / f"source.{ {'hf': 'd', 'conll': 'conll'}.get(fmt, fmt) }"
    if fmt == "parquet":
        plain.to_parquet(path, index=False)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in plain.to_dict("records")),
                        encoding="utf-8")
    elif fmt in ("csv", "tsv", "xlsx"):
        flat = plain.copy()
        for col in flat.columns:
            if flat[col].map(lambda v: isinstance(v, list)).any():
                flat[col] = flat[col].map(json.dumps)
        if fmt == "xlsx":
            flat.to_excel(path, index=False)
        else:
            flat.to_csv(path, index=False, sep="," if fmt == "csv" else "\t", lineterminator="\n")
    elif fmt == "hf":
        path = folder / "source_hf"
        datasets.Dataset.from_pandas(plain, preserve_index=False).save_to_disk(str(path))
    elif fmt == "conll":
        lines = []
        for tokens, tags in zip(plain["tokens"], plain["tags"]):
            lines += [f"{a} {b}" for a, b in zip(tokens, tags)] + [""]
        path.write_text("-DOCSTART- -X- O O\n\n" + "\n".join(lines), encoding="utf-8")
    return path


def _correct(store: LabelStore, rng: random.Random, n: int = 12) -> dict[str, object]:
    ids = store.page(0, len(store), order_by="pos")["item_id"].tolist()
    changes: dict[str, object] = {}
    for item_id in rng.sample(ids, n):
        item = store.get(item_id)
        if store.task == "text-classification":
            changes[item_id] = rng.choice([lab for lab in store.labels if lab != item["label"]])
        else:
            tags = list(item["label"])
            found = spans(tags)
            if not found:
                continue
            start, end, kind = found[0]
            new = rng.choice([k for k in ("PER", "ORG", "LOC", "MISC") if k != kind])
            tags[start:end] = [f"B-{new}"] + [f"I-{new}"] * (end - start - 1)
            changes[item_id] = tags
    for item_id, label in changes.items():
        store.set_label(item_id, label, author="tester", note="round trip")
    return changes


CASES = [(d, f) for d in ("sample", "sst2") for f in ("csv", "tsv", "jsonl", "parquet", "hf", "hf-memory",
                                                      "dataframe")]
CASES += [(d, f) for d in ("ner-sample", "conll2003") for f in ("jsonl", "parquet", "hf", "conll", "csv")]
CASES += [("sample", "xlsx"), ("sst2", "xlsx"), ("ner-sample", "xlsx")]  # Excel in and out


@pytest.mark.parametrize(("dataset", "fmt"), CASES, ids=[f"{d}-{f}" for d, f in CASES])
def test_round_trip(dataset: str, fmt: str, tmp_path: Path, shared_data: Path):
    frame, task, opts = _source(dataset, shared_data)
    if fmt == "conll":
        opts = {}  # CoNLL carries tokens and tags only: ids come from the content
    source = _write_source(frame, fmt, tmp_path, task)
    table = load_dataset(source, task=task, **opts)
    content = "text" if task == "text-classification" else "tokens"
    label = "label" if task == "text-classification" else "tags"
    original_content = [list(v) if not isinstance(v, str) else v for v in frame[content]]
    assert [list(v) if not isinstance(v, str) else v for v in table[content]] == original_content

    store = LabelStore.open(tmp_path / "s.db")
    store.import_dataset(table)
    changes = _correct(store, random.Random(7))
    assert changes

    out_fmt = {"hf-memory": "parquet", "dataframe": "csv"}.get(fmt, fmt)
    out = tmp_path / ("export" if out_fmt == "hf" else f"export.{out_fmt}")
    written = store.export(out, format=out_fmt, keep_original=out_fmt != "conll")
    reloaded = load_dataset(out, task=task)
    store_frame = store.to_pandas()

    # texts (tokens) byte-identical to the source, in the source's order
    if task == "text-classification":
        assert [t.encode("utf-8") for t in reloaded["text"]] == [t.encode("utf-8") for t in frame["text"]]
    else:
        assert [list(t) for t in reloaded["tokens"]] == original_content
    # ids stable, labels as corrected, untouched labels as given
    assert reloaded["item_id"].tolist() == table["item_id"].tolist()
    got = dict(zip(reloaded["item_id"], (list(v) if not isinstance(v, str) else v for v in reloaded[label])))
    for item_id, lab in changes.items():
        assert got[item_id] == lab
    expected = dict(zip(table["item_id"], (list(v) if not isinstance(v, str) else v for v in table[label])))
    expected.update(changes)
    assert got == expected
    assert len(store_frame) == len(frame)
    if out_fmt != "conll":
        orig_col = f"original_{label}"
        originals = [list(v) if not isinstance(v, str) else v for v in reloaded[orig_col]]
        assert originals == [list(v) if not isinstance(v, str) else v for v in table[label]]
    # the log, complete, beside the export
    log_path = written[-1]
    rows = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(changes)
    assert {r["item_id"] for r in rows} == set(changes)
    assert all(r["author"] == "tester" and r["source"] == "human" and r["note"] == "round trip" for r in rows)
    store.close()


def test_ids_survive_reordering_and_insertions():
    frame = make_classification_sample(n_items=200, seed=5).drop(columns=["id"])
    first = load_dataset(frame)
    shuffled = pd.concat([frame.iloc[::-1], pd.DataFrame({"text": ["a brand new message"], "label": ["cancel_order"],
                                                          "split": ["train"]})], ignore_index=True)
    second = load_dataset(shuffled)
    a = dict(zip(first["text"] + first["split"], first["item_id"]))
    b = dict(zip(second["text"] + second["split"], second["item_id"]))
    # texts that occur once keep their id wherever they move
    unique = [k for k in a if (first["text"] + first["split"]).tolist().count(k) == 1]
    assert unique and all(a[k] == b[k] for k in unique)


def test_normalisation_is_recorded_not_applied():
    frame = pd.DataFrame({"text": ["Cafe\u0301  au\tlait ", "plain"], "label": ["a", "b"]})
    table = load_dataset(frame)
    assert table["text"][0] == "Cafe\u0301  au\tlait "  # shown exactly as given
    info = table.attrs["workbench"]
    assert info["normalization"] == "NFC+whitespace" and info["n_changed_by_normalization"] == 1
    same = load_dataset(pd.DataFrame({"text": ["Caf\u00e9 au lait"], "label": ["a"]}))
    assert same["content_hash"][0] == table["content_hash"][0]
    raw = load_dataset(frame, normalization="none")
    assert raw["content_hash"][0] != table["content_hash"][0]


def test_hf_class_label_names_and_dataset_dict(tmp_path: Path):
    ds = datasets.Dataset.from_dict(
        {"text": ["good", "bad", "fine"], "label": [1, 0, 1]},
        features=datasets.Features({"text": datasets.Value("string"),
                                    "label": datasets.ClassLabel(names=["neg", "pos"])}))
    dd = datasets.DatasetDict({"train": ds, "test": ds.select([0])})
    table = load_dataset(dd)
    assert table["label"].tolist() == ["pos", "neg", "pos", "pos"]
    assert table["split"].tolist() == ["train", "train", "train", "test"]
    assert len(set(table["item_id"])) == 4  # the same text in two splits is two items
    dd.save_to_disk(str(tmp_path / "dd"))
    assert load_dataset(tmp_path / "dd", split="test")["text"].tolist() == ["good"]
    # a single Dataset (or a file) with no split column is taken to be the split asked for
    one = load_dataset(ds, split="validation")
    assert one["split"].tolist() == ["validation"] * 3
    assert not set(one["item_id"]) & set(load_dataset(ds, split="train")["item_id"])


def test_integer_labels_with_names(tmp_path: Path):
    table = load_dataset(pd.DataFrame({"text": ["a", "b"], "label": [0, 1]}), label_names=["neg", "pos"])
    assert table["label"].tolist() == ["neg", "pos"]
    plain = load_dataset(pd.DataFrame({"text": ["a", "b"], "label": [0, 1]}))
    assert plain["label"].tolist() == ["0", "1"]
    # a CSV's cells are text: its "0" / "1" are ids all the same once names are given
    (tmp_path / "glue.csv").write_text("sentence,label\ngreat film,1\ndull,0\n")
    assert load_dataset(tmp_path / "glue.csv", label_names=["neg", "pos"])["label"].tolist() == ["pos", "neg"]
    # pandas writes an integer column with blanks as floats
    (tmp_path / "floats.csv").write_text("text,label\ngreat film,1.0\ndull,0.0\n")
    assert load_dataset(tmp_path / "floats.csv", label_names=["neg", "pos"])["label"].tolist() == ["pos", "neg"]
    with pytest.raises(DataError, match=r"glue.csv: line 2, column 'label': label id 1 has no name: label_names=\.\.\. "
                                        "names the ids 0 to 0"):
        load_dataset(tmp_path / "glue.csv", label_names=["neg"])
    # names for ids that are not there: refused, not ignored
    with pytest.raises(DataError, match=r"column 'label' holds class names \(row 0: 'x'\), not integer ids"):
        load_dataset(pd.DataFrame({"text": ["a", "b"], "label": ["x", "y"]}), label_names=["neg", "pos"])
    tokens = pd.DataFrame({"tokens": [["Ann", "ran"]], "tags": [[1, -1]]})
    with pytest.raises(DataError, match="tag id -1 has no name"):  # was read as the last name, silently
        load_dataset(tokens, label_names=["O", "B-PER"])
    tokens["tags"] = [["B-PER", "O"]]
    with pytest.raises(DataError, match="the tags are names \\('B-PER'\\), not integer ids"):
        load_dataset(tokens, label_names=["O", "B-PER"])


def test_a_parquet_file_written_by_datasets_is_read_with_its_class_names(tmp_path: Path):
    """The Hub's Parquet files and Dataset.to_parquet keep ClassLabel names in the schema metadata."""
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    ds = datasets.Dataset.from_dict({"text": ["good", "bad", "unseen"], "label": [1, 0, -1]}, features=features)
    ds.to_parquet(str(tmp_path / "train.parquet"))
    table = load_dataset(tmp_path / "train.parquet", allow_missing_labels=True)
    assert table["label"].tolist() == ["pos", "neg", None]  # -1 is datasets' "no label", as in a test split
    assert table.attrs["workbench"]["labels"] == ["neg", "pos"]
    tags = datasets.Features({"tokens": datasets.List(datasets.Value("string")),
                              "ner_tags": datasets.List(datasets.ClassLabel(names=["O", "B-PER", "I-PER"]))})
    datasets.Dataset.from_dict({"tokens": [["Ann", "Lee", "ran"]], "ner_tags": [[1, 2, 0]]},
                               features=tags).to_parquet(str(tmp_path / "ner.parquet"))
    assert load_dataset(tmp_path / "ner.parquet")["tags"].tolist() == [["B-PER", "I-PER", "O"]]
    # an id past the declared names is named, not a crash
    frame = pa.table({"text": ["a"], "label": [5]}).replace_schema_metadata(
        {"huggingface": json.dumps({"info": {"features": {"label": {"_type": "ClassLabel", "names": ["x", "y"]}}}})})
    pq.write_table(frame, tmp_path / "odd.parquet")
    with pytest.raises(DataError, match=r"odd.parquet: row 0, column 'label': class id 5 is outside the 2 ClassLabel"):
        load_dataset(tmp_path / "odd.parquet")
    # metadata that does not parse only names nothing
    pq.write_table(pa.table({"text": ["a"], "label": [1]}).replace_schema_metadata({"huggingface": "{not json"}),
                   tmp_path / "plain.parquet")
    assert load_dataset(tmp_path / "plain.parquet")["label"].tolist() == ["1"]


def test_repair_bio_and_missing_labels():
    frame = pd.DataFrame({"tokens": [["in", "New", "York"]], "tags": [["O", "I-LOC", "I-LOC"]]})
    table = load_dataset(frame, task="token-classification", repair_bio=True)
    assert list(table["tags"][0]) == ["O", "B-LOC", "I-LOC"]
    pool = load_dataset(pd.DataFrame({"text": ["a", "b"], "label": ["x", None]}), allow_missing_labels=True)
    assert pool["label"].tolist()[1] is None
    # a pool with no labels yet, in a column or with no label column at all: the classes must be named
    with pytest.raises(DataError, match="column 'label' holds no labels at all; .+ name the classes: labels="):
        load_dataset(pd.DataFrame({"text": ["a", "b"], "label": [None, None]}), allow_missing_labels=True)
    with pytest.raises(DataError, match=r"it has no label column; .+ --labels A B C; .+ LABELS parameter"):
        load_dataset(pd.DataFrame({"text": ["a", "b"]}), allow_missing_labels=True)
    texts = load_dataset(pd.DataFrame({"text": ["a", "b"]}), allow_missing_labels=True, labels=["x", "y"])
    assert texts["label"].tolist() == [None, None] and texts.attrs["workbench"]["labels"] == ["x", "y"]


def test_sentences_without_a_tags_column_are_read_when_the_tags_are_named():
    """Sentences to tag with a trained model: no tags column at all, the tag set given."""
    frame = pd.DataFrame({"tokens": [["Paris", "is", "nice"], ["John"]]})
    table = load_dataset(frame, task="token-classification", allow_missing_labels=True, labels=["O", "B-LOC", "I-LOC"])
    assert table["tags"].tolist() == [None, None] and table.attrs["workbench"]["labels"] == ["O", "B-LOC", "I-LOC"]
    # entity types name the same tag set
    types = load_dataset(frame, task="token-classification", allow_missing_labels=True, labels=["LOC"])
    assert types.attrs["workbench"]["labels"] == ["O", "B-LOC", "I-LOC"]
    with pytest.raises(DataError, match="holds no tags at all; to start from untagged sentences, name the entity typ"):
        load_dataset(frame, task="token-classification", allow_missing_labels=True)
    with pytest.raises(DataError, match=r"has no tags column \(looked for \['tags', 'ner_tags', 'labels'\]\)"):
        load_dataset(frame, task="token-classification")


def test_a_conll_file_of_words_alone_is_sentences_to_tag(tmp_path: Path):
    (tmp_path / "new.conll").write_text("-DOCSTART- O\n\nEU B-ORG\nrejects O\n\nPeter\nBlackburn\n\n")
    table = load_dataset(tmp_path / "new.conll", allow_missing_labels=True)
    assert table["tokens"].tolist() == [["EU", "rejects"], ["Peter", "Blackburn"]]
    assert table["tags"].tolist() == [["B-ORG", "O"], None]


@pytest.mark.parametrize(("name", "payload"), [
    ("excel-unicode.txt.tsv", "text\tlabel\ncafé crème\tpos\nbye\tneg\n".encode("utf-16")),  # Excel "Unicode text"
    ("excel-utf8.csv", b"\xef\xbb\xbf" + "text,label\ncafé crème,pos\nbye,neg\n".encode()),  # Excel "CSV UTF-8"
    ("marked.jsonl", b"\xef\xbb\xbf" + '{"text": "café crème", "label": "pos"}\n{"text": "bye", "label": "neg"}\n'
     .encode()),
    ("semicolons.csv", "text;label\ncafé crème;pos\nbye;neg\n".encode()),  # Excel's CSV where ',' is the decimal mark
    ("tabs.csv", "text\tlabel\ncafé crème\tpos\nbye\tneg\n".encode()),
    ("pipes.csv", "text|label\ncafé crème|pos\nbye|neg\n".encode()),
    ("commas.tsv", "text,label\ncafé crème,pos\nbye,neg\n".encode()),
])
def test_files_as_spreadsheets_write_them_read_the_same(name: str, payload: bytes, tmp_path: Path):
    """A byte-order mark picks the codec and a one-column header holding another separator picks that one."""
    path = tmp_path / name
    path.write_bytes(payload)
    table = load_dataset(path)
    assert table["text"].tolist() == ["café crème", "bye"]
    assert table["label"].tolist() == ["pos", "neg"]


def test_a_separator_inside_a_quoted_text_is_not_taken_for_one(tmp_path: Path):
    path = tmp_path / "one.csv"
    path.write_text('text\n"a; b"\n"c; d"\n', encoding="utf-8")
    with pytest.raises(Exception, match="no label column"):
        load_dataset(path)
    path.write_text('text,label\n"a; b",x\n"c; d",y\n', encoding="utf-8")
    assert load_dataset(path)["text"].tolist() == ["a; b", "c; d"]


def test_a_home_relative_path_means_the_home_folder(tmp_path: Path, monkeypatch):
    """'~/data.csv' in a notebook: export wrote nowhere ('the folder ~ does not exist') and reading failed."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "data.csv").write_text("text,label\nhello,a\nbye,b\n", encoding="utf-8")
    table = load_dataset("~/data.csv")
    with LabelStore.open("~/labels.db") as store:
        store.import_dataset(table)
        written = store.export("~/clean.csv")
    assert (tmp_path / "labels.db").exists() and written[0] == tmp_path / "clean.csv" and written[0].exists()


def test_an_excel_workbook_reads_like_a_csv(tmp_path: Path):
    """The first sheet, every cell as text (a label '007' stays '007'); a file that is not a workbook is named."""
    from workbench.errors import DataFileError

    path = tmp_path / "labels.xlsx"
    pd.DataFrame({"text": ["café crème", "bye"], "label": ["007", "neg"], "votes": [1, 2]}).to_excel(path, index=False)
    table = load_dataset(path)
    assert table["text"].tolist() == ["café crème", "bye"] and table["label"].tolist() == ["007", "neg"]
    assert table["votes"].tolist() == ["1", "2"]
    pd.DataFrame({"text": ["hello", ""], "label": ["a", "b"]}).to_excel(tmp_path / "gap.xlsx", index=False)
    with pytest.raises(DataError, match=r"gap\.xlsx: sheet row 3, column 'text': the text is empty"):
        load_dataset(tmp_path / "gap.xlsx")  # the row number the spreadsheet shows, under its header row
    (tmp_path / "not.xlsx").write_text("not a workbook")
    with pytest.raises(DataFileError, match="not.xlsx: not a readable Excel workbook"):
        load_dataset(tmp_path / "not.xlsx")


def test_a_workbook_with_several_sheets_reads_the_one_asked_for(tmp_path: Path, capsys):
    """A sheet per split (train, test) or a notes sheet beside the data: the first sheet by default, the one the split
    names, or --sheet; the sheets left unread are named, never dropped unsaid."""
    from workbench.cli import main

    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as book:
        pd.DataFrame({"text": ["good", "bad"], "label": ["pos", "neg"]}).to_excel(book, sheet_name="train", index=False)
        pd.DataFrame({"text": ["fine", ""], "label": ["pos", "neg"]}).to_excel(book, sheet_name="test", index=False)
        pd.DataFrame({"note": ["labelled by ana"]}).to_excel(book, sheet_name="notes", index=False)
    first = load_dataset(path)
    assert first["text"].tolist() == ["good", "bad"]
    assert first.attrs["workbench"]["sheet"] == "train"
    assert first.attrs["workbench"]["other_sheets"] == ["test", "notes"]
    test = load_dataset(path, split="test", drop_empty_texts=True)  # the split names its sheet
    assert test["text"].tolist() == ["fine"] and test["split"].tolist() == ["test"]
    assert load_dataset(path, sheet="test", drop_empty_texts=True)["text"].tolist() == ["fine"]
    with pytest.raises(DataError, match=r"book\.xlsx: sheet 'test' row 3, column 'text': the text is empty"):
        load_dataset(path, sheet="test")  # with several sheets, the row is named with its sheet
    with pytest.raises(DataError, match=r"book\.xlsx has no sheet 'dev'; its sheets are \['train', 'test', 'notes'\]"):
        load_dataset(path, sheet="dev")
    db = tmp_path / "labels.db"
    assert main(["import", str(path), str(db)]) == 0
    out = capsys.readouterr().out
    assert "read sheet 'train' of" in out and "it also has 'test', 'notes': --sheet NAME reads another (with " \
        "--split NAME when it holds another split" in out
    assert main(["import", str(path), str(db), "--split", "test", "--drop-empty-texts"]) == 0
    with LabelStore.open(db) as store:
        assert store.count({"split": "test"}) == 1 and store.count({}) == 3
    assert main(["import", str(path), str(db), "--sheet", "nope"]) == 2
    assert "has no sheet 'nope'" in capsys.readouterr().err
    # one sheet: nothing to say
    pd.DataFrame({"text": ["a"], "label": ["x"]}).to_excel(tmp_path / "one.xlsx", index=False)
    assert main(["import", str(tmp_path / "one.xlsx"), str(tmp_path / "one.db")]) == 0
    assert "sheet" not in capsys.readouterr().out


def test_compressed_files_read_like_the_files_inside(tmp_path: Path):
    """'train.jsonl.gz' as the hub and dumps ship it, '.csv.bz2', '.conll.xz', a '.zip' of one file; errors name
    the file the user passed (not a temporary copy), and a damaged or ambiguous archive is told so."""
    import bz2
    import gzip
    import lzma
    import zipfile

    from workbench.errors import DataFileError

    rows = [{"text": "café crème", "label": "pos"}, {"text": "bye", "label": "neg"}]
    jsonl = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    (tmp_path / "train.jsonl.gz").write_bytes(gzip.compress(jsonl))
    (tmp_path / "train.csv.bz2").write_bytes(bz2.compress("text,label\ncafé crème,pos\nbye,neg\n".encode()))
    with zipfile.ZipFile(tmp_path / "export.zip", "w") as archive:
        archive.writestr("__MACOSX/._train.tsv", b"\x00\x05")  # what macOS's Finder adds beside the data
        archive.writestr("data/train.tsv", "text\tlabel\ncafé crème\tpos\nbye\tneg\n")
    for name in ("train.jsonl.gz", "train.csv.bz2", "export.zip"):
        table = load_dataset(tmp_path / name)
        assert table["text"].tolist() == ["café crème", "bye"] and table["label"].tolist() == ["pos", "neg"], name
    (tmp_path / "ner.conll.xz").write_bytes(lzma.compress(b"EU B-ORG\nrejects O\n\nPeter B-PER\n"))
    assert load_dataset(tmp_path / "ner.conll.xz")["tags"].tolist() == [["B-ORG", "O"], ["B-PER"]]

    (tmp_path / "gap.csv.gz").write_bytes(gzip.compress(b"text,label\nhello,a\n,b\n"))
    with pytest.raises(DataError, match=r"gap\.csv\.gz: line 3, column 'text': the text is empty"):
        load_dataset(tmp_path / "gap.csv.gz")
    (tmp_path / "bad.jsonl.gz").write_bytes(gzip.compress(b'{"text": "a", "label": "x"}\n{"text": \n'))
    with pytest.raises(DataFileError, match=r"bad\.jsonl\.gz: line 2 is not valid JSON"):
        load_dataset(tmp_path / "bad.jsonl.gz")
    (tmp_path / "cut.csv.gz").write_bytes(gzip.compress(b"text,label\n" * 200)[:40])
    with pytest.raises(DataFileError, match=r"cut\.csv\.gz: not a readable gzip file .*damaged or cut short"):
        load_dataset(tmp_path / "cut.csv.gz")
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
        archive.writestr("train.csv", "text,label\na,b\n")
        archive.writestr("test.csv", "text,label\na,b\n")
    with pytest.raises(DataFileError, match=r"two\.zip: a \.zip must hold exactly one data file.*2 \['train.csv'"):
        load_dataset(tmp_path / "two.zip")
    (tmp_path / "notes.doc.gz").write_bytes(gzip.compress(b"hello"))
    with pytest.raises(DataFileError, match=r"notes\.doc\.gz holds 'notes\.doc', of unknown file type '\.doc'"):
        load_dataset(tmp_path / "notes.doc.gz")


def test_a_compressed_export_reads_back(tmp_path: Path):
    """'clean.jsonl.gz' as 'train.jsonl.gz' came in; a format that compresses inside itself is told so."""
    from workbench.errors import DataError

    with LabelStore.open(tmp_path / "labels.db") as store:
        store.import_dataset(load_dataset(make_classification_sample(n_items=60, seed=3), id_column="id"))
        first = store.to_pandas()["item_id"][0]
        store.set_label(first, next(lab for lab in store.labels if lab != store.get(first)["label"]), author="ann")
        for name in ("clean.jsonl.gz", "clean.csv.bz2", "clean.tsv.xz"):
            written = store.export(tmp_path / name, keep_original=True)
            assert written == [tmp_path / name, tmp_path / "clean.log.jsonl"]
            back = load_dataset(tmp_path / name, id_column="item_id")
            assert back["item_id"].tolist() == store.to_pandas()["item_id"].tolist(), name
            assert back["label"].tolist() == store.to_pandas()["label"].tolist(), name
            assert (back["original_label"] != back["label"]).sum() == 1, name
        assert not list(tmp_path.glob("*.partial*"))
        with pytest.raises(DataError, match=r"clean\.parquet\.gz: parquet is not compressed as a whole"):
            store.export(tmp_path / "clean.parquet.gz")


def test_a_blank_split_cell_is_no_split(tmp_path: Path):
    """A split column with some cells blank: a DataFrame's None gave every such item the id '' (its import then
    refused: 'item_id '' more than once'), a CSV's empty cell ids like '-e38e...' in a split named ''."""
    path = tmp_path / "some_splits.csv"
    path.write_text("text,label,split\nhello there,a,train\nbye now,b,\nsee you,a, test \nanother one,b,\n")
    frame = pd.DataFrame({"text": ["hello there", "bye now", "see you", "another one"], "label": ["a", "b", "a", "b"],
                          "split": ["train", None, "test", float("nan")]})
    plain = load_dataset(pd.DataFrame({"text": ["bye now"], "label": ["b"]}))["item_id"][0]
    for source in (path, frame):
        table = load_dataset(source)
        assert [None if s is None or s != s else s for s in table["split"]] == ["train", None, "test", None]
        ids = table["item_id"].tolist()
        assert ids[0].startswith("train-") and ids[2].startswith("test-") and ids[1] == plain  # as without splits
        assert len(set(ids)) == 4 and "" not in ids
        with LabelStore.open(tmp_path / f"{type(source).__name__}.db") as store:
            assert store.import_dataset(table)["added"] == 4 and store.splits() == ["test", "train"]


def test_json_of_columns_reads_like_json_of_rows(tmp_path: Path):
    """pandas' DataFrame.to_json() writes columns ({"text": {"0": ...}}), as do hand-made {"text": [...]} files."""
    frame = pd.DataFrame({"text": ["hello", "bye"], "label": ["a", "b"]})
    frame.to_json(tmp_path / "pandas.json")
    (tmp_path / "lists.json").write_text(json.dumps({"text": ["hello", "bye"], "label": ["a", "b"]}))
    for name in ("pandas.json", "lists.json"):
        table = load_dataset(tmp_path / name)
        assert table["text"].tolist() == ["hello", "bye"] and table["label"].tolist() == ["a", "b"]
    (tmp_path / "ragged.json").write_text(json.dumps({"text": ["hello", "bye"], "label": ["a"]}))
    with pytest.raises(Exception, match="different lengths"):
        load_dataset(tmp_path / "ragged.json")


def test_column_names_in_another_case_are_found(tmp_path: Path):
    """A spreadsheet's 'Text' / ' Label ' / 'Split' headers are the columns they name; two such spellings are not
    guessed between, and an explicit name is taken as spelt (with a 'did you mean')."""
    from workbench.errors import ColumnError

    path = tmp_path / "caps.csv"
    path.write_text("Text, Label ,Split,Source\nhello there,greet,train,web\nbye now,farewell,test,app\n")
    table = load_dataset(path)
    assert table["text"].tolist() == ["hello there", "bye now"] and table["label"].tolist() == ["greet", "farewell"]
    assert table["split"].tolist() == ["train", "test"] and table["Source"].tolist() == ["web", "app"]
    assert not {"Text", " Label ", "Split"} & set(table.columns)  # read as the content, not kept as extras
    assert load_dataset(path, split="test")["text"].tolist() == ["bye now"]
    tokens = tmp_path / "tokens.jsonl"
    tokens.write_text('{"Tokens": ["Ana", "left"], "Tags": ["B-PER", "O"]}\n')
    assert load_dataset(tokens)["tags"].tolist() == [["B-PER", "O"]]
    (tmp_path / "two.csv").write_text("text,TEXT,label\na,b,x\n")
    assert load_dataset(tmp_path / "two.csv")["text"].tolist() == ["a"]  # the exact spelling wins
    (tmp_path / "both.csv").write_text("Text,TEXT,label\na,b,x\n")
    with pytest.raises(ColumnError, match="no text column"):
        load_dataset(tmp_path / "both.csv")
    with pytest.raises(ColumnError, match=r"Did you mean label_column=' Label '\?"):
        load_dataset(path, label_column="label")


def test_a_file_without_a_header_is_told_so(tmp_path: Path):
    from workbench.errors import ColumnError

    path = tmp_path / "bare.tsv"
    path.write_text("I want a refund\tbilling\nthe app crashes\tbug\n")
    with pytest.raises(ColumnError, match="the file has no header: add a first line that names the columns"):
        load_dataset(path)


def test_a_semicolon_file_whose_texts_hold_commas_reads_by_its_header(tmp_path: Path):
    """Excel in a locale with a decimal comma writes ';': the separator comes from the header line, before parsing
    (guessed after a parse, such a file failed as 'malformed CSV: Expected 1 fields in line 3, saw 2')."""
    path = tmp_path / "export.csv"
    path.write_text("text;label\nbye;neg\nwell, café crème;pos\n", encoding="utf-8")
    table = load_dataset(path)
    assert table["text"].tolist() == ["bye", "well, café crème"] and table["label"].tolist() == ["neg", "pos"]


@pytest.mark.parametrize(("payload", "expected"), [
    # CoNLL-2003's own columns (token, POS, chunk, tag) and an untagged sentence: tokens and tags
    (b"-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\n",
     {"tokens": [["EU", "rejects"], ["Peter"]], "tags": [["B-ORG", "O"], ["B-PER"]]}),
    # Excel's "Unicode Text" export: a tab-separated table in UTF-16, called .txt
    ("text\tlabel\ncafé crème is good\tpos\nbye now\tneg\n".encode("utf-16"),
     {"text": ["café crème is good", "bye now"], "label": ["pos", "neg"]}),
], ids=["conll-2003-columns", "excel-unicode-text"])
def test_a_txt_file_is_read_as_it_is_laid_out(payload: bytes, expected: dict, tmp_path: Path):
    """Every .txt was read as CoNLL: a table saved as text failed with "tag 'label' is not IOB2"."""
    path = tmp_path / "data.txt"
    path.write_bytes(payload)
    table = load_dataset(path)
    assert {column: table[column].tolist() for column in expected} == expected


def test_a_txt_file_of_one_text_per_line_is_a_pool(tmp_path: Path):
    """Sentences one per line (how a pool of texts is often kept) failed as CoNLL: "token 0 ('How'): tag '?' is not
    IOB2"; they are texts to label, and without labels named the message says how to import them."""
    path = tmp_path / "pool.txt"
    path.write_text("How did serfdom develop in and then leave Russia ?\n\nWhat films featured Popeye Doyle ?\n"
                    "Who wrote it ?\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"pool.txt was read as one text per line .+ allow_missing_labels=True, with "
                                        r"the classes named by labels="):
        load_dataset(path)
    table = load_dataset(path, allow_missing_labels=True, labels=["DESC", "HUM"])
    assert table["text"].tolist() == ["How did serfdom develop in and then leave Russia ?",
                                      "What films featured Popeye Doyle ?", "Who wrote it ?"]
    assert table["label"].tolist() == [None, None, None]


@pytest.mark.parametrize(("given", "expected"), [
    (["S-ORG", "O", "B-PER", "I-PER", "E-PER", "S-PER"], ["B-ORG", "O", "B-PER", "I-PER", "I-PER", "B-PER"]),  # BIOES
    (["U-ORG", "O", "B-PER", "L-PER"], ["B-ORG", "O", "B-PER", "I-PER"]),  # BILOU
    (["B-LOC", "I-LOC", "O", "B-LOC"], ["B-LOC", "I-LOC", "O", "B-LOC"]),  # IOB2 stays as it is
])
def test_bioes_and_bilou_tags_are_read_as_iob2(given: list[str], expected: list[str]):
    """spaCy and flair write BILOU / BIOES; each failed on its first S- or U- tag ("is not IOB2")."""
    frame = pd.DataFrame({"tokens": [[f"w{i}" for i in range(len(given))]], "tags": [given]})
    table = load_dataset(frame)
    assert list(table["tags"][0]) == expected
    assert table.attrs["workbench"]["n_tags_rewritten"] == sum(a != b for a, b in zip(given, expected))
    assert (reading_notes(table) == []) == (given == expected)


def test_io_tags_are_read_when_asked_and_named_when_not(tmp_path: Path):
    """Entity types alone (IO tags): each run of one type is one entity, with tag_scheme='io'; without it the error
    says so (it said only "tag 'ORG' is not IOB2")."""
    path = tmp_path / "io.conll"
    path.write_text("EU ORG\nrejects O\nPeter PER\nBlackburn PER\nLondon LOC\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"token 0 \('EU'\): tag 'ORG' is not IOB2.+IO tags\), pass tag_scheme='io'"):
        load_dataset(path)
    table = load_dataset(path, tag_scheme="io")
    assert list(table["tags"][0]) == ["B-ORG", "O", "B-PER", "I-PER", "B-LOC"]
    assert "read the tags as IO tags" in reading_notes(table)[0]
    with pytest.raises(DataError, match="unknown tag_scheme 'bioes'; use one of"):
        load_dataset(path, tag_scheme="bioes")
    # a BIOES entity that ends without a start is still an error, at its token
    frame = pd.DataFrame({"tokens": [["a", "b"]], "tags": [["O", "E-PER"]]})
    with pytest.raises(DataError, match=r"token 1 \('b'\): 'I-PER' follows 'O'; .+ \(given as 'E-PER'\)"):
        load_dataset(frame)


@pytest.mark.parametrize(("name", "payload"), [
    # Universal NER's layout: comments, an ID column, the tag third, two more columns; a multi-word token's range
    ("en_ewt-ud-train.iob2", "# sent_id = 1\n# text = What if Google Morphed?\n1\tWhat\tO\t-\t-\n2\tif\tO\t-\t-\n"
     "3\tGoogle\tB-ORG\t-\t-\n4-5\tMorphed?\t_\t-\t-\n4\tMorphed\tO\t-\t-\n5\t?\tO\t-\t-\n\n# sent_id = 2\n"
     "1\tParis\tB-LOC\t-\t-\n"),
    # CoNLL-U with the tag in the last column
    ("ner.conllu", "# sent_id = 1\n1\tWhat\twhat\tPRON\tWP\t_\t0\troot\t_\tO\n2\tif\tif\tSCONJ\tIN\t_\t1\tmark\t_\tO\n"
     "3\tGoogle\tGoogle\tPROPN\tNNP\t_\t4\tnsubj\t_\tB-ORG\n4\tMorphed\tmorph\tVERB\tVBD\t_\t1\tadvcl\t_\tO\n"
     "5\t?\t?\tPUNCT\t.\t_\t1\tpunct\t_\tO\n\n1\tParis\tParis\tPROPN\tNNP\t_\t0\troot\t_\tB-LOC\n"),
])
def test_conllu_files_read_their_form_and_tag_columns(name: str, payload: str, tmp_path: Path):
    """Read as plain CoNLL, a CoNLL-U file gave the token '#' and the tag '1' (its first comment line)."""
    path = tmp_path / name
    path.write_text(payload, encoding="utf-8")
    table = load_dataset(path)
    assert table["tokens"].map(list).tolist() == [["What", "if", "Google", "Morphed", "?"], ["Paris"]]
    assert table["tags"].map(list).tolist() == [["O", "O", "B-ORG", "O", "O"], ["B-LOC"]]
