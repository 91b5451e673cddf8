"""SentenceView: one NER sentence as token chips coloured by entity type (an anywidget; logic in
workbench.sentence_review)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anywidget
import traitlets

from widgets._session import SessionWidgetMixin, with_picker
from workbench.sentence_review import SENTENCE_HELP, SentenceSession
from workbench.store import LabelStore

_HERE = Path(__file__).parent


class SentenceView(SessionWidgetMixin, anywidget.AnyWidget):
    """Review token tags sentence by sentence; suggested tag changes are marked on their tokens.

    Keys: j/k sentences, h/l or arrows tokens, 1-9 entity type for the span at the cursor, 0 remove
    the entity, a accept the suggestion, r reviewed, f flag, u undo. Clicking a token moves the cursor.

    Parameters
    ----------
    store : LabelStore
        Token classification.
    author : str
    filters : dict, optional
        See :class:`workbench.store.Filters` (e.g. ``{"issue": "label"}`` after a token scan).
    order_by : str, optional
    """

    _esm = with_picker("sentence.js")
    _css = _HERE / "browser.css"
    sentence = traitlets.Dict().tag(sync=True)
    types = traitlets.List().tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    help = traitlets.Unicode(SENTENCE_HELP).tag(sync=True)

    def __init__(self, store: LabelStore, *, author: str = "analyst", filters: dict[str, Any] | None = None,
                 order_by: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session = SentenceSession(store, author=author, filters=filters, order_by=order_by)
        self.types = list(self.session.types)
        self.on_msg(self._on_msg)
        self._sync()

    def _sync(self) -> None:
        self.sentence = self.session.view()

    def _on_msg(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        kind = content.get("type")
        result = None
        if kind == "key":
            result = self.session.press(str(content.get("key", "")))
        elif kind == "token":
            self.session.click(int(content.get("index", -1)))
        elif kind == "retag":
            value = content.get("entity")
            result = self.session.retag(str(value) if value else None)
        elif kind == "retag_named":  # the "t" key's box: an entity type by (part of) its name or its number
            result = self.session.retag_named(str(content.get("name", "")))
        self._report(result)
        self._sync()
