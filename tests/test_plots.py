"""Every figure builds for 6 and 77 classes with the right data in its traces; the HTML report opens offline."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.test_metrics import make_run
from workbench import metrics as M
from workbench import plots as P
from workbench.run_report import write_report


def _predictions(k: int, n: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = [f"intent_{i:02d}_with_a_long_name" for i in range(k)]
    y = rng.choice(labels, n)
    pred = np.where(rng.random(n) < 0.8, y, rng.choice(labels, n))
    return labels, y, pred


@pytest.mark.parametrize("k", [6, 77])
def test_figures_for_small_and_large_label_sets(k):
    labels, y, pred = _predictions(k)
    table = M.per_class_metrics(y, pred, labels=labels)
    bars = P.per_class_bars(table, top=40)
    assert [t.name for t in bars.data] == ["precision", "recall", "f1"]
    shown = min(k, 40)
    assert len(bars.data[2].x) == shown
    worst = table.drop(index=list(M.AVERAGES)).sort_values("f1").head(shown)
    assert np.allclose(bars.data[2].x, worst["f1"])
    assert bars.layout.height >= 18 * shown  # rows never overlap
    conf = M.confusion(y, pred, labels=labels)
    heat = P.confusion_heatmap(conf, top=25)
    z = np.asarray(heat.data[0].z)
    assert z.shape == ((k, k) if k <= 25 else (26, 26))
    assert np.allclose(z.sum(1), 1)
    if k > 25:
        assert heat.data[0].x[-1] == "others"
        assert int(np.asarray(heat.data[0].z).shape[0]) == 26
    dist = P.label_distribution(y, original=pred)
    assert sum(dist.data[0].x) == len(y)
    hist = P.score_histogram(np.random.default_rng(0).random(500), flagged=np.arange(500) < 50)
    assert len(hist.data[1].x) == 50
    comp_table = pd.DataFrame({"delta": np.linspace(-0.2, 0.2, k), "delta_low": np.linspace(-0.3, 0.1, k),
                               "delta_high": np.linspace(-0.1, 0.3, k), "verdict": "unchanged"}, index=labels)
    delta = P.delta_bars(comp_table, top=40)
    assert len(delta.data[0].x) == min(k, 40) and abs(delta.data[0].x[0]) == pytest.approx(0.2)


def test_training_curves_from_metrics_rows():
    rows = pd.DataFrame([{"step": s, "loss": 1 / s, "learning_rate": 1e-4} for s in range(1, 11)]
                        + [{"step": 10, "eval_f1": 0.8}])
    fig = P.training_curves(rows)
    names = [t.name for t in fig.data]
    assert names == ["loss", "learning_rate", "eval_f1"] and len(fig.data[0].x) == 10
    assert "no metrics" in P.training_curves(pd.DataFrame()).layout.title.text


def test_html_report_is_self_contained_and_escaped(tmp_path):
    labels = ["ok", "<img src=x onerror=alert(1)>"]
    y = ["ok", labels[1], "ok", labels[1]] * 50
    base = make_run(tmp_path, "base", y, ["ok"] * 200, labels)
    new = make_run(tmp_path, "new", y, y, labels)
    paths = write_report(new, tmp_path / "report" / "index.html", compare_to=base, n_resamples=100)
    page = paths["html"].read_text()
    assert "<script src=\"http" not in page and "cdn.plot.ly" not in page.split("<body>")[1][:2000]
    assert "Plotly.newPlot" in page and len(page) > 1_000_000  # plotly.js inline
    assert "<img src=x" not in page.split("<script")[0]  # table text escaped
    data = json.loads(paths["metrics"].read_text())
    assert sorted(data["comparison"]["improved"]) == sorted(labels)
    tables = page.split("<script")[0]
    # the runs by name (not f1_a / f1_b), the class a column, the packaged model named (not "None")
    assert "<th>f1 base</th>" in tables and "<th>f1 new</th>" in tables and "f1_a" not in tables
    assert "<th>class</th>" in tables and "model None" not in tables
