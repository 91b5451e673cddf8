"""Text normalisation for hashing and comparison, and the stable ids derived from it.

The text a user sees is never rewritten: normalisation only feeds the content hash,
duplicate detection and ids, and the form used is recorded with the dataset.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

from workbench.errors import DataError

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


def canonical_spellings(counts: Mapping[str, int]) -> dict[str, str]:
    """Each label spelled like another (same :func:`label_key`), mapped to the spelling most items carry (ties: by
    name). ``counts``: items per label. The most common spelling itself, and labels with no twin, are left out."""
    groups: dict[str, list[str]] = {}
    for lab in counts:
        groups.setdefault(label_key(lab), []).append(lab)
    out = {}
    for group in groups.values():
        main = max(group, key=lambda v: (counts[v], v))
        out.update({lab: main for lab in group if lab != main})
    return out


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


def text_list(texts: str | Iterable[object], *, purpose: str = "to embed") -> list[str]:
    """``texts`` as a list of strings: one string is one text (not its characters); anything else that is not
    a string is a DataError naming its position.
    """
    out = [texts] if isinstance(texts, str) else list(texts)
    bad = next((i for i, t in enumerate(out) if not isinstance(t, str)), None)
    if bad is not None:
        raise DataError(f"text {bad} {purpose} is a {type(out[bad]).__name__} ({out[bad]!r}), not a string")
    return out  # type: ignore[return-value]
