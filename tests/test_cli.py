"""The workbench command: each sub-command works, explains itself, and reports user errors in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from workbench import LabelStore
from workbench.cli import main
from workbench.sample import make_classification_sample

SCRIPT = Path(sys.executable).parent / "workbench"  # the console script of this interpreter's environment


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True)


COMMANDS = ["import", "export", "history", "sample", "scan", "check-regression", "run-notebook", "merge-labels"]


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
    written = pd.read_csv(items)
    assert len(written) == 300 and written["suggested_label"].str.split().map(len).ge(1).all()
    assert not (tmp_path / "runs").exists()  # the in-memory scan's runs went with its temporary store
    db = tmp_path / "ner.db"
    assert main(["import", str(ner), "--store", str(db)]) == 0  # --task auto: token classification
    capsys.readouterr()
    assert main(["scan", str(db), "--model", str(tiny_bert), "--no-progress", "--folds", "3",
                 "--runs-dir", str(tmp_path / "runs")]) == 0
    assert "3 fold taggers" in capsys.readouterr().out
    with LabelStore.open(db) as store:
        scored = store.page(0, 1000)
    assert scored["score"].notna().sum() == 300
    assert len(list((tmp_path / "runs").iterdir())) == 3


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


def test_scan_takes_zero_for_what_it_says(tmp_path: Path, capsys):
    """--folds 0 was read as 'not given' (5 folds) and --top -3 printed all but three."""
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(20)))
    assert main(["scan", str(data), "--folds", "0"]) == 2
    assert "folds must be at least 2, got 0" in capsys.readouterr().err
    assert main(["scan", str(data), "--top", "-3"]) == 2
    assert "--top -3" in capsys.readouterr().err
