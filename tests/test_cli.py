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

SCRIPT = Path(sys.executable).parent / "workbench"  # the console script of this interpreter's environment


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True)


COMMANDS = ["import", "export", "history", "sample", "scan", "check-regression", "run-notebook"]


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
