"""SentenceSession: reviewing token tags (NER) one sentence at a time, with no widget in sight.

The session pages through a store's sentences (filtered and sorted like the label browser), keeps
a token cursor, and turns keys into store writes: a type key retags the whole entity span under the
cursor (IOB2 stays valid), ``0`` removes it, ``a`` takes the suggested tag sequence. Every write is
made before the view changes; a failed write leaves the view as it was and says why.
"""

from __future__ import annotations

import html
from typing import Any

from workbench.bio import entity_types, retag_span, split_tag
from workbench.errors import DataError, WorkbenchError
from workbench.review import ActionResult, match_label
from workbench.store import Filters, LabelStore

SENTENCE_KEYS = {
    "j": "next", "ArrowDown": "next", "k": "previous", "ArrowUp": "previous",
    "l": "right", "ArrowRight": "right", "h": "left", "ArrowLeft": "left",
    "a": "accept", "r": "reviewed", "f": "flag", "u": "undo", "ctrl+z": "undo", "0": "type_0",
    **{str(d): f"type_{d}" for d in range(1, 10)},
}
SENTENCE_HELP = ("j / k next / previous sentence · h / l or ← / → move along the tokens · 1-9 give the entity under "
                 "the cursor the n-th type (a new one-token entity on an O token) · t type one (part of its name, or "
                 "its number), then Enter · 0 remove the entity · a accept the suggested tags · r reviewed · f flag · "
                 "u undo")


class SentenceSession:
    """Review the token tags of a token-classification store sentence by sentence.

    Parameters
    ----------
    store : LabelStore
        Token classification.
    author : str
    filters : Filters or dict, optional
    order_by : str, optional
        Default: worst score first once a scan exists.
    """

    def __init__(self, store: LabelStore, *, author: str = "analyst", filters: Filters | dict[str, Any] | None = None,
                 order_by: str | None = None) -> None:
        if store.task != "token-classification":
            raise DataError(f"{store.url} holds {store.task} items; the sentence view is for token classification "
                            "(use the label browser)")
        self.store = store
        self.author = author
        self.filters = Filters.coerce(filters)
        self.order_by = order_by
        self.types = entity_types(store.labels)
        self.index = 0
        self.token = 0
        self.total = 0
        self.sentence: dict[str, Any] | None = None
        self.refresh()

    def refresh(self) -> None:
        """Re-read the total and the sentence at the current position."""
        self.total = self.store.count(self.filters)
        self.index = max(0, min(self.index, self.total - 1))
        page = self.store.page(self.index, 1, filters=self.filters, order_by=self.order_by)
        self.sentence = None if page.empty else dict(page.iloc[0])
        n = len(self.sentence["tokens"]) if self.sentence else 0
        self.token = max(0, min(self.token, n - 1))

    def view(self) -> dict[str, Any]:
        """The sentence as display data: tokens (HTML-escaped) with tag, type, suggestion and cursor."""
        s = self.sentence
        if s is None:
            return {"item_id": "", "tokens": [], "total": self.total, "index": self.index}
        tags = _tags(s["label"], s["tokens"])
        original = _tags(s["original_label"], s["tokens"])
        suggested = list(s["suggested_label"]) if s.get("suggested_label") is not None else None
        tokens = []
        for i, (tok, tag) in enumerate(zip(s["tokens"], tags, strict=True)):
            _, kind = split_tag(tag)
            hint = suggested[i] if suggested is not None and suggested[i] != tag else None
            tokens.append({"text": html.escape(str(tok)), "tag": html.escape(tag), "type": html.escape(kind or ""),
                           "suggested": html.escape(hint) if hint else None, "cursor": i == self.token,
                           "changed": tag != original[i]})
        score = s.get("score")
        status = s["status"] if s["label"] is not None else f"{s['status']} · not tagged yet (1-9 tag, r: no entities)"
        return {"item_id": html.escape(str(s["item_id"])), "tokens": tokens, "total": self.total,
                "index": self.index, "status": status,
                "score": None if score is None or score != score else round(float(score), 3),
                "why": html.escape(s["issue_details"]) if isinstance(s.get("issue_details"), str) else ""}

    # ------------------------------------------------------------------ actions
    def _write(self, fn: Any, done: str) -> ActionResult:
        try:
            ids = fn()
        except (WorkbenchError, IndexError) as exc:
            return ActionResult(False, str(exc))
        self.refresh()
        return ActionResult(True, done, list(ids or []))

    def retag(self, entity_type: str | None, *, token: int | None = None) -> ActionResult:
        """Give the entity at ``token`` (default: the cursor) ``entity_type``; None removes it."""
        if self.sentence is None:
            return ActionResult(False, "no sentence here")
        if entity_type is not None and entity_type not in self.types:
            return ActionResult(False, f"unknown entity type {entity_type!r}; the types are {self.types}")
        position = self.token if token is None else token
        item_id = str(self.sentence["item_id"])
        try:
            new = retag_span(_tags(self.sentence["label"], self.sentence["tokens"]), position, entity_type)
        except IndexError as exc:
            return ActionResult(False, str(exc))
        return self._write(lambda: [self.store.set_label(item_id, new, author=self.author)],
                           f"token {position}: {entity_type or 'O'}")

    def retag_named(self, query: str) -> ActionResult:
        """Retag the cursor's entity with the type ``query`` names (see :func:`workbench.review.match_label`): the
        keyboard's way to a type past the 9th."""
        try:
            entity_type = match_label(query, self.types, noun="entity type")
        except DataError as exc:
            return ActionResult(False, str(exc))
        return self.retag(entity_type)

    def accept(self) -> ActionResult:
        """Take the suggested tag sequence for this sentence."""
        s = self.sentence
        if s is None or s.get("suggested_label") is None:
            return ActionResult(False, "no suggestion here: run scan_tokens first")
        item_id, tags = str(s["item_id"]), list(s["suggested_label"])
        return self._write(lambda: [self.store.set_label(item_id, tags, author=self.author, source="suggestion")],
                           "accepted the suggested tags")

    def press(self, key: str) -> ActionResult:
        """Do what ``key`` means in :data:`SENTENCE_KEYS` (unknown keys do nothing)."""
        action = SENTENCE_KEYS.get(key)
        n = len(self.sentence["tokens"]) if self.sentence else 0
        if action in ("next", "previous"):
            self.index += 1 if action == "next" else -1
            self.token = 0
            self.refresh()
        elif action in ("right", "left"):
            self.token = max(0, min(n - 1, self.token + (1 if action == "right" else -1)))
        elif action == "accept":
            return self.accept()
        elif action == "undo":
            return self._write(lambda: self.store.undo(author=self.author), "undone")
        elif action in ("reviewed", "flag") and self.sentence is not None:
            item_id = str(self.sentence["item_id"])
            status = "reviewed" if action == "reviewed" else "flagged"
            if action == "reviewed" and self.sentence["label"] is None:
                # an untagged sentence (a pool) reviewed as it shows: it has no entities, so all its tags are O
                untagged = ["O"] * len(self.sentence["tokens"])
                def tag_and_review() -> list[int]:
                    first = self.store.set_label(item_id, untagged, author=self.author)
                    return [i for i in (first, *self.store.set_status(item_id, status, author=self.author))
                            if i is not None]

                return self._write(tag_and_review, "reviewed: no entities")
            return self._write(lambda: self.store.set_status(item_id, status, author=self.author), status)
        elif action and action.startswith("type_"):
            k = int(action.rsplit("_", 1)[1])
            if k == 0:
                return self.retag(None)
            if k > len(self.types):
                return ActionResult(False, f"there is no entity type {k}; the types are 1-{len(self.types)}")
            return self.retag(self.types[k - 1])
        return ActionResult(True, "")

    def click(self, token: int) -> None:
        """Put the token cursor on ``token``."""
        if self.sentence is not None and 0 <= token < len(self.sentence["tokens"]):
            self.token = token

    def set_filters(self, filters: Filters | dict[str, Any] | None) -> None:
        self.filters = Filters.coerce(filters)
        self.index, self.token = 0, 0
        self.refresh()


def _tags(tags: Any, tokens: Any) -> list[str]:
    """A sentence's tags; an untagged sentence (a pool's) reads as all ``O`` until someone tags it."""
    return list(tags) if tags is not None else ["O"] * len(tokens)
