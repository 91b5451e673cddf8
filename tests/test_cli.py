"""The workbench command: each sub-command works, explains itself, and reports user errors in one line."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from workbench import LabelStore, load_dataset
from workbench.cli import main
from workbench.launch import load_run
from workbench.runs import open_run
from workbench.sample import make_classification_sample, make_ner_sample

SCRIPT = Path(sys.executable).parent / "workbench"  # the console script of this interpreter's environment


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True)


COMMANDS = ["import", "export", "info", "history", "sample", "scan", "check-regression", "run-notebook", "merge-labels",
            "train", "runs", "cancel", "resume", "logs", "predict", "report", "undo"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_explains_each_command(command):
    out = _run(command, "--help")
    assert out.returncode == 0
    assert "Example" in out.stdout or "Write" in out.stdout
    assert "usage: workbench " + command in out.stdout


def test_console_script_is_installed():
    assert SCRIPT.exists(), f"the 'workbench' console script is missing from {SCRIPT.parent}: pip install -e ."


def test_sample_import_history_export(tmp_path: Path, capsys):
    assert main(["sample", "--out", str(tmp_path / "data")]) == 0
    data = tmp_path / "data" / "support_messages.parquet"
    db = tmp_path / "labels.db"
    assert main(["import", str(data), "--store", str(db), "--id-column", "id"]) == 0
    assert "3000 added" in capsys.readouterr().out
    with LabelStore.open(db) as store:
        store.set_label("msg-00001", "invoice_request", author="ann", note="checked")
    assert main(["history", str(db)]) == 0
    out = capsys.readouterr().out
    assert "msg-00001" in out and "invoice_request" in out and "ann" in out
    assert main(["export", str(db), str(tmp_path / "clean.csv"), "--keep-original"]) == 0
    paths = capsys.readouterr().out.split()
    frame = pd.read_csv(paths[0])
    assert frame.set_index("item_id").loc["msg-00001", "label"] == "invoice_request"
    assert "original_label" in frame.columns
    log = [json.loads(line) for line in Path(paths[1]).read_text().splitlines()]
    assert len(log) == 1 and log[0]["note"] == "checked"
    # importing again changes nothing
    assert main(["import", str(data), "--store", str(db), "--id-column", "id"]) == 0
    assert "0 added, 3000 unchanged" in capsys.readouterr().out


def test_export_to_standard_output_and_to_txt(tmp_path: Path):
    """``-`` streams the data with no log (``/dev/stdout`` wrote its log to ``/dev/stdout.log.jsonl``); a ``.txt``
    is written in the layout a ``.txt`` is read in (it needed --format)."""
    stored = {}
    for name, sample in (("cls.db", make_classification_sample(n_items=30, seed=0)),
                         ("ner.db", make_ner_sample(n_sentences=30, seed=0))):
        with LabelStore.open(tmp_path / name) as store:
            store.import_dataset(load_dataset(sample))
            stored[name] = store.to_pandas()
    out = _run("export", str(tmp_path / "cls.db"), "-", "--format", "csv")
    assert out.returncode == 0, out.stderr
    assert pd.read_csv(io.StringIO(out.stdout))["label"].tolist() == stored["cls.db"]["label"].tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cls.db", "ner.db"]  # nothing beside: no log, no "-"
    refused = _run("export", str(tmp_path / "cls.db"), "-")
    assert refused.returncode == 2 and "pass --format" in refused.stderr
    assert main(["export", str(tmp_path / "cls.db"), str(tmp_path / "cls.txt")]) == 0
    assert load_dataset(tmp_path / "cls.txt")["label"].tolist() == stored["cls.db"]["label"].tolist()
    assert main(["export", str(tmp_path / "ner.db"), str(tmp_path / "ner.txt")]) == 0
    assert (load_dataset(tmp_path / "ner.txt")["tags"].map(list).tolist()
            == stored["ner.db"]["tags"].map(list).tolist())


def test_user_error_is_one_line_and_exit_2(tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text("body,intent\nhello,x\n")
    out = _run("import", str(bad), "--store", str(tmp_path / "s.db"))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert "bad.csv" in out.stderr and "'body'" in out.stderr


@pytest.mark.parametrize("command", [["scan"], ["history"], ["export", "{out}"], ["agreement"]])
def test_commands_that_read_a_store_refuse_a_missing_one(tmp_path: Path, command, capsys):
    missing = tmp_path / "typo.db"
    args = [command[0], str(missing), *[c.format(out=tmp_path / "out.csv") for c in command[1:]]]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"there is no store at {missing}" in err and "workbench import" in err
    assert not missing.exists() and not (tmp_path / "out.csv").exists()  # no empty store left behind


def test_scan_of_a_missing_dataset_file_names_it(tmp_path: Path, capsys):
    assert main(["scan", str(tmp_path / "train.csv")]) == 2
    assert "train.csv" in capsys.readouterr().err
    assert not (tmp_path / "train.csv").exists()
    # with --store: the data is read first, so a bad file leaves no new store behind
    assert main(["scan", str(tmp_path / "train.csv"), "--store", str(tmp_path / "s.db")]) == 2
    assert "train.csv" in capsys.readouterr().err and not (tmp_path / "s.db").exists()


def test_is_store_tells_stores_from_dataset_files(tmp_path: Path):
    from workbench.store import is_store

    db = tmp_path / "labels.sqlite"
    LabelStore.open(db).close()
    renamed = tmp_path / "labels.data"  # a store under an odd name is still read by its header
    renamed.write_bytes(db.read_bytes())
    csv = tmp_path / "train.csv"
    csv.write_text("text,label\nhi,a\n")
    empty = tmp_path / "new.db"
    empty.touch()
    folder = tmp_path / "hf_dataset"
    folder.mkdir()
    assert is_store(db) and is_store(renamed) and is_store(empty) and is_store(tmp_path / "not_yet.db")
    assert is_store("postgresql://me@host/labels")
    assert not is_store(csv) and not is_store(folder) and not is_store(tmp_path / "not_yet.csv")


def test_open_without_create_refuses_a_missing_file(tmp_path: Path):
    from workbench.errors import StoreNotFoundError

    with pytest.raises(StoreNotFoundError, match="no store at"):
        LabelStore.open(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()
    LabelStore.open(tmp_path / "made.db").close()
    LabelStore.open(tmp_path / "made.db", create=False).close()


def test_errors_name_the_command_s_flags_not_python_keywords(tmp_path: Path, capsys):
    from workbench.cli import as_flags

    data = tmp_path / "d.csv"
    data.write_text("body,label\nhello,a\nworld,\n")
    assert main(["import", str(data), "--store", str(tmp_path / "s.db")]) == 2
    err = capsys.readouterr().err
    assert "--text-column ..." in err and "text_column=" not in err
    assert main(["import", str(data), "--store", str(tmp_path / "s.db"), "--text-column", "body"]) == 2
    err = capsys.readouterr().err
    assert "line 3" in err and "--allow-missing-labels" in err and "allow_missing_labels=True" not in err
    # a keyword this command has no flag for stays as it is
    assert as_flags("pass label_names=... for integer ids", ["text_column"]) == "pass label_names=... for integer ids"
    assert as_flags("pass format= one of", ["format"]) == "pass --format one of"
    assert as_flags("pass encoding='cp1252' or encoding='latin-1'", ["encoding"]) == (
        "pass --encoding cp1252 or --encoding latin-1")
    assert as_flags("no column (named by label_column='my label')", ["label_column"]) == (
        "no column (named by --label-column 'my label')")  # one shell word, as it would be typed
    assert main(["import", str(data), "--store", str(tmp_path / "s.db"), "--text-column", "Body"]) == 2
    err = capsys.readouterr().err
    assert "named by --text-column Body" in err and "Did you mean --text-column body" in err
    # "--label" for the column: argparse's prefix match called it ambiguous (--label-column or --labels)
    data.write_text("body,intent\nhello,a\nworld,b\n")
    assert main(["import", str(data), str(tmp_path / "t.db"), "--text", "body", "--label", "intent"]) == 0
    assert "2 items" in capsys.readouterr().out


def test_a_reviewed_queue_comes_back_with_import_update(tmp_path: Path, capsys):
    # the notebooks write review_queue.csv; a reviewer fills in a label column for the rows they reached
    frame = make_classification_sample(n_items=60, seed=2)
    db = tmp_path / "labels.db"
    frame.to_csv(tmp_path / "train.csv", index=False)
    assert main(["import", str(tmp_path / "train.csv"), "--store", str(db), "--id-column", "id"]) == 0
    queue = frame[["id", "text", "label"]].head(5).rename(columns={"id": "item_id", "label": "given_label"})
    fixed = next(lab for lab in sorted(frame["label"].unique()) if lab != queue["given_label"].iloc[0])
    queue["label"] = [fixed, "", "", "biling", ""]
    queue.to_csv(tmp_path / "review_queue.csv", index=False)
    capsys.readouterr()
    assert main(["import", str(tmp_path / "review_queue.csv"), "--store", str(db), "--id-column", "item_id",
                 "--on-conflict", "update", "--allow-missing-labels", "--author", "alice"]) == 0
    out = capsys.readouterr().out
    assert "0 added, 3 unchanged, 2 updated" in out
    assert "new label(s) added to the store: 'biling'. If one is a misspelling" in out
    assert f"workbench merge-labels {db} 'biling' --into RIGHT_NAME" in out
    with LabelStore.open(db) as store:
        assert store.get(queue["item_id"].iloc[0])["label"] == fixed
        assert store.get(queue["item_id"].iloc[1])["label"] == queue["given_label"].iloc[1]  # blank: kept
        assert store.history()["author"].tolist() == ["alice", "alice"]

def test_import_takes_the_store_as_its_second_word_like_every_other_command(tmp_path: Path, capsys):
    make_classification_sample(n_items=20, seed=1).to_csv(tmp_path / "train.csv", index=False)
    assert main(["import", str(tmp_path / "train.csv"), str(tmp_path / "a.db"), "--id-column", "id"]) == 0
    assert "20 added" in capsys.readouterr().out
    assert main(["import", str(tmp_path / "train.csv")]) == 2
    assert "which store? workbench import" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "train.csv"), str(tmp_path / "a.db"), "--store", str(tmp_path / "b.db")]) == 2
    assert "two stores given" in capsys.readouterr().err and not (tmp_path / "b.db").exists()
    # `--labels a b store.db`: argparse gives the store to --labels; the refusal says so (and nothing is created)
    assert main(["import", str(tmp_path / "train.csv"), "--allow-missing-labels", "--labels", "a", "b",
                 str(tmp_path / "c.db")]) == 2
    assert "'c.db' was read as the last of --labels" in capsys.readouterr().err.replace(str(tmp_path) + "/", "")
    assert not (tmp_path / "c.db").exists()


def test_integer_class_ids_are_named_with_label_names(tmp_path: Path, capsys):
    (tmp_path / "glue.csv").write_text("sentence,label\ngreat film,1\ndull,0\nfine,1\n")
    assert main(["import", str(tmp_path / "glue.csv"), str(tmp_path / "ids.db")]) == 0
    out = capsys.readouterr().out
    assert "the classes are integer ids (0, 1). If they stand for names, import into a new store with --label-names" \
        in out and "--label-names NAME0 NAME1" in out
    assert main(["import", str(tmp_path / "glue.csv"), str(tmp_path / "named.db"), "--label-names", "neg", "pos"]) == 0
    assert "integer ids" not in capsys.readouterr().out
    with LabelStore.open(tmp_path / "named.db") as store:
        assert store.labels == ["neg", "pos"] and store.count({"label": "pos"}) == 2
    # the store after the names is read as one more name: said, and nothing is created
    assert main(["import", str(tmp_path / "glue.csv"), "--label-names", "neg", "pos", str(tmp_path / "x.db")]) == 2
    assert "'x.db' was read as the last of --label-names" in capsys.readouterr().err.replace(str(tmp_path) + "/", "")
    assert not (tmp_path / "x.db").exists()
    assert main(["import", str(tmp_path / "glue.csv"), str(tmp_path / "x.db"), "--label-names", "neg"]) == 2
    assert "label id 1 has no name: --label-names ... names the ids 0 to 0" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()
    # ids into a store whose classes are names: refused, nothing imported; named, or declared as classes, taken
    (tmp_path / "test.csv").write_text("sentence,label\nawful,0\nsuperb,1\n")
    assert main(["import", str(tmp_path / "test.csv"), str(tmp_path / "named.db"), "--split", "test"]) == 2
    assert ("test.csv: its labels ('0', '1') look like integer class ids, and none is one of the store's classes "
            "('neg', 'pos'): name them with --label-names ..., id 0 first, or, if they are classes of their own, "
            "declare them with --labels ...; nothing was imported") in capsys.readouterr().err
    with LabelStore.open(tmp_path / "named.db") as store:
        assert len(store) == 3 and store.labels == ["neg", "pos"]
    assert main(["import", str(tmp_path / "test.csv"), str(tmp_path / "named.db"), "--split", "test",
                 "--label-names", "neg", "pos"]) == 0
    with LabelStore.open(tmp_path / "named.db") as store:
        assert store.count({"split": "test", "label": "neg"}) == 1 and store.labels == ["neg", "pos"]
    (tmp_path / "more.csv").write_text("sentence,label\nmeh,2\n")
    assert main(["import", str(tmp_path / "more.csv"), str(tmp_path / "named.db"), "--labels", "2"]) == 0
    assert "new label(s) added to the store: '2'" in capsys.readouterr().out


def test_a_split_s_own_file_keeps_its_rows_that_also_occur_in_train(tmp_path: Path, capsys):
    # train.csv and dev.csv as separate files, one dev text also in train (CoNLL's "LONDON 1996-08-30" lines)
    frame = make_classification_sample(n_items=40, seed=4)[["text", "label"]]
    train, dev = frame.head(30), pd.concat([frame.iloc[[3]], frame.tail(10)])
    train.to_csv(tmp_path / "train.csv", index=False)
    dev.to_csv(tmp_path / "dev.csv", index=False)
    db, db2 = tmp_path / "labels.db", tmp_path / "plain.db"
    assert main(["import", str(tmp_path / "train.csv"), "--store", str(db), "--split", "train"]) == 0
    assert main(["import", str(tmp_path / "dev.csv"), "--store", str(db), "--split", "validation"]) == 0
    out = capsys.readouterr().out
    assert "11 added, 0 unchanged" in out and "same content" not in out
    with LabelStore.open(db) as store:
        assert store.page(0, 100)["split"].value_counts().to_dict() == {"train": 30, "validation": 11}
        assert store.splits() == ["train", "validation"]
    # and back to a file of its own
    assert main(["export", str(db), str(tmp_path / "dev_clean.csv"), "--split", "validation", "--no-log"]) == 0
    assert pd.read_csv(tmp_path / "dev_clean.csv")["text"].tolist() == dev["text"].tolist()
    assert main(["export", str(db), str(tmp_path / "x.csv"), "--split", "dev"]) == 2
    assert "no items in split 'dev'; its splits are ['train', 'validation']" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()
    # without --split the shared row is the stored train item, and the import says so and what to do
    assert main(["import", str(tmp_path / "train.csv"), "--store", str(db2)]) == 0
    assert main(["import", str(tmp_path / "dev.csv"), "--store", str(db2)]) == 0
    out = capsys.readouterr().out
    assert "10 added, 1 unchanged" in out
    assert f"1 row(s) of {tmp_path / 'dev.csv'} have the same content as items already in the store" in out
    assert "import it with --split NAME" in out
    # a file with a split column: --split keeps that split's rows, and a split it lacks is named
    frame.assign(split=["train"] * 30 + ["test"] * 10).to_csv(tmp_path / "both.csv", index=False)
    assert main(["import", str(tmp_path / "both.csv"), "--store", str(tmp_path / "t.db"), "--split", "test"]) == 0
    assert "10 added" in capsys.readouterr().out
    assert main(["import", str(tmp_path / "both.csv"), "--store", str(tmp_path / "t.db"), "--split", "dev"]) == 2
    assert "no rows have split == 'dev'; its splits are ['test', 'train']" in capsys.readouterr().err


def test_an_update_over_a_correction_says_so_and_undo_takes_it_back(tmp_path: Path, capsys):
    db = tmp_path / "labels.db"
    frame = make_classification_sample(n_items=30, seed=4)
    frame.to_csv(tmp_path / "v1.csv", index=False)
    assert main(["import", str(tmp_path / "v1.csv"), "--store", str(db), "--id-column", "id"]) == 0
    first = frame["label"][0]
    mine, theirs = [lab for lab in sorted(set(frame["label"])) if lab != first][:2]
    with LabelStore.open(db) as store:
        store.set_label(frame["id"][0], mine, author="ana")
    frame.loc[0, "label"] = theirs  # relabelled upstream as well
    frame.to_csv(tmp_path / "v2.csv", index=False)
    capsys.readouterr()
    assert main(["import", str(tmp_path / "v2.csv"), "--store", str(db), "--id-column", "id",
                 "--on-conflict", "update", "--author", "sync"]) == 0
    out = capsys.readouterr().out
    assert "1 updated" in out and "1 of the updated items had a label corrected in this store" in out
    assert f"workbench undo {db} --author sync" in out
    assert main(["undo", str(db), "--author", "sync"]) == 0
    with LabelStore.open(db) as store:
        assert store.get(frame["id"][0])["label"] == mine


def test_import_names_a_class_spelled_two_ways_and_a_re_import_keeps_the_merge(tmp_path: Path, capsys):
    """Said at import, before a scan or a fine-tune splits the class in two; once merged, importing the same file
    again (or a grown copy) must not bring the rarer spelling back into the label set."""
    db, data = tmp_path / "labels.db", tmp_path / "tickets.csv"
    data.write_text("id,text,label\n1,charged twice,Billing\n2,cannot log in,account\n3,refund please,billing \n"
                    "4,where is my invoice,Billing\n5,app crashes,bug\n")
    assert main(["import", str(data), "--store", str(db), "--id-column", "id"]) == 0
    out = capsys.readouterr().out
    assert "look like another class spelled another way: 'billing ' (1 item) -> 'Billing' (2)" in out
    assert f"workbench merge-labels {db} 'billing ' --into 'Billing'" in out
    assert main(["merge-labels", str(db), "billing ", "--into", "Billing"]) == 0
    assert main(["import", str(data), "--store", str(db), "--id-column", "id"]) == 0
    out = capsys.readouterr().out
    assert "0 added, 5 unchanged" in out and "3 labels" in out and "spelled another way" not in out
    with LabelStore.open(db) as store:
        assert store.labels == ["Billing", "account", "bug"]


def test_merge_labels_then_undo_from_the_shell(tmp_path: Path, capsys):
    db = tmp_path / "labels.db"
    frame = make_classification_sample(n_items=40, seed=3)
    frame.loc[:4, "label"] = "Refund"  # the same class typed another way
    frame.to_csv(tmp_path / "train.csv", index=False)
    assert main(["import", str(tmp_path / "train.csv"), "--store", str(db), "--id-column", "id"]) == 0
    assert main(["undo", str(db), "--author", "ana"]) == 2  # nothing yet: the import only added items
    assert "'ana' has nothing left to undo" in capsys.readouterr().err
    assert main(["merge-labels", str(db), "Refund", "--into", "refund_request", "--author", "ana"]) == 0
    out = capsys.readouterr().out
    assert "relabelled 5 item(s) as 'refund_request'" in out and f"(undo: workbench undo {db} --author ana)" in out
    assert main(["undo", str(db), "--author", "bob"]) == 2
    assert "other authors with changes: ana (give --author NAME)" in capsys.readouterr().err
    assert main(["undo", str(db), "--author", "ana"]) == 0
    out = capsys.readouterr().out
    assert "undid the latest action by 'ana' (5 change(s))" in out and "time (UTC)" in out
    with LabelStore.open(db) as store:
        assert store.get("msg-00000")["label"] == "Refund" and "Refund" in store.labels
    assert main(["history", str(db), "--item", "msg-00000"]) == 0
    assert capsys.readouterr().out.count("msg-00000") == 2  # the merge and its undo
    assert main(["history", str(db), "--item", "msg-0"]) == 2  # a mistyped id, not "no changes logged"
    assert "no item with id 'msg-0'" in capsys.readouterr().err

def test_scan_reads_a_file_with_the_import_s_options(tmp_path: Path, capsys):
    """`scan FILE` takes the same reading options as `import`, and its errors name them as flags."""
    data = tmp_path / "d.csv"
    rows = make_classification_sample(n_items=200, seed=0)
    frame = pd.DataFrame({"text": rows["text"], "label": rows["label"]})
    frame.loc[3, "text"] = ""
    frame.loc[5, "label"] = ""
    frame.to_csv(data, index=False, encoding="cp1252")
    data.write_bytes(data.read_bytes().replace(b"help", b"h\xe9lp"))  # a byte that is not UTF-8
    assert main(["scan", str(data), "--no-progress"]) == 2
    assert "--encoding cp1252" in capsys.readouterr().err
    assert main(["scan", str(data), "--no-progress", "--encoding", "cp1252"]) == 2
    assert "line 5" in (err := capsys.readouterr().err) and "--drop-empty-texts" in err
    assert main(["scan", str(data), "--no-progress", "--encoding", "cp1252", "--drop-empty-texts"]) == 2
    assert "line 7" in (err := capsys.readouterr().err) and "--allow-missing-labels" in err
    assert main(["scan", str(data), "--no-progress", "--encoding", "cp1252", "--drop-empty-texts",
                 "--allow-missing-labels"]) == 0
    assert "items 199 (labelled 198)" in capsys.readouterr().out


def test_scan_checks_its_outputs_before_scanning(tmp_path: Path, capsys, monkeypatch):
    import workbench.scan

    def must_not_run(*args, **kwargs):
        raise AssertionError("scanned before checking the outputs")

    monkeypatch.setattr(workbench.scan, "scan", must_not_run)
    data = tmp_path / "d.csv"
    data.write_text("text,label\nhi,a\nho,b\n")
    for flags, says in [(["--items", str(tmp_path / "nodir" / "x.csv")], "the folder"),
                        (["--items", str(tmp_path / "x.xlsx")], "unknown file type '.xlsx'"),
                        (["--json", str(tmp_path)], "is a folder")]:
        assert main(["scan", str(data), *flags]) == 2
        assert says in capsys.readouterr().err


def test_a_path_the_system_refuses_is_one_line_not_a_traceback(tmp_path: Path, capsys, monkeypatch):
    """Permissions cannot be tested by file modes when the tests run as root: the refusal is simulated."""
    import workbench.store

    def refuse(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(workbench.store, "_file_head", refuse)
    locked = tmp_path / "locked.db"
    locked.write_bytes(b"x")
    assert main(["scan", str(locked)]) == 2
    assert capsys.readouterr().err == f"workbench scan: error: {locked}: Permission denied\n"


def test_scan_of_tagged_sentences_trains_fold_taggers(tmp_path: Path, tiny_bert: Path, capsys):
    """`workbench scan` on NER data: the task is read off the file (a tokens column of lists), fold taggers score
    every sentence; a file is scanned in memory, a store gets the scores."""
    from workbench.sample import write_samples

    ner = write_samples(tmp_path / "sample")["ner"]
    items = tmp_path / "sentences.csv"
    assert main(["scan", str(ner), "--model", str(tiny_bert), "--items", str(items), "--no-progress",
                 "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "2 fold taggers" in out and "300 sentences scored" in out and "suspect tags" in out
    assert "span(s) tagged unlike the same words elsewhere" in out  # the consistency check rides along
    written = pd.read_csv(items)
    assert len(written) == 300 and written["suggested_label"].str.split().map(len).ge(1).all()
    assert not (tmp_path / "runs").exists()  # the in-memory scan's runs went with its temporary store
    db = tmp_path / "ner.db"
    assert main(["import", str(ner), "--store", str(db)]) == 0  # --task auto: token classification
    capsys.readouterr()
    assert main(["scan", str(db), "--model", str(tiny_bert), "--folds", "3", "--runs-dir", str(tmp_path / "runs")]) == 0
    out, err = capsys.readouterr()
    assert "3 fold taggers" in out
    # each tagger's training steps have a bar of their own (before: only "fold taggers 0/3", for minutes on a CPU)
    assert "fold taggers" in err and all(re.search(rf"-fold{k}: 100%.+ \d+/\d+ \[", err) for k in range(3)), err
    with LabelStore.open(db) as store:
        scored = store.page(0, 1000)
    assert scored["score"].notna().sum() == 300
    assert len(list((tmp_path / "runs").iterdir())) == 3


def test_a_trained_tagger_scans_the_sentences_it_did_not_train_on(tmp_path: Path, tiny_bert: Path, capsys):
    sample = make_ner_sample(n_sentences=150, seed=4)
    sample["split"] = ["test" if k % 5 == 0 else "validation" if k % 5 == 1 else "train" for k in range(150)]
    sample[["id", "tokens", "tags", "split"]].to_json(tmp_path / "ner.jsonl", orient="records", lines=True)
    db, runs = tmp_path / "ner.db", tmp_path / "runs"
    assert main(["import", str(tmp_path / "ner.jsonl"), "--store", str(db), "--id-column", "id"]) == 0
    assert main(["train", str(db), "--runs-dir", str(runs), "--run-id", "tagger", "--no-progress",
                 *_train_flags(tiny_bert)]) == 0
    capsys.readouterr()
    assert main(["scan", str(db), "--tagger", str(runs / "tagger"), "--no-progress", "--top", "3",
                 "--json", str(tmp_path / "scan.json")]) == 0
    out = capsys.readouterr().out
    assert f"run {runs / 'tagger'} scores the sentences it did not train on" in out and "60 sentences scored" in out
    assert json.loads((tmp_path / "scan.json").read_text())["tagger"] == str(runs / "tagger")
    with LabelStore.open(db) as store:
        table = store.to_pandas()
        scored = store.page(0, 200).set_index("item_id")["score"].notna()
    assert set(scored[scored].index) == set(table.loc[table["split"] != "train", "item_id"])  # test + validation
    # the sentences it trained on, alone in a store: nothing out-of-sample to score
    only_trained = tmp_path / "trained.db"
    sample[sample["split"] == "train"][["id", "tokens", "tags"]].to_json(tmp_path / "train.jsonl", orient="records",
                                                                        lines=True)
    assert main(["import", str(tmp_path / "train.jsonl"), "--store", str(only_trained), "--id-column", "id"]) == 0
    capsys.readouterr()
    text = tmp_path / "texts.csv"
    make_classification_sample(n_items=40).to_csv(text, index=False)
    for argv, message in [
        ([str(only_trained), "--tagger", str(runs / "tagger")], "trained on every sentence of this store"),
        ([str(db), "--tagger", str(runs / "tagger"), "--folds", "3"], "--tagger scores with a trained tagger"),
        ([str(db), "--tagger", str(tmp_path)], "is not a run folder"),
        ([str(text), "--tagger", str(runs / "tagger")], "--tagger scores tagged sentences"),
        ([str(db), "--pred-probs", str(text)], "a tagger's run scores sentences: --tagger RUN"),
    ]:
        assert main(["scan", *argv, "--no-progress"]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)


def test_a_pool_with_no_labels_yet_is_imported_with_its_classes_named(tmp_path: Path, capsys):
    data = tmp_path / "pool.csv"
    data.write_text("text,label\nhello there,\nwhere is my parcel,\n")
    db = tmp_path / "pool.db"
    assert main(["import", str(data), "--store", str(db), "--allow-missing-labels"]) == 2
    assert "--labels ... with --allow-missing-labels" in capsys.readouterr().err
    assert main(["import", str(data), "--store", str(db), "--allow-missing-labels", "--labels", "greet", "track"]) == 0
    with LabelStore.open(db) as store:
        assert store.labels == ["greet", "track"] and store.info().n_items == 2
    data.write_text("text,label\nhello there,greet\nwhere is my parcel,parcel\n")
    assert main(["import", str(data), "--store", str(tmp_path / "other.db"), "--labels", "greet", "track"]) == 2
    assert "'parcel' is not in --labels ['greet', 'track']" in capsys.readouterr().err
    # a pool with a few labels: its classes are what those show, and the import says how to declare the others
    data.write_text("text,label\nhello there,greet\nwhere is my parcel,\nhi,\n")
    few = tmp_path / "few.db"
    assert main(["import", str(data), "--store", str(few), "--allow-missing-labels"]) == 0
    out = capsys.readouterr().out
    assert "2 item(s) without a label (a pool); the store's classes are the 1 its labelled rows show ('greet')" in out
    assert main(["import", str(data), "--store", str(few), "--allow-missing-labels", "--labels", "greet", "track"]) == 0
    assert "without a label" not in capsys.readouterr().out  # the classes are named: nothing to warn about
    with LabelStore.open(few) as store:
        assert store.labels == ["greet", "track"]  # importing again with --labels declared the missing class


def test_scan_takes_zero_for_what_it_says(tmp_path: Path, capsys):
    """--folds 0 was read as 'not given' (5 folds) and --top -3 printed all but three."""
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(20)))
    assert main(["scan", str(data), "--folds", "0"]) == 2
    assert "folds must be at least 2, got 0" in capsys.readouterr().err
    assert main(["scan", str(data), "--top", "-3"]) == 2
    assert "--top -3" in capsys.readouterr().err


def _train_flags(tiny_bert: Path, **fields) -> list[str]:
    base = {"model": str(tiny_bert), "epochs": 1, "max_length": 32, "precision": "fp32", "batch_size": 16, **fields}
    return [f for k, v in base.items() for f in ("--set", f"{k}={v}")]


def test_train_runs_predict_from_the_shell(tmp_path: Path, tiny_bert, capsys):
    frame = make_classification_sample(n_items=240, seed=4).rename(columns={"label": "intent"})
    frame.to_csv(tmp_path / "train.csv", index=False)
    runs = tmp_path / "runs"
    assert main(["train", str(tmp_path / "train.csv"), "--label-column", "intent", "--id-column", "id",
                 "--runs-dir", str(runs), "--run-id", "first", "--no-progress", *_train_flags(tiny_bert)]) == 0
    out = capsys.readouterr().out
    assert f"run {runs / 'first'}" in out and "finished in" in out and "validation_accuracy" in out
    assert re.search(r"test_accuracy \d\.\d{4} \(43 items\)", out)  # the sample's test split, scored too
    # from a store, with the store's snapshot recorded
    db = tmp_path / "labels.db"
    assert main(["import", str(tmp_path / "train.csv"), "--store", str(db), "--label-column", "intent",
                 "--id-column", "id"]) == 0
    assert main(["train", str(db), "--runs-dir", str(runs), "--run-id", "second", "--snapshot", "v1",
                 "--no-progress", *_train_flags(tiny_bert, learning_rate=1e-3)]) == 0
    with LabelStore.open(db) as store:
        assert "v1" in store.snapshots()["name"].tolist()
    assert json.loads((runs / "second" / "config.json").read_text())["learning_rate"] == 1e-3
    capsys.readouterr()
    assert main(["runs", str(runs)]) == 0
    listed = capsys.readouterr().out
    assert "first" in listed and "second" in listed and listed.count("finished") == 2 and listed.count("100%") == 2
    assert main(["runs", "--runs-dir", str(runs)]) == 0  # as train names the folder
    assert capsys.readouterr().out == listed
    # predict: a file without labels (read as a pool of the run's classes), a file with labels, a store
    frame[["text"]].head(30).to_csv(tmp_path / "new.csv", index=False)
    assert main(["predict", str(runs / "first"), str(tmp_path / "new.csv"), "--out", str(tmp_path / "p.csv"),
                 "--no-progress"]) == 0
    predicted = pd.read_csv(tmp_path / "p.csv")
    assert len(predicted) == 30 and predicted["label"].isna().all()
    assert set(predicted["pred"]) <= set(frame["intent"])
    probs = predicted.filter(like="prob_")
    assert probs.shape[1] == frame["intent"].nunique() and ((probs.sum(axis=1) - 1).abs() < 1e-4).all()
    assert main(["predict", str(runs / "first"), str(db), "--out", str(tmp_path / "p.parquet"),
                 "--no-progress"]) == 0
    # the store holds the items the run trained on: they are scored apart from the rest, and they are the ones
    # the worker trained on (the count it wrote)
    out = capsys.readouterr().out
    trained = open_run(runs / "first").trained_item_ids()
    assert len(trained) == open_run(runs / "first").status()["n_train"]
    seen = re.search(r"accuracy against the store's labels: \d\.\d{4} \((\d+) labelled items it trained on\)", out)
    unseen = re.search(r"accuracy against the store's labels: \d\.\d{4} \((\d+) labelled items the run never "
                       r"trained on\)", out)
    assert seen and unseen, out
    assert int(seen[1]) == len(trained) and int(seen[1]) + int(unseen[1]) == 240
    assert len(pd.read_parquet(tmp_path / "p.parquet")) == 240
    # labels the run never learnt: integer ids against its named classes are not scored (every one would count as
    # wrong), and one new class among its own is named
    classes = sorted(frame["intent"].unique())
    ids = frame.head(30).assign(intent=[classes.index(c) for c in frame["intent"].head(30)])
    ids[["text", "intent"]].to_csv(tmp_path / "ids.csv", index=False)
    assert main(["predict", str(runs / "first"), str(tmp_path / "ids.csv"), "--label-column", "intent", "--out",
                 str(tmp_path / "p.csv"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "no score: none of the file's labels ('0', '1'" in out and "read the file with --label-names" in out
    assert "accuracy" not in out
    assert main(["predict", str(runs / "first"), str(tmp_path / "ids.csv"), "--label-column", "intent",
                 "--label-names", *classes, "--out", str(tmp_path / "p.csv"), "--no-progress"]) == 0
    assert "accuracy against the file's labels" in capsys.readouterr().out
    frame.head(30).assign(intent=["brand_new"] + list(frame["intent"].head(29)))[["text", "intent"]].to_csv(
        tmp_path / "new_class.csv", index=False)
    assert main(["predict", str(runs / "first"), str(tmp_path / "new_class.csv"), "--label-column", "intent",
                 "--out", str(tmp_path / "p.csv"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "the file's labels include 1 label(s) the run never learnt ('brand_new'); items with them count as " \
           "wrong" in out and "accuracy against the file's labels" in out


def test_train_and_predict_user_errors_are_one_line(tmp_path: Path, tiny_bert, capsys, monkeypatch):
    db = tmp_path / "labels.db"
    make_classification_sample(n_items=120, seed=1).to_csv(tmp_path / "train.csv", index=False)
    assert main(["import", str(tmp_path / "train.csv"), "--store", str(db), "--id-column", "id"]) == 0
    runs = tmp_path / "runs"
    cases = [
        (["train", str(db), "--set", "epochs"], "--set 'epochs': write FIELD=VALUE"),
        (["train", str(db), "--set", "epoch=2"],
         "unknown FineTuneConfig field(s) ['epoch'] (epoch: did you mean epochs?)"),
        # other tools' names: spelling alone offered lora for lr
        (["train", str(db), "--set", "lr=1e-4", "--set", "num_train_epochs=2"],
         "['lr', 'num_train_epochs'] (lr: did you mean learning_rate?; num_train_epochs: did you mean epochs?)"),
        (["train", str(db), "--set", "epochs=abc"], "FineTuneConfig.epochs='abc'"),
        (["train", str(db), "--runs-dir", str(tmp_path / "train.csv")], "is a file; give a folder"),
        (["runs", str(tmp_path / "nowhere")], "is not a folder of runs"),
        (["runs", str(runs), "--runs-dir", str(tmp_path)], "two runs folders given"),
        (["predict", str(tmp_path), str(db), "--out", str(tmp_path / "p.csv")], "is not a run folder"),
        (["predict", str(tmp_path), str(db), "--out", str(tmp_path / "p.xlsx")], "unknown file type '.xlsx'"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
    # a run that fails exits 1 with its reason; predicting with it is refused
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert main(["train", str(db), "--runs-dir", str(runs), "--run-id", "gpu", "--no-progress",
                 *_train_flags(tiny_bert, device="cuda")]) == 1
    assert "failed: device='cuda' but torch" in capsys.readouterr().err
    assert main(["predict", str(runs / "gpu"), str(db), "--out", str(tmp_path / "p.csv")]) == 2
    assert "is failed, not finished" in capsys.readouterr().err
    assert main(["predict", str(runs / "gpu"), str(db), "--out", str(tmp_path / "p.conll")]) == 2
    assert "CoNLL holds tagged words, and run gpu classifies texts" in capsys.readouterr().err
    assert main(["runs", str(runs)]) == 0
    assert "gpu failed: device='cuda'" in capsys.readouterr().out
    tagger = runs / "tagger"  # a finished tagger run: a store of texts is refused before any model is loaded
    tagger.mkdir()
    (tagger / "config.json").write_text(json.dumps({"task": "token-classification"}))
    (tagger / "status.json").write_text(json.dumps({"state": "finished"}))
    assert main(["predict", str(tagger), str(db), "--out", str(tmp_path / "p.csv")]) == 2
    assert "holds text-classification items; run tagger does token-classification" in capsys.readouterr().err


def test_a_tagger_trained_from_the_shell_tags_new_sentences(tmp_path: Path, tiny_bert, capsys):
    sample = make_ner_sample(n_sentences=120, seed=3)
    sample[["id", "tokens", "tags"]].to_json(tmp_path / "ner.jsonl", orient="records", lines=True)
    runs = tmp_path / "runs"
    assert main(["train", str(tmp_path / "ner.jsonl"), "--id-column", "id", "--runs-dir", str(runs), "--run-id",
                 "tagger", "--no-progress", *_train_flags(tiny_bert)]) == 0
    assert "validation_f1_micro" in capsys.readouterr().out
    # sentences without tags: read with the run's tag set; CSV cells are space-joined words, tags and numbers
    sample[["tokens"]].head(5).to_json(tmp_path / "new.jsonl", orient="records", lines=True)
    assert main(["predict", str(runs / "tagger"), str(tmp_path / "new.jsonl"), "--out", str(tmp_path / "p.csv"),
                 "--no-progress"]) == 0
    assert "against the file's" not in capsys.readouterr().out
    predicted = pd.read_csv(tmp_path / "p.csv")
    assert predicted.columns.tolist() == ["item_id", "tokens", "tags", "pred_tags", "pred_probs"]
    assert predicted["tags"].isna().all()
    for words, tags, probs in zip(predicted["tokens"], predicted["pred_tags"], predicted["pred_probs"]):
        assert len(tags.split()) == len(words.split()) == len(probs.split())
        assert all(0 < float(p) <= 1 for p in probs.split())
    # with tags: the entity F1 against them is printed; Parquet keeps the lists
    assert main(["predict", str(runs / "tagger"), str(tmp_path / "ner.jsonl"), "--id-column", "id", "--out",
                 str(tmp_path / "p.parquet"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    n_train = open_run(runs / "tagger").status()["n_train"]
    assert re.search(rf"entity F1 \(micro\) against the file's tags: \d\.\d{{4}} \({n_train} labelled items it "
                     r"trained on\)", out), out
    assert re.search(rf"against the file's tags: \d\.\d{{4}} \({120 - n_train} labelled items the run never", out)
    tagged = pd.read_parquet(tmp_path / "p.parquet")
    assert tagged["item_id"].tolist() == sample["id"].astype(str).tolist()
    assert all(len(t) == len(p) for t, p in zip(tagged["tokens"], tagged["pred_tags"]))
    # each word's probability is that of the tag written beside it (the decoded one, not always the word's argmax)
    model = load_run(runs / "tagger")
    direct = model.predict(sample["tokens"].map(list).tolist(), progress=False)
    expected = [[round(float(row[model.labels.index(tag)]), 4) for row, tag in zip(probs, tags)]
                for probs, tags in zip(direct["token_probs"], direct["pred_tags"])]
    written = [float(x) for p in tagged["pred_probs"] for x in p]
    assert written == pytest.approx([x for row in expected for x in row], abs=1e-4)
    # CoNLL in and out: words alone in, word + predicted tag out; with the given tags, word + given + predicted
    # (conlleval's layout); the predictions are valid IOB2, so the file reads back
    head = sample.head(4)
    (tmp_path / "words.conll").write_text("".join("".join(w + "\n" for w in words) + "\n" for words in head["tokens"]))
    assert main(["predict", str(runs / "tagger"), str(tmp_path / "words.conll"), "--out",
                 str(tmp_path / "tagged.conll"), "--no-progress"]) == 0
    lines = (tmp_path / "tagged.conll").read_text().split("\n")
    assert lines[:len(head["tokens"].iloc[0])] == [f"{w}\t{t}" for w, t in zip(head["tokens"].iloc[0],
                                                                             tagged["pred_tags"].iloc[0])]
    assert main(["predict", str(runs / "tagger"), str(tmp_path / "ner.jsonl"), "--id-column", "id", "--out",
                 str(tmp_path / "both.conll"), "--no-progress"]) == 0
    first = (tmp_path / "both.conll").read_text().split("\n")[0].split("\t")
    assert first == [sample["tokens"].iloc[0][0], sample["tags"].iloc[0][0], tagged["pred_tags"].iloc[0][0]]
    back = load_dataset(tmp_path / "both.conll")
    assert back["tags"].tolist() == [list(t) for t in tagged["pred_tags"]]
    # texts, not words: cut into words, and the predicted entities also as character offsets into each text
    (tmp_path / "texts.jsonl").write_text('{"text": "Ana  met Bob in Paris."}\n{"text": "Nothing here!"}\n')
    assert main(["predict", str(runs / "tagger"), str(tmp_path / "texts.jsonl"), "--out",
                 str(tmp_path / "spans.jsonl"), "--no-progress"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "spans.jsonl").read_text().splitlines()]
    assert [r["tokens"] for r in rows] == [["Ana", "met", "Bob", "in", "Paris", "."], ["Nothing", "here", "!"]]
    assert [r["text"] for r in rows] == ["Ana  met Bob in Paris.", "Nothing here!"]
    for row in rows:
        assert [s["label"] for s in row["pred_spans"]] == [t[2:] for t in row["pred_tags"] if t.startswith("B-")]
        assert all(row["text"][s["start"]:s["end"]] == s["text"] for s in row["pred_spans"])
    # a text-classification file is not read as sentences
    make_classification_sample(n_items=5).to_csv(tmp_path / "texts.csv", index=False)
    assert main(["predict", str(runs / "tagger"), str(tmp_path / "texts.csv"), "--out", str(tmp_path / "q.csv"),
                 "--no-progress"]) == 2
    assert "has no tokens column" in capsys.readouterr().err


def test_ctrl_c_in_train_cancels_the_run(tmp_path: Path, tiny_bert):
    import signal
    import time

    db = tmp_path / "labels.db"
    make_classification_sample(n_items=240, seed=2).to_csv(tmp_path / "train.csv", index=False)
    assert main(["import", str(tmp_path / "train.csv"), "--store", str(db), "--id-column", "id"]) == 0
    proc = subprocess.Popen([str(SCRIPT), "train", str(db), "--runs-dir", str(tmp_path / "runs"), "--run-id", "long",
                             "--no-progress", *_train_flags(tiny_bert, epochs=200)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    status = tmp_path / "runs" / "long" / "status.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (status.exists() and '"running"' in status.read_text()):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "cancelling the run" in err and json.loads(status.read_text())["state"] == "cancelled"
    assert "continue it from " in err and f"workbench resume {tmp_path / 'runs' / 'long'}" in err


def _wait_for_file(pattern: str, root: Path, says: str, *, timeout: float = 90) -> Path:
    """The first file under ``root`` matching ``pattern`` whose text holds ``says``, waited for."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in root.glob(pattern):
            if says in path.read_text():
                return path
        time.sleep(0.2)
    raise AssertionError(f"no {pattern} under {root} says {says!r} after {timeout} s")


def _gone(pid: int, *, timeout: float = 60) -> bool:
    """Whether process ``pid`` (not this process's child) ends within ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def test_ctrl_c_in_a_finetune_scan_cancels_its_fold_run_and_removes_its_scratch(tmp_path: Path, tiny_bert: Path):
    """The fold fine-tunes run in sessions of their own; before, Ctrl-C stopped the scan with a traceback and left
    the fold's worker training for nobody, its scratch folder (a model per fold) left in the temp folder."""
    import signal

    data = tmp_path / "train.csv"
    make_classification_sample(n_items=120, seed=3).to_csv(data, index=False)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.Popen([str(SCRIPT), "scan", str(data), "--id-column", "id", "--mode", "finetune", "--folds",
                             "2", "--model", str(tiny_bert), "--finetune-set", "epochs=300", "--finetune-set",
                             "max_length=32", "--finetune-set", "precision=fp32", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(scratch)})
    status = _wait_for_file("workbench-oof-*/fold-0-*/status.json", scratch, '"running"')
    pid = json.loads(status.read_text())["pid"]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert "cancelling run fold-0-" in err and err.rstrip().endswith("workbench scan: interrupted"), err
    assert "Traceback" not in err
    assert _gone(pid), "the fold's worker is still training"
    assert not list(scratch.glob("workbench-oof-*")), "the scratch runs were left behind"


def test_a_killed_ner_scan_stops_its_fold_tagger(tmp_path: Path, tiny_bert: Path):
    """A scan killed outright (SIGKILL: no handler runs) still stops the tagger it started: the worker sees the
    process it was started for is gone and ends as cancelled, saying why."""
    import signal

    from workbench.sample import write_samples

    ner = write_samples(tmp_path / "sample")["ner"]
    db, runs = tmp_path / "ner.db", tmp_path / "runs"
    assert main(["import", str(ner), "--store", str(db)]) == 0
    proc = subprocess.Popen([str(SCRIPT), "scan", str(db), "--model", str(tiny_bert), "--runs-dir", str(runs),
                             "--finetune-set", "epochs=2000", "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    status = _wait_for_file("*-fold0/status.json", runs, '"running"')
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    pid = json.loads(status.read_text())["pid"]
    assert _gone(pid), "the tagger's worker is still training"
    ended = json.loads(status.read_text())
    assert ended["state"] == "cancelled" and f"(pid {proc.pid}) has ended" in ended["message"], ended


def test_info_says_what_a_store_holds(tmp_path: Path, capsys):
    from workbench import LabelStore, load_dataset

    db = tmp_path / "labels.db"
    frame = pd.DataFrame({"text": [f"message number {i}" for i in range(40)],
                          "label": [f"class_{i % 20:02d}" if i < 36 else None for i in range(40)],
                          "split": ["train"] * 30 + ["test"] * 6 + [None] * 4})
    with LabelStore.open(db) as store:
        store.import_dataset(load_dataset(frame, allow_missing_labels=True))
        store.set_label_set(["class_99"])
        first = store.to_pandas()["item_id"][0]
        store.set_label(first, "class_01", author="ann")
        store.set_status(first, "reviewed", author="ann")
        store.snapshot("after-fixes")
    assert main(["info", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("labels.db: text classification, 40 items")
    assert lines[1] == "splits: train 30 · test 6 · (none: train) 4"
    # 21 classes, 20 of them on items: the eight largest, the three smallest, and the one no item carries
    assert lines[2].startswith("classes (21): class_01 3 · class_02 2 · ")
    assert "class_08 2 · ... 9 more ... · class_17 1" in lines[2]
    assert lines[2].endswith("class_19 1; no items: class_99") and lines[2].count("·") == 11
    assert lines[3].startswith("unlabelled: 4 ")
    assert lines[4] == "review: 39 unreviewed · 1 reviewed; 1 label(s) changed from the original"
    assert lines[5] == "log: 2 row(s) · annotations: 0 by 0 annotator(s) · snapshots: 1, the latest 'after-fixes'"
    assert lines[6] == "scan: no scan yet: scan to rank the labels"
    assert main(["info", str(tmp_path / "nothere.db")]) == 2
    assert "there is no store at" in capsys.readouterr().err
    # NER: entities per type in the current tags (a retagged span counts as retagged)
    sentences = pd.DataFrame({"tokens": [["Ann", "Lee", "met", "Bo", "in", "Rome"], ["Paris", "!"]],
                              "tags": [["B-PER", "I-PER", "O", "B-PER", "O", "B-LOC"], ["B-LOC", "O"]]})
    with LabelStore.open(tmp_path / "ner.db") as store:
        store.import_dataset(load_dataset(sentences))
        second = store.to_pandas()["item_id"][1]
        store.set_label_set(["B-MISC", "I-MISC"])
        store.set_label(second, ["B-MISC", "O"], author="ann")
        store.set_label_set(["B-ORG", "I-ORG"])
    assert main(["info", str(tmp_path / "ner.db")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == ("entities (4 types): PER 2 · LOC 1 · MISC 1; no entities: ORG; tags (9): O B-LOC I-LOC B-PER "
                        "I-PER B-MISC I-MISC B-ORG I-ORG"), lines


def test_a_detached_run_is_cancelled_resumed_and_read_from_the_shell(tmp_path: Path, tiny_bert, capsys,
                                                                     monkeypatch):
    """train --detach left the shell with no way to stop the run, and Ctrl-C's advice was a Python call."""
    import time

    from workbench.launch import Run

    db = tmp_path / "labels.db"
    make_classification_sample(n_items=240, seed=2).to_csv(tmp_path / "train.csv", index=False)
    assert main(["import", str(tmp_path / "train.csv"), "--store", str(db), "--id-column", "id"]) == 0
    folder = tmp_path / "runs" / "long"
    assert main(["train", str(db), "--runs-dir", str(tmp_path / "runs"), "--run-id", "long", "--detach",
                 *_train_flags(tiny_bert, epochs=300)]) == 0
    assert f"stop it with: workbench cancel {folder}" in capsys.readouterr().out
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and Run(folder).checkpoint() is None:
        time.sleep(0.2)
    assert main(["resume", str(folder)]) == 2
    assert f"is still running; cancel it before resuming (Run.cancel(), or workbench cancel {folder})" in \
        capsys.readouterr().err
    assert main(["cancel", str(folder)]) == 0
    saved = Run(folder).checkpoint()
    out = capsys.readouterr().out
    assert re.search(rf"run {folder}: cancelled at step \d+ of \d+; continue it from epoch {saved['epoch']} "
                     rf"\(step {saved['step']}\): workbench resume {folder}", out), out
    assert main(["cancel", str(folder)]) == 0
    assert "is cancelled: nothing to cancel" in capsys.readouterr().out

    assert main(["resume", str(folder), "--detach"]) == 0
    assert f"run {folder}: resumed from epoch {saved['epoch']} (step {saved['step']})" in capsys.readouterr().out
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and Run(folder).status()["state"] != "running":
        time.sleep(0.2)
    assert Run(folder).status()["resumed_from_step"] == saved["step"]
    assert main(["cancel", str(folder), "--timeout", "60"]) == 0
    assert "cancelled" in capsys.readouterr().out
    assert Run(folder).metrics()["step"].dropna().is_monotonic_increasing  # one row per step the model kept
    assert main(["logs", str(folder), "--tail", "0"]) == 0
    assert capsys.readouterr().out.strip()  # the worker's output, from both starts
    assert main(["cancel", str(tmp_path / "runs")]) == 2
    assert "is not a run folder (it has no config.json); it holds runs, e.g." in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)  # the run id that `workbench runs` lists, typed for its folder
    assert main(["logs", "long"]) == 2
    assert "long is not a run folder (it does not exist or is a file); did you mean runs/long" in \
        capsys.readouterr().err


def test_scan_in_finetune_mode_and_its_mode_errors(tmp_path: Path, tiny_bert: Path, capsys):
    from workbench.sample import write_samples

    data = tmp_path / "train.csv"
    make_classification_sample(n_items=120, seed=3).to_csv(data, index=False)
    items = tmp_path / "scores.csv"
    assert main(["scan", str(data), "--id-column", "id", "--mode", "finetune", "--folds", "2", "--model",
                 str(tiny_bert), "--finetune-set", "epochs=1", "--finetune-set", "max_length=32",
                 "--finetune-set", "precision=fp32", "--items", str(items), "--no-progress"]) == 0
    assert "worst labels" in capsys.readouterr().out
    assert len(pd.read_csv(items)) == 120
    # quick mode with the attention view as well
    assert main(["scan", str(data), "--id-column", "id", "--model", str(tiny_bert), "--views", "embedding", "tfidf",
                 "attention", "--json", str(tmp_path / "scan.json"), "--no-progress"]) == 0
    assert "worst labels" in capsys.readouterr().out
    cases = [
        (["scan", str(data), "--id-column", "id", "--finetune-set", "epochs=1", "--mode", "quick"],
         "--finetune-set sets the fold fine-tunes, and --mode quick trains none"),
        (["scan", str(data), "--id-column", "id", "--mode", "finetune", "--finetune-set", "epoch=1"],
         "unknown FineTuneConfig field(s) ['epoch']"),
        (["scan", str(write_samples(tmp_path / "sample")["ner"]), "--mode", "quick", "--model", str(tiny_bert)],
         "--mode quick on token-classification data compares each sentence's tags"),
        (["scan", str(tmp_path / "sample" / "ner_sentences.parquet"), "--mode", "quick", "--split", "test"],
         "--mode quick compares each sentence's tags with the whole store: drop --split"),
        (["scan", str(tmp_path / "sample" / "ner_sentences.parquet"), "--views", "attention"],
         "--views chooses a text scan's views; "),
        (["scan", str(tmp_path / "sample" / "ner_sentences.parquet"), "--precision", "fp32"],
         "--precision sets a text scan's embedding and heads; "),
        (["scan", str(data), "--id-column", "id", "--views", "embedding", "atention", "--model", str(tiny_bert)],
         "unknown view(s) ['atention']; use some of ['embedding', 'tfidf', 'attention']"),
        (["scan", str(data), "--id-column", "id", "--mode", "finetune", "--views", "attention"],
         "--views ['attention'] choose quick mode's own views; this scan makes its probabilities with fine-tunes"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)


def test_report_writes_a_run_s_html_from_the_shell(tmp_path: Path, tiny_bert: Path, capsys):
    db = tmp_path / "labels.db"
    make_classification_sample(n_items=240, seed=5).to_csv(tmp_path / "train.csv", index=False)
    assert main(["import", str(tmp_path / "train.csv"), "--store", str(db), "--id-column", "id"]) == 0
    runs = tmp_path / "runs"
    for name, rate in (("base", 1e-4), ("new", 1e-3)):
        assert main(["train", str(db), "--runs-dir", str(runs), "--run-id", name, "--no-progress",
                     *_train_flags(tiny_bert, learning_rate=rate)]) == 0
    capsys.readouterr()
    out = tmp_path / "reports" / "new.html"
    (tmp_path / "reports").mkdir()
    assert main(["report", str(runs / "new"), "--compare-to", str(runs / "base"), "--out", str(out),
                 "--resamples", "200"]) == 0
    assert f"report: {out}" in capsys.readouterr().out
    html = out.read_text()
    assert "new" in html and "base" in html and "<table" in html
    assert json.loads((out.parent / "metrics.json").read_text())
    assert main(["report", str(runs / "new"), "--out", str(tmp_path / "r.pdf")]) == 2
    assert "unknown file type '.pdf'; use .html" in capsys.readouterr().err
    assert main(["report", str(runs), "--out", str(out)]) == 2
    assert "is not a run folder" in capsys.readouterr().err


def test_scan_quality_gate_exits_1_when_the_data_fails_it(tmp_path: Path, capsys):
    """CI: `workbench scan DATA --max-noise-rate R --max-issues TYPE=N` exits 1 naming each limit exceeded."""
    data = tmp_path / "train.csv"
    frame = make_classification_sample(n_items=400, seed=7)
    frame.to_csv(data, index=False)
    common = ["scan", str(data), "--id-column", "id", "--no-progress", "--top", "0"]
    assert main([*common, "--max-noise-rate", "0.9", "--max-issues", "junk_text=400"]) == 0
    assert "quality gate" not in capsys.readouterr().err
    assert main([*common, "--max-noise-rate", "0.001", "--max-issues", "exact_duplicate=0"]) == 1
    err = capsys.readouterr().err
    assert "quality gate: estimated noise rate" in err and "is above 0.001" in err
    assert re.search(r"quality gate: \d+ items with issue exact_duplicate, more than 0", err)  # the sample has some
    for bad, message in (("dupes=0", "unknown issue type 'dupes'"), ("label", "write TYPE=COUNT")):
        assert main([*common, "--max-issues", bad]) == 2
        assert message in capsys.readouterr().err
    assert main([*common, "--max-noise-rate", "5"]) == 2  # refused before the scan, in the command's words
    assert "--max-noise-rate 5: give the highest acceptable share of wrong labels, between 0 and 1" in \
        capsys.readouterr().err


def test_version_and_python_dash_m():
    import tomllib

    from workbench import __version__

    declared = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["version"]
    assert __version__ == declared  # one version, said the same in both places
    out = _run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"label-workbench {__version__}"
    module = subprocess.run([sys.executable, "-m", "workbench", "runs", "--help"], capture_output=True, text=True)
    assert module.returncode == 0 and "usage:" in module.stdout


def test_output_piped_into_head_ends_without_a_traceback(tmp_path: Path):
    """`workbench agreement labels.db | head -1`: the reader closed the pipe early; that is not an error."""
    rows = ["item_id,text,rater_a,rater_b"] + [f"{k},text {k},{'xy'[k % 2]},{'xy'[k % 3 % 2]}" for k in range(200)]
    (tmp_path / "wide.csv").write_text("\n".join(rows) + "\n")
    db = tmp_path / "s.db"
    assert main(["import-annotations", str(tmp_path / "wide.csv"), str(db), "--layout", "wide",
                 "--annotator-prefix", "rater_"]) == 0
    done = subprocess.run(["bash", "-c", f"'{SCRIPT}' agreement '{db}' | head -1; exit ${{PIPESTATUS[0]}}"],
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("200 items, 2 annotators") and done.returncode == 0
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


def test_scan_precision_reaches_the_scan(tmp_path: Path, tiny_bert: Path, monkeypatch, capsys):
    import workbench.scan as S

    data = tmp_path / "train.csv"
    make_classification_sample(n_items=120, seed=3).to_csv(data, index=False)
    asked = []
    real = S.scan
    monkeypatch.setattr(S, "scan", lambda *a, **kw: asked.append(kw["precision"]) or real(*a, **kw))
    for extra in (["--precision", "fp32"], []):
        assert main(["scan", str(data), "--id-column", "id", "--model", str(tiny_bert), "--views", "embedding",
                     "--no-progress", *extra]) == 0
    assert asked == ["fp32", "auto"]
    with pytest.raises(SystemExit) as exited:  # argparse's own usage error
        main(["scan", str(data), "--precision", "fp8"])
    assert exited.value.code == 2 and "invalid choice: 'fp8'" in capsys.readouterr().err
