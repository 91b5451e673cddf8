"""Text normalisation for hashing and comparison, and the stable ids derived from it.

The text a user sees is never rewritten: normalisation only feeds the content hash,
duplicate detection and ids, and the form used is recorded with the dataset.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence

_WHITESPACE = re.compile(r"\s+")

#: The normalisation every dataset gets unless asked otherwise.
DEFAULT_NORMALIZATION = "NFC+whitespace"
NORMALIZATIONS = ("none", "NFC", "NFC+whitespace", "NFKC+whitespace")

# Tokens are joined with a unit separator so ["a b"] and ["a", "b"] hash differently.
_TOKEN_JOIN = "\x1f"


_LABEL_SEPARATORS = re.compile(r"[\s_\-.]+")


def label_key(label: str) -> str:
    """What two spellings of one class name share: ``Refund request``, ``refund_request`` and ``refund-request ``
    all give ``refund request`` (NFKC, case-folded, runs of spaces / ``_`` / ``-`` / ``.`` as one space, stripped).
    """
    return _LABEL_SEPARATORS.sub(" ", unicodedata.normalize("NFKC", label).casefold()).strip()


def label_variants(labels: Iterable[str]) -> dict[str, list[str]]:
    """Each label that shares its :func:`label_key` with another, mapped to those others (sorted)."""
    groups: dict[str, list[str]] = {}
    for lab in dict.fromkeys(labels):
        groups.setdefault(label_key(lab), []).append(lab)
    return {lab: sorted(o for o in group if o != lab) for group in groups.values() if len(group) > 1 for lab in group}


def normalize_text(text: str, *, normalization: str = DEFAULT_NORMALIZATION) -> str:
    """Return the normalised form of ``text`` used for hashing and duplicate checks.

    Parameters
    ----------
    text : str
        The text as the user supplied it.
    normalization : {"none", "NFC", "NFC+whitespace", "NFKC+whitespace"}
        ``NFC``/``NFKC`` apply that unicode normal form; ``+whitespace`` also
        collapses runs of whitespace to one space and strips both ends.
    """
    if normalization == "none":
        return text
    form, _, rest = normalization.partition("+")
    out = unicodedata.normalize(form, text)  # type: ignore[arg-type]
    if rest == "whitespace":
        out = _WHITESPACE.sub(" ", out).strip()
    return out


def content_hash(content: str | Sequence[str], *, normalization: str = DEFAULT_NORMALIZATION) -> str:
    """Hash a text (or a token list) after normalisation.

    Returns
    -------
    str
        64 hex characters of SHA-256.
    """
    if isinstance(content, str):
        norm = normalize_text(content, normalization=normalization)
    else:
        norm = _TOKEN_JOIN.join(normalize_text(t, normalization=normalization) for t in content)
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()


def make_item_ids(hashes: Iterable[str], *, prefix: str = "") -> list[str]:
    """Derive stable ids from content hashes.

    The id depends on the content, not on the row's position, so re-loading a file
    with rows inserted or reordered gives every unchanged item the same id. Repeated
    contents get ``~2``, ``~3`` ... in order of appearance.

    Parameters
    ----------
    hashes : iterable of str
        Content hashes, one per item, in row order.
    prefix : str
        Put before every id (e.g. the split name), so the same text in two splits
        gets two ids.
    """
    seen: dict[str, int] = {}
    ids = []
    for h in hashes:
        key = prefix + h[:16]
        n = seen.get(key, 0) + 1
        seen[key] = n
        ids.append(key if n == 1 else f"{key}~{n}")
    return ids
