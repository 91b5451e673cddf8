"""Plotly figures for metrics, confusion, training curves, label distributions and scores.

Every function returns a ``plotly.graph_objects.Figure``; panels wrap them in widgets.
Figures stay readable with many classes (banking77's 77): horizontal bars, the top-N
classes and an "others" bucket, heights that grow with the number of rows.
Importing this module imports plotly; ``import workbench`` does not.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from workbench.metrics import AVERAGES, Confusion

_ROW_PX = 18


def _short(name: str, limit: int = 28) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _height(rows: int, *, base: int = 160, least: int = 320) -> int:
    return max(least, base + _ROW_PX * rows)


def per_class_bars(table: pd.DataFrame, *, top: int | None = None, title: str = "Per-class precision, recall, F1") \
        -> go.Figure:
    """Grouped horizontal P/R/F1 bars per class, sorted by F1 (worst on top), support in the labels.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`workbench.metrics.per_class_metrics` (average rows are dropped).
    top : int, optional
        Show only the ``top`` worst classes by F1.
    """
    rows = table.drop(index=[a for a in AVERAGES if a in table.index]).sort_values("f1", ascending=True)
    if top is not None and len(rows) > top:
        title = f"{title} (the worst {top} of {len(rows)} classes by F1)"
        rows = rows.head(top)
    names = [f"{c} ({int(s)})" for c, s in zip(rows.index, rows["support"])]
    fig = go.Figure()
    for metric, color in (("precision", "#4c78a8"), ("recall", "#f58518"), ("f1", "#54a24b")):
        fig.add_trace(go.Bar(y=names, x=rows[metric], name=metric, orientation="h", marker_color=color,
                             customdata=list(rows.index),  # the class name, for click handlers
                             hovertemplate="%{y}<br>" + metric + " %{x:.3f}<extra></extra>"))
    fig.update_layout(barmode="group", title=title, height=_height(len(rows) * 2), xaxis={"range": [0, 1]},
                      yaxis={"autorange": "reversed", "automargin": True}, legend={"orientation": "h"})
    return fig


def _top_with_others(conf: Confusion, top: int) -> pd.DataFrame:
    counts = conf.counts
    if len(counts) <= top:
        return counts
    errors = counts.sum(axis=1) - np.diag(counts.to_numpy())
    keep = errors.sort_values(ascending=False).index[:top].tolist()
    rest = [c for c in counts.index if c not in keep]
    out = counts.loc[keep, keep].copy()
    out["others"] = counts.loc[keep, rest].sum(axis=1)
    out.loc["others"] = list(counts.loc[rest, keep].sum(axis=0)) + [int(counts.loc[rest, rest].to_numpy().sum())]
    return out


def confusion_heatmap(conf: Confusion, *, top: int = 25, normalize: bool = True,
                      title: str = "Confusion (rows: true, columns: predicted)") -> go.Figure:
    """Heatmap of the confusion matrix with counts in hover text; more than ``top`` classes keep the most
    confused ones and fold the rest into "others"."""
    counts = _top_with_others(conf, top)
    rows = counts.sum(axis=1).replace(0, 1)
    z = counts.div(rows, axis=0) if normalize else counts
    text = [[f"true {t}<br>predicted {p}<br>{int(counts.loc[t, p])} items ({z.loc[t, p]:.1%} of {t})"
             for p in counts.columns] for t in counts.index]
    short = [_short(str(c)) for c in counts.index]  # full names stay in the hover text
    if len(set(short)) < len(short):  # two long names cut to the same prefix must stay two ticks
        short = [f"{i + 1}. {name}" for i, name in enumerate(short)]
    fig = go.Figure(go.Heatmap(z=z.to_numpy(), x=short, y=short, hovertext=text, hoverinfo="text",
                               colorscale="Blues", zmin=0,
                               # (true, predicted) per cell, for click handlers; "others" is a fold of many
                               customdata=[[[str(t), str(p)] for p in counts.columns] for t in counts.index]))
    size = 260 + 22 * len(counts)  # every row and column gets its own tick
    fig.update_layout(title=title, height=size, width=size + 160,
                      yaxis={"autorange": "reversed", "automargin": True, "tickmode": "linear", "dtick": 1},
                      xaxis={"automargin": True, "tickangle": -60, "tickmode": "linear", "dtick": 1})
    if len(counts) <= 12:  # counts in the cells while they are big enough to read
        fig.update_traces(text=counts.to_numpy(), texttemplate="%{text}")
    return fig


def training_curves(metrics: pd.DataFrame, *, title: str = "Training") -> go.Figure:
    """Loss, learning rate and eval metrics from a run's ``metrics.jsonl`` against the step."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=3, subplot_titles=("loss", "learning rate", "evaluation"))
    if metrics.empty or "step" not in metrics.columns:
        fig.update_layout(title=f"{title}: no metrics yet")
        return fig
    for col, pos in (("loss", 1), ("learning_rate", 2)):
        if col in metrics.columns:
            part = metrics[["step", col]].dropna()
            fig.add_trace(go.Scatter(x=part["step"], y=part[col], name=col, mode="lines"), row=1, col=pos)
    for col in [c for c in metrics.columns if c.startswith("eval_")]:
        part = metrics[["step", col]].dropna()
        fig.add_trace(go.Scatter(x=part["step"], y=part[col], name=col, mode="lines+markers"), row=1, col=3)
    fig.update_layout(title=title, height=360)
    return fig


def label_distribution(labels: Sequence[str], *, original: Sequence[str] | None = None, top: int = 40,
                       title: str = "Label distribution") -> go.Figure:
    """Items per class (horizontal), optionally beside the original labels' counts."""
    counts = pd.Series(list(labels)).value_counts()
    if len(counts) > top:
        counts = pd.concat([counts.head(top), pd.Series({"others": counts.iloc[top:].sum()})])
    fig = go.Figure(go.Bar(y=counts.index, x=counts.to_numpy(), orientation="h", name="current"))
    if original is not None:
        orig = pd.Series(list(original)).value_counts().reindex(counts.index).fillna(0)
        fig.add_trace(go.Bar(y=orig.index, x=orig.to_numpy(), orientation="h", name="original"))
    fig.update_layout(title=title, barmode="group", height=_height(len(counts)),
                      yaxis={"autorange": "reversed", "automargin": True})
    return fig


def score_histogram(scores: Sequence[float], *, flagged: Sequence[bool] | None = None, bins: int = 40,
                    title: str = "Label-quality scores (low = likely wrong)") -> go.Figure:
    """Histogram of label-quality scores, flagged items stacked apart."""
    s = np.asarray(scores, dtype=float)
    fig = go.Figure()
    if flagged is None:
        fig.add_trace(go.Histogram(x=s, nbinsx=bins, name="items"))
    else:
        f = np.asarray(flagged, dtype=bool)
        fig.add_trace(go.Histogram(x=s[~f], nbinsx=bins, name="not flagged"))
        fig.add_trace(go.Histogram(x=s[f], nbinsx=bins, name="flagged"))
    fig.update_layout(title=title, barmode="stack", xaxis={"range": [0, 1]}, height=360)
    return fig


def delta_bars(comparison_table: pd.DataFrame, *, metric: str = "f1", top: int | None = 40,
               title: str | None = None) -> go.Figure:
    """Before/after per-class deltas with their intervals, coloured by verdict, largest changes first."""
    rows = comparison_table.reindex(comparison_table["delta"].abs().sort_values(ascending=False).index)
    if top is not None:
        rows = rows.head(top)
    colors = rows["verdict"].map({"improved": "#54a24b", "regressed": "#e45756", "unchanged": "#9d9d9d"})
    fig = go.Figure(go.Bar(
        y=rows.index, x=rows["delta"], orientation="h", marker_color=colors,
        error_x={"type": "data", "symmetric": False, "array": rows["delta_high"] - rows["delta"],
                 "arrayminus": rows["delta"] - rows["delta_low"]},
        hovertemplate="%{y}<br>delta %{x:+.3f}<extra></extra>"))
    fig.update_layout(title=title or f"Change in {metric} per class (after - before)", height=_height(len(rows)),
                      yaxis={"autorange": "reversed", "automargin": True})
    return fig
