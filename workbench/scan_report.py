"""A scan's findings as one self-contained HTML file: the data-quality report, the worst labels and every issue
type's items with why each was flagged, and the duplicate groups side by side. No script, no network: a file to
attach to a ticket or keep as a CI artifact (``workbench scan DATA --html report.html``)."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.report import report_notes
from workbench.run_report import html_table

#: Longest text shown in a table cell (the items table of ``--items`` keeps them whole).
CLIP = 300
_STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:0.5em 0}"
          "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}"
          "td.num{text-align:right}.why{color:#555;font-size:90%}h2{margin-top:1.5em}")


def write_scan_report(result: Any, path: str | os.PathLike[str], *, top: int = 50,
                      title: str | None = None) -> Path:
    """Write the scan ``result`` (a :class:`workbench.scan.ScanResult`) to ``path`` as HTML.

    Parameters
    ----------
    result : ScanResult
    path : path of the HTML file (its folder is created)
    top : int
        Items listed per section (worst first).
    title : str, optional
        Default: the scan id.

    Returns
    -------
    Path
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    report, items = result.report, result.items
    o = report.overall
    heading = title or f"Scan {result.scan_id}"
    counts = "".join(f"<tr><td>{html.escape(k)}</td><td class='num'>{v}</td></tr>"
                     for k, v in o["issue_counts"].items())
    sections = [
        f"<h1>{html.escape(heading)}</h1>",
        f"<p>{o['n_items']} items ({o['n_labelled']} labelled), {o['n_classes']} classes · class balance "
        f"{o['class_balance']:.3f} · estimated noise rate {o['estimated_noise_rate']:.3f} · coverage "
        f"{o['coverage']:.3f}</p>",
        *([f"<p>{o['agreement']['n_annotators']} annotators: percent agreement "
           f"{o['agreement']['percent_agreement']:.3f}, Fleiss κ {o['agreement']['fleiss_kappa']:.3f}, "
           f"Krippendorff α {o['agreement']['krippendorff_alpha']:.3f}</p>"] if o.get("agreement") else []),
        *(f"<p>{html.escape(note)}</p>" for note in report_notes(o)),
        f"<h2>Issues</h2><table><tr><th>issue</th><th>items</th></tr>{counts}</table>",
        "<h2>Per class</h2>", html_table(report.per_class, "{:.3f}"),
    ]
    if len(report.mixups):
        sections += [f"<h2>Likely mix-ups ({len(report.mixups)} pairs of given and suggested label; the first "
                     f"{min(top, len(report.mixups))} shown)</h2>",
                     "<p class='why'>Flagged labels counted by the label they have and the one the scan suggests: a "
                     "pair with many items is a systematic confusion, best fixed together (the label browser's "
                     "label and suggestion filters).</p>",
                     html_table(report.mixups.head(top).set_index("given"), "{:.3f}")]
    if not report.noise_matrix.empty:
        sections += ["<h2>Estimated noise matrix</h2>", noise_matrix_html(report.noise_matrix)]
    flagged = items[items["is_label_issue"].astype(bool)]
    sections += [f"<h2>Likely wrong labels ({len(flagged)}; the {min(top, len(flagged))} least likely shown)</h2>",
                 _items_table(flagged.head(top), ["given_label", "suggested_label", "suggested_prob", "score"])]
    for kind in o["issue_counts"]:
        if kind in ("label", "exact_duplicate", "near_duplicate", "conflicting_duplicate"):
            continue
        with_kind = items[items["issues"].map(lambda issues, k=kind: k in issues)]
        sections += [f"<h2>{html.escape(kind)} ({len(with_kind)})</h2>", _items_table(with_kind.head(top),
                                                                                      ["given_label"])]
    sections += _duplicate_sections(items, top=top)
    page = ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(heading)}</title><style>{_STYLE}</style></head><body>"
            + "".join(sections) + "</body></html>")
    out.write_text(page, encoding="utf-8")
    return out


#: Most classes drawn in the noise matrix (the noisiest first); a wider matrix reads as noise itself.
MATRIX_CLASSES = 25


def noise_matrix_html(matrix: pd.DataFrame) -> str:
    """The estimated noise matrix ``P(given | true)`` (:attr:`workbench.report.QualityReport.noise_matrix`) as an
    HTML table shaded by value (darker: more), no script needed, after a line that says how to read it; the
    off-diagonal cells are the estimated mix-ups. Past :data:`MATRIX_CLASSES` classes, the classes whose items keep
    their label least often. An empty string for an empty matrix."""
    if matrix.empty:
        return ""
    kept = pd.Series([matrix.loc[c, c] if c in matrix.index else 1.0 for c in matrix.columns], index=matrix.columns)
    shown = list(kept.sort_values().index[:MATRIX_CLASSES]) if len(kept) > MATRIX_CLASSES else list(matrix.columns)
    cut = (f" Shown: the {len(shown)} of {len(kept)} classes whose items keep their label least often."
           if len(shown) < len(kept) else "")

    def cell(given: Any, true: Any) -> str:
        value = float(matrix.loc[given, true])
        if value < 0.005:
            return "<td></td>"
        hue = "70,130,180" if given == true else "200,60,40"  # steel blue on the diagonal, red off it
        alpha = min(1.0, value if given == true else 4 * value)  # a 25% mix-up is as dark as it gets
        ink = "color:#fff;" if alpha > 0.6 else ""
        what = f"P(given {html.escape(str(given))} | true {html.escape(str(true))}) = {value:.3f}"
        return f"<td class='num' style='{ink}background:rgba({hue},{alpha:.2f})' title='{what}'>{value:.0%}</td>"

    rows_shown = [g for g in shown if g in matrix.index]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown)
    rows = "".join(f"<tr><th>{html.escape(str(g))}</th>{''.join(cell(g, t) for t in shown)}</tr>"
                   for g in rows_shown)
    return ("<p class='why'>Each column is a true class, as confident learning estimates it from the out-of-fold "
            "probabilities; each cell, the share of that class's items that carry the row's label (a column sums to "
            "100%). Off the diagonal, in red: items labelled as the row's class that belong to the column's."
            f"{cut}</p><table><tr><th>given \\ true</th>{head}</tr>{rows}</table>")


def _items_table(frame: pd.DataFrame, columns: list[str]) -> str:
    """Items as an HTML table: id, the given columns, the text (clipped) and why the scan flagged the item."""
    if frame.empty:
        return "<p>none</p>"
    head = "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in ["item_id", *columns, "text"])
    rows = []
    for r in frame.to_dict("records"):
        cells = [f"<td>{html.escape(str(r['item_id']))}</td>"]
        for c in columns:
            v = r.get(c)
            if isinstance(v, float):
                cells.append(f"<td class='num'>{'' if v != v else f'{v:.3f}'}</td>")
            else:
                cells.append(f"<td>{'' if v is None else html.escape(str(v))}</td>")
        text = str(r["text"])
        why = r.get("issue_details")
        cells.append(f"<td>{html.escape(text[:CLIP] + ('…' if len(text) > CLIP else ''))}"
                     + (f"<div class='why'>{html.escape(why)}</div>" if isinstance(why, str) else "") + "</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _duplicate_sections(items: pd.DataFrame, *, top: int) -> list[str]:
    """Duplicate groups, members side by side; the groups holding different labels first."""
    grouped = items[items["duplicate_group"].notna()]
    if grouped.empty:
        return ["<h2>Duplicate groups</h2><p>none</p>"]
    groups = []
    for _, members in grouped.groupby("duplicate_group", sort=False):
        labels = {v for v in members["given_label"] if isinstance(v, str)}
        groups.append((len(labels) < 2, -len(members), members))  # conflicting groups first, then the largest
    groups.sort(key=lambda g: g[:2])
    n_conflicting = sum(not g[0] for g in groups)
    parts = [f"<h2>Duplicate groups ({len(groups)}, {n_conflicting} with different labels; the first "
             f"{min(top, len(groups))} shown)</h2>"]
    for consistent, _, members in groups[:top]:
        note = "" if consistent else " <b>different labels</b>"
        parts += [f"<h3>{len(members)} items{note}</h3>", _items_table(members, ["given_label"])]
    return parts
