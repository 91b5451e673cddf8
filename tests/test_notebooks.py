"""Every notebook runs headless under papermill and writes the results it promises."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from workbench.notebooks import NOTEBOOK_DIR, run_notebook

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def test_there_are_notebooks():
    assert any(p.stem == "00_quickstart" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs_and_has_parameters(path: Path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, "strip outputs before committing"


def _assert_clean(executed: Path):
    nb = nbformat.read(executed, as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", output


def test_quickstart_on_the_sample(tmp_path: Path):
    results = run_notebook("00_quickstart", out_dir=tmp_path, parameters={"SAMPLE_SIZE": 1200}, timeout=600)
    _assert_clean(Path(results["executed_notebook"]))
    assert results["n_items"] == 1200
    assert results["n_planted_errors"] > 20
    assert results["recall_top_2x"] >= 0.8
    assert results["n_accepted"] > 0 and results["accepted_correct"] >= 0.9
    # every accepted suggestion and every queued flag is one log row
    queue = pd.read_csv(results["review_queue"])
    assert results["n_log_rows"] == results["n_accepted"] + len(queue)
    assert Path(results["export"]).exists() and Path(results["log"]).exists()
    assert json.loads((tmp_path / "results.json").read_text())["snapshot"] == results["snapshot"]
    # the model trained after accepting suggestions is not worse on the clean held-out labels
    assert results["accuracy_after"] >= results["accuracy_before"] - 0.02, results
    assert results["accuracy_after"] > 0.6
    assert Path(results["report"]).exists()


def test_quickstart_on_sst2(tmp_path: Path, shared_data: Path):
    results = run_notebook("00_quickstart", out_dir=tmp_path, timeout=600,
                           parameters={"DATA_PATH": str(shared_data / "sst2" / "train.parquet"), "SAMPLE_SIZE": 3000})
    _assert_clean(Path(results["executed_notebook"]))
    assert results["n_items"] == 3000 and results["labels"] == ["negative", "positive"]


def test_a_failing_cell_is_reported_in_one_line_by_the_cli(tmp_path, capsys):
    from workbench.cli import main

    code = main(["run-notebook", "00_quickstart", "-p", "DATA_PATH", str(tmp_path / "missing.csv"),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "DataFileError" in err and "missing.csv" in err and "00_quickstart.ipynb" in err
