"""Character-offset entity spans (what Doccano, spaCy, Prodigy and Label Studio exports hold) to and from IOB2 tags.

The store keeps NER data as tokens with one IOB2 tag each. A span file gives a text and its entities as character
offsets; :func:`spans_to_tokens` cuts the text into words and punctuation marks (and also at every span edge, so a
span that ends inside a word, ``iPhone`` in ``iPhone15``, still lines up with whole tokens) and tags them.
:func:`tokens_to_spans` goes back: the offsets of each run of tags in the text, the text rebuilt from the tokens
when there is none.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Sequence
from typing import Any

from workbench.bio import spans as tag_spans
from workbench.errors import ValueProblem

#: Columns read as character-offset spans, in this order (a ``label`` column holding span lists is read too).
SPAN_COLUMNS = ("spans", "entities")
#: Words (letters, digits, underscore) and single punctuation marks: every character but whitespace is in a token.
_TOKEN = re.compile(r"\w+|[^\w\s]")
_START_KEYS = ("start", "start_offset", "start_char")
_END_KEYS = ("end", "end_offset", "end_char")
_LABEL_KEYS = ("label", "entity_group", "entity", "type", "tag")


def split_words(text: str) -> list[str]:
    """``text`` cut as a span import cuts it: words and single punctuation marks (a tagger's input from a text)."""
    return _TOKEN.findall(text)


def looks_like_spans(value: Any) -> bool:
    """Whether ``value`` (a cell) is a list of spans: ``[start, end, label]`` triples or dicts with offsets."""
    if not isinstance(value, (list, tuple)) or not value:
        return False
    first = value[0]
    if isinstance(first, dict):
        return any(k in first for k in _START_KEYS) and any(k in first for k in _END_KEYS)
    return isinstance(first, (list, tuple)) and len(first) == 3 and all(_is_offset(v) for v in first[:2])


def _is_offset(value: Any) -> bool:
    """A whole number; a float one too (a table column of offsets with a gap in it turns to floats)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, numbers.Integral) or (isinstance(value, float) and value.is_integer())


def _first_given(span: dict[str, Any], keys: Sequence[str]) -> Any:
    """The first of ``keys`` that ``span`` holds a value for (a Parquet struct has every key, None where unset)."""
    for key in keys:
        value = span.get(key)
        if value is not None and not (isinstance(value, float) and value != value):
            return value
    return None


def read_spans(value: Any, *, where: str) -> list[tuple[int, int, str]]:
    """One cell's spans as ``(start, end, label)``, sorted by start.

    Parameters
    ----------
    value : list
        ``[start, end, label]`` triples (Doccano's classic export), or dicts with ``start``/``end`` (``start_offset``
        / ``end_offset``, ``start_char`` / ``end_char``) and ``label`` (``entity_group``, ``entity``, ``type``,
        ``tag``; a one-item ``labels`` list as Label Studio writes it).
    where : str
        Names the row in errors.
    """
    if not isinstance(value, (list, tuple)):
        raise ValueProblem(f"{where}: expected a list of spans ([start, end, label] or {{'start', 'end', 'label'}}), "
                           f"got {type(value).__name__} ({str(value)[:60]!r})")
    spans = []
    for j, span in enumerate(value):
        if isinstance(span, dict):
            start, end = _first_given(span, _START_KEYS), _first_given(span, _END_KEYS)
            label = _first_given(span, _LABEL_KEYS)
            listed: Any = span.get("labels")
            listed = listed.tolist() if hasattr(listed, "tolist") else listed  # a Parquet list cell
            if label is None and isinstance(listed, (list, tuple)) and len(listed) == 1:
                label = listed[0]
        elif isinstance(span, (list, tuple)) and len(span) == 3:
            start, end, label = span
        else:
            raise ValueProblem(f"{where}: span {j} is {str(span)[:60]!r}; give [start, end, label] or a dict with "
                               "start, end and label")
        if not (_is_offset(start) and _is_offset(end)):
            raise ValueProblem(f"{where}: span {j} ({str(span)[:60]!r}) needs whole-number start and end offsets")
        if not isinstance(label, str) or not label.strip():
            raise ValueProblem(f"{where}: span {j} ({str(span)[:60]!r}) has no label; each span needs an entity type "
                               "such as 'PER'")
        spans.append((int(start), int(end), label.strip()))
    return sorted(spans)


def spans_to_tokens(text: str, spans: Sequence[tuple[int, int, str]], *, tokens: Sequence[str] | None = None,
                    where: str) -> tuple[list[str], list[str], list[int]]:
    """Tokens, IOB2 tags and each token's start offset for ``text`` with its character-offset entities.

    Parameters
    ----------
    text : str
    spans : sequence of (start, end, label)
        ``text[start:end]`` is the entity; whitespace at its edges is left out. Spans may not overlap: one token
        holds one tag.
    tokens : sequence of str, optional
        The text's tokens, in order (a span export of this package writes them), kept as they are rather than
        cut again by words and punctuation; still cut at a span edge inside one.
    where : str
        Names the row in errors.

    Returns
    -------
    tokens, tags, starts : list of str, list of str, list of int
        Each ``(n_tokens,)``.
    """
    trimmed = []
    for start, end, label in spans:
        if not 0 <= start < end <= len(text):
            raise ValueProblem(f"{where}: span ({start}, {end}, {label!r}) lies outside the text, which has "
                               f"{len(text)} characters (offsets count from 0, end exclusive)")
        piece = text[start:end]
        lead, trail = len(piece) - len(piece.lstrip()), len(piece) - len(piece.rstrip())
        if lead == len(piece):
            raise ValueProblem(f"{where}: span ({start}, {end}, {label!r}) covers only whitespace")
        trimmed.append((start + lead, end - trail, label))
    for (s1, e1, l1), (s2, e2, l2) in zip(trimmed, trimmed[1:]):
        if s2 < e1:
            raise ValueProblem(f"{where}: spans {text[s1:e1]!r} ({s1}-{e1}, {l1}) and {text[s2:e2]!r} ({s2}-{e2}, "
                               f"{l2}) overlap; IOB2 tags hold one entity per token, so keep one of them")
    cuts = sorted({c for s, e, _ in trimmed for c in (s, e)})
    bounds = []
    for first, last in (_token_bounds(text, tokens, where=where) if tokens is not None else
                        ((m.start(), m.end()) for m in _TOKEN.finditer(text))):
        start = first
        for cut in (c for c in cuts if first < c < last):
            bounds.append((start, cut))
            start = cut
        bounds.append((start, last))
    tags = ["O"] * len(bounds)
    for s, e, label in trimmed:
        inside = [i for i, (ts, te) in enumerate(bounds) if ts >= s and te <= e]
        tags[inside[0]] = f"B-{label}"
        for i in inside[1:]:
            tags[i] = f"I-{label}"
    return [text[s:e] for s, e in bounds], tags, [s for s, _ in bounds]


def _token_bounds(text: str, tokens: Sequence[str], *, where: str) -> list[tuple[int, int]]:
    """Where each of ``tokens`` lies in ``text``, found in order; every other character must be whitespace."""
    bounds, pos = [], 0
    for j, token in enumerate(tokens):
        start = text.find(token, pos) if isinstance(token, str) and token else -1
        if start < 0 or text[pos:start].strip():
            raise ValueProblem(f"{where}: token {j} ({token!r}) is not next in the text after {text[:pos][-30:]!r}; "
                               "the tokens must spell the text in order (or leave the tokens out to cut the text "
                               "anew)")
        bounds.append((start, start + len(token)))
        pos = start + len(token)
    if text[pos:].strip():
        raise ValueProblem(f"{where}: the text goes on after the last token ({text[pos:][:30]!r}); the tokens must "
                           "spell the whole text")
    return bounds


def tokens_to_spans(tokens: Sequence[str], tags: Sequence[str], *, text: str | None = None,
                    starts: Sequence[int] | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The text and its entities as character offsets, from tokens and IOB2 tags.

    Parameters
    ----------
    tokens, tags : sequence of str
        ``(n_tokens,)`` each.
    text, starts : optional
        The text the tokens came from and each token's offset in it (kept by a span import). Without them the
        text is the tokens joined by single spaces.

    Returns
    -------
    text : str
    spans : list of dict
        ``{"start", "end", "label", "text"}`` per entity, in order.
    """
    text, starts = token_offsets(tokens, text=text, starts=starts)
    spans = []
    for first, stop, kind in tag_spans(tags):
        start, end = starts[first], starts[stop - 1] + len(tokens[stop - 1])
        spans.append({"start": start, "end": end, "label": kind, "text": text[start:end]})
    return text, spans


def token_offsets(tokens: Sequence[str], *, text: str | None = None,
                  starts: Sequence[int] | None = None) -> tuple[str, list[int]]:
    """The text the tokens are read in and each token's offset in it: ``text`` and ``starts`` where they agree with
    the tokens (a span import kept them), else the tokens joined by single spaces."""
    if text is None or starts is None or len(starts) != len(tokens) or any(
            text[s:s + len(t)] != t for s, t in zip(starts, tokens)):
        starts, pos = [], 0
        for token in tokens:
            starts.append(pos)
            pos += len(token) + 1
        return " ".join(tokens), starts
    return text, list(starts)
