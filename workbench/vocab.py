"""How much of a dataset's text a model's vocabulary cannot read.

An English encoder given Chinese, Thai or emoji-heavy texts turns most of their characters into its unknown
token, so every such text embeds to nearly the same vector: the embedding view learns nothing from them and the
neighbour score, near-duplicate, conflicting-duplicate and outlier checks, which read the embeddings, flag texts
that merely share the unknown token. Nothing fails; the scan's results are quietly wrong. Counting the unknown
tokens lets the report say so and name the remedy (a model that knows the language).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Texts tokenised to estimate the share; evenly spaced through the data, so the estimate is deterministic.
SAMPLE_TEXTS = 2000
#: A text is "mostly unknown" when at least this share of its word pieces is the unknown token.
MOSTLY = 0.5


def load_fast_tokenizer(model_dir: str | os.PathLike[str]) -> tuple[Any, int | None] | None:
    """The ``tokenizers`` tokenizer of a model folder and the id of its unknown token.

    Read from ``tokenizer.json`` with the ``tokenizers`` library alone (milliseconds; loading it through
    ``transformers`` costs a second and more, which a warm re-scan that reads its embeddings from the cache would
    pay for nothing).

    Returns
    -------
    tuple or None
        ``(tokenizer, unk_id)``; ``unk_id`` is None for a vocabulary with no unknown token (byte-level BPE reads
        every byte). None when the folder has no ``tokenizer.json`` (a slow-only tokenizer).
    """
    path = Path(model_dir) / "tokenizer.json"
    if not path.is_file():
        return None
    import tokenizers

    try:
        text = path.read_text(encoding="utf-8")
        spec = json.loads(text).get("model") or {}
        tokenizer = tokenizers.Tokenizer.from_str(text)
    except Exception:  # the count only adds a note: a file this library cannot read must not fail a scan
        return None
    tokenizer.no_padding()  # a saved file may pad every text to its max length: padding is not the text's
    if spec.get("type") == "Unigram":  # a SentencePiece vocabulary names its unknown piece by position
        unk_id = spec.get("unk_id")
    else:
        unk = spec.get("unk_token")
        unk_id = tokenizer.token_to_id(unk) if unk else None
    return tokenizer, (None if unk_id is None else int(unk_id))


def count_unknown_tokens(texts: Sequence[str], model_dir: str | os.PathLike[str], *,
                         sample: int = SAMPLE_TEXTS) -> dict[str, Any] | None:
    """Estimate how many of the texts' word pieces a model's vocabulary does not know.

    Parameters
    ----------
    texts : sequence of str
        ``(n,)`` the texts the model embeds.
    model_dir : path
        The model's folder (:func:`workbench.models.resolve_model`).
    sample : int
        At most this many texts are tokenised, evenly spaced through ``texts``.

    Returns
    -------
    dict or None
        ``n_unknown`` and ``n_tokens`` (word pieces, special tokens left out), ``n_mostly_unknown`` (texts with at
        least :data:`MOSTLY` of their pieces unknown), ``n_read`` (texts tokenised), ``n_texts``, and up to three
        ``examples`` of mostly-unknown texts; None when the vocabulary has no unknown token, the folder has no
        ``tokenizer.json``, or there are no texts.
    """
    loaded = load_fast_tokenizer(model_dir)
    if loaded is None or not len(texts):
        return None
    tokenizer, unk_id = loaded
    if unk_id is None:
        return None
    read = _sample(texts, sample)
    ids = [e.ids for e in tokenizer.encode_batch(read, add_special_tokens=False)]
    return {**tally_unknown(ids, unk_id=unk_id, texts=read), "n_texts": len(texts)}


def sample_token_counts(texts: Sequence[str], model_dir: str | os.PathLike[str], *, max_length: int,
                        sample: int = SAMPLE_TEXTS) -> np.ndarray | None:
    """How many tokens the model reads of a sample of the texts, its special tokens included, cut at ``max_length``.

    Parameters
    ----------
    texts : sequence of str
        ``(n,)``
    model_dir : path
        The model's folder (:func:`workbench.models.resolve_model`).
    max_length : int
        The encoder's cut.
    sample : int
        At most this many texts are tokenised, evenly spaced through ``texts``.

    Returns
    -------
    numpy.ndarray or None
        ``(min(n, sample),)`` int64; None when the folder has no ``tokenizer.json`` or there are no texts.
    """
    loaded = load_fast_tokenizer(model_dir)
    if loaded is None or not len(texts):
        return None
    counts = [len(e.ids) for e in loaded[0].encode_batch(_sample(texts, sample), add_special_tokens=True)]
    return np.minimum(np.array(counts, dtype=np.int64), max_length)


def _sample(texts: Sequence[str], sample: int) -> list[str]:
    """At most ``sample`` of the texts, evenly spaced through them (so an estimate from them is deterministic)."""
    picks = np.unique(np.linspace(0, len(texts) - 1, num=min(sample, len(texts))).round().astype(int))
    return [str(texts[i]) for i in picks]


def tally_unknown(ids: Sequence[Sequence[int]], *, unk_id: int, texts: Sequence[str] | None = None,
                  special_ids: Sequence[int] = ()) -> dict[str, Any]:
    """Count the unknown token in tokenised texts.

    Parameters
    ----------
    ids : sequence of sequences of int
        ``(n_texts, tokens)`` each text's token ids.
    unk_id : int
        The vocabulary's unknown token.
    texts : sequence of str, optional
        ``(n_texts,)`` the texts, for ``examples``.
    special_ids : sequence of int
        Ids not counted as the text's own ([CLS], [SEP], padding) when ``ids`` carry them.

    Returns
    -------
    dict
        ``n_unknown``, ``n_tokens``, ``n_mostly_unknown`` (texts with at least :data:`MOSTLY` of their pieces
        unknown), ``n_read`` (texts counted) and up to three ``examples`` of mostly-unknown texts.
    """
    special = set(special_ids) - {unk_id}
    unknown = np.array([list(row).count(unk_id) for row in ids], dtype=np.int64)
    lengths = np.array([len(row) - sum(1 for t in row if t in special) if special else len(row) for row in ids],
                       dtype=np.int64)
    mostly = (lengths > 0) & (unknown >= MOSTLY * lengths)
    examples = [str(texts[i])[:60] for i in np.flatnonzero(mostly)[:3]] if texts is not None else []
    return {"n_unknown": int(unknown.sum()), "n_tokens": int(lengths.sum()), "n_mostly_unknown": int(mostly.sum()),
            "n_read": len(ids), "examples": examples}


#: Unknown words are worth a note past this share of word pieces, or of texts that are mostly unknown.
UNKNOWN_SHARE = 0.05


def unknown_tokens_matter(unknown: dict[str, Any] | None) -> bool:
    """Whether counts from :func:`tally_unknown` are worth a note: a stray emoji in a few texts is not, a corpus
    the model mostly cannot read is."""
    return unknown is not None and (unknown["n_unknown"] >= UNKNOWN_SHARE * max(unknown["n_tokens"], 1)
            or unknown["n_mostly_unknown"] >= UNKNOWN_SHARE * max(unknown["n_read"], 1))


def describe_unknown(unknown: dict[str, Any], *, texts: str = "texts") -> str:
    """``72% of the word pieces are unknown to the model's vocabulary, and 389 texts are mostly unknown (e.g. ...)``:
    the first half of a note, which the scan's report and a run's status each finish with what it means there."""
    total = unknown.get("n_texts", unknown["n_read"])
    estimated = f" (of {unknown['n_read']} {texts} read, evenly spaced)" if unknown["n_read"] < total else ""
    examples = ", ".join(map(repr, unknown.get("examples") or []))
    return (f"{unknown['n_unknown'] / max(unknown['n_tokens'], 1):.0%} of the word pieces are unknown to the model's "
            f"vocabulary, and {unknown['n_mostly_unknown']} {texts}{estimated} are mostly unknown"
            + (f" (e.g. {examples})" if examples else ""))
