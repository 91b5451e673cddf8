"""Label Studio's JSON export (its tasks, each with its data and annotations) as a flat table.

A task's ``data`` fields become columns (``text``, or whatever the labelling config shows), and each control of
its annotation a column named by the control (``from_name``): a ``Choices`` control's class (``sentiment``:
``"Positive"``; several picked: the list), a ``Labels`` control's entity spans as ``{start, end, labels}`` dicts,
which :mod:`workbench.spans` reads. A project with one control gets it as ``label``; with several, the column names
work as any table's do (``label_column="sentiment"``).
Of several annotations of one task the latest is read (cancelled ones never); the model's ``predictions`` are not
labels and are left out. Label Studio's JSON-MIN and CSV exports are flat already and need none of this.
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
    several = 0
    for n, task in enumerate(records, start=1):
        base: dict[str, Any] = {"id": task.get("id"), **task["data"]}
        kept = [a for a in task.get("annotations", []) if isinstance(a, dict) and not a.get("was_cancelled")]
        read = [_columns(_read_results(a, name=name, task=n), task["data"]) for a in kept]
        controls.update(*read)
        several += len({repr(r) for r in read}) > 1
        latest.append({**base, **(read[_latest(kept)] if kept else {}), _ANNOTATED: bool(kept)})
        every.extend({**base, "annotator": _annotator(a), **r, _ANNOTATED: True} for a, r in zip(kept, read))
    frame = _table(latest, controls)
    long = _table(every, controls)
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


def _read_results(annotation: dict[str, Any], *, name: str, task: int) -> dict[str, Any]:
    """An annotation's value per control: the class (or list of classes) picked, or the entity spans."""
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
        value = result.get("value") or {}
        if kind == "choices":
            picked = list(value.get("choices") or [])
            out[control] = picked[0] if len(picked) == 1 else picked
        else:
            out.setdefault(control, []).append(
                {"start": value.get("start"), "end": value.get("end"), "labels": list(value.get("labels") or [])})
    return out
