"""LabelBrowser: a keyboard-driven grid over a label store (an anywidget; logic in workbench.review)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from widgets._session import SessionWidgetMixin, with_picker
from workbench.errors import WorkbenchError
from workbench.review import HELP, ReviewSession, filters_from_form
from workbench.schema import REVIEW_STATUSES
from workbench.store import LabelStore, as_store

_HERE = Path(__file__).parent


class LabelBrowser(SessionWidgetMixin, anywidget.AnyWidget):
    """A paged grid of a store's items, worst label-quality score first; correct with keys or clicks.

    Keys: j/k or arrows move, 1-9 assign the n-th class, a accepts the suggestion,
    r reviewed, s skip, f flag, u or Ctrl+Z undo, x select, n/p pages, ? help.

    Parameters
    ----------
    store : LabelStore
    author : str
    page_size : int
    filters : dict, optional
        See :class:`workbench.store.Filters`.
    order_by : str, optional
    source : {"human", "adjudication"}
        ``adjudication``: an adjudicator settles annotators' disagreements; every label written
        (keys, buttons, accepting the consensus) is logged with source ``adjudication``.
    """

    _esm = with_picker("browser.js")
    _css = _HERE / "browser.css"
    title = traitlets.Unicode("Labels").tag(sync=True)
    rows = traitlets.List().tag(sync=True)
    labels = traitlets.List().tag(sync=True)
    counts = traitlets.Dict().tag(sync=True)
    page = traitlets.Int(0).tag(sync=True)
    pages = traitlets.Int(1).tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    show_help = traitlets.Bool(False).tag(sync=True)
    help = traitlets.Unicode(HELP).tag(sync=True)
    filters = traitlets.Dict().tag(sync=True)
    order_by = traitlets.Unicode("").tag(sync=True)
    statuses = traitlets.List().tag(sync=True)
    issue_types = traitlets.List().tag(sync=True)
    splits = traitlets.List().tag(sync=True)  # the store's split names: the filter bar offers them when there are any
    pending_key_at = traitlets.Float(0).tag(sync=True)
    last_latency_ms = traitlets.Float(0).tag(sync=True)

    def __init__(self, store: LabelStore, *, author: str = "analyst", page_size: int = 25,
                 filters: dict[str, Any] | None = None, order_by: str | None = None, source: str = "human",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        store = as_store(store, what="LabelBrowser")
        self.session = ReviewSession(store, author=author, page_size=page_size, filters=filters, order_by=order_by,
                                     source=source)
        if source == "adjudication":
            self.title = "Adjudication"
        self.on_msg(self._on_msg)
        self._sync(options=True)

    @property
    def store(self) -> LabelStore:
        return self.session.store

    def _sync(self, *, options: bool = False) -> None:
        """Push the session's state to the front end; ``options`` also re-reads the issue types (a query)."""
        import html

        s = self.session
        with self.hold_sync():
            self.labels = [html.escape(lab) for lab in s.labels]
            self.rows = s.rows()
            self.counts = s.counts()
            self.page, self.pages, self.total, self.show_help = s.page, s.pages, s.total, s.show_help
            self.filters = {k: v for k, v in asdict(s.filters).items() if v is not None and k != "item_ids"}
            self.order_by = s.order_by if isinstance(s.order_by, str) else ""
            if options:
                self.statuses = list(REVIEW_STATUSES)
                self.issue_types = [html.escape(t) for t in self.store.issue_types()]
                self.splits = [html.escape(t) for t in self.store.splits()]

    def _on_msg(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        kind = content.get("type")
        result = None
        if kind == "key":
            result = self.session.press(str(content.get("key", "")))
        elif kind == "click":
            self.session.click(int(content.get("row", -1)))
        elif kind == "assign":
            index = int(content.get("index", -1))
            result = self.session.assign_nth(index + 1)
        elif kind == "assign_named":  # the "l" key's box: a class by (part of) its name or its number
            result = self.session.assign_named(str(content.get("name", "")))
        elif kind == "filter":
            try:
                self.session.set_filters(filters_from_form(dict(content.get("filters") or {})))
            except WorkbenchError as exc:  # a bad pattern or bound: say so, keep the current view
                self.error = str(exc)
                self._sync()
                return
            self.error = ""
            self._sync()
            return
        elif kind == "sort":
            try:
                self.session.sort_by(str(content.get("column", "")))
            except WorkbenchError as exc:
                self.error = str(exc)
                self.session.set_order(None)
        self._report(result)
        self._sync()

    # ---------------------------------------------------------------- the same actions from Python
    # press() and set_filters() come from SessionWidgetMixin.
    def filter_form(self, **form: Any) -> None:
        """Act as if the filter bar was submitted with these fields (see :func:`workbench.review.filters_from_form`)."""
        self._on_msg(self, {"type": "filter", "filters": form}, [])

    def sort(self, column: str) -> None:
        """Act as if the column header was clicked."""
        self._on_msg(self, {"type": "sort", "column": column}, [])

    def set_order(self, order_by: str | None) -> None:
        """Sort by ``order_by`` (None: worst score first once a scan exists); re-reads the issue types, since
        the Quality panel calls this after a scan."""
        self.session.set_order(order_by)
        self._sync(options=True)

    def go_to_page(self, page: int) -> None:
        self.session.go_to_page(page)
        self._sync()
