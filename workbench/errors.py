"""Errors a user can cause, each naming what is wrong, where, and what to do.

Every public function in :mod:`workbench` raises a subclass of :class:`WorkbenchError`
for a problem in the user's data, paths or arguments, so a notebook or panel can show
the message instead of a traceback. Bugs in the workbench itself stay ordinary
exceptions.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping


class WorkbenchError(Exception):
    """Base class of every error the user can cause and fix."""


class DataError(WorkbenchError, ValueError):
    """A dataset file, table, column or value cannot be loaded as asked."""


class DataFileError(DataError):
    """A file or directory is missing, empty, unreadable or of an unknown format."""


class ColumnError(DataError):
    """A column that was asked for is missing or holds values of the wrong kind."""


class ValueProblem(DataError):
    """A cell holds a value that cannot be used (empty text, missing label, bad tags)."""


class LabelError(WorkbenchError, ValueError):
    """A label is not in the store's label set, or a tag sequence is invalid."""


class UnknownItemError(WorkbenchError, KeyError):
    """An item id is not in the store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class StoreError(WorkbenchError):
    """The label store cannot be opened, written or migrated."""


class StoreBusyError(StoreError):
    """Another process held the store's write lock for longer than the timeout."""


class StoreNotFoundError(StoreError):
    """A command that reads a store was pointed at a path where none exists."""


class StoreCorruptError(StoreError):
    """The store file is not a readable database."""


class StoreSchemaError(StoreError):
    """The store was written by another schema version that cannot be migrated."""


class StorePermissionError(StoreError):
    """The store's file or folder cannot be written."""


class NothingToUndoError(StoreError):
    """``undo`` was asked for but the author has no action left to undo."""


class Cancelled(WorkbenchError):
    """Work its caller stopped (a panel's Cancel, or ``stop`` set): nothing of it was written."""


class ModelNotFoundError(WorkbenchError):
    """A model named by id or path cannot be found offline."""


class MissingDependencyError(WorkbenchError, ImportError):
    """An optional package is needed for this call; the message says which extra."""


def require(module: str, *, extra: str, purpose: str) -> object:
    """Import an optional dependency or say which extra installs it.

    Parameters
    ----------
    module : str
        The module to import, e.g. ``"datasets"``.
    extra : str
        The ``label-workbench`` extra that provides it, e.g. ``"data"``.
    purpose : str
        What the caller wanted to do, for the message.

    Returns
    -------
    module
        The imported module.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs the package '{module}', which is not installed. "
            f"Install it with: pip install 'label-workbench[{extra}]'"
        ) from exc


def near_misses(unknown: Collection[str], known: Collection[str], *, synonyms: Mapping[str, str] | None = None) -> str:
    """`` (EPOCH: did you mean EPOCHS?)`` for the unknown names that look like a known one; ``""`` when none does.

    For messages that refuse a misspelt field or parameter, so the fix is in the message. ``synonyms`` maps names
    other tools use (``lr``, ``num_train_epochs``) to ours; they are asked for before the spelling is compared."""
    import difflib

    def guess(name: str) -> str | None:
        if synonyms and name.lower() in synonyms:
            return synonyms[name.lower()]
        close = difflib.get_close_matches(name, list(known), n=1)
        return close[0] if close else None

    hints = [f"{name}: did you mean {found}?" for name in unknown if (found := guess(name))]
    return f" ({'; '.join(hints)})" if hints else ""
