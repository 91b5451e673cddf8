"""What the keyboard widgets share: report an action's outcome, and the front end's actions from Python."""

from __future__ import annotations

from pathlib import Path
from typing import Any

_HERE = Path(__file__).parent


def with_picker(module: str) -> str:
    """The front-end module ``module`` (a file beside this one) with ``picker.js`` (the type-a-name box) before it:
    anywidget loads one module per widget, and both keyboard widgets use the box."""
    return (_HERE / "picker.js").read_text(encoding="utf-8") + "\n" + (_HERE / module).read_text(encoding="utf-8")


class SessionWidgetMixin:
    """For an anywidget whose ``session`` does the work and whose ``_on_msg`` handles the front end's messages.

    The class using it defines ``error`` and ``message`` traits, ``session``, ``_on_msg`` and ``_sync``.
    """

    session: Any
    error: str
    message: str

    def _report(self, result: Any) -> None:
        """Show an action's outcome: its error in the panel (the view keeps the stored state), or its message."""
        if result is None:
            return
        self.error = "" if result.ok else result.message
        self.message = result.message if result.ok else ""

    def press(self, key: str) -> None:
        """Act as if ``key`` was pressed in the widget."""
        self._on_msg(self, {"type": "key", "key": key}, [])  # type: ignore[attr-defined]

    def set_filters(self, filters: dict[str, Any] | None) -> None:
        """Show only the items passing ``filters`` (see :class:`workbench.store.Filters`)."""
        self.session.set_filters(filters)
        self._sync()  # type: ignore[attr-defined]
