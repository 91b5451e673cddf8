"""A run's report: one self-contained HTML file (plots embedded, opens offline) and ``metrics.json``."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from workbench.metrics import compare_runs, evaluate_run
from workbench.models import DEFAULT_MODEL
from workbench.runs import RunView, open_run


def write_report(run: str | os.PathLike[str] | RunView, path: str | os.PathLike[str], *,
                 compare_to: str | os.PathLike[str] | RunView | None = None, split: str | None = None,
                 n_resamples: int = 1000) -> dict[str, Path]:
    """Write ``path`` (HTML) and ``metrics.json`` beside it.

    Parameters
    ----------
    run : run folder
    path : path of the HTML file
    compare_to : run folder, optional
        A baseline run: adds before/after deltas (the baseline is "a", this run "b").

    Returns
    -------
    dict
        ``{"html": Path, "metrics": Path}``.
    """
    from workbench import plots

    view = open_run(run)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    scores = evaluate_run(view, split=split)
    figures = [plots.per_class_bars(scores.table, top=40)]
    if view.task() == "text-classification":
        figures.append(plots.confusion_heatmap(scores.confusion))
        top = scores.confusion.top_confused(10)
    else:
        top = None
    metrics_frame = view.metrics()
    if not metrics_frame.empty:
        figures.append(plots.training_curves(metrics_frame, title=f"Training of {view.run_id}"))
    result: dict[str, Any] = {"run": view.run_id, "split": scores.split, "gold": scores.gold,
                              "task": view.task(), "config": view.config(), "environment": view.environment(),
                              "per_class": scores.table.reset_index().to_dict("records")}
    sections = [f"<h2>Per-class metrics ({html.escape(scores.split)}, scored against {html.escape(scores.gold)} "
                "labels)</h2>", html_table(scores.table, "{:.4f}")]
    if top is not None and len(top):
        sections += ["<h2>Most confused pairs</h2>", top.to_html(index=False, escape=True,
                                                                   float_format=lambda v: f"{v:.3f}")]
    if compare_to is not None:
        comp = compare_runs(compare_to, view, split=split, n_resamples=n_resamples)
        figures.append(plots.delta_bars(comp.table, metric=comp.metric))
        result["comparison"] = {"baseline": comp.run_a, "gold": comp.gold, "notes": comp.notes,
                                "improved": comp.improved, "regressed": comp.regressed,
                                "per_class": comp.table.reset_index().to_dict("records")}
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in comp.notes)
        sections += [f"<h2>Compared with {html.escape(comp.run_a)} (scored against {html.escape(comp.gold)})</h2>",
                     f"<ul>{notes}</ul>",
                     # the runs by name, not a / b
                     html_table(comp.table.rename(columns=lambda c: c.replace("_a", f" {comp.run_a}").replace(
                         "_b", f" {comp.run_b}") if c.endswith(("_a", "_b")) else c), "{:.4f}",
                                signed=("delta", "delta_low", "delta_high"))]
    # plotly.js goes in once, inline, so the file opens without a network
    parts = [fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(figures)]
    page = ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>label-workbench run {html.escape(view.run_id)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}</style></head><body>"
            f"<h1>Run {html.escape(view.run_id)}</h1>"
            f"<p>model {html.escape(str(view.config().get('model') or DEFAULT_MODEL + ' (packaged)'))}, "
            f"task {html.escape(view.task())}, "
            f"state {html.escape(str(view.status().get('state')))}</p>"
            + "".join(sections) + "".join(parts) + "</body></html>")
    out.write_text(page, encoding="utf-8")
    metrics_path = out.with_name("metrics.json")
    metrics_path.write_text(json.dumps(result, indent=2, default=str))
    return {"html": out, "metrics": metrics_path}


def html_table(table: Any, number: str, *, signed: Sequence[str] = ()) -> str:
    """A per-class table as HTML, its index (the class) a plain first column (as the index it took a header row of
    its own); ``number``: the format of its floats, e.g. ``"{:.4f}"``, with a sign in the ``signed`` columns
    (differences). The report's tables and the quality panel's."""
    flat = table.reset_index()
    formats = {c: (number.replace("{:", "{:+") if c in signed else number).format
               for c in flat.columns if flat[c].dtype.kind == "f"}
    return str(flat.to_html(index=False, formatters=formats, escape=True))
