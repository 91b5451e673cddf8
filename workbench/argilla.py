"""Argilla's exported records (``rg.Dataset.records.to_datasets()``, or the Parquet ``to_hub`` / ``to_disk`` write)
as a plain table.

Argilla 2 writes each question's answers as three list columns: ``QUESTION.responses`` (one answer per annotator),
``QUESTION.responses.users`` (who gave each) and ``QUESTION.responses.status`` (``submitted``, ``draft`` or
``discarded``), and a model's suggestion as ``QUESTION.suggestion`` (with ``.score`` and ``.agent``). Only submitted
answers are labels; of several that differ the most common is read (ties: the first given), and a note counts the
records where annotators disagree. A table with one question gets it as ``label``; with several, each is a column
named by its question. Suggestions are not labels and stay columns of their own, as they were.
"""

from __future__ import annotations

import ast
import json
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from workbench.held import Held

RESPONSES = ".responses"
#: Response statuses that are not an annotator's answer.
NOT_ANSWERS = ("draft", "discarded")


def argilla_questions(frame: pd.DataFrame) -> list[str]:
    """The questions whose answers ``frame`` holds as Argilla lays them out (``Q.responses`` beside
    ``Q.responses.users``); empty for any other table."""
    columns = {str(c) for c in frame.columns}
    return [c[:-len(RESPONSES)] for c in map(str, frame.columns)
            if c.endswith(RESPONSES) and f"{c}.users" in columns]


def read_responses(frame: pd.DataFrame, *, name: str) -> tuple[pd.DataFrame, list[str]]:
    """Each question's submitted answers as one label per record.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``(n_records, ...)`` the exported records.
    name : str
        The source, for messages.

    Returns
    -------
    table : pandas.DataFrame
        ``(n_records, ...)`` the records' other columns and one column per question (``label`` for the one
        question of a table with one); None where no answer was submitted. ``attrs["every_annotation"]``
        (:class:`~workbench.held.Held`) holds the long table of every submitted answer, one row each with its
        ``annotator`` and the record's ``id`` as ``item_id``, which :func:`workbench.annotations.import_annotations`
        reads.
    notes : list of str
    """
    questions = argilla_questions(frame)
    response_columns = [f"{q}{RESPONSES}{tail}" for q in questions for tail in ("", ".users", ".status")]
    base = frame.drop(columns=[c for c in response_columns if c in frame.columns])
    column = {q: "label" if len(questions) == 1 and "label" not in base.columns else q for q in questions}
    table = base.copy()
    every: list[dict[str, Any]] = []
    disagree = 0
    records: list[dict[str, Any]] = [{str(k): v for k, v in r.items()} for r in base.to_dict("records")]
    for q in questions:
        statuses = frame.get(f"{q}{RESPONSES}.status")
        labels = []
        for i, (answers, users) in enumerate(zip(frame[f"{q}{RESPONSES}"], frame[f"{q}{RESPONSES}.users"])):
            given = _submitted(answers, users, statuses.iloc[i] if statuses is not None else None)
            keys = [_key(a) for _, a in given]
            counts = Counter(keys)
            disagree += len(counts) > 1
            # the most common answer; of equally common ones the first given (Counter keeps first-seen order)
            labels.append(given[keys.index(counts.most_common(1)[0][0])][1] if given else None)
            every.extend({**records[i], "annotator": user, column[q]: answer} for user, answer in given)
        table[column[q]] = labels
    long = pd.DataFrame.from_records(every, columns=[*base.columns, "annotator", *column.values()])
    if "item_id" not in long.columns:
        long.insert(0, "item_id", long["id"] if "id" in long.columns else long.index)
    table.attrs["every_annotation"] = Held(long)
    notes = [f"{name} read as an Argilla export: the labels are the submitted answers to "
             + ", ".join(repr(q) for q in questions) + " (drafts and discarded answers are not labels)"]
    if disagree:
        notes.append(f"{disagree} record(s) of {name} have submitted answers that disagree; the most common of each "
                     "was read (workbench import-annotations FILE STORE reads every annotator's answer, for "
                     "agreement)")
    return table, notes


def _submitted(answers: Any, users: Any, statuses: Any) -> list[tuple[Any, Any]]:
    """(user, answer) of each submitted answer; a record nobody answered has None (or an empty list) there."""
    answers, users = _as_list(answers), _as_list(users)
    status_list = _as_list(statuses) or [None] * len(answers)
    return [(user, _plain(answer)) for answer, user, status in zip(answers, users + [None] * len(answers),
                                                                    status_list)
            if status not in NOT_ANSWERS and answer is not None]


def _as_list(value: Any) -> list[Any]:
    """A cell of answers, users or statuses as a list; from a CSV it is the list's text (JSON, or Python's repr as
    pandas writes it)."""
    from workbench.data import is_missing  # not at the top: workbench.data reads files through this module

    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        for parse in (json.loads, ast.literal_eval):
            try:
                parsed = parse(text)
            except (ValueError, SyntaxError):
                continue
            return list(parsed) if isinstance(parsed, (list, tuple)) else [parsed]
        return [value]
    return [] if is_missing(value) else list(value)


def _plain(value: Any) -> Any:
    """An answer as Python values: a multi-label answer or a span list read from Parquet is a numpy array."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value.item() if isinstance(value, np.generic) else value


def _key(answer: Any) -> str:
    """Equal answers' common key: lists and span dicts are not hashable."""
    return json.dumps(answer, sort_keys=True, default=str)
