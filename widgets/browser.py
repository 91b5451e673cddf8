"""LabelBrowser: a keyboard-driven grid over a label store (an anywidget; logic in workbench.review)."""

from __future__ import annotations

from typing import Any

import anywidget
import traitlets

from workbench.review import HELP, ReviewSession
from workbench.store import LabelStore

_ESM = r"""
function render({ model, el }) {
  el.classList.add("wb-browser");
  el.tabIndex = 0;
  const root = document.createElement("div");
  el.appendChild(root);
  const send = (msg) => model.send(msg);
  el.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
    let key = e.key;
    if ((e.ctrlKey || e.metaKey) && key.toLowerCase() === "z") key = "ctrl+z";
    else if (e.ctrlKey || e.metaKey || e.altKey) return;
    model.set("pending_key_at", performance.now());
    model.save_changes();
    send({ type: "key", key });
    e.preventDefault();
    e.stopPropagation();
  });
  function draw() {
    const rows = model.get("rows");
    const labels = model.get("labels");
    const counts = model.get("counts");
    // Every piece of dataset text arrives HTML-escaped from Python (workbench.review), so it can go in as HTML.
    let html = `<div class="wb-bar"><b>${model.get("title")}</b> · page ${model.get("page") + 1} / ${model.get("pages")}`
      + ` · ${model.get("total")} items · reviewed ${counts.reviewed || 0} · flagged ${counts.flagged || 0}`
      + ` · corrected ${counts.corrected || 0} <span class="wb-msg ${model.get("error") ? "wb-err" : ""}">`
      + `${model.get("error") || model.get("message")}</span></div>`;
    if (model.get("show_help")) html += `<div class="wb-help">${model.get("help")}</div>`;
    html += `<div class="wb-keys">` + labels.map((l, i) => `<button class="wb-assign" data-i="${i}">${i < 9 ? (i + 1) + " " : ""}${l}</button>`).join("") + `</div>`;
    html += `<table class="wb-grid"><thead><tr><th></th><th>text</th><th>label</th><th>given</th><th>suggested</th><th>p</th><th>score</th><th>issues</th><th>status</th></tr></thead><tbody>`;
    rows.forEach((r, i) => {
      html += `<tr class="wb-row${r.cursor ? " wb-cursor" : ""}${r.selected ? " wb-selected" : ""}${r.changed ? " wb-changed" : ""}" data-row="${i}" data-item="${r.item_id}">`
        + `<td>${r.selected ? "✓" : ""}</td><td class="wb-text" title="${r.clipped ? r.text_full : ""}">${r.text}</td>`
        + `<td class="wb-label">${r.label ?? ""}</td><td>${r.original_label ?? ""}</td><td>${r.suggested_label ?? ""}</td>`
        + `<td>${r.suggested_prob ?? ""}</td><td>${r.score ?? ""}</td><td>${r.issues.join(", ")}</td><td>${r.status}</td></tr>`;
    });
    html += `</tbody></table>`;
    root.innerHTML = html;
    root.querySelectorAll("tr.wb-row").forEach((tr) => tr.addEventListener("click", () => { send({ type: "click", row: Number(tr.dataset.row) }); el.focus(); }));
    root.querySelectorAll("button.wb-assign").forEach((b) => b.addEventListener("click", () => { send({ type: "assign", index: Number(b.dataset.i) }); el.focus(); }));
    const started = model.get("pending_key_at");
    if (started) { model.set("last_latency_ms", performance.now() - started); model.set("pending_key_at", 0); model.save_changes(); }
  }
  ["rows", "counts", "error", "message", "show_help", "page", "labels"].forEach((n) => model.on("change:" + n, draw));
  draw();
}
export default { render };
"""

_CSS = """
.wb-browser { outline: none; font-size: 13px; }
.wb-browser:focus-within .wb-bar { border-color: #4c78a8; }
.wb-bar { padding: 4px 6px; border-bottom: 2px solid #ddd; }
.wb-msg { margin-left: 1em; color: #2b7a2b; } .wb-err { color: #c0392b; font-weight: bold; }
.wb-help { background: #f5f5f5; padding: 4px 6px; }
.wb-keys button { margin: 2px; font-size: 12px; }
.wb-grid { border-collapse: collapse; width: 100%; }
.wb-grid td, .wb-grid th { border-bottom: 1px solid #eee; padding: 2px 6px; text-align: left; vertical-align: top; }
.wb-text { max-width: 520px; white-space: pre-wrap; }
.wb-cursor { background: #e8f0fb; } .wb-selected td:first-child { color: #4c78a8; }
.wb-changed .wb-label { color: #b35900; font-weight: bold; }
"""


class LabelBrowser(anywidget.AnyWidget):
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
    """

    _esm = _ESM
    _css = _CSS
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
    pending_key_at = traitlets.Float(0).tag(sync=True)
    last_latency_ms = traitlets.Float(0).tag(sync=True)

    def __init__(self, store: LabelStore, *, author: str = "analyst", page_size: int = 25,
                 filters: dict[str, Any] | None = None, order_by: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session = ReviewSession(store, author=author, page_size=page_size, filters=filters, order_by=order_by)
        self.on_msg(self._on_msg)
        self._sync()

    @property
    def store(self) -> LabelStore:
        return self.session.store

    def _sync(self) -> None:
        import html

        s = self.session
        with self.hold_sync():
            self.labels = [html.escape(lab) for lab in s.labels]
            self.rows = s.rows()
            self.counts = s.counts()
            self.page, self.pages, self.total, self.show_help = s.page, s.pages, s.total, s.show_help

    def _report(self, result: Any) -> None:
        if result is None:
            return
        self.error = "" if result.ok else result.message
        self.message = result.message if result.ok else ""

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
        self._report(result)
        self._sync()

    # ---------------------------------------------------------------- the same actions from Python
    def press(self, key: str) -> None:
        """Act as if ``key`` was pressed in the grid."""
        self._on_msg(self, {"type": "key", "key": key}, [])

    def set_filters(self, filters: dict[str, Any] | None) -> None:
        self.session.set_filters(filters)
        self._sync()

    def set_order(self, order_by: str | None) -> None:
        self.session.set_order(order_by)
        self._sync()

    def go_to_page(self, page: int) -> None:
        self.session.go_to_page(page)
        self._sync()
