"""Label Studio's JSON export (its tasks, each with its data and annotations) as a flat table.

A task's ``data`` fields become columns (``text``, or whatever the labelling config shows), and each control of
its annotation a column named by the control (``from_name``): a ``Choices`` control's class (``sentiment``:
``"Positive"``; several picked: the list), a ``Labels`` control's entity spans as ``{start, end, labels}`` dicts,
which :mod:`workbench.spans` reads. A project with one control gets it as ``label``; with several, the column names
work as any table's do (``label_column="sentiment"``).
Of several annotations of one task the latest is read (cancelled ones never); the model's ``predictions`` are not
labels and are left out. Label Studio's JSON-MIN and CSV exports are flat already and need none of this.

The way back: :func:`label_studio_tasks` writes a store's items as tasks Label Studio imports, each with its current
label as an annotation and, where a scan suggests another label, that suggestion as a prediction. The names it
writes (the control, the text object it labels, the task's data field) are the ones the export was read with
(:func:`flatten_tasks` keeps them in ``attrs["label_studio"]``), so the tasks fit the project they came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from workbench.errors import DataFileError
from workbench.held import Held

#: Result types read: a class (or several) and entity spans.
CONTROLS = ("choices", "labels")


def is_label_studio_export(records: Sequence[Any]) -> bool:
    """Whether JSON records are Label Studio tasks: objects with a ``data`` object and an ``annotations`` list."""
    return bool(records) and all(
        isinstance(r, dict) and isinstance(r.get("data"), dict) and isinstance(r.get("annotations", []), list)
        for r in records) and any("annotations" in r for r in records)


def flatten_tasks(records: Sequence[dict[str, Any]], *, name: str) -> tuple[pd.DataFrame, list[str]]:
    """One row per task: its ``id``, its data fields, and one column per control of its latest annotation.

    Parameters
    ----------
    records : sequence of dict
        The export's tasks.
    name : str
        The file, for messages.

    Returns
    -------
    table : pandas.DataFrame
        ``(n_tasks, 1 + data fields + controls)``; a task without an annotation has None in the control columns
        (the one control of a project that has one is the ``label`` column). ``attrs["every_annotation"]`` holds
        (:class:`~workbench.held.Held`) the long table of every annotation, one row each with its ``annotator``
        and the task id as ``item_id`` too, which :func:`workbench.annotations.import_annotations` reads.
    notes : list of str
        What the reading chose that the user should know (tasks with disagreeing annotations).
    """
    latest: list[dict[str, Any]] = []
    every: list[dict[str, Any]] = []
    controls: set[str] = set()
    found: dict[str, dict[str, Any]] = {}  # per control, the names Label Studio gave it (the way back writes them)
    names: dict[str, dict[str, Any]] = {}  # the same per table column
    several = 0
    for n, task in enumerate(records, start=1):
        # workbench_score / workbench_issues: a scan's, written by the export back; stale once labels change here
        base: dict[str, Any] = {"id": task.get("id"),
                                **{k: v for k, v in task["data"].items() if not str(k).startswith("workbench_")}}
        kept = [a for a in task.get("annotations", []) if isinstance(a, dict) and not a.get("was_cancelled")]
        read = []
        for annotation in kept:
            results = _read_results(annotation, name=name, task=n, names=found)
            read.append(_columns(results, task["data"]))
            for column, named in _columns({c: found[c] for c in results if c in found}, task["data"]).items():
                names.setdefault(column, named)
        controls.update(*read)
        several += len({repr(r) for r in read}) > 1
        latest.append({**base, **(read[_latest(kept)] if kept else {}), _ANNOTATED: bool(kept)})
        every.extend({**base, "annotator": _annotator(a), **r, _ANNOTATED: True} for a, r in zip(kept, read))
    frame = _table(latest, controls)
    long = _table(every, controls)
    renamed = [c for c in controls if c not in frame.columns]  # the one control, which _table named 'label'
    frame.attrs["label_studio"] = {"label": names[renamed[0]]} if renamed and renamed[0] in names else names
    if "item_id" not in long.columns:  # the task ids name the items, under the column import_annotations reads
        long.insert(0, "item_id", long["id"])
    frame.attrs["every_annotation"] = Held(long)
    notes = []
    if several:
        notes.append(f"{several} task(s) of {name} have annotations that disagree; the latest of each was read "
                     "(workbench import-annotations FILE STORE reads every annotator's label, for agreement)")
    return frame, notes


_ANNOTATED = "__annotated"  # a row's task has an annotation: a submitted one with no spans is a text with no entities


def _columns(results: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """An annotation's values by column: a control named like a data field gets ``_annotation`` after its name."""
    return {control if control not in data else f"{control}_annotation": value for control, value in results.items()}


def _table(rows: list[dict[str, Any]], controls: set[str]) -> pd.DataFrame:
    """Rows as a table: a span control an annotated row lacks is empty (a text with no entities), and the one
    control of a project that has one is the ``label`` column."""
    spans = {c for row in rows for c in controls if isinstance(row.get(c), list) and row[c]
             and isinstance(row[c][0], dict)}
    for row in rows:
        annotated = row.pop(_ANNOTATED)
        for column in spans:
            if annotated and column not in row:
                row[column] = []
    frame = pd.DataFrame.from_records(rows)
    if len(controls) == 1 and "label" not in frame.columns:  # the usual project, one question: its labels
        frame = frame.rename(columns={next(iter(controls)): "label"})
    return frame


def _annotator(annotation: dict[str, Any]) -> Any:
    """Who made an annotation: ``completed_by``'s e-mail where the export gives the user, else its user id."""
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        return who.get("email") or who.get("id")
    return who


def _latest(annotations: list[dict[str, Any]]) -> int:
    """The place of the annotation updated (or created) last; of equal times, or none given, the last in the list."""
    stamps = [str(a.get("updated_at") or a.get("created_at") or "") for a in annotations]
    return max(range(len(annotations)), key=lambda i: (stamps[i], i))


def _read_results(annotation: dict[str, Any], *, name: str, task: int,
                  names: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An annotation's value per control: the class (or list of classes) picked, or the entity spans. ``names``
    gets each named control's first ``from_name``, ``to_name`` and result type."""
    out: dict[str, Any] = {}
    results = annotation.get("result", [])
    if not isinstance(results, list):
        raise DataFileError(f"{name}: task {task}: an annotation's 'result' is a {type(results).__name__}, "
                            "expected a list (is this a Label Studio JSON export?)")
    for result in results:
        kind = result.get("type") if isinstance(result, dict) else None
        if kind not in CONTROLS:
            continue  # ratings, text areas, relations: nothing this workbench labels
        control = str(result.get("from_name") or kind)
        if result.get("from_name"):
            names.setdefault(control, {"from_name": control, "to_name": result.get("to_name"), "type": kind})
        value = result.get("value") or {}
        if kind == "choices":
            picked = list(value.get("choices") or [])
            out[control] = picked[0] if len(picked) == 1 else picked
        else:
            out.setdefault(control, []).append(
                {"start": value.get("start"), "end": value.get("end"), "labels": list(value.get("labels") or [])})
    return out


#: What Label Studio's JSON-MIN, CSV and TSV exports put beside each annotation's data fields and control columns.
MIN_FIELDS = ("id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time")
#: Of those, the two only Label Studio writes, about an annotation, not the task: an export back leaves them out of the
#: task's data (an ``annotator`` or ``created_at`` column may be the data's own).
_ANNOTATION_FIELDS = ("annotation_id", "lead_time")


def is_min_export(frame: pd.DataFrame) -> bool:
    """Whether a table is Label Studio's JSON-MIN, CSV or TSV export: one row per annotation, with its id and time."""
    return {"annotation_id", "lead_time"} <= {str(c) for c in frame.columns}


def read_min_export(frame: pd.DataFrame, *, name: str) -> tuple[pd.DataFrame, list[str]]:
    """A JSON-MIN / CSV / TSV export as a table: with a text field and one control (the only column neither is Label
    Studio's), the control is the label (classes, or entity spans: a row without the control then has no entities, for
    a row is an annotation), as the full JSON export's one control is; more columns are left for ``--label-column``.

    Returns the table (``attrs["label_column"]``: the control, which the loader takes when not told another;
    ``attrs["label_studio"]``: its name, for the way back) and notes: what was read as the label, and tasks that come
    once per annotator.
    """
    from workbench.data import LABEL_COLUMNS, TEXT_COLUMNS, as_list, find_column, is_missing
    from workbench.spans import looks_like_spans

    notes = []
    repeated = int(frame["id"].duplicated().sum()) if "id" in frame.columns else 0
    if repeated:
        notes.append(f"{name}: {repeated} row(s) annotate a task an earlier row annotates too (Label Studio writes one "
                     "row per annotation), and are read as items of their own; to keep each annotator's label for "
                     "agreement, use workbench import-annotations FILE STORE --item-column id --annotator-column "
                     "annotator")
    text = find_column(frame.columns, TEXT_COLUMNS)
    controls = [c for c in frame.columns if str(c) not in MIN_FIELDS and c != text]
    if text is None or len(controls) != 1 or find_column(frame.columns, LABEL_COLUMNS) is not None:
        return frame, notes
    control = controls[0]
    out = frame.copy()
    if any(looks_like_spans(as_list(v)) for v in out[control] if not is_missing(v)):
        out[control] = pd.Series([[] if is_missing(v) or v == "" else v for v in out[control]], index=out.index,
                                 dtype=object)
    # the column keeps its name (--label-column names it as before); the loader takes it when none is named
    out.attrs = {**frame.attrs, "label_column": str(control),
                 "label_studio": {str(control): {"from_name": str(control)}}}
    notes.append(f"{name}: read as Label Studio's one-row-per-annotation export; its control {control!r} is the label")
    return out, notes


#: The names written when the store's items did not come from a Label Studio export: a project whose config is
#: ``<Text name="text" value="$text"/>`` with ``<Choices name="label" toName="text">`` (``<Labels ...>`` for entities).
DEFAULT_NAMES = {"from_name": "label", "to_name": "text", "data_field": "text"}


def label_studio_tasks(frame: pd.DataFrame, *, task: str, names: dict[str, Any] | None = None,
                       scores: pd.DataFrame | None = None, model_version: str | None = None) -> list[dict[str, Any]]:
    """A store's items as Label Studio tasks to import.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``(n_items, ...)`` :meth:`workbench.store.LabelStore.to_pandas`: ``item_id``, ``text`` and ``label`` (or
        ``tokens`` and ``tags``), other columns.
    task : {"text-classification", "token-classification"}
    names : dict, optional
        ``from_name``, ``to_name``, ``data_field``; missing keys from :data:`DEFAULT_NAMES`.
    scores : pandas.DataFrame, optional
        ``item_id, score, suggested_label, suggested_prob, issues`` of the active scan
        (:meth:`~workbench.store.LabelStore.page`; for token classification each suggestion is a tag list).
    model_version : str, optional
        Names the scan on its predictions.

    Returns
    -------
    list of dict
        One task per item: ``data`` (the text under ``data_field``, the item's id as ``item_id``, which an import
        of the project's next export takes as the id, so its labels update these items; the other columns; with
        scores, ``workbench_score`` and ``workbench_issues``, which Label Studio's data manager sorts
        and filters by), ``annotations`` (the current label; none for an unlabelled item) and, where the scan
        suggests a label other than the current one, ``predictions`` with that label scored by its probability.
    """
    names = {**DEFAULT_NAMES, **{k: v for k, v in (names or {}).items() if v}}
    # one dict lookup per item: a pandas .loc per row took 5 of 15 s on 100,000 items
    by_item = ({r["item_id"]: r for r in scores.to_dict("records")} if scores is not None else {})
    from workbench.data import is_missing
    from workbench.export import plain_row, span_records

    sources = [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]
    rows = list(span_records(frame)) if task == "token-classification" else sources
    tasks = []
    for n, (row, source) in enumerate(zip(rows, sources)):
        # the columns an earlier export back wrote come again from this store, not from the file imported
        data = {names["data_field"]: row["text"], "item_id": row["item_id"],
                **{k: v for k, v in plain_row(row).items()
                   if k not in ("item_id", "text", "label", "spans", "tokens", "content_hash", names["data_field"])
                   and k not in _ANNOTATION_FIELDS and not k.startswith("workbench_") and v is not None}}
        out: dict[str, Any] = {"data": data}
        tagged = task == "token-classification"
        current = source.get("tags") if tagged else source.get("label")
        if tagged and row.get("spans") is not None:
            out["annotations"] = [{"result": [_span_result(s, names, f"wb{n}-{k}")
                                              for k, s in enumerate(row["spans"])]}]
        elif isinstance(current, str):
            out["annotations"] = [{"result": [_choice_result(current, names, f"wb{n}")]}]
        scored = by_item.get(row["item_id"])
        if scored is not None and not is_missing(scored["score"]):
            data["workbench_score"] = float(scored["score"])
            data["workbench_issues"] = ",".join(scored["issues"] or [])
            result = _suggested(scored["suggested_label"], current, source, tagged=tagged, names=names, rid=f"wb{n}-p")
            if result is not None:
                prediction: dict[str, Any] = {"result": result}
                if not is_missing(scored["suggested_prob"]):
                    prediction["score"] = float(scored["suggested_prob"])
                if model_version:
                    prediction["model_version"] = model_version
                out["predictions"] = [prediction]
        tasks.append(out)
    return tasks


def _suggested(suggested: Any, current: Any, source: dict[str, Any], *, tagged: bool, names: dict[str, Any],
               rid: str) -> list[dict[str, Any]] | None:
    """A scan's suggestion as a prediction's results, where it differs from the current label (or tags)."""
    from workbench.export import differing_suggestion, row_spans

    differs = differing_suggestion(suggested, current, tokens=source["tokens"] if tagged else None)
    if differs is None:
        return None
    if tagged:
        return [_span_result(s, names, f"{rid}-{k}") for k, s in enumerate(row_spans(source, differs)[1])]
    return [_choice_result(differs, names, rid)]


def _choice_result(label: str, names: dict[str, Any], rid: str) -> dict[str, Any]:
    return {"id": rid, "from_name": names["from_name"], "to_name": names["to_name"], "type": "choices",
            "value": {"choices": [label]}}


def _span_result(span: dict[str, Any], names: dict[str, Any], rid: str) -> dict[str, Any]:
    return {"id": rid, "from_name": names["from_name"], "to_name": names["to_name"], "type": "labels",
            "value": {"start": span["start"], "end": span["end"], "text": span["text"], "labels": [span["label"]]}}
