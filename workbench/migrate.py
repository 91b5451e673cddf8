"""Copy a whole store to another database, e.g. a SQLite file into a shared PostgreSQL server.

Every table is copied row for row with its ids (log ids, batches, annotation ids), so history,
undo and snapshots behave the same on the copy. The destination must be empty; the copy is
checked (row counts and the label snapshot hash) before it is reported done.
"""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa

from workbench import schema as S
from workbench.errors import StoreError
from workbench.store import LabelStore

#: Tables with an autoincrement id whose sequence must move past the copied ids (PostgreSQL).
_SERIAL = {"log": "id", "annotations": "id"}


def copy_store(source: str | os.PathLike[str], destination: str | os.PathLike[str], *,
               chunk: int = 5_000) -> dict[str, Any]:
    """Copy every row of the store at ``source`` into the empty store at ``destination``.

    Returns
    -------
    dict
        Rows copied per table and the snapshot hash both sides agree on.

    Raises
    ------
    StoreError
        The destination already holds items, or the copy does not match the source.
    """
    with LabelStore.open(source, create=False) as src, LabelStore.open(destination) as dst:
        if len(dst):
            raise StoreError(f"{dst.url} already holds {len(dst)} items; copy into an empty database (nothing was "
                             "written)")
        counts: dict[str, int] = {}
        src_engine, dst_engine = src._engine, dst._engine
        with src_engine.connect() as read, dst_engine.begin() as write:
            write.execute(sa.delete(S.meta))  # the new store's own version rows; the source's replace them
            for table in S.metadata.sorted_tables:
                n = 0
                result = read.execution_options(stream_results=True).execute(sa.select(table))
                while rows := result.mappings().fetchmany(chunk):
                    write.execute(sa.insert(table), [dict(r) for r in rows])
                    n += len(rows)
                counts[table.name] = n
            if dst_engine.dialect.name == "postgresql":
                for name, column in _SERIAL.items():
                    write.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{name}', '{column}'), "
                        f"COALESCE((SELECT MAX({column}) FROM {name}), 0) + 1, false)")
        dst._invalidate()
        source_hash, copy_hash = src.snapshot_hash(), dst.snapshot_hash()
        if source_hash != copy_hash or len(src) != len(dst) or len(src.history()) != len(dst.history()):
            raise StoreError(f"the copy in {dst.url} does not match {src.url} (labels hash {copy_hash[:12]} vs "
                             f"{source_hash[:12]}); drop the destination database and copy again")
        return {"tables": counts, "snapshot_hash": source_hash, "source": src.url, "destination": dst.url}
