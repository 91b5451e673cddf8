"""Tag consistency in token classification: the same words tagged one way almost everywhere and another way here.

An annotator who tags "Wimbledon" as a place in 7 sentences and as an event in 36 has, most likely, made 7 slips (or
the 36 are the slips; either way a person should look). The check needs no model: it reads every entity span in the
corpus, finds every other occurrence of the same words (tagged as an entity of another type, or not tagged at all),
and flags the occurrences whose reading is a small minority of that surface's readings. Seconds for CoNLL-2003's
20,000 sentences, where it flags 48 test sentences of which 24 are among the 186 that CoNLL++ corrected (9x the base
rate; ``benchmarks/tag_consistency.py``). It complements the fold taggers: they see context, this sees the corpus.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pandas as pd

from workbench.bio import spans
from workbench.errors import DataError

#: What a flagged occurrence looks like; ``given``/``suggested`` are entity types, or ``O`` for untagged words.
SPAN_COLUMNS = ["item_id", "start", "end", "surface", "given", "suggested", "given_share", "suggested_share",
                "occurrences"]
UNTAGGED = "O"


def inconsistent_spans(tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[str] | None], *,
                       item_ids: Sequence[str] | None = None, max_share: float = 0.2, min_count: int = 3,
                       flag: Sequence[bool] | None = None) -> pd.DataFrame:
    """Occurrences of an entity's words whose reading (entity type, or untagged) is rare for those words.

    Parameters
    ----------
    tokens, tags : sequences of n sentences
        Words and their IOB2 tags; a sentence whose tags are None (not yet tagged) is skipped.
    item_ids : sequence of str, length n, optional
        Default: the sentence positions.
    max_share : float
        An occurrence is flagged when its reading covers at most this share of the surface's occurrences.
    min_count : int
        Surfaces seen fewer times than this are never judged.
    flag : sequence of bool, length n, optional
        Sentences whose occurrences may be flagged (all count as evidence); default all.

    Returns
    -------
    pandas.DataFrame
        One row per flagged occurrence, rarest reading first: item_id, start, end (exclusive word positions),
        surface (the words, space-joined), given (its reading: entity type or ``O``), suggested (the surface's
        most frequent reading), given_share and suggested_share (of the surface's occurrences), occurrences.
    """
    if len(tokens) != len(tags):
        raise DataError(f"{len(tokens)} token lists but {len(tags)} tag lists; give one tag list per sentence")
    if not 0 < max_share < 0.5:
        raise DataError(f"max_share={max_share}: give a share between 0 and 0.5 (a minority reading)")
    if min_count < 2:
        raise DataError(f"min_count={min_count}: a surface must be seen at least twice to be inconsistent")
    ids = [str(i) for i in item_ids] if item_ids is not None else [str(i) for i in range(len(tokens))]
    entities = [spans(list(t)) if t is not None else [] for t in tags]
    surfaces = {tuple(words[a:b]) for words, found in zip(tokens, entities, strict=True) for a, b, _ in found}
    lengths = sorted({len(s) for s in surfaces})
    readings: dict[tuple[str, ...], list[tuple[int, int, str]]] = {}
    for k, (words, tg, found) in enumerate(zip(tokens, tags, entities, strict=True)):
        if tg is None:
            continue
        typed = {(a, b): kind for a, b, kind in found}
        for n in lengths:
            for i in range(len(words) - n + 1):
                surface = tuple(words[i:i + n])
                if surface not in surfaces:
                    continue
                reading = typed.get((i, i + n))
                if reading is None:
                    # untagged only when no entity covers or continues past these words; words inside a longer
                    # entity ("York" in "New York Times") are that entity's, not a reading of their own
                    untagged = all(t == UNTAGGED for t in tg[i:i + n]) and (i + n == len(tg)
                                                                            or not tg[i + n].startswith("I-"))
                    if not untagged:
                        continue
                    reading = UNTAGGED
                readings.setdefault(surface, []).append((k, i, reading))
    rows = []
    for surface, found_at in readings.items():
        if len(found_at) < min_count:
            continue
        counts = Counter(r for _, _, r in found_at)
        majority, n_majority = counts.most_common(1)[0]
        for k, i, reading in found_at:
            share = counts[reading] / len(found_at)
            if reading != majority and share <= max_share and (flag is None or flag[k]):
                rows.append({"item_id": ids[k], "start": i, "end": i + len(surface), "surface": " ".join(surface),
                             "given": reading, "suggested": majority, "given_share": share,
                             "suggested_share": n_majority / len(found_at), "occurrences": len(found_at)})
    frame = pd.DataFrame(rows, columns=SPAN_COLUMNS)
    return frame.sort_values(["given_share", "item_id", "start"], kind="stable").reset_index(drop=True)


def apply_readings(tags: Sequence[str], found: pd.DataFrame) -> list[str]:
    """``tags`` with each flagged span of one sentence (rows of :func:`inconsistent_spans`) retagged as suggested.

    Overlapping spans (``New York`` and ``York``) are applied shortest first, so the longer surface's reading wins.
    """
    out = list(tags)
    ordered = found.assign(length=found["end"] - found["start"]).sort_values("length", kind="stable")
    for start, end, kind in zip(ordered["start"].tolist(), ordered["end"].tolist(), ordered["suggested"].tolist(),
                                strict=True):
        for j in range(start, end):
            out[j] = UNTAGGED if kind == UNTAGGED else f"{'B' if j == start else 'I'}-{kind}"
        if kind == UNTAGGED and end < len(out) and out[end].startswith("I-"):
            out[end] = "B-" + out[end][2:]  # what continued the removed entity now starts its own
    return out
