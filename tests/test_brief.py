"""Result objects print their fields' shapes, not their contents."""

from pathlib import Path

import numpy as np
import pandas as pd

from workbench.brief import brief
from workbench.checks import CheckResult
from workbench.crossval import OutOfFold
from workbench.report import QualityReport
from workbench.scan import ScanResult


def _scan_result(n: int = 5000) -> ScanResult:
    probs = np.full((n, 3), 1 / 3)
    oof = OutOfFold(probs, ["a", "b", "c"], np.zeros(n, dtype=int), {"embedding": probs}, {"folds": 5})
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n)], "score": np.linspace(0, 1, n)})
    check = CheckResult("outlier", pd.DataFrame(columns=["item_id", "issue", "group", "detail"]), {"items": 0})
    report = QualityReport({"n_items": n}, pd.DataFrame({"count": [n]}, index=["a"]))
    return ScanResult("scan-1", items, report, oof, {"outlier": check}, {"embed": 1.5})


def test_a_scan_result_prints_shapes_in_one_short_line():
    text = repr(_scan_result())
    assert "\n" not in text and len(text) < 600, text
    assert "items=DataFrame(5000 rows x 2 columns)" in text
    assert "pred_probs=array(5000x3 float64)" in text
    assert "'outlier': CheckResult(...)" in text  # nested results name themselves only
    assert "0.333" not in text  # no array contents


def test_brief_keeps_small_values_and_cuts_large_ones():
    assert brief(np.array([1, 2])) == "[1, 2]"
    assert brief(np.float32(0.5)) == "0.5"
    assert brief(list(range(100))) == "list(100 entries)"
    assert brief({"a": 1, "b": [1, 2]}) == "{'a': 1, 'b': [1, 2]}"
    assert brief("x" * 500).endswith("...'") and len(brief("x" * 500)) < 70
    assert brief(Path("runs/a")) == repr(Path("runs/a"))
    assert brief(pd.Series([1.0, 2.0])) == "Series(2 rows, float64)"
    assert brief((1,)) == "(1,)"
