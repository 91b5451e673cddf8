"""Short printed forms of result objects.

A scan's result holds (n_items, n_classes) arrays and item tables; the repr a dataclass writes by default
prints all of them, pages of numbers in a notebook cell or a log. :class:`BriefRepr` prints each field
by its shape instead (``DataFrame(1500 rows x 14 columns)``, ``array(1500x6 float64)``), so typing the
name of a result shows what it holds and the fields say where to look.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

#: Containers with more entries than this print their length, not their entries.
MAX_ENTRIES = 8
#: Strings longer than this are cut.
MAX_TEXT = 60


def brief(value: Any, *, depth: int = 0) -> str:
    """One short line for ``value``: shapes for arrays and tables, entries for small containers.

    Parameters
    ----------
    value : object
    depth : int
        Nesting level so far; containers two levels down print only their length.

    Returns
    -------
    str
    """
    if isinstance(value, BriefRepr):
        return repr(value) if depth == 0 else f"{type(value).__name__}(...)"
    if isinstance(value, pd.DataFrame):
        return f"DataFrame({len(value)} rows x {value.shape[1]} columns)"
    if isinstance(value, pd.Series):
        return f"Series({len(value)} rows, {value.dtype})"
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return repr(value.item())
        if value.size <= MAX_ENTRIES and value.ndim == 1:
            return repr(value.tolist())
        return f"array({'x'.join(map(str, value.shape))} {value.dtype})"
    if isinstance(value, str):
        return repr(value if len(value) <= MAX_TEXT else value[:MAX_TEXT - 3] + "...")
    if isinstance(value, dict):
        if len(value) > MAX_ENTRIES or depth >= 2:
            return f"dict({len(value)} entries)"
        inner = ", ".join(f"{k!r}: {brief(v, depth=depth + 1)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_ENTRIES or depth >= 2:
            return f"{type(value).__name__}({len(value)} entries)"
        inner = ", ".join(brief(v, depth=depth + 1) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    if value is None or isinstance(value, (bool, int, float, np.generic)):
        return repr(value.item() if isinstance(value, np.generic) else value)
    text = repr(value)  # paths, enums, small objects: their own repr when it is short
    return text if len(text) <= MAX_TEXT else f"<{type(value).__name__}>"


class BriefRepr:
    """Mixin for dataclasses (declared with ``repr=False``): prints each field by :func:`brief`."""

    def __repr__(self) -> str:
        parts = [f"{f.name}={brief(getattr(self, f.name))}" for f in dataclasses.fields(self)  # type: ignore[arg-type]
                 if f.repr]
        return f"{type(self).__name__}({', '.join(parts)})"
