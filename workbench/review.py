"""ReviewSession: the state and actions behind the label browser, with no widget in sight.

A session holds view state (page, cursor, selection, filters, sort) over a store and
turns an analyst's actions (keys or clicks) into store writes. Every action writes
first and updates the view only when the write succeeded; a failed write leaves the
view as it was and reports the error, so the screen never shows a label the store
does not have.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from workbench.errors import DataError, WorkbenchError
from workbench.store import Filters, LabelStore

#: Keys an analyst presses, and what they do.
KEYMAP = {
    "j": "down", "ArrowDown": "down", "k": "up", "ArrowUp": "up",
    "n": "next_page", "PageDown": "next_page", "p": "previous_page", "PageUp": "previous_page",
    "a": "accept", "r": "reviewed", "s": "skip", "f": "flag", "u": "undo", "ctrl+z": "undo",
    "x": "toggle_select", "X": "select_page", "d": "duplicates", "?": "help",
    **{str(d): f"assign_{d}" for d in range(1, 10)},
}
HELP = ("j / ↓ next row · k / ↑ previous row · 1-9 assign the n-th class · l type a class (part of its name, or its "
        "number), then Enter · a accept the suggestion · "
        "r reviewed · s skip · f flag · u or Ctrl+Z undo · x select row · X select the page (again: none) · "
        "d the row's duplicates (again: back) · "
        "n / p next / previous page · ? this help")
CLIP = 280


@dataclass
class ActionResult:
    """What an action did: ``ok``, a message for the status line, and the log ids it wrote."""

    ok: bool
    message: str = ""
    log_ids: list[int] = field(default_factory=list)


class ReviewSession:
    """Browse and correct a store page by page.

    Parameters
    ----------
    store : LabelStore
    author : str
        Written on every change.
    page_size : int
    filters : Filters or dict, optional
    order_by : str or list of str, optional
        Default: worst label-quality score first when a scan exists.
    """

    def __init__(self, store: LabelStore, *, author: str = "analyst", page_size: int = 25,
                 filters: Filters | dict[str, Any] | None = None, order_by: str | list[str] | None = None,
                 source: str = "human") -> None:
        if page_size < 1:
            raise DataError(f"page_size must be at least 1, got {page_size}")
        if source not in ("human", "adjudication"):
            raise DataError(f"a review session writes as 'human' or 'adjudication', not {source!r}")
        self.store = store
        self.author = author
        self.source = source  # "adjudication": an adjudicator settling annotators' disagreements
        self.annotated = store.has_annotations()
        self.page_size = page_size
        self.filters = Filters.coerce(filters)
        self.order_by = order_by
        self.page = 0
        self.cursor = 0
        self.selected: set[str] = set()
        self.frame = pd.DataFrame()
        self.total = 0
        self.show_help = False
        self._before_duplicates: tuple[Filters, int, int] | None = None  # filters, page, cursor the "d" view left
        self._counts: dict[str, int] = {}
        self.refresh(counters=True)

    # ------------------------------------------------------------------ view
    def refresh(self, *, count: bool = False, counters: bool = False) -> None:
        """Re-read the current page, the filtered total when ``count``, the review counters when ``counters``."""
        if count or counters:
            self.total = self.store.count(self.filters)
        if counters:
            # The counters change only when something is written, so they are read then, not on every move
            # or filter change.
            info = self.store.info().counts
            self._counts = {k: int(info.get(k, 0))
                            for k in ("reviewed", "flagged", "skipped", "corrected", "unreviewed", "queued")}
        last_page = max(0, (self.total - 1) // self.page_size)
        self.page = min(self.page, last_page)
        self.frame = self.store.page(self.page * self.page_size, self.page_size, filters=self.filters,
                                     order_by=self.order_by)
        self.votes: dict[str, list[tuple[str, str]]] = {}
        if self.annotated and not self.frame.empty:
            page = self.store.annotations(self.frame["item_id"].astype(str).tolist())
            for item_id, annotator, label in page[["item_id", "annotator", "label"]].itertuples(index=False):
                self.votes.setdefault(str(item_id), []).append((str(annotator), str(label)))
        self.cursor = min(self.cursor, max(0, len(self.frame) - 1))

    @property
    def labels(self) -> list[str]:
        return self.store.labels

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    def current(self) -> dict[str, Any] | None:
        """The row under the cursor."""
        if self.frame.empty:
            return None
        return dict(self.frame.iloc[self.cursor])

    def rows(self) -> list[dict[str, Any]]:
        """The page as display rows, every piece of dataset text HTML-escaped; ``text`` is clipped
        (``text_full`` keeps all of it)."""
        out = []
        for i, r in enumerate(self.frame.to_dict("records")):
            text = str(r["text"])
            out.append({
                "item_id": html.escape(str(r["item_id"])),
                "text": html.escape(text[:CLIP] + ("…" if len(text) > CLIP else "")),
                "text_full": html.escape(text),
                "clipped": len(text) > CLIP,
                "label": _show(r["label"]), "original_label": _show(r["original_label"]),
                "suggested_label": _show(r["suggested_label"]),
                "suggested_prob": None if pd.isna(r["suggested_prob"]) else round(float(r["suggested_prob"]), 3),
                "score": None if pd.isna(r["score"]) else round(float(r["score"]), 3),
                "issues": [html.escape(v) for v in r["issues"]], "status": r["status"],
                "why": html.escape(r["issue_details"]) if isinstance(r.get("issue_details"), str) else "",
                "annotators": [[html.escape(a), html.escape(lab)] for a, lab in self.votes.get(str(r["item_id"]), [])],
                "changed": r["label"] != r["original_label"],
                "cursor": i == self.cursor, "selected": str(r["item_id"]) in self.selected,
            })
        return out

    def counts(self) -> dict[str, int]:
        """Reviewed / flagged / skipped / corrected / unreviewed over the whole store (as of the last write)."""
        return dict(self._counts)

    # ------------------------------------------------------------------ navigation
    def set_filters(self, filters: Filters | dict[str, Any] | None) -> None:
        self.filters = Filters.coerce(filters)
        self._before_duplicates = None  # new filters leave the "d" view for good
        self.page, self.cursor = 0, 0
        self.selected.clear()
        self.refresh(count=True)

    def sort_by(self, column: str) -> None:
        """Sort by ``column``; asking again for the same column reverses the direction."""
        current = self.order_by if isinstance(self.order_by, str) else None
        self.set_order(f"-{column}" if current == column else column)

    def set_order(self, order_by: str | list[str] | None) -> None:
        self.order_by = order_by
        self.page, self.cursor = 0, 0
        self.refresh()

    def go_to_page(self, page: int) -> None:
        self.page = max(0, min(int(page), self.pages - 1))
        self.cursor = 0
        self.refresh()

    def move(self, delta: int) -> None:
        """Move the cursor, turning the page at either end."""
        target = self.cursor + delta
        if target >= len(self.frame) and self.page + 1 < self.pages:
            self.go_to_page(self.page + 1)
        elif target < 0 and self.page > 0:
            self.go_to_page(self.page - 1)
            self.cursor = max(0, len(self.frame) - 1)
        else:
            self.cursor = max(0, min(target, len(self.frame) - 1))

    # ------------------------------------------------------------------ actions
    def _write(self, fn: Any, done: str) -> ActionResult:
        try:
            ids = fn()
        except WorkbenchError as exc:
            return ActionResult(False, str(exc))
        self.refresh(counters=True)
        return ActionResult(True, done, list(ids or []))

    def assign(self, label: str, *, item_ids: list[str] | None = None, source: str | None = None) -> ActionResult:
        """Give the cursor's row (or ``item_ids``, or the selection) ``label`` (written with the session's source)."""
        source = source or self.source
        current = self.current()
        targets = item_ids or sorted(self.selected) or ([current["item_id"]] if current else [])
        if not targets:
            return ActionResult(False, "no item to label")
        result = self._write(lambda: self.store.set_labels({t: label for t in targets}, author=self.author,
                                                             source=source), f"{len(targets)} labelled {label}")
        if result.ok:
            self.selected.clear()
        return result

    def assign_nth(self, n: int) -> ActionResult:
        """Assign the ``n``-th class (1-based, in the store's label order)."""
        labels = self.labels
        if not 1 <= n <= len(labels):
            return ActionResult(False, f"there is no class {n}; the classes are 1-{len(labels)}")
        return self.assign(labels[n - 1])

    def assign_named(self, query: str) -> ActionResult:
        """Assign the class ``query`` names (see :func:`match_label`): the keyboard's way to a class past the 9th."""
        try:
            label = match_label(query, self.labels)
        except DataError as exc:
            return ActionResult(False, str(exc))
        return self.assign(label)

    def accept(self) -> ActionResult:
        """Take the suggested label of the cursor's row (or of every selected row)."""
        current = self.current()
        rows: list[dict[Any, Any]] = ([r for r in self.frame.to_dict("records") if str(r["item_id"]) in self.selected]
                                      or ([current] if current else []))
        changes = {str(r["item_id"]): r["suggested_label"] for r in rows if r and r["suggested_label"] is not None}
        if not changes:
            return ActionResult(False, "no suggestion here: run a scan first")
        # An adjudicator accepting the consensus is still adjudicating.
        source = "adjudication" if self.source == "adjudication" else "suggestion"
        result = self._write(lambda: self.store.set_labels(changes, author=self.author, source=source),
                             f"accepted {len(changes)} suggestion(s)")
        if result.ok:
            self.selected.clear()
        return result

    def mark(self, status: str) -> ActionResult:
        """Set the review status of the cursor's row (or the selection)."""
        current = self.current()
        targets = sorted(self.selected) or ([current["item_id"]] if current else [])
        if not targets:
            return ActionResult(False, "no item here")
        return self._write(lambda: self.store.set_status(targets, status, author=self.author),
                           f"{len(targets)} marked {status}")

    def undo(self) -> ActionResult:
        return self._write(lambda: self.store.undo(author=self.author), "undone")

    def click(self, row: int) -> None:
        """Put the cursor on ``row`` of the page."""
        if 0 <= row < len(self.frame):
            self.cursor = row

    def show_duplicates(self) -> ActionResult:
        """Show the cursor's item with its duplicates (the active scan's ``duplicate_group``); from that view,
        go back to the filters it replaced."""
        if self._before_duplicates is not None:
            filters, page, cursor = self._before_duplicates
            self._before_duplicates = None
            # the filters and the page together, so the list is read once (refresh keeps the page in range)
            self.filters, self.page = filters, page
            self.selected.clear()
            self.refresh(count=True)
            self.cursor = min(cursor, max(0, len(self.frame) - 1))
            return ActionResult(True, "back to the list")
        current = self.current()
        if current is None:
            return ActionResult(False, "no item here")
        item_id = str(current["item_id"])
        twins = self.store.duplicates_of(item_id)
        if not twins:
            return ActionResult(False, f"the latest scan found no duplicate of {item_id}")
        before = (self.filters, self.page, self.cursor)
        self.set_filters(Filters(duplicate_of=item_id))
        self._before_duplicates = before
        return ActionResult(True, f"{item_id} and its {len(twins)} duplicate(s); d again: back to the list")

    def select_page(self) -> None:
        """Select every row of the page, or none when all are selected already: with a filtered list (one likely
        mix-up, one label), ``a`` then accepts the suggestion of the whole page in one undo step."""
        page = {str(i) for i in self.frame["item_id"]} if not self.frame.empty else set()
        self.selected = set() if page and page <= self.selected else page

    def toggle_select(self) -> None:
        current = self.current()
        if current:
            self.selected ^= {str(current["item_id"])}

    def press(self, key: str) -> ActionResult:
        """Do what ``key`` means in :data:`KEYMAP` (unknown keys do nothing)."""
        action = KEYMAP.get(key)
        if action is None:
            return ActionResult(True, "")
        if action == "down":
            self.move(1)
        elif action == "up":
            self.move(-1)
        elif action == "next_page":
            self.go_to_page(self.page + 1)
        elif action == "previous_page":
            self.go_to_page(self.page - 1)
        elif action == "toggle_select":
            self.toggle_select()
        elif action == "select_page":
            self.select_page()
        elif action == "duplicates":
            return self.show_duplicates()
        elif action == "help":
            self.show_help = not self.show_help
        elif action == "accept":
            return self.accept()
        elif action == "undo":
            return self.undo()
        elif action in ("reviewed", "skip", "flag"):
            return self.mark({"reviewed": "reviewed", "skip": "skipped", "flag": "flagged"}[action])
        elif action.startswith("assign_"):
            return self.assign_nth(int(action.rsplit("_", 1)[1]))
        return ActionResult(True, "")


def match_label(query: str, labels: list[str], *, noun: str = "class") -> str:
    """The class ``query`` names: the class spelt so (case aside), else its number (1-based), else the one class
    whose name starts with it, else the one that contains it. ``_``, ``-`` and spaces are alike, so ``card arr``
    finds ``card_arrival``.

    Parameters
    ----------
    query : str
        What was typed.
    labels : list of str
        The classes (or entity types), in their numbered order.
    noun : str
        What the messages call one of ``labels`` (``"entity type"`` in the sentence view).

    Raises
    ------
    workbench.errors.DataError
        When no class, or more than one, matches; naming them (the first few).
    """
    def plain(text: str) -> str:
        return " ".join(text.replace("_", " ").replace("-", " ").split()).casefold()

    nouns = noun + ("es" if noun.endswith("s") else "s")
    wanted = plain(query)
    if not wanted:
        raise DataError(f"type part of {'an' if noun[0] in 'aeiou' else 'a'} {noun} name (or its number)")
    exact = [lab for lab in labels if plain(lab) == wanted]
    if exact:
        return exact[0]
    if wanted.isdigit():
        if 1 <= int(wanted) <= len(labels):
            return labels[int(wanted) - 1]
        raise DataError(f"there is no {noun} {wanted}; the {nouns} are 1-{len(labels)}")
    for found in ([lab for lab in labels if plain(lab).startswith(wanted)],
                  [lab for lab in labels if wanted in plain(lab)]):
        if len(found) == 1:
            return found[0]
        if found:
            shown = ", ".join(found[:6]) + (f" and {len(found) - 6} more" if len(found) > 6 else "")
            raise DataError(f"{query!r} matches {len(found)} {nouns} ({shown}); type more of the name")
    raise DataError(f"no {noun} matches {query!r}")


def filters_from_form(form: dict[str, Any]) -> Filters:
    """The browser's filter bar (strings and booleans as the front end sends them) as :class:`Filters`.

    Empty fields filter nothing; ``regex`` says whether ``search`` is a regular expression; score
    bounds must be numbers.
    """
    out: dict[str, Any] = {}
    for key in ("label", "suggested_label", "status", "issue", "split"):
        value = str(form.get(key) or "").strip()
        if value:
            out[key] = value
    for key in ("score_min", "score_max"):
        value = str(form.get(key) if form.get(key) is not None else "").strip()
        if value:
            try:
                out[key] = float(value)
            except ValueError:
                raise DataError(f"{key.replace('_', ' ')} must be a number, got {value!r}") from None
    text = str(form.get("search") or "")
    if text:
        out["regex" if form.get("regex") else "search"] = text
    for key in ("disagree", "unlabelled", "changed"):
        if form.get(key):
            out[key] = True
    return Filters.coerce(out)


def _show(value: Any) -> str | None:
    """A label (or tag list) as escaped display text."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return html.escape(value if isinstance(value, str) else " ".join(map(str, value)))
