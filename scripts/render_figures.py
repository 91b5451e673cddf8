"""Render every metrics figure for a 6-class and a 77-class case as HTML, so a person can look at them.

Usage: python scripts/render_figures.py [--out docs/figures]
Data: TREC-6 and banking77 test labels from ../shared/data with synthetic predictions (80% right),
so the figures show realistic label names and class counts.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench import metrics as M  # noqa: E402
from workbench import plots as P  # noqa: E402

SHARED = Path(os.environ.get("WORKBENCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def render(name: str, labels_true: list[str], out: Path, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    classes = sorted(set(labels_true))
    y = np.array(labels_true)
    pred = np.where(rng.random(len(y)) < 0.8, y, rng.choice(classes, len(y)))
    pred_b = np.where(rng.random(len(y)) < 0.85, y, pred)
    table = M.per_class_metrics(y, pred, labels=classes)
    conf = M.confusion(y, pred, labels=classes)
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    runs = folder / "runs"
    for run, p in (("a", pred), ("b", pred_b)):
        (runs / run / "predictions").mkdir(parents=True, exist_ok=True)
        (runs / run / "labels.json").write_text(pd.Series(classes).to_json(orient="values"))
        (runs / run / "config.json").write_text('{"task": "text-classification"}')
        pd.DataFrame({"item_id": [str(i) for i in range(len(y))], "label": y, "pred": p}).to_parquet(
            runs / run / "predictions" / "test.parquet")
    comp = M.compare_runs(runs / "a", runs / "b", n_resamples=300)
    steps = np.arange(1, 201)
    curves = pd.DataFrame({"step": steps, "loss": 2 * np.exp(-steps / 60) + 0.1 * rng.random(200),
                           "learning_rate": 5e-5 * (1 - steps / 200)})
    curves.loc[curves["step"] % 50 == 0, "eval_f1_macro"] = [0.6, 0.7, 0.75, 0.77]
    figures = {
        "per_class_bars": P.per_class_bars(table, top=40),
        "confusion_heatmap": P.confusion_heatmap(conf),
        "training_curves": P.training_curves(curves),
        "label_distribution": P.label_distribution(y, original=pred),
        "score_histogram": P.score_histogram(rng.beta(5, 1, len(y)), flagged=rng.random(len(y)) < 0.05),
        "delta_bars": P.delta_bars(comp.table),
    }
    written = []
    for fig_name, fig in figures.items():
        path = folder / f"{fig_name}.html"
        # plotly.min.js is written once beside the files, so they open offline
        fig.write_html(path, include_plotlyjs="directory")
        written.append(path)
    return written


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="build/figures")
    args = ap.parse_args()
    out = Path(args.out)
    trec = pd.read_parquet(SHARED / "trec" / "test.parquet")["label"].tolist()
    banking = pd.read_parquet(SHARED / "banking77" / "test.parquet")["label"].tolist()
    for name, labels in (("6-classes-trec", trec), ("77-classes-banking77", banking)):
        for path in render(name, labels, out):
            print(path)


if __name__ == "__main__":
    main()
