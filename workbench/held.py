"""A value kept in a table's ``attrs`` for the code that reads the table next.

pandas deep-copies ``attrs`` on every operation and compares them with ``==`` when it joins tables: a list of a
million row positions made each copy slow, and a numpy array made the comparison raise ("truth value of an array is
ambiguous"). A :class:`Held` value is never copied (nothing changes it after it is made) and compares by identity.
"""

from __future__ import annotations

from typing import Any


class Held:
    """``value``, kept in ``DataFrame.attrs`` without being copied or compared element by element."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __deepcopy__(self, memo: dict[int, Any]) -> Held:
        return self
