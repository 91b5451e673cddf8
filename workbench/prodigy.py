"""Prodigy's annotations (``db-out`` JSONL: one object per decision, with its ``answer``) as a plain table.

Only accepted decisions name a class: a ``reject`` says which class a text is *not* (binary ``textcat``) or that its
spans are wrong, an ``ignore`` says nothing, so those rows are left out and counted in a note. A choice interface's
``accept`` list (the option ids picked) is the label; token dicts (``{"text", "start", "end", "id"}``) become their
texts, which :mod:`workbench.spans` lines up with the entity spans.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import DataFileError
from workbench.held import Held

ANSWERS = ("accept", "reject", "ignore")
#: Fields that say how Prodigy showed a task, not what the item is: left out when a file is read.
_INTERFACE_FIELDS = ("answer", "options", "config", "_view_id")


def is_prodigy_export(records: Sequence[Any]) -> bool:
    """Whether JSON records are Prodigy decisions: each an object with a text (or tokens) and an ``answer``."""
    return bool(records) and all(
        isinstance(r, dict) and r.get("answer") in ANSWERS and ("text" in r or "tokens" in r) for r in records)


def accepted_decisions(records: Sequence[dict[str, Any]], *, name: str) -> tuple[pd.DataFrame, list[str]]:
    """The accepted decisions as a table, and a note of the rows left out.

    Returns
    -------
    table : pandas.DataFrame
        One row per accepted decision: its fields, ``accept`` as ``label`` when the table has no label of its own
        (a choice interface), token dicts as their texts; ``attrs["source_rows"]``: each row's place in
        ``records`` (:class:`~workbench.held.Held`).
    notes : list of str
    """
    answers = Counter(r["answer"] for r in records)
    kept = [i for i, r in enumerate(records) if r["answer"] == "accept"]
    rows = [dict(records[i]) for i in kept]
    for row in rows:
        # what an export back showed on the card: a scan's output, stale once labels change, not data
        if isinstance(row.get("meta"), dict):
            row["meta"] = {k: v for k, v in row["meta"].items() if not str(k).startswith("workbench_")} or None
        if "label" not in row and "accept" in row:
            row["label"] = row.pop("accept")
        tokens = row.get("tokens")
        if isinstance(tokens, list) and tokens and all(isinstance(t, dict) and "text" in t for t in tokens):
            row["tokens"] = [t["text"] for t in tokens]
    left = {a: answers[a] for a in ("reject", "ignore") if answers[a]}
    counts = " and ".join(f"{n} {a}" for a, n in left.items())
    if not rows:
        raise DataFileError(f"{name}: none of its {len(records)} Prodigy decisions is an accept ({counts}); only an "
                            "accepted decision names a text's class or entities")
    notes = []
    if left:
        notes.append(f"{name}: {sum(left.values())} Prodigy decision(s) ({counts}) were left out: a reject says which "
                     "class a text is not, or that its spans are wrong, an ignore says nothing; "
                     f"{len(rows)} accepted ones were read")
    sessions = {r.get("_session_id") for r in rows} - {None}
    hashes = Counter(r.get("_input_hash", r.get("text")) for r in rows)
    if len(sessions) > 1 and max(hashes.values()) > 1:
        notes.append(f"{name}: {sum(n > 1 for n in hashes.values())} text(s) were decided in more than one of its "
                     f"{len(sessions)} sessions and are read as that many items; to keep each annotator's label for "
                     "agreement, use workbench import-annotations FILE STORE --annotator-column _session_id "
                     "--item-column _input_hash")
    binary_ner = sum(r.get("_view_id") == "ner" for r in rows)
    if binary_ner:
        notes.append(f"{name}: {binary_ner} accepted decision(s) come from a binary NER recipe (ner.teach: one "
                     "suggested span each) and are read as fully tagged sentences, which they are not: an accept says "
                     "that span is right, not that the sentence has no other entities")
    # how Prodigy showed the task (the answer: every row kept is an accept), not the item's data
    frame = pd.DataFrame.from_records(rows).drop(columns=list(_INTERFACE_FIELDS), errors="ignore")
    if "meta" in frame and frame["meta"].isna().all():  # it held only what an export back had put there
        frame = frame.drop(columns="meta")
    frame.attrs["source_rows"] = Held(np.array(kept))  # messages name the file's own objects
    return frame, notes


#: Fields of a Prodigy decision that describe the decision read in, not the label written back: Prodigy computes
#: the task hash anew from the task (its label may have changed here); timestamps and sessions were another's.
_DECISION_FIELDS = ("_task_hash", "_timestamp", "_session_id", "_annotator_id", "answer", "accept", "options",
                    "config", "_view_id", "spans", "tokens")


def prodigy_tasks(frame: pd.DataFrame, *, task: str, classes: Sequence[str],
                  scores: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """A store's items as Prodigy tasks: ``prodigy db-in`` takes them as decisions, a manual recipe as its input.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``(n_items, ...)`` :meth:`workbench.store.LabelStore.to_pandas`: ``item_id``, ``text`` and ``label`` (or
        ``tokens`` and ``tags``), other columns.
    task : {"text-classification", "token-classification"}
    classes : sequence of str
        Every class, the choice interface's options (``textcat.manual`` with several labels).
    scores : pandas.DataFrame, optional
        ``item_id, score, suggested_label, suggested_prob, issues`` of the active scan.

    Returns
    -------
    list of dict
        One task per item: ``text``; for text classification the ``options`` with the current label ``accept``-ed
        (what ``textcat.manual`` writes), for NER the ``tokens`` (with offsets) and ``spans`` (what ``ner.manual``
        writes); ``answer`` ``accept``, or ``ignore`` for an unlabelled item (a ``db-in`` of a task without an answer
        would accept it with no label); ``item_id``, which an import of the file takes as the id, and the other
        columns. ``meta`` (shown on Prodigy's card) adds the scan's ``workbench_score``, ``workbench_issues`` and,
        where it differs from the current label, ``workbench_suggestion``; reading the file back leaves them out.
    """
    from workbench.data import is_missing
    from workbench.export import plain_row

    tagged = task == "token-classification"
    by_item: dict[Any, dict[str, Any]] = ({str(r["item_id"]): {str(k): v for k, v in r.items()}
                                           for r in scores.to_dict("records")} if scores is not None else {})
    options = [{"id": c, "text": c} for c in classes]
    tasks = []
    for source in frame.to_dict("records"):
        row = plain_row(source)
        meta = {k: v for k, v in (row.get("meta") or {}).items() if not str(k).startswith("workbench_")} \
            if isinstance(row.get("meta"), dict) else {}
        out: dict[str, Any] = {"text": row["text"]} if not tagged else {}
        current = row.get("tags") if tagged else row.get("label")
        if tagged:
            out.update(_tagged(row, current))
            out["_view_id"] = "ner_manual"
        else:
            out.update(options=options, config={"choice_style": "single"}, _view_id="choice")
            if isinstance(current, str):
                out["accept"] = [current]
        out["answer"] = "accept" if current is not None else "ignore"
        out["item_id"] = row["item_id"]
        scored = by_item.get(str(row["item_id"]))
        if scored is not None and not is_missing(scored["score"]):
            meta["workbench_score"] = round(float(scored["score"]), 4)
            if isinstance(scored["issues"], (list, tuple)) and scored["issues"]:
                meta["workbench_issues"] = ",".join(scored["issues"])
            suggestion = _suggestion(scored, current, row, tagged=tagged)
            if suggestion is not None:
                meta["workbench_suggestion"] = suggestion
        if meta:
            out["meta"] = meta
        out.update((k, v) for k, v in row.items()
                   if k not in out and k not in _DECISION_FIELDS and v is not None
                   and k not in ("label", "tags", "content_hash", "source_text", "token_starts", "meta")
                   and not k.startswith("workbench_"))
        tasks.append(out)
    return tasks


def _tagged(row: dict[str, Any], tags: Sequence[str] | None) -> dict[str, Any]:
    """A sentence as ``ner.manual`` writes it: the text, its tokens with offsets, the entities as spans over them."""
    from workbench.bio import spans as tag_spans
    from workbench.spans import token_offsets

    tokens = list(row["tokens"])
    text, starts = token_offsets(tokens, text=row.get("source_text"), starts=row.get("token_starts"))
    ends = [s + len(t) for s, t in zip(starts, tokens)]
    out: dict[str, Any] = {
        "text": text,
        "tokens": [{"text": t, "start": s, "end": e, "id": i, "ws": text[e:e + 1].isspace()}
                   for i, (t, s, e) in enumerate(zip(tokens, starts, ends))]}
    if tags is not None:
        out["spans"] = [{"start": starts[first], "end": ends[stop - 1], "token_start": first,
                         "token_end": stop - 1, "label": kind} for first, stop, kind in tag_spans(list(tags))]
    return out


def _suggestion(scored: dict[str, Any], current: Any, row: dict[str, Any], *, tagged: bool) -> str | None:
    """The scan's suggestion in words, where it differs from the current label: ``joy (0.98)``, or for a sentence
    its suggested entities, ``ORG: EU | MISC: German``."""
    from workbench.data import is_missing
    from workbench.export import differing_suggestion

    differs = differing_suggestion(scored["suggested_label"], current, tokens=row["tokens"] if tagged else None)
    if differs is None:
        return None
    prob = "" if is_missing(scored["suggested_prob"]) else f" ({float(scored['suggested_prob']):.2f})"
    if tagged:
        sentence = _tagged(row, differs)
        return (" | ".join(f"{s['label']}: {sentence['text'][s['start']:s['end']]}" for s in sentence["spans"])
                or "no entities") + prob
    return str(differs) + prob
