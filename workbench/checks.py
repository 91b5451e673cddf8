"""Data checks beyond wrong labels, each registered by name: duplicates, conflicts, outliers, junk, imbalance,
label names spelled two ways.

A check is a class with one method, :meth:`Check.run`, registered with :func:`register`;
:func:`run_checks` runs them all (or the ones named). Add a check without touching
any if-chain::

    @register("too_long")
    class TooLong(Check):
        def run(self, ctx):
            ...
"""

from __future__ import annotations

import os
import re
import unicodedata
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.brief import BriefRepr
from workbench.corpus_cache import array_key, cached_arrays
from workbench.errors import DataError
from workbench.normalize import canonical_spellings, normalize_text

ISSUE_COLUMNS = ["item_id", "issue", "group", "detail"]


@dataclass(repr=False)
class CheckContext(BriefRepr):
    """What checks look at. Arrays are aligned with ``item_ids``.

    Attributes
    ----------
    item_ids : list of str, ``(n,)``
    texts : list of str, ``(n,)``
    labels : list of str or None, ``(n,)``
    normalization : str
    embeddings : numpy.ndarray, optional, ``(n, d)`` unit vectors
    params : dict
        Per-check options, e.g. ``{"near_duplicate": {"threshold": 0.97}}``.
    cache_dir : path, optional
        Where neighbour lists are cached between scans (see :mod:`workbench.corpus_cache`); None: not cached.
    """

    item_ids: list[str]
    texts: list[str]
    labels: list[str | None]
    normalization: str = "NFC+whitespace"
    embeddings: np.ndarray | None = None
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    cache_dir: str | os.PathLike[str] | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def normalized(self) -> list[str]:
        """Every text in the dataset's normal form, computed once per scan and shared by the checks."""
        if "normalized" not in self._cache:
            self._cache["normalized"] = [normalize_text(t, normalization=self.normalization) for t in self.texts]
        norm: list[str] = self._cache["normalized"]
        return norm

    def option(self, check: str, name: str, default: Any) -> Any:
        return self.params.get(check, {}).get(name, default)

    def neighbors(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine k-nearest neighbours from the embeddings, computed once per scan."""
        from workbench.quality import nearest_neighbors, unit_rows

        if self.embeddings is None:
            raise DataError("this check needs embeddings")
        cached = self._cache.get("knn")
        if cached is None or cached[0].shape[1] < k:
            emb = unit_rows(self.embeddings)
            idx, sim = cached_arrays("knn", array_key(emb, k), lambda: nearest_neighbors(emb, k=k),
                                     cache_dir=self.cache_dir)
            cached = self._cache["knn"] = (idx, sim)
        return cached[0][:, :k], cached[1][:, :k]


@dataclass(repr=False)
class CheckResult(BriefRepr):
    """Item-level issues (``item_id, issue, group, detail``) and a summary for the report."""

    name: str
    issues: pd.DataFrame
    summary: dict[str, Any]


class Check(ABC):
    """One data check. Set ``needs_embeddings`` when it reads ``ctx.embeddings``."""

    name = ""
    needs_embeddings = False

    @abstractmethod
    def run(self, ctx: CheckContext) -> CheckResult:
        """Inspect the data and return the items at fault and a summary."""


CHECKS: dict[str, type[Check]] = {}


def register(name: str) -> Callable[[type[Check]], type[Check]]:
    """Class decorator adding a check to :data:`CHECKS` under ``name``."""
    def wrap(cls: type[Check]) -> type[Check]:
        if name in CHECKS:
            raise ValueError(f"a check named {name!r} is already registered")
        cls.name = name
        CHECKS[name] = cls
        return cls
    return wrap


def run_checks(ctx: CheckContext, *, names: Sequence[str] | None = None) -> dict[str, CheckResult]:
    """Run the named checks (default: all that the context has data for)."""
    chosen = list(names) if names is not None else list(CHECKS)
    unknown = [n for n in chosen if n not in CHECKS]
    if unknown:
        raise DataError(f"unknown check(s) {unknown}; registered checks are {sorted(CHECKS)}")
    out = {}
    for name in chosen:
        check = CHECKS[name]()
        if check.needs_embeddings and ctx.embeddings is None:
            if names is not None:
                raise DataError(f"the check {name!r} needs embeddings")
            continue
        out[name] = check.run(ctx)
    return out


def _issues(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=ISSUE_COLUMNS)


def _groups_from_pairs(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected components (union-find) of ``n`` items linked by ``pairs`` ``(m, 2)``."""
    parent = np.arange(n)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return int(a)

    for a, b in pairs:
        ra, rb = find(int(a)), find(int(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(i) for i in range(n)])


def duplicate_groups(item_ids: Sequence[str], results: dict[str, CheckResult]) -> np.ndarray:
    """One group per set of items the duplicate checks linked (same text, or a chain of near-identical ones).

    Parameters
    ----------
    item_ids : sequence of str, length n
    results : dict of str to CheckResult
        What :func:`run_checks` returned; ``exact_duplicate`` and ``near_duplicate`` rows are read.

    Returns
    -------
    numpy.ndarray, shape (n,), float
        The position of the group's first member; NaN for an item no check linked to another.
    """
    pos = {item_id: i for i, item_id in enumerate(item_ids)}
    pairs: list[tuple[int, int]] = []
    for name in ("exact_duplicate", "near_duplicate"):
        if name in results and len(results[name].issues):
            for _, members in results[name].issues.groupby("group")["item_id"]:
                idx = [pos[m] for m in members]
                pairs.extend((idx[0], j) for j in idx[1:])
    out = np.full(len(item_ids), np.nan)
    if pairs:
        roots = _groups_from_pairs(len(item_ids), np.array(pairs))
        linked = sorted({i for p in pairs for i in p})
        out[linked] = roots[linked]
    return out


@register("exact_duplicate")
class ExactDuplicates(Check):
    """Items whose texts are equal after the dataset's normalisation."""

    def run(self, ctx: CheckContext) -> CheckResult:
        norm = pd.Series(ctx.normalized())
        group = norm.groupby(norm).ngroup()
        sizes = group.map(group.value_counts())
        rows = [{"item_id": ctx.item_ids[i], "issue": "exact_duplicate", "group": f"dup-{group[i]}",
                 "detail": f"{sizes[i]} copies"} for i in np.flatnonzero(sizes.to_numpy() > 1)]
        n_groups = int(group[sizes > 1].nunique())
        return CheckResult(self.name, _issues(rows), {"items": len(rows), "groups": n_groups,
                                                      "coverage": float(norm.nunique() / max(len(norm), 1))})


def near_duplicate_cosines(ctx: CheckContext, threshold: float) -> dict[tuple[int, int], float]:
    """Index pairs ``(i, j)``, ``i < j``, of different normalised texts with embedding cosine >= threshold, and
    their cosine (a pair may sit in one of the two neighbour lists only; both are read)."""
    key = f"near-{threshold}"
    if key not in ctx._cache:
        idx, sim = ctx.neighbors(min(10, max(1, len(ctx.texts) - 1)))
        norm = ctx.normalized()
        found: dict[tuple[int, int], float] = {}
        for i in range(len(idx)):
            for j, value in zip(idx[i].tolist(), sim[i].tolist(), strict=True):
                if value >= threshold and norm[i] != norm[j]:
                    pair = (min(i, j), max(i, j))
                    found[pair] = max(found.get(pair, value), value)
        ctx._cache[key] = dict(sorted(found.items()))
    cosines: dict[tuple[int, int], float] = ctx._cache[key]
    return cosines


def near_duplicate_pairs(ctx: CheckContext, threshold: float) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, of different normalised texts with embedding cosine >= threshold."""
    return list(near_duplicate_cosines(ctx, threshold))


@register("near_duplicate")
class NearDuplicates(Check):
    """Items whose embeddings have cosine similarity >= a threshold (default 0.97) with another, different text."""

    needs_embeddings = True

    def run(self, ctx: CheckContext) -> CheckResult:
        threshold = float(ctx.option(self.name, "threshold", 0.97))
        cosines = near_duplicate_cosines(ctx, threshold)
        if not cosines:
            return CheckResult(self.name, _issues([]), {"items": 0, "groups": 0, "threshold": threshold})
        groups = _groups_from_pairs(len(ctx.texts), np.array(list(cosines)))
        linked = sorted({i for p in cosines for i in p})
        # each item's closest twin, named in the detail so a reader can find it
        closest: dict[int, tuple[float, int]] = {}
        for (i, j), value in cosines.items():
            for a, b in ((i, j), (j, i)):
                closest[a] = max(closest.get(a, (-1.0, b)), (value, b))
        rows = [{"item_id": ctx.item_ids[i], "issue": "near_duplicate", "group": f"near-{groups[i]}",
                 "detail": f"cosine {closest[i][0]:.3f} with {ctx.item_ids[closest[i][1]]}"} for i in linked]
        return CheckResult(self.name, _issues(rows), {"items": len(rows), "groups": len({groups[i] for i in linked}),
                                                      "threshold": threshold})


@register("conflicting_duplicate")
class ConflictingDuplicates(Check):
    """An item with an exact or near duplicate that carries another label: one is wrong, or the task is ambiguous.

    Near duplicates are compared pair by pair, not by group, so a chain of similar
    texts does not make distant items conflict.
    """

    def run(self, ctx: CheckContext) -> CheckResult:
        norm = ctx.normalized()
        by_text: dict[str, list[int]] = {}
        for i, t in enumerate(norm):
            by_text.setdefault(t, []).append(i)
        partners: dict[int, set[int]] = {}
        for members in by_text.values():
            if len(members) < 2:  # most texts are unique: no partner to record
                continue
            for i in members:
                partners.setdefault(i, set()).update(m for m in members if m != i)
        if ctx.embeddings is not None:
            threshold = float(ctx.option("near_duplicate", "threshold", 0.97))
            for i, j in near_duplicate_pairs(ctx, threshold):
                partners.setdefault(i, set()).add(j)
                partners.setdefault(j, set()).add(i)
        rows = []
        for i, others in sorted(partners.items()):
            mine = ctx.labels[i]
            clash = sorted({lab for j in others if (lab := ctx.labels[j]) is not None and lab != mine})
            if mine is not None and clash:
                first = min(j for j in others if ctx.labels[j] in clash)
                rows.append({"item_id": ctx.item_ids[i], "issue": "conflicting_duplicate",
                             "group": ctx.item_ids[first],
                             "detail": f"labelled {mine!r}; a duplicate is labelled {', '.join(map(repr, clash))}"})
        frame = _issues(rows)
        return CheckResult(self.name, frame, {"items": len(frame)})


@register("outlier")
class Outliers(Check):
    """Items far from all others: mean cosine distance to the k nearest neighbours in the top tail."""

    needs_embeddings = True

    def run(self, ctx: CheckContext) -> CheckResult:
        k = int(ctx.option(self.name, "k", 10))
        _, sim = ctx.neighbors(min(k, max(1, len(ctx.texts) - 1)))
        dist = 1 - sim.mean(1)
        med = float(np.median(dist))
        mad = float(np.median(np.abs(dist - med))) or 1e-6
        cut = med + float(ctx.option(self.name, "mads", 4.0)) * 1.4826 * mad
        flagged = np.flatnonzero(dist > cut)
        rows = [{"item_id": ctx.item_ids[i], "issue": "outlier", "group": None,
                 "detail": f"kNN distance {dist[i]:.3f} > {cut:.3f}"} for i in flagged]
        return CheckResult(self.name, _issues(rows), {"items": len(rows), "threshold": cut})


_URL = re.compile(r"https?://\S+|www\.\S+")
_NOT_ASCII_LETTERS = re.compile(r"[^A-Za-z]+")


def _script(ch: str) -> str:
    try:
        return unicodedata.name(ch).split()[0]
    except ValueError:
        return "UNKNOWN"


def _letter_scripts(text: str, *, limit: int = 200) -> tuple[str, int, int]:
    """A text's most common script among its first ``limit`` letters (URLs left out), how many of those
    letters are in it, and how many letters were read; ``("", 0, 0)`` without letters."""
    text = _URL.sub(" ", text)
    # Naming a character's script is slow; ASCII letters are Latin, so only other texts pay for it
    # (and a regex counts ASCII letters without a Python step per character).
    if text.isascii():
        n = min(len(_NOT_ASCII_LETTERS.sub("", text)), limit)
        return ("LATIN" if n else ""), n, n
    letters = [c for c in text if c.isalpha()][:limit]
    if not letters:
        return "", 0, 0
    script, count = Counter(_script(c) for c in letters).most_common(1)[0]
    return script, count, len(letters)


#: Scripts written beside another in one language: Japanese mixes both kana with kanji (Unicode's CJK
#: ideographs), Korean may mix hanja into hangul. A text in a companion script is not foreign to the dataset.
_COMPANION_SCRIPTS = {"HIRAGANA": {"KATAKANA", "CJK"}, "KATAKANA": {"HIRAGANA", "CJK"}, "HANGUL": {"CJK"}}
#: Kanji-heavy Japanese data has CJK as its main script: kana texts belong to it when kana are this share of
#: the letters (Chinese data has next to none).
_KANA_SHARE = 0.1


def _native_scripts(votes: Counter[str]) -> tuple[str, set[str]]:
    """The dataset's main script and the scripts its texts may be written in without being foreign."""
    dominant = votes.most_common(1)[0][0] if votes else "LATIN"
    native = {dominant, *_COMPANION_SCRIPTS.get(dominant, set())}
    if dominant == "CJK" and votes["HIRAGANA"] + votes["KATAKANA"] >= _KANA_SHARE * sum(votes.values()):
        native |= {"HIRAGANA", "KATAKANA"}
    return dominant, native


def _script_title(script: str) -> str:
    """A script's name as a message shows it: ``Cyrillic``, ``Hiragana``, but ``CJK``."""
    return script if script == "CJK" else script.title()


def _width(text: str) -> int:
    """Characters counted by the room they take: a wide (CJK, kana, hangul) character counts as two, since it
    carries about a word, so that a two-character Chinese review is not "too short" where ``ok`` is."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


@register("junk_text")
class JunkTexts(Check):
    """Texts with no words: very short, only symbols, digits or URLs, or mostly in another script."""

    def run(self, ctx: CheckContext) -> CheckResult:
        min_chars = int(ctx.option(self.name, "min_chars", 3))
        scripts = [_letter_scripts(t) for t in ctx.texts]
        votes: Counter[str] = Counter()
        for script, count, _ in scripts:
            if count:
                votes[script] += count
        dominant, native = _native_scripts(votes)
        rows = []
        for i, (text, (script, count, n_letters)) in enumerate(zip(ctx.texts, scripts)):
            reason = None
            if _width(text.strip()) < min_chars:
                reason = f"shorter than {min_chars} characters"
            elif not n_letters:
                reason = "no letters (only symbols, digits or URLs)"
            elif script not in native and count / n_letters > 0.8:
                reason = f"written in {_script_title(script)} script, the dataset in {_script_title(dominant)}"
            if reason:
                rows.append({"item_id": ctx.item_ids[i], "issue": "junk_text", "group": None, "detail": reason})
        return CheckResult(self.name, _issues(rows), {"items": len(rows), "dominant_script": dominant})


@register("label_variant")
class LabelVariants(Check):
    """Labels that differ only in case, spacing or separators (``Refund``, ``refund ``, ``refund-request`` /
    ``refund_request``): most likely one class typed two ways, which splits its examples between two classes.

    The items carrying a rarer spelling are flagged; the detail names the most common spelling, which is what
    they probably mean. Nothing is merged by the scan: that is the analyst's call, one command when it is
    right (:meth:`workbench.store.LabelStore.merge_labels`, ``workbench merge-labels``).
    """

    def run(self, ctx: CheckContext) -> CheckResult:
        counts = Counter(lab for lab in ctx.labels if lab is not None)
        canonical = canonical_spellings(counts)
        rows = [{"item_id": ctx.item_ids[i], "issue": "label_variant", "group": canonical[lab],
                 "detail": f"label {lab!r} ({counts[lab]} items) looks like {canonical[lab]!r} "
                           f"({counts[canonical[lab]]} items) spelled another way; if so, merge_labels("
                           f"{lab!r}, {canonical[lab]!r})"}
                for i, lab in enumerate(ctx.labels) if lab is not None and lab in canonical]
        return CheckResult(self.name, _issues(rows), {"items": len(rows), "variants": canonical})


@register("class_imbalance")
class ClassImbalance(Check):
    """Class balance ``1 - sum_c (n_c/N - 1/C)^2`` and the classes much rarer than average (no item issues)."""

    def run(self, ctx: CheckContext) -> CheckResult:
        counts = pd.Series([lab for lab in ctx.labels if lab is not None]).value_counts()
        n, c = int(counts.sum()), len(counts)
        balance = 1 - float((((counts / max(n, 1)) - 1 / max(c, 1)) ** 2).sum())
        rare = sorted(counts[counts < 0.2 * n / max(c, 1)].index.tolist())
        ratio = float(counts.max() / counts.min()) if c else float("nan")
        return CheckResult(self.name, _issues([]), {"balance": balance, "rare_classes": rare,
                                                    "largest_to_smallest": ratio})
