"""BIO (IOB2) tag sequences: validation, repair, spans and the tag set of entity types."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def split_tag(tag: str) -> tuple[str, str | None]:
    """Split ``"B-PER"`` into ``("B", "PER")``; ``"O"`` gives ``("O", None)``.

    Raises
    ------
    ValueError
        If the tag is neither ``O`` nor ``B-``/``I-`` followed by a type.
    """
    if tag == "O":
        return "O", None
    prefix, sep, kind = tag.partition("-")
    if sep != "-" or prefix not in ("B", "I") or not kind:
        raise ValueError(f"tag {tag!r} is not IOB2: expected 'O', 'B-TYPE' or 'I-TYPE'")
    return prefix, kind


def is_tag(label: str) -> bool:
    """Whether ``label`` is an IOB2 tag (``O``, ``B-X``, ``I-X``) rather than, say, an entity type."""
    try:
        split_tag(label)
    except ValueError:
        return False
    return True


def find_bio_error(tags: Sequence[str]) -> tuple[int, str] | None:
    """Return ``(position, reason)`` of the first IOB2 violation, or ``None``.

    An ``I-X`` tag must follow ``B-X`` or ``I-X`` of the same type.
    """
    prev_kind: str | None = None
    for i, tag in enumerate(tags):
        try:
            prefix, kind = split_tag(tag)
        except ValueError as exc:
            return i, str(exc)
        if prefix == "I" and prev_kind != kind:
            before = tags[i - 1] if i else "the start of the sentence"
            return i, f"'{tag}' follows {before!r}; an entity must start with 'B-{kind}'"
        prev_kind = kind
    return None


#: Prefixes of the BIOES (IOBES) and BILOU schemes, and BMES's middle, as IOB2 spells them: a one-token entity starts
#: one (``S-``/``U-`` -> ``B-``); an entity's last or middle token continues it (``E-``/``L-``/``M-`` -> ``I-``).
OTHER_PREFIXES = {"S": "B", "U": "B", "E": "I", "L": "I", "M": "I"}


def as_iob2(tags: Sequence[str], *, io: bool = False) -> list[str]:
    """``tags`` written in IOB2: BIOES / BILOU prefixes become IOB2's, IOB2 tags stay as they are.

    The rewrite loses nothing: where an entity ends is where the next ``B-`` or ``O`` starts. With ``io``, a bare
    entity type (IO tags: ``PER PER O LOC``) becomes an entity, one per run of a type (``B-PER I-PER O B-LOC``);
    IO cannot mark two entities of one type side by side, so such a pair becomes one.
    """
    out: list[str] = []
    run: str | None = None  # the entity type the previous token belongs to
    for tag in tags:
        prefix, sep, kind = tag.partition("-")
        if tag == "O":
            run = None
        elif sep and kind and prefix in ("B", "I"):
            run = kind
        elif sep and kind and prefix in OTHER_PREFIXES:
            tag, run = f"{OTHER_PREFIXES[prefix]}-{kind}", kind
        elif io:
            tag, run = f"{'I' if run == tag else 'B'}-{tag}", tag
        out.append(tag)
    return out


def repair_bio(tags: Sequence[str]) -> list[str]:
    """Turn IOB1-style sequences into IOB2 by starting each stray ``I-X`` as ``B-X``."""
    out: list[str] = []
    prev_kind: str | None = None
    for tag in tags:
        prefix, kind = split_tag(tag)
        if prefix == "I" and prev_kind != kind:
            tag = f"B-{kind}"
        out.append(tag)
        prev_kind = kind
    return out


def decode_tags(probs: np.ndarray, labels: Sequence[str]) -> list[str]:
    """The most probable valid IOB2 sequence for one sentence's per-word tag probabilities.

    A tagger scores each word on its own, so the per-word argmax can put ``I-PER`` after ``O``: an entity that strict
    IOB2 (seqeval's strict mode, conlleval's CoNLL-2003 reading aside) does not count, and that files written from it
    cannot be imported back. This picks, by Viterbi over the transitions IOB2 allows, the sequence with the highest
    product of word probabilities; where the argmax is already valid (most sentences) it is that argmax.

    Parameters
    ----------
    probs : numpy.ndarray, shape (n_words, n_tags)
        Per-word probabilities over ``labels``.
    labels : sequence of str, length n_tags
        The tags, ``O`` / ``B-X`` / ``I-X``.

    Returns
    -------
    list of str, length n_words
    """
    probs = np.asarray(probs, dtype=np.float64)
    best = probs.argmax(1) if len(probs) else np.zeros(0, dtype=np.int64)
    tags = [labels[k] for k in best]
    if find_bio_error(tags) is None:
        return tags
    kinds = np.array([split_tag(t)[1] or "" for t in labels], dtype=object)
    inside = np.array([t.startswith("I-") for t in labels])
    # an I-X may only follow B-X or I-X (from, to), and never start a sentence
    allowed = ~inside[None, :] | (kinds[:, None] == kinds[None, :]) & (kinds[:, None] != "")
    penalty = np.where(allowed, 0.0, -np.inf)
    logp = np.log(np.clip(probs, 1e-12, None))
    score = np.where(inside, -np.inf, logp[0])
    back = np.zeros((len(probs), len(labels)), dtype=np.int64)
    for t in range(1, len(probs)):
        total = score[:, None] + penalty  # (from, to)
        back[t] = total.argmax(0)
        score = total.max(0) + logp[t]
    path = [int(score.argmax())]
    for t in range(len(probs) - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return [labels[k] for k in reversed(path)]


def spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Entity spans ``(start, end_exclusive, type)`` of a valid IOB2 sequence."""
    out: list[tuple[int, int, str]] = []
    start: int | None = None
    kind: str | None = None
    for i, tag in enumerate(tags):
        prefix, k = split_tag(tag)
        if prefix != "I" and start is not None:
            out.append((start, i, kind or ""))
            start = None
        if prefix == "B":
            start, kind = i, k
    if start is not None:
        out.append((start, len(tags), kind or ""))
    return out


def tag_set(entity_types: Iterable[str]) -> list[str]:
    """All IOB2 tags for the given entity types, ``O`` first, then ``B-X, I-X`` per type."""
    out = ["O"]
    for kind in sorted(set(entity_types)):
        out += [f"B-{kind}", f"I-{kind}"]
    return out


def retag_span(tags: Sequence[str], index: int, entity_type: str | None) -> list[str]:
    """Give the entity at token ``index`` a new type, keeping the sequence valid IOB2.

    Inside a span, the whole span changes (``B-ORG I-ORG`` -> ``B-LOC I-LOC``); ``None`` (or ``"O"``)
    removes the span. On an ``O`` token a one-token span ``B-TYPE`` starts there.

    Raises
    ------
    IndexError
        When ``index`` is not a token position.
    """
    if not 0 <= index < len(tags):
        raise IndexError(f"token {index} is out of range: the sentence has {len(tags)} tokens")
    out = list(tags)
    kind = None if entity_type in (None, "O") else entity_type
    for start, end, _ in spans(tags):
        if start <= index < end:
            for j in range(start, end):
                out[j] = "O" if kind is None else (f"B-{kind}" if j == start else f"I-{kind}")
            return out
    if kind is not None:
        out[index] = f"B-{kind}"
    return out


def entity_types(tag_names: Iterable[str]) -> list[str]:
    """The entity types of a tag set, in first-seen order (``["B-PER", "I-PER", "O"]`` -> ``["PER"]``)."""
    out: list[str] = []
    for tag in tag_names:
        _, kind = split_tag(tag)
        if kind and kind not in out:
            out.append(kind)
    return out
