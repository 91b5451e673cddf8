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
    frame = pd.DataFrame.from_records(rows)
    frame.attrs["source_rows"] = Held(np.array(kept))  # messages name the file's own objects
    return frame, notes
