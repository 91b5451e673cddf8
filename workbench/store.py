"""LabelStore: the single source of truth for items, current labels and every change to them.

Every write is one transaction committed before the call returns. On SQLite the file
runs in WAL mode with ``synchronous=FULL``, writers take the lock up front
(``BEGIN IMMEDIATE``) and wait for each other up to a timeout, so several processes
can correct the same store at once without losing a write. Labels are never changed
without a row in the append-only log; undo is a new row.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from workbench import schema as S
from workbench.bio import find_bio_error
from workbench.data import is_missing, looks_like_class_id
from workbench.errors import (
    DataError,
    LabelError,
    NothingToUndoError,
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StoreNotFoundError,
    StorePermissionError,
    StoreSchemaError,
    UnknownItemError,
    WorkbenchError,
)

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")

#: Steps from schema version N to N+1, applied in order when an older store is opened.
def _migrate_1_to_2(conn: Connection) -> None:
    """Schema 2: duplicate groups are indexed."""
    S.duplicate_group_index.create(conn, checkfirst=True)


def _migrate_2_to_3(conn: Connection) -> None:
    """Schema 3: the items say why a scan flagged them."""
    conn.execute(sa.text("ALTER TABLE items ADD COLUMN issue_details TEXT"))


def _migrate_3_to_4(conn: Connection) -> None:
    """Schema 4: the corrected items are indexed (the browser counts them after every correction)."""
    S.changed_index.create(conn, checkfirst=True)


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _migrate_1_to_2, 2: _migrate_2_to_3, 3: _migrate_3_to_4}

_CHUNK = 5_000
#: SQLite before 3.30 has no NULLS LAST; there, items without a value sort first going up (SQLite's own order).
_OLD_SQLITE = sqlite3.sqlite_version_info < (3, 30, 0)
ORDERABLE = ("pos", "item_id", "text", "label", "original_label", "suggested_label", "suggested_prob", "score",
             "status", "split")


@dataclass
class Filters:
    """What :meth:`LabelStore.page` and :meth:`LabelStore.count` keep. Unset fields keep everything.

    Attributes
    ----------
    label, suggested_label, status, split : str or list of str
        Keep items whose current label / suggestion / review status / split is one of these.
    score_min, score_max : float
        Keep items whose label-quality score lies in ``[score_min, score_max]``.
    issue : str
        Keep items flagged with this issue type by the active scan.
    search : str
        Case-insensitive substring of the text.
    regex : str
        Regular expression the text must match.
    changed : bool
        Keep items whose current label differs (True) or not (False) from the original.
    unlabelled : bool
        Keep items with no current label (True) or with one (False).
    disagree : bool
        Keep items whose annotators gave different labels (True) or agree / have fewer than two (False).
    item_ids : list of str
        Keep only these items.
    duplicate_of : str
        Keep this item and the items the active scan found to be its duplicates (its ``duplicate_group``).
    """

    label: str | list[str] | None = None
    suggested_label: str | list[str] | None = None
    status: str | list[str] | None = None
    split: str | list[str] | None = None
    score_min: float | None = None
    score_max: float | None = None
    issue: str | None = None
    search: str | None = None
    regex: str | None = None
    changed: bool | None = None
    unlabelled: bool | None = None
    disagree: bool | None = None
    item_ids: list[str] | None = None
    duplicate_of: str | None = None

    @classmethod
    def coerce(cls, value: Filters | dict[str, Any] | None) -> Filters:
        """Accept a :class:`Filters`, a dict of its fields, or ``None``."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        names = {f.name for f in fields(cls)}
        assert isinstance(value, dict)
        unknown = set(value) - names
        if unknown:
            raise DataError(f"unknown filter(s) {sorted(unknown)}; filters are {sorted(names)}")
        return cls(**value)


@dataclass
class StoreInfo:
    """A summary of a store: what :meth:`LabelStore.info` returns."""

    url: str
    task: str | None
    labels: list[str]
    n_items: int
    n_log: int
    counts: dict[str, int] = field(default_factory=dict)


class LabelStore:
    """Items, current labels, the correction log, review status, annotations, scores and snapshots.

    Open with :meth:`open`; import a table from :func:`workbench.data.load_dataset`
    with :meth:`import_dataset`.
    """

    def __init__(self, engine: Engine, *, url: str, busy_timeout: float) -> None:
        self._engine = engine
        self.url = url
        self.busy_timeout = busy_timeout
        self._meta_cache: dict[str, str] | None = None
        self._labels_cache: list[str] | None = None

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path_or_url: str | os.PathLike[str], *, busy_timeout: float = 30.0,
             synchronous: str = "FULL", create: bool = True) -> LabelStore:
        """Open (or create) a store.

        Parameters
        ----------
        path_or_url : str or path
            A SQLite file path, or a SQLAlchemy URL such as ``postgresql://...``.
        busy_timeout : float
            Seconds a write waits for another process's lock before
            :class:`~workbench.errors.StoreBusyError`.
        synchronous : {"FULL", "NORMAL"}
            SQLite's durability; ``FULL`` makes every acknowledged write survive power loss.
        create : bool
            Create a SQLite file that does not exist yet. False for callers that only read a store, so a
            mistyped path is an error instead of a new, empty store.

        Raises
        ------
        StoreNotFoundError
            ``create=False`` and no file at the path.
        """
        text = str(path_or_url)
        if "://" in text:
            url = _driver_url(text)
            engine = sa.create_engine(url, pool_pre_ping=True)
            if engine.dialect.name == "postgresql":
                _install_postgres_hooks(engine, busy_timeout=busy_timeout)
        else:
            path = Path(text).expanduser()
            if not create and not path.exists():
                raise StoreNotFoundError(f"there is no store at {path}; check the path, or create one with "
                                         f"`workbench import DATA --store {path}`")
            _check_sqlite_path(path)
            url = f"sqlite:///{path}"
            engine = sa.create_engine(url, connect_args={"timeout": busy_timeout, "check_same_thread": False})
            _install_sqlite_hooks(engine, busy_timeout=busy_timeout, synchronous=synchronous)
        store = cls(engine, url=url, busy_timeout=busy_timeout)
        try:
            store._prepare_schema()
        except sa.exc.DatabaseError as exc:
            engine.dispose()
            raise _translate(exc, url) from exc
        return store

    def close(self) -> None:
        """Release the store's connections."""
        self._engine.dispose()

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LabelStore({self.url!r})"

    def _prepare_schema(self) -> None:
        insp = sa.inspect(self._engine)
        tables = set(insp.get_table_names())
        if not tables:
            with self._write() as conn:
                S.metadata.create_all(conn)
                conn.execute(sa.insert(S.meta), [{"key": "schema_version", "value": str(S.SCHEMA_VERSION)},
                                                 {"key": "created", "value": str(time.time())}])
            return
        if "meta" not in tables:
            raise StoreSchemaError(
                f"{self.url} is a database but not a label store (it has tables {sorted(tables)[:8]} and no 'meta'); "
                "open a new path for the store"
            )
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(S.meta.c.value).where(S.meta.c.key == "schema_version")).first()
        version = int(row[0]) if row else 0
        if version > S.SCHEMA_VERSION:
            raise StoreSchemaError(
                f"{self.url} was written by a newer label-workbench (schema version {version}; this one reads up to "
                f"{S.SCHEMA_VERSION}). Upgrade label-workbench to open it; the store was not changed"
            )
        if version < S.SCHEMA_VERSION:
            missing = [v for v in range(version, S.SCHEMA_VERSION) if v not in MIGRATIONS]
            if missing:
                raise StoreSchemaError(
                    f"{self.url} has schema version {version} and there is no migration from version {missing[0]}; "
                    "export it with the label-workbench version that wrote it and import the export here. "
                    "The store was not changed"
                )
            with self._write() as conn:
                for v in range(version, S.SCHEMA_VERSION):
                    MIGRATIONS[v](conn)
                conn.execute(sa.update(S.meta).where(S.meta.c.key == "schema_version")
                             .values(value=str(S.SCHEMA_VERSION)))

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction that holds the write lock from its start (see :meth:`_retrying`)."""
        try:
            with self._engine.connect() as conn:
                conn = conn.execution_options(workbench_write=True)
                with conn.begin():
                    yield conn
        except sa.exc.DatabaseError as exc:
            raise _translate(exc, self.url) from exc

    def _read(self, fn: Callable[[Connection], T]) -> T:
        try:
            with self._engine.connect() as conn:
                return fn(conn)
        except sa.exc.DatabaseError as exc:
            raise _translate(exc, self.url) from exc

    def _retrying(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one write transaction, retrying all of it while another writer holds the lock.

        SQLite's own busy wait covers most waits; this loop covers the rest (e.g. a
        lock met during WAL recovery), up to ``busy_timeout`` seconds in all.
        """
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.005
        while True:
            try:
                with self._write() as conn:
                    return fn(conn)
            except StoreBusyError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    # ------------------------------------------------------------------ metadata
    def _meta(self) -> dict[str, str]:
        if self._meta_cache is None:
            rows = self._read(lambda c: c.execute(sa.select(S.meta.c.key, S.meta.c.value)).all())
            self._meta_cache = {k: v for k, v in rows}
        return self._meta_cache

    @property
    def task(self) -> str | None:
        """``"text-classification"``, ``"token-classification"``, or ``None`` before the first import."""
        return self._meta().get("task")

    @property
    def labels(self) -> list[str]:
        """The label set (for token classification, the tag set) in display order."""
        if self._labels_cache is None:
            rows = self._read(lambda c: c.execute(sa.select(S.labels.c.name).order_by(S.labels.c.position)).all())
            self._labels_cache = [r[0] for r in rows]
        return list(self._labels_cache)

    def tool_names(self, tool: str) -> dict[str, Any] | None:
        """What an annotation tool called the labels this store imported, for writing them back to it (for
        ``"label_studio"``: the control, the object it labels and the task's text field); None when no import
        came from that tool."""
        value = self._meta().get(f"names:{tool}")
        return json.loads(value) if value else None

    def _invalidate(self) -> None:
        self._meta_cache = None
        self._labels_cache = None

    def info(self) -> StoreInfo:
        """Counts of items, log rows and review statuses."""
        def run(c: Connection) -> StoreInfo:
            n = c.execute(sa.select(sa.func.count()).select_from(S.items)).scalar_one()
            n_log = c.execute(sa.select(sa.func.count()).select_from(S.log)).scalar_one()
            counts = dict(c.execute(sa.select(S.items.c.status, sa.func.count()).group_by(S.items.c.status)).all())
            changed = c.execute(sa.select(sa.func.count()).select_from(S.items).where(_changed_clause())).scalar_one()
            counts["corrected"] = changed
            return StoreInfo(self.url, self.task, self.labels, n, n_log, counts)
        return self._read(run)

    def summary(self) -> dict[str, Any]:
        """What the store holds, for a first look at it (``workbench info``); :meth:`info` is the cheap subset the
        label browser recounts after each key.

        Returns
        -------
        dict
            ``info`` (:class:`StoreInfo`); ``splits``: split -> items (items without one under None);
            ``classes``: current label -> items, largest first (token classification: entity type -> entities
            in the current tags); ``unlabelled``: items with no label;
            ``annotations`` and ``annotators``: annotators' label rows and how many annotators gave them;
            ``snapshots``: :meth:`snapshots`; ``scan``: :meth:`active_scan`.
        """
        tokens = self.task == "token-classification"

        def run(c: Connection) -> dict[str, Any]:
            def grouped(column: Any) -> dict[Any, int]:
                rows = c.execute(sa.select(column, sa.func.count()).group_by(column)).all()
                return {key: int(n) for key, n in sorted(rows, key=lambda r: (-r[1], str(r[0])))}

            splits = grouped(S.items.c.split)
            classes = (_entity_counts(c.execute(sa.select(S.items.c.label)).scalars()) if tokens else
                       {k: n for k, n in grouped(S.items.c.label).items() if k is not None})
            unlabelled = c.execute(sa.select(sa.func.count()).select_from(S.items)
                                   .where(S.items.c.label.is_(None))).scalar_one()
            annotations, annotators = c.execute(sa.select(
                sa.func.count(), sa.func.count(sa.distinct(S.item_annotations.c.annotator)))).one()
            return {"splits": splits, "classes": classes, "unlabelled": int(unlabelled),
                    "annotations": int(annotations), "annotators": int(annotators)}

        out = self._read(run)
        return {"info": self.info(), **out, "snapshots": self.snapshots(), "scan": self.active_scan()}

    def __len__(self) -> int:
        return int(self._read(lambda c: c.execute(sa.select(sa.func.count()).select_from(S.items)).scalar_one()))

    def set_label_set(self, labels: Sequence[str]) -> None:
        """Add labels to the label set (existing ones keep their place; none is removed)."""
        if not set(labels) - set(self.labels):
            return
        self._retrying(lambda c: _append_labels(c, labels))
        self._invalidate()

    # ------------------------------------------------------------------ import
    def import_dataset(self, table: pd.DataFrame, *, task: str | None = None, labels: Sequence[str] | None = None,
                       on_conflict: str = "error", author: str = "import") -> dict[str, int]:
        """Add the items of a table from :func:`workbench.data.load_dataset`.

        Parameters
        ----------
        table : pandas.DataFrame
            ``item_id, text|tokens, label|tags, split, content_hash`` and extra columns.
        task, labels : optional
            Override what ``table.attrs["workbench"]`` records. Classes named here (or by ``load_dataset(labels=...)``)
            all join the label set; classes read off the rows join it only from the rows this import adds or
            updates, so re-importing a file does not bring back a class merged away since (:meth:`merge_labels`).
        on_conflict : {"error", "skip", "update"}
            What to do with an item id that is already stored with other content or
            another label: refuse the whole import, keep the stored item, or take
            the new label (written to the log with source ``import``). Items whose
            content and label match what was first imported are unchanged, so
            re-importing a file keeps the corrections made since; a row without a
            label never changes a stored item's label. A review queue (a table with
            a ``given_label`` column, the label when it was queued) is read as
            decisions: with ``update``, a label that differs from its
            ``given_label`` is taken even where it is the label first imported.
        author : str
            Recorded on log rows the import writes.

        Returns
        -------
        dict
            ``{"added": n, "unchanged": n, "updated": n, "skipped": n, "replaced_corrections": n}``, the last
            the updated items whose label had been corrected in this store since it was imported: the log keeps
            the label replaced, and :meth:`undo` with ``author`` reverts the import's label updates.
        """
        info = dict(table.attrs.get("workbench", {}))
        task = task or info.get("task") or ("token-classification" if "tokens" in table.columns
                                            else "text-classification")
        label_set = list(labels if labels is not None else info.get("labels") or [])
        declared = labels is not None or bool(info.get("labels_declared"))
        if on_conflict not in ("error", "skip", "update"):
            raise DataError(f"on_conflict={on_conflict!r}; use 'error', 'skip' or 'update'")
        content_col, label_col = ("text", "label") if task == "text-classification" else ("tokens", "tags")
        need = ["item_id", content_col, label_col, "content_hash"]
        missing = [c for c in need if c not in table.columns]
        if missing:
            raise DataError(f"the table lacks the column(s) {missing}; load it with workbench.load_dataset first "
                            f"(it has {list(table.columns)})")
        if table["item_id"].duplicated().any():
            dup = table.loc[table["item_id"].duplicated(), "item_id"].iloc[0]
            raise DataError(f"the table has the item_id {dup!r} more than once; ids must be unique")
        if not label_set:
            if task == "text-classification":
                label_set = sorted({v for v in table[label_col] if isinstance(v, str)})
            else:
                from workbench.bio import split_tag, tag_set
                kinds = {split_tag(t)[1] for tg in table[label_col] if tg is not None for t in tg}
                label_set = tag_set(k for k in kinds if k is not None)
        current_task = self.task
        if current_task is not None and current_task != task:
            raise DataError(f"the store holds {current_task} items; this table is {task}. Use another store path")
        if task == "text-classification" and not declared:
            _refuse_ids_for_names(sorted({v for v in table[label_col] if isinstance(v, str)}), self.labels,
                                  source=str(info.get("source") or "the table"))
        extras = [c for c in table.columns if c not in ("item_id", "text", "tokens", "label", "tags", "split",
                                                      "content_hash")]
        records = list(_item_records(table, task, extras))
        # A review queue (the notebooks' review_queue.csv) says what each label was when it was queued: updating from
        # it, a filled-in label that differs from that is the reviewer's decision, even where it puts back the label
        # first imported (compared with the first label alone, reverting a correction read as "unchanged" and was
        # lost). Those rows skip the "unchanged" test below and are updated.
        queued = ({str(i): was for i, was in zip(table["item_id"], table["given_label"]) if isinstance(was, str)}
                  if on_conflict == "update" and "given_label" in table.columns and task == "text-classification"
                  else {})
        decided = {r["item_id"] for r in records
                   if r["item_id"] in queued and isinstance(r["label"], str) and r["label"] != queued[r["item_id"]]}

        def run(conn: Connection) -> dict[str, int]:
            stats = {"added": 0, "unchanged": 0, "updated": 0, "skipped": 0, "replaced_corrections": 0}
            # Compared with the label first imported, so re-importing the same file keeps corrections.
            existing = _fetch_items(conn, [r["item_id"] for r in records], S.items.c.content_hash,
                                    S.items.c.original_label, S.items.c.label, S.items.c.status)
            if current_task is None:
                conn.execute(sa.insert(S.meta), [{"key": "task", "value": task},
                                                 {"key": "normalization",
                                                  "value": info.get("normalization", "NFC+whitespace")}])
            if info.get("label_studio"):  # the latest import from the tool names what an export back writes
                _upsert_meta(conn, "names:label_studio", json.dumps(info["label_studio"]))
            start = conn.execute(sa.select(sa.func.coalesce(sa.func.max(S.items.c.pos), -1))).scalar_one() + 1
            fresh: list[dict[str, Any]] = []
            updates: list[tuple[str, str | None, str | None, str]] = []
            edited: list[str] = []
            relabelled: list[str] = []
            for rec in records:
                old = existing.get(rec["item_id"])
                if old is None:
                    rec["pos"] = start + len(fresh)
                    fresh.append(rec)
                elif (old[0] == rec["content_hash"] and (old[1] == rec["label"] or rec["label"] is None)
                      and rec["item_id"] not in decided):
                    # an unlabelled row says nothing about a stored item: its label and corrections stay (a
                    # reviewed queue re-imported with blank rows erased the labels of every row left blank)
                    stats["unchanged"] += 1
                elif on_conflict == "skip":
                    stats["skipped"] += 1
                elif on_conflict == "update" and old[0] == rec["content_hash"]:
                    if old[2] != rec["label"]:
                        updates.append((rec["item_id"], old[2], rec["label"], old[3]))
                        # someone changed this label in the store since it was imported (or, for a review queue,
                        # since the queue was written): say so; the file wins
                        stats["replaced_corrections"] += old[2] != queued.get(rec["item_id"], old[1])
                    else:
                        stats["unchanged"] += 1
                elif old[0] != rec["content_hash"]:
                    edited.append(rec["item_id"])
                else:
                    relabelled.append(rec["item_id"])
            if edited:
                # a stored text is never rewritten: its corrections, scores and log were made on that text
                what = "text" if task == "text-classification" else "tokens"
                split = next((r["split"] for r in records if r["split"] is not None), None)
                restart = (f" If the file is the {split!r} split and its ids start again where another split's did, "
                           "leave the id column out (ids then come from the content and the split)."
                           if split is not None else "")
                raise DataError(
                    f"{_name_ids(edited)} already in the store with another {what}; an import never changes a "
                    f"stored {what}, so give an edited item a new id (or leave it out of the file), or pass "
                    f"on_conflict='skip' to keep the stored items.{restart} Nothing was imported")
            if relabelled:
                raise DataError(
                    f"{_name_ids(relabelled)} already in the store with another label; pass on_conflict='skip' to "
                    "keep the stored labels or on_conflict='update' to take the new ones. Nothing was imported")
            known = [r[0] for r in conn.execute(sa.select(S.labels.c.name).order_by(S.labels.c.position)).all()]
            # A class read off the rows joins the label set only when a row brings it into the store: the rows left
            # unchanged keep their stored labels, so re-importing a file must not bring back a class merged away
            # since (merge_labels drops it from the set).
            taking = label_set if declared else _labels_of(task, [r["label"] for r in fresh]
                                                           + [u[2] for u in updates], order=label_set)
            new_labels = [lab for lab in taking if lab not in set(known)]
            if new_labels:
                conn.execute(sa.insert(S.labels), [{"name": n, "position": len(known) + i}
                                                   for i, n in enumerate(new_labels)])
            for chunk in _chunks(fresh, _CHUNK):
                conn.execute(sa.insert(S.items), chunk)
            stats["added"] = len(fresh)
            if updates:
                batch = _next_batch(conn)
                now = time.time()
                for item_id, old_label, new_label, status in updates:
                    conn.execute(sa.update(S.items).where(S.items.c.item_id == item_id).values(label=new_label))
                    conn.execute(sa.insert(S.log).values(batch=batch, item_id=item_id, field="label",
                                                         old_value=old_label, new_value=new_label, author=author,
                                                         source="import", time=now, note="re-import"))
                    if status == "queued":
                        # a label filled into an active-learning queue file answers the queue, as labelling the
                        # item in the browser does (left queued, the learner would not train on it)
                        _answer_queue(conn, item_id, batch=batch, author=author, source="import", time=now,
                                      note="re-import")
                stats["updated"] = len(updates)
            return stats

        stats = self._retrying(run)
        self._invalidate()
        return stats

    # ------------------------------------------------------------------ reading
    def get(self, item_id: str) -> dict[str, Any]:
        """One item as a dict (labels decoded); raises :class:`UnknownItemError`."""
        row = self._read(lambda c: c.execute(sa.select(S.items).where(S.items.c.item_id == item_id)).mappings()
                         .first())
        if row is None:
            raise UnknownItemError(f"no item with id {item_id!r} in {self.url}")
        return self._decode_row(dict(row))

    def _decode_row(self, row: dict[str, Any]) -> dict[str, Any]:
        if self.task == "token-classification":
            row["tokens"] = json.loads(row["tokens"]) if row.get("tokens") else None
            for key in ("label", "original_label", "suggested_label"):
                if row.get(key) is not None:
                    row[key] = json.loads(row[key])
        if row.get("extra"):
            row["extra"] = json.loads(row["extra"])
        return row

    def _where(self, filters: Filters) -> list[Any]:
        c = S.items.c
        out: list[Any] = []
        for name, col in (("label", c.label), ("suggested_label", c.suggested_label), ("status", c.status),
                          ("split", c.split)):
            value = getattr(filters, name)
            if value is None:
                continue
            values = [value] if isinstance(value, str) else list(value)
            if name == "status":
                bad = [v for v in values if v not in S.REVIEW_STATUSES]
                if bad:
                    raise DataError(f"unknown review status {bad[0]!r}; use one of {list(S.REVIEW_STATUSES)}")
            out.append(col.in_(values) if len(values) > 1 else col == values[0])
        if filters.score_min is not None:
            out.append(c.score >= filters.score_min)
        if filters.score_max is not None:
            out.append(c.score <= filters.score_max)
        if filters.issue:
            out.append(c.issues.like(f"%,{filters.issue},%"))
        if filters.search:
            escaped = filters.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            out.append(c.text.ilike(f"%{escaped}%", escape="\\"))
        if filters.regex:
            try:
                re.compile(filters.regex)
            except re.error as exc:
                raise DataError(f"the search pattern {filters.regex!r} is not a valid regular expression: {exc}") \
                    from exc
            out.append(c.text.regexp_match(filters.regex))
        if filters.changed is not None:
            out.append(_changed_clause() if filters.changed else sa.not_(_changed_clause()))
        if filters.unlabelled is not None:
            out.append(c.label.is_(None) if filters.unlabelled else c.label.is_not(None))
        if filters.disagree is not None:
            a = S.item_annotations.c
            split = (sa.select(a.item_id).group_by(a.item_id)
                     .having(sa.func.count(sa.distinct(a.label)) > 1))
            out.append(c.item_id.in_(split) if filters.disagree else c.item_id.not_in(split))
        if filters.item_ids is not None:
            out.append(c.item_id.in_(list(filters.item_ids)))
        if filters.duplicate_of is not None:
            self.get(filters.duplicate_of)  # a mistyped id says so instead of showing nothing
            twins = self._duplicate_group(filters.duplicate_of)
            out.append(sa.or_(c.item_id == filters.duplicate_of, c.item_id.in_(twins)) if twins is not None
                       else c.item_id == filters.duplicate_of)
        return out

    def _duplicate_group(self, item_id: str) -> Any:
        """A query of the other items in ``item_id``'s duplicate group in the active scan; None without a scan."""
        scan_id = self._meta().get("active_scan")
        if scan_id is None:
            return None
        sc = S.scores.c
        group = (sa.select(sc.value).where(sc.scan_id == scan_id, sc.name == "duplicate_group",
                                           sc.item_id == item_id).scalar_subquery())
        return sa.select(sc.item_id).where(sc.scan_id == scan_id, sc.name == "duplicate_group", sc.value == group,
                                           sc.item_id != item_id)

    def duplicates_of(self, item_id: str) -> list[str]:
        """The items the active scan linked to ``item_id`` as exact or near duplicates (its duplicate group).

        Empty when the item has none or no scan ran; an unknown id is an error.
        """
        self.get(item_id)  # a mistyped id says so instead of "no duplicates"
        twins = self._duplicate_group(item_id)
        if twins is None:
            return []
        q = twins.order_by(S.scores.c.item_id)
        return [r[0] for r in self._read(lambda conn: conn.execute(q).all())]

    def _order_keys(self, order_by: str | Sequence[str] | None) -> list[str]:
        """The sort keys asked for, or the default: worst score first once a scan exists, else import order."""
        keys = [order_by] if isinstance(order_by, str) else list(order_by or [])
        return keys or (["score"] if self._has_scores() else ["pos"])

    def _order(self, keys: Sequence[str]) -> list[Any]:
        out = []
        for key in keys:
            desc = key.startswith("-")
            name = key.lstrip("-")
            if name not in ORDERABLE:
                raise DataError(f"cannot sort by {name!r}; sortable columns are {list(ORDERABLE)}")
            col = S.items.c[name]
            # Items without a value (unscored, unlabelled) come last either way, on every backend: sorted first, a
            # pool of unlabelled items headed the browser's "worst label first" view. SQLite (3.30+) still walks
            # its (column, pos) index for NULLS LAST: 0.05 ms for a first page of 1,000,000 items, as before.
            term = col.desc() if desc else col.asc()
            out.append(term if self._engine.dialect.name == "sqlite" and _OLD_SQLITE else term.nulls_last())
        out.append(S.items.c.pos.asc())
        return out

    def _has_scores(self) -> bool:
        return self._meta().get("active_scan") is not None

    def page(self, offset: int = 0, limit: int = 50, *, filters: Filters | dict[str, Any] | None = None,
             order_by: str | Sequence[str] | None = None) -> pd.DataFrame:
        """One page of items.

        Parameters
        ----------
        offset, limit : int
            Rows to skip and rows to return.
        filters : Filters or dict, optional
            See :class:`Filters`.
        order_by : str or list of str, optional
            Column names, ``-name`` for descending. Default: worst label-quality
            score first when a scan exists, else import order.

        Returns
        -------
        pandas.DataFrame
            ``(<= limit, 13)``: item_id, text, tokens, split, original_label, label,
            status, score, suggested_label, suggested_prob, issues, extra, issue_details.
        """
        where = self._where(Filters.coerce(filters))
        c = S.items.c
        keys = self._order_keys(order_by)
        offset = max(0, int(offset))
        query = (sa.select(c.item_id, c.text, c.tokens, c.split, c.original_label, c.label, c.status, c.score,
                           c.suggested_label, c.suggested_prob, c.issues, c.extra, c.issue_details)
                 .where(*where).order_by(*self._order(keys)).limit(int(limit)))
        # Items are never deleted, so positions are 0..n-1: in import order, seek instead of skipping rows.
        query = query.where(c.pos >= offset) if not where and keys == ["pos"] else query.offset(offset)
        rows = self._read(lambda conn: conn.execute(query).mappings().all())
        decoded = [self._decode_row(dict(r)) for r in rows]
        for row in decoded:
            row["issues"] = [s for s in (row["issues"] or "").split(",") if s]
        return pd.DataFrame.from_records(decoded, columns=list(query.selected_columns.keys()))

    def issue_types(self) -> list[str]:
        """The issue types the active scan flagged, sorted."""
        query = sa.select(S.items.c.issues).where(S.items.c.issues.is_not(None)).distinct()
        rows = self._read(lambda c: c.execute(query).scalars().all())
        return sorted({kind for row in rows for kind in str(row).split(",") if kind})

    def splits(self) -> list[str]:
        """The split names the items carry, sorted (items with no split are not named)."""
        query = sa.select(S.items.c.split).where(S.items.c.split.is_not(None)).distinct()
        return sorted(str(s) for s in self._read(lambda c: c.execute(query).scalars().all()))

    def count(self, filters: Filters | dict[str, Any] | None = None) -> int:
        """How many items pass ``filters``."""
        where = self._where(Filters.coerce(filters))
        query = sa.select(sa.func.count()).select_from(S.items).where(*where)
        return int(self._read(lambda c: c.execute(query).scalar_one()))

    def history(self, item_id: str | None = None, *, author: str | None = None,
                limit: int | None = None) -> pd.DataFrame:
        """The log, oldest first (the newest ``limit`` rows when given).

        Returns
        -------
        pandas.DataFrame
            id, batch, item_id, field, old_value, new_value, author, source, time (UTC datetime), note, undo_of.
        """
        q = sa.select(S.log)
        if item_id is not None:
            q = q.where(S.log.c.item_id == item_id)
        if author is not None:
            q = q.where(S.log.c.author == author)
        q = q.order_by(S.log.c.id.desc())
        if limit is not None:
            q = q.limit(limit)
        rows = self._read(lambda c: c.execute(q).mappings().all())
        frame = pd.DataFrame.from_records([dict(r) for r in rows][::-1], columns=[c.name for c in S.log.columns])
        frame["time"] = pd.to_datetime(frame["time"].astype(float), unit="s", utc=True)
        return frame

    # ------------------------------------------------------------------ writing
    def _encode_label(self, label: Any, *, item_id: str, tokens_json: str | None) -> str:
        labels = self.labels
        if self.task == "token-classification":
            if isinstance(label, str) or not isinstance(label, Sequence):
                raise LabelError(f"item {item_id!r} is a sentence: give a list of tags, one per token")
            tags = list(label)
            n_tokens = len(json.loads(tokens_json)) if tokens_json else 0
            if len(tags) != n_tokens:
                raise LabelError(f"item {item_id!r} has {n_tokens} tokens but {len(tags)} tags were given")
            unknown = [t for t in tags if t not in labels]
            if unknown:
                raise LabelError(f"tag {unknown[0]!r} for item {item_id!r} is not in the tag set {labels}")
            err = find_bio_error(tags)
            if err is not None:
                raise LabelError(f"item {item_id!r}, token {err[0]}: {err[1]}")
            return json.dumps(tags)
        if not isinstance(label, str) or label not in labels:
            hint = " Add it first with store.set_label_set([...])" if isinstance(label, str) else ""
            raise LabelError(f"label {label!r} for item {item_id!r} is not in the label set {labels}.{hint}")
        return label

    def set_label(self, item_id: str, label: Any, *, author: str, source: str = "human",
                  note: str | None = None) -> int | None:
        """Change one item's current label; durable when this returns.

        Returns
        -------
        int or None
            The log row's id, or ``None`` when the label was already ``label``.
        """
        ids = self.set_labels({item_id: label}, author=author, source=source, note=note)
        return ids[0] if ids else None

    def set_labels(self, changes: dict[str, Any] | Iterable[tuple[str, Any]], *, author: str,
                   source: str = "human", note: str | None = None) -> list[int]:
        """Change several labels in one transaction and one undo step.

        Parameters
        ----------
        changes : dict or iterable of (item_id, label)
        author : str
            Who made the change; recorded on every log row.
        source : {"human", "suggestion", "rule", "import", "adjudication", "active-learning"}
            Labelling an item whose status is ``queued`` also marks it ``reviewed``, in the same undo step.

        Returns
        -------
        list of int
            Ids of the log rows written (unchanged items write none).
        """
        pairs = list(changes.items()) if isinstance(changes, dict) else list(changes)
        _check_actor(author, source)
        ids = [p[0] for p in pairs]

        def run(conn: Connection) -> list[int]:
            current = _fetch_items(conn, ids, S.items.c.label, S.items.c.tokens, S.items.c.status)
            batch = _next_batch(conn)
            now = time.time()
            written = []
            for item_id, label in pairs:
                if item_id not in current:
                    raise UnknownItemError(f"no item with id {item_id!r} in {self.url}; nothing was changed")
                old, tokens_json, status = current[item_id]
                new = self._encode_label(label, item_id=item_id, tokens_json=tokens_json)
                if status == "queued":
                    written.append(_answer_queue(conn, item_id, batch=batch, author=author, source=source, time=now,
                                                 note=note))
                if new == old:
                    current[item_id] = (new, tokens_json, "reviewed" if status == "queued" else status)
                    continue
                conn.execute(sa.update(S.items).where(S.items.c.item_id == item_id).values(label=new))
                res = conn.execute(sa.insert(S.log).values(batch=batch, item_id=item_id, field="label",
                                                           old_value=old, new_value=new, author=author,
                                                           source=source, time=now, note=note))
                current[item_id] = (new, tokens_json, "reviewed" if status == "queued" else status)
                written.append(_inserted_id(res))
            return written
        return self._retrying(run)

    def merge_labels(self, sources: str | Sequence[str], into: str, *, author: str,
                     note: str | None = None) -> list[int]:
        """Relabel every item labelled with one of ``sources`` as ``into``, in one undo step, and drop the
        source names from the label set (undo puts them back).

        For one class spelled two ways (``Refund`` / ``refund_request``, which the ``label_variant`` check
        finds), or two classes an analyst decides are one. ``into`` is added to the label set when new.
        Original labels and annotators' labels are kept as they were. Text classification only.

        Returns
        -------
        list of int
            Ids of the log rows written.
        """
        names = [sources] if isinstance(sources, str) else list(dict.fromkeys(sources))
        if self.task == "token-classification":
            raise DataError("merge_labels is for text classification; change tags with set_labels")
        if not names:
            raise LabelError("name at least one label to merge")
        unknown = [n for n in names if n not in self.labels]
        if unknown:
            raise LabelError(f"label(s) {unknown} to merge are not in the label set {self.labels}")
        if into in names:
            raise LabelError(f"cannot merge {into!r} into itself; name the labels to fold into it")
        if not isinstance(into, str) or not into.strip():
            raise LabelError(f"merge into a label name, got {into!r}")
        self.set_label_set([into])
        items = self.page(0, max(self.count(), 1), filters=Filters(label=names), order_by="pos")["item_id"]
        written = self.set_labels({str(i): into for i in items}, author=author, source="rule",
                                  note=note or f"merged {', '.join(map(repr, names))} into {into!r}")

        def drop(c: Connection) -> None:
            c.execute(sa.delete(S.labels).where(S.labels.c.name.in_(names)))
        self._retrying(drop)
        self._invalidate()
        return written

    def set_status(self, item_ids: str | Sequence[str], status: str, *, author: str, source: str = "human",
                   note: str | None = None) -> list[int]:
        """Set the review status of one or several items (one undo step); returns the log row ids."""
        if status not in S.REVIEW_STATUSES:
            raise DataError(f"unknown review status {status!r}; use one of {list(S.REVIEW_STATUSES)}")
        ids = [item_ids] if isinstance(item_ids, str) else list(item_ids)
        _check_actor(author, source)

        def run(conn: Connection) -> list[int]:
            current = _fetch_items(conn, ids, S.items.c.status)
            batch = _next_batch(conn)
            now = time.time()
            written = []
            for item_id in ids:
                if item_id not in current:
                    raise UnknownItemError(f"no item with id {item_id!r} in {self.url}; nothing was changed")
                old = current[item_id][0]
                if old == status:
                    continue
                conn.execute(sa.update(S.items).where(S.items.c.item_id == item_id).values(status=status))
                res = conn.execute(sa.insert(S.log).values(batch=batch, item_id=item_id, field="status",
                                                           old_value=old, new_value=status, author=author,
                                                           source=source, time=now, note=note))
                current[item_id] = (status,)
                written.append(_inserted_id(res))
            return written
        return self._retrying(run)

    def undo(self, *, author: str) -> list[int]:
        """Undo ``author``'s latest action that is not yet undone, by writing new log rows.

        Repeated calls walk further back. An import's action is the labels it updated (the items it added
        stay). Returns the ids of the rows written.

        Raises
        ------
        NothingToUndoError
            When the author has nothing left to undo.
        """
        _check_actor(author, "undo")
        log_c = S.log.c

        def run(conn: Connection) -> list[int]:
            undone = sa.select(log_c.undo_of).where(log_c.undo_of.is_not(None), log_c.author == author)
            batch = conn.execute(sa.select(sa.func.max(log_c.batch)).where(
                log_c.author == author, log_c.undo_of.is_(None), log_c.batch.not_in(undone))).scalar()
            if batch is None:
                raise NothingToUndoError(f"{author!r} has nothing left to undo in {self.url}")
            rows = conn.execute(sa.select(S.log).where(log_c.batch == batch).order_by(log_c.id.desc())).mappings().all()
            new_batch = _next_batch(conn)
            now = time.time()
            written = []
            restored_labels: list[str] = []
            for row in rows:
                col = S.items.c.label if row["field"] == "label" else S.items.c.status
                current = conn.execute(sa.select(col).where(S.items.c.item_id == row["item_id"])).scalar()
                if row["field"] == "label" and row["old_value"] is not None:
                    restored_labels.append(row["old_value"])
                conn.execute(sa.update(S.items).where(S.items.c.item_id == row["item_id"])
                             .values({col.name: row["old_value"]}))
                res = conn.execute(sa.insert(S.log).values(
                    batch=new_batch, item_id=row["item_id"], field=row["field"], old_value=current,
                    new_value=row["old_value"], author=author, source="undo", time=now,
                    note=f"undo of log row {row['id']}", undo_of=batch))
                written.append(_inserted_id(res))
            if self.task != "token-classification":  # a label merged away comes back into the label set
                _append_labels(conn, restored_labels)
            return written
        written = self._retrying(run)
        self._invalidate()
        return written

    def add_annotations(self, rows: pd.DataFrame | Iterable[dict[str, Any]]) -> int:
        """Record labels given by individual annotators, apart from the current label.

        Parameters
        ----------
        rows : DataFrame or iterable of dict
            Columns ``item_id, annotator, label`` (optional ``time``).
        """
        records: list[dict[str, Any]] = (
            [{str(k): v for k, v in r.items()} for r in rows.to_dict("records")] if isinstance(rows, pd.DataFrame)
            else list(rows))
        labels = set(self.labels)
        now = time.time()
        clean = []
        for i, r in enumerate(records):
            for key in ("item_id", "annotator", "label"):
                if key not in r or r[key] is None or str(r[key]) == "":
                    raise DataError(f"annotation {i}: {key!r} is missing")
            if str(r["label"]) not in labels:
                raise LabelError(f"annotation {i}: label {r['label']!r} is not in the label set {sorted(labels)}")
            clean.append({"item_id": str(r["item_id"]), "annotator": str(r["annotator"]), "label": str(r["label"]),
                          "time": float(r.get("time") or now)})

        def run(conn: Connection) -> int:
            found = _fetch_items(conn, list({str(r["item_id"]) for r in clean}), S.items.c.pos)
            for r in clean:
                if r["item_id"] not in found:
                    raise UnknownItemError(f"annotation for unknown item {r['item_id']!r}; nothing was added")
            for chunk in _chunks(clean, _CHUNK):
                conn.execute(sa.insert(S.item_annotations), chunk)
            return len(clean)
        return self._retrying(run)

    def has_annotations(self) -> bool:
        """Whether any annotator's label is stored (one indexed row read)."""
        query = sa.select(S.item_annotations.c.id).limit(1)
        return self._read(lambda c: c.execute(query).first()) is not None

    def annotations(self, item_id: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Annotators' labels (of one item, of several, or of all): item_id, annotator, label, time."""
        q = sa.select(S.item_annotations.c.item_id, S.item_annotations.c.annotator, S.item_annotations.c.label,
                      S.item_annotations.c.time).order_by(S.item_annotations.c.id)
        if isinstance(item_id, str):
            q = q.where(S.item_annotations.c.item_id == item_id)
        elif item_id is not None:
            q = q.where(S.item_annotations.c.item_id.in_(list(item_id)))
        rows = self._read(lambda c: c.execute(q).all())
        return pd.DataFrame(rows, columns=["item_id", "annotator", "label", "time"])

    # ------------------------------------------------------------------ scores
    def write_scores(self, scan_id: str, scores: pd.DataFrame, *, model: str | None = None,
                     params: dict[str, Any] | None = None, activate: bool = True,
                     labels_as_of: float | None = None) -> None:
        """Store a scan's per-item results and (by default) make it the scan pages sort by.

        Parameters
        ----------
        scan_id : str
        scores : pandas.DataFrame
            ``item_id, score`` and optionally ``suggested_label, suggested_prob, issues, issue_details``
            (list of str) and further numeric score columns, all kept in the scores table.
        labels_as_of : float, optional
            When the scan read the labels it judged (epoch seconds; default now). It is the scan's time: a label
            corrected while the scan ran (the panels scan in the background) counts as changed since the scan
            (:meth:`active_scan`), since its score judges the label before.
        """
        if "item_id" not in scores.columns or "score" not in scores.columns:
            raise DataError(f"scores need 'item_id' and 'score' columns; got {list(scores.columns)}")
        extra_cols = [c for c in scores.columns if c not in ("item_id", "suggested_label", "suggested_prob",
                                                             "issues", "issue_details")]
        records = scores.to_dict("records")
        is_tokens = self.task == "token-classification"

        def enc(v: Any) -> Any:
            if v is None or (isinstance(v, float) and v != v):
                return None
            return json.dumps(list(v)) if is_tokens and not isinstance(v, str) else v

        def run(conn: Connection) -> None:
            conn.execute(sa.delete(S.scores).where(S.scores.c.scan_id == scan_id))
            conn.execute(sa.delete(S.scans).where(S.scans.c.scan_id == scan_id))
            created = time.time() if labels_as_of is None else labels_as_of
            conn.execute(sa.insert(S.scans).values(scan_id=scan_id, created=created, model=model,
                                                   params=json.dumps(params or {})))
            long = [{"scan_id": scan_id, "item_id": r["item_id"], "name": name, "value": _float(r[name]),
                     "suggested_label": enc(r.get("suggested_label")),
                     "suggested_prob": _float(r.get("suggested_prob"))}
                    for r in records for name in extra_cols]
            for chunk in _chunks(long, _CHUNK):
                conn.execute(sa.insert(S.scores), chunk)
            if not activate:
                return
            conn.execute(sa.update(S.items).values(score=None, suggested_label=None, suggested_prob=None, issues=None,
                                                   issue_details=None))
            stmt = (sa.update(S.items).where(S.items.c.item_id == sa.bindparam("b_id"))
                    .values(score=sa.bindparam("b_score"), suggested_label=sa.bindparam("b_sug"),
                            suggested_prob=sa.bindparam("b_prob"), issues=sa.bindparam("b_issues"),
                            issue_details=sa.bindparam("b_why")))
            rows = [{"b_id": r["item_id"], "b_score": _float(r["score"]), "b_sug": enc(r.get("suggested_label")),
                     "b_prob": _float(r.get("suggested_prob")),
                     "b_issues": ("," + ",".join(r["issues"]) + ",") if r.get("issues") is not None and
                     len(r["issues"]) else None,
                     "b_why": r.get("issue_details") if isinstance(r.get("issue_details"), str) else None}
                    for r in records]
            for chunk in _chunks(rows, _CHUNK):
                conn.execute(stmt, chunk)
            _upsert_meta(conn, "active_scan", scan_id)
        self._retrying(run)
        self._invalidate()

    def active_scan(self) -> dict[str, Any] | None:
        """The scan whose scores, suggestions and issues the items carry now; None before the first.

        Returns
        -------
        dict or None
            ``scan_id``, ``time`` (UTC, a pandas Timestamp), ``model``, ``params`` (dict), ``n_scored``
            (items with a score) and ``labels_changed_since``: items whose label now differs from the one they
            had at the scan (their score and suggestion judge that one, so a re-scan refreshes them); a change
            undone, or a label set back by hand, does not count.
        """
        scan_id = self._meta().get("active_scan")
        if scan_id is None:
            return None

        def run(c: Connection) -> dict[str, Any] | None:
            row = c.execute(sa.select(S.scans).where(S.scans.c.scan_id == scan_id)).mappings().first()
            if row is None:
                return None
            # each item's first label change after the scan holds, as its old value, the label the scan judged
            first = (sa.select(S.log.c.item_id, sa.func.min(S.log.c.id).label("first_id"))
                     .where(S.log.c.field == "label", S.log.c.time > row["created"])
                     .group_by(S.log.c.item_id).subquery())
            then = S.log.alias("then")
            changed = c.execute(
                sa.select(sa.func.count())
                .select_from(first.join(then, then.c.id == first.c.first_id)
                             .join(S.items, S.items.c.item_id == first.c.item_id))
                .where(S.items.c.label.is_distinct_from(then.c.old_value))).scalar_one()
            scored = c.execute(sa.select(sa.func.count()).select_from(S.items)
                               .where(S.items.c.score.is_not(None))).scalar_one()
            return {"scan_id": scan_id, "time": pd.Timestamp(row["created"], unit="s", tz="UTC"),
                    "model": row["model"], "params": json.loads(row["params"] or "{}"), "n_scored": int(scored),
                    "labels_changed_since": int(changed)}
        return self._read(run)

    # ------------------------------------------------------------------ snapshots and export
    def snapshot_hash(self) -> str:
        """SHA-256 over every (item id, content hash, current label), in item-id order."""
        return self._read(_hash_items)

    def snapshot(self, name: str, *, author: str | None = None, note: str | None = None) -> str:
        """Record a named snapshot of the current labels and return its hash.

        Re-using a name for the same content returns the same hash; re-using it for
        other content is an error, so a run's cited snapshot never changes meaning.
        """
        digest = self.snapshot_hash()

        def run(conn: Connection) -> str:
            old = conn.execute(sa.select(S.snapshots.c.hash).where(S.snapshots.c.name == name)).scalar()
            if old is not None:
                if old != digest:
                    raise StoreError(f"snapshot {name!r} already exists with other labels (hash {old[:12]}); "
                                     "choose a new name")
                return str(old)
            n = conn.execute(sa.select(sa.func.count()).select_from(S.items)).scalar_one()
            last = conn.execute(sa.select(sa.func.coalesce(sa.func.max(S.log.c.id), 0))).scalar_one()
            conn.execute(sa.insert(S.snapshots).values(name=name, hash=digest, created=time.time(), n_items=n,
                                                       log_id=last, author=author, note=note))
            return digest
        return self._retrying(run)

    def snapshots(self) -> pd.DataFrame:
        """Named snapshots: name, hash, created, n_items, log_id, author, note."""
        rows = self._read(lambda c: c.execute(sa.select(S.snapshots).order_by(S.snapshots.c.created)).all())
        return pd.DataFrame(rows, columns=[c.name for c in S.snapshots.columns])

    def to_pandas(self, *, keep_original: bool = False, split: str | None = None) -> pd.DataFrame:
        """The corrected dataset in :func:`workbench.data.load_dataset`'s layout.

        Parameters
        ----------
        keep_original : bool
            Add ``original_label`` (``original_tags``) and ``review_status`` columns.
        split : str, optional
            Only this split.
        """
        return self._read(lambda c: self._frame(c, keep_original=keep_original, split=split))

    def to_pandas_with_hash(self, *, keep_original: bool = False) -> tuple[pd.DataFrame, str]:
        """:meth:`to_pandas` and :meth:`snapshot_hash` read in one transaction, so the hash names that table.

        A run cites the hash of the data it trained on; read apart, a label written in between (another
        notebook, ``workbench import``) would make the two disagree.
        """
        def run(c: Connection) -> tuple[pd.DataFrame, str]:
            return self._frame(c, keep_original=keep_original), _hash_items(c)
        # PostgreSQL's default (read committed) gives each statement its own view; SQLite's BEGIN already holds one
        options = {"isolation_level": "REPEATABLE READ"} if self._engine.dialect.name == "postgresql" else {}
        try:
            with self._engine.connect().execution_options(**options) as conn, conn.begin():
                return run(conn)
        except sa.exc.DatabaseError as exc:
            raise _translate(exc, self.url) from exc

    def _frame(self, c: Connection, *, keep_original: bool, split: str | None = None) -> pd.DataFrame:
        # column by column from plain tuples: building a dict per row cost 1.3 s on 100,000 items
        t = S.items.c
        cols = [t.item_id, t.text, t.tokens, t.label, t.split, t.content_hash, t.original_label, t.status, t.extra]
        q = sa.select(*cols).order_by(t.pos)
        if split is not None:
            q = q.where(t.split == split)
        rows = c.execute(q).all()
        item_id, text, tokens, label, split_, chash, original, status, extra = (
            list(col) for col in zip(*rows)) if rows else ([] for _ in cols)
        if self.task == "token-classification":
            content_col, label_col, content = "tokens", "tags", _json_column(tokens)
            label, original = _json_column(label), _json_column(original)
        else:
            content_col, label_col, content = "text", "label", text
        out: dict[str, list[Any]] = {"item_id": item_id, content_col: content, label_col: label, "split": split_,
                                     "content_hash": chash}
        if keep_original:
            out["original_" + label_col] = original
            out["review_status"] = status
        frame = pd.DataFrame(out)
        if any(extra):
            extra_frame = pd.DataFrame.from_records([json.loads(e) if e else {} for e in extra], index=frame.index)
            for col in extra_frame.columns:
                if col not in frame.columns:
                    frame[col] = extra_frame[col]
        frame.attrs["workbench"] = {"task": self.task, "labels": self.labels,
                                    "normalization": self._meta().get("normalization", "NFC+whitespace"),
                                    "source": self.url}
        return frame

    def export(self, path: str | os.PathLike[str], *, format: str | None = None, keep_original: bool = False,
               with_log: bool = True, split: str | None = None, names: dict[str, str] | None = None) -> list[Path]:
        """Write the corrected dataset (and the log beside it); see :func:`workbench.export.export_store`."""
        from workbench.export import export_store

        return export_store(self, path, format=format, keep_original=keep_original, with_log=with_log, split=split,
                            names=names)


# ---------------------------------------------------------------------- helpers
SQLITE_HEADER = b"SQLite format 3\x00"
#: File suffixes taken for a store when no file exists yet to read its header from.
STORE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def as_store(store: Any, *, what: str) -> LabelStore:
    """``store``, or the existing store that a path or URL names, opened (its holder keeps it open). ``what`` names
    the caller in the message for anything else: a dataset file's path, say, which has to be imported first."""
    if isinstance(store, LabelStore):
        return store
    if isinstance(store, (str, os.PathLike)):
        if is_store(store):
            return LabelStore.open(store, create=False)  # a typo'd path is refused, not opened as a new empty store
        raise DataError(f"{what} takes a label store; {os.fspath(store)} is a dataset file: import it into one first "
                        f"(store = LabelStore.open('labels.db'); store.import_dataset(load_dataset("
                        f"{os.fspath(store)!r})), or workbench import {os.fspath(store)} labels.db)")
    raise DataError(f"{what} takes a label store (LabelStore.open('labels.db')) or its path, not a "
                    f"{type(store).__name__}")


def takes_store_path(what: str, *, create: bool = False) -> Callable[[Callable[Concatenate[LabelStore, P], R]],
                                                                      Callable[Concatenate[Any, P], R]]:
    """Let a function of a store (its first argument) take the store's path too: opened for the call and closed
    after it (``create``: made when missing, as an import makes one); anything else is refused as
    :func:`as_store` refuses it, with ``what`` naming the function."""
    def wrap(fn: Callable[Concatenate[LabelStore, P], R]) -> Callable[Concatenate[Any, P], R]:
        @functools.wraps(fn)
        def inner(store: Any, *args: P.args, **kwargs: P.kwargs) -> R:
            if isinstance(store, LabelStore):
                return fn(store, *args, **kwargs)
            made = create and isinstance(store, (str, os.PathLike)) and is_store(store)
            with LabelStore.open(store) if made else as_store(store, what=what) as opened:
                return fn(opened, *args, **kwargs)
        return inner
    return wrap


def is_store(source: str | os.PathLike[str]) -> bool:
    """Whether ``source`` names a label store rather than a dataset file.

    A database URL; an existing file that starts with SQLite's header; an empty file or a path not there yet
    that ends in one of :data:`STORE_SUFFIXES`. Anything else (a CSV, a Parquet file, a datasets folder) is data.
    """
    text = str(source)
    if "://" in text:
        return True
    path = Path(text).expanduser()
    if path.is_file():
        head = _file_head(path)
        if head:
            return head == SQLITE_HEADER
    elif path.exists():
        return False  # a folder: a datasets save_to_disk folder, not a store
    return path.suffix.lower() in STORE_SUFFIXES


def _append_labels(conn: Connection, labels: Iterable[str]) -> None:
    """Add the labels the label set lacks at its end, in the order given (the ones it has keep their place)."""
    have = set(conn.execute(sa.select(S.labels.c.name)).scalars())
    new = [n for n in dict.fromkeys(labels) if n not in have]
    if new:
        start = conn.execute(sa.select(sa.func.coalesce(sa.func.max(S.labels.c.position), -1))).scalar_one() + 1
        conn.execute(sa.insert(S.labels), [{"name": n, "position": start + i} for i, n in enumerate(new)])


def _file_head(path: Path) -> bytes:
    """The first bytes of a file, as many as :data:`SQLITE_HEADER` has (what tells a SQLite file from others)."""
    with path.open("rb") as fh:
        return fh.read(len(SQLITE_HEADER))


def _check_sqlite_path(path: Path) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise StorePermissionError(f"{path} is a folder; give a file path for the store, e.g. {path / 'labels.db'}")
    if not folder.exists():
        raise StorePermissionError(f"cannot create the store {path}: the folder {folder} does not exist")
    # WAL needs to create -wal and -shm files beside the store, so the folder must be writable too.
    # A real write probe, because os.access says yes to root even on a read-only mount.
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".workbench-probe-"):
            pass
    except OSError as exc:
        raise StorePermissionError(
            f"cannot write the store {path}: the folder {folder} is read-only ({exc.strerror}; SQLite needs to "
            "create its journal files there). Choose a writable folder, or copy the store to one"
        ) from exc
    if path.exists() and not os.access(path, os.W_OK):
        raise StorePermissionError(f"cannot write the store {path}: the file is read-only. Make it writable or copy it")
    if path.exists() and path.stat().st_size > 0:
        head = _file_head(path)
        if head != SQLITE_HEADER:
            raise StoreCorruptError(
                f"{path} is not a SQLite database (it starts with {head[:12]!r}); it may be corrupt or another kind of "
                "file. The file was not changed; point to another path or restore the store from a backup"
            )


def _hash_items(c: Connection) -> str:
    h = hashlib.sha256()
    q = sa.select(S.items.c.item_id, S.items.c.content_hash, S.items.c.label).order_by(S.items.c.item_id)
    for item_id, chash, label in c.execute(q):
        h.update(f"{item_id}\x1f{chash}\x1f{label if label is not None else ''}\x1e".encode())
    return h.hexdigest()


def _json_column(values: list[str | None]) -> list[Any]:
    return [json.loads(v) if v else None for v in values]


def _install_sqlite_hooks(engine: Engine, *, busy_timeout: float, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Let us issue BEGIN ourselves, so writes can take the lock up front.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        mode = cur.execute("PRAGMA journal_mode = WAL").fetchone()
        cur.execute(f"PRAGMA synchronous = {synchronous}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()
        if mode and str(mode[0]).lower() != "wal":
            raise StoreError(f"SQLite could not switch {engine.url.database} to WAL mode (it is in {mode[0]} mode)")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock now, so two writers never deadlock upgrading a read lock.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("workbench_write") else "BEGIN")


def _driver_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (SQLAlchemy's default would be psycopg2, not installed)."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


#: Every write transaction on PostgreSQL takes this transaction-scoped advisory lock first, so writers
#: run one at a time as on SQLite: batch numbers stay unique and an old -> new chain never forks.
_PG_WRITE_LOCK = 0x6C61626C  # "labl"


def _install_postgres_hooks(engine: Engine, *, busy_timeout: float) -> None:
    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("workbench_write"):
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(busy_timeout * 1000)}ms'")
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_WRITE_LOCK})")


def _is_locked(exc: BaseException) -> bool:
    text = str(exc).lower()
    return ("database is locked" in text or "database table is locked" in text or "busy" in text
            or "lock timeout" in text or "could not serialize" in text or "deadlock detected" in text)


def _translate(exc: sa.exc.DBAPIError, url: str) -> WorkbenchError:
    text = str(getattr(exc, "orig", exc))
    low = text.lower()
    if _is_locked(exc):
        return StoreBusyError(f"{url} stayed locked by another writer past the timeout ({text}); try again, or raise "
                              "busy_timeout when opening the store")
    if "not a database" in low or "malformed" in low or "corrupt" in low:
        return StoreCorruptError(f"{url} is corrupt or not a label store ({text}); restore it from a backup or "
                                 "use another path. The file was not changed")
    if "readonly" in low or "read-only" in low or "unable to open" in low or "permission" in low:
        return StorePermissionError(f"cannot write {url} ({text}); check the file's and its folder's permissions")
    return StoreError(f"{url}: database error: {text}")


def _inserted_id(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _chunks(seq: Sequence[T], n: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _next_batch(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(S.log.c.batch), 0))).scalar_one()) + 1


def _answer_queue(conn: Connection, item_id: str, *, batch: int, author: str, source: str, time: float,
                  note: str | None) -> int:
    """Mark a queued item ``reviewed``: labelling it answers the queue. Logged in the label's batch, so undo puts
    the item back in the queue with its label. Returns the log row's id."""
    conn.execute(sa.update(S.items).where(S.items.c.item_id == item_id).values(status="reviewed"))
    res = conn.execute(sa.insert(S.log).values(batch=batch, item_id=item_id, field="status", old_value="queued",
                                               new_value="reviewed", author=author, source=source, time=time,
                                               note=note))
    return _inserted_id(res)


def _fetch_items(conn: Connection, ids: Sequence[str], *cols: Any) -> dict[str, tuple[Any, ...]]:
    found: dict[str, tuple[Any, ...]] = {}
    for chunk in _chunks(list(dict.fromkeys(ids)), 900):
        for row in conn.execute(sa.select(S.items.c.item_id, *cols).where(S.items.c.item_id.in_(chunk))):
            found[row[0]] = tuple(row[1:])
    return found


def _check_actor(author: str, source: str) -> None:
    if not isinstance(author, str) or not author.strip():
        raise DataError("author is empty; every change records who made it (e.g. author='alice')")
    if source not in S.SOURCES:
        raise DataError(f"unknown source {source!r}; use one of {list(S.SOURCES[:-1])}")


def _changed_clause() -> Any:
    """Items whose label differs from the one first imported (None counts as a value): the expression of the partial
    index ``ix_items_changed``, word for word, so the database can use it."""
    return S.CHANGED


def _upsert_meta(conn: Connection, key: str, value: str) -> None:
    conn.execute(sa.delete(S.meta).where(S.meta.c.key == key))
    conn.execute(sa.insert(S.meta).values(key=key, value=value))


def _float(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if f != f else f


def _name_ids(ids: Sequence[str], *, show: int = 3) -> str:
    """``item 'a' is`` / ``5 items ('a', 'b', 'c' and 2 more) are``: the start of a message about stored items."""
    if len(ids) == 1:
        return f"item {ids[0]!r} is"
    named = ", ".join(map(repr, ids[:show]))
    more = f" and {len(ids) - show} more" if len(ids) > show else ""
    return f"{len(ids)} items ({named}{more}) are"


def _labels_of(task: str, stored: Sequence[str | None], *, order: Sequence[str]) -> list[str]:
    """The labels of ``order`` that ``stored`` (item labels as the items table holds them: a class name, or a JSON list
    of IOB2 tags) carries; for tags, a class's ``B-`` and ``I-`` tags go together, and ``O`` with any tags."""
    if task == "text-classification":
        used = {v for v in stored if v is not None}
        return [lab for lab in order if lab in used]
    from workbench.bio import split_tag

    kinds = {split_tag(t)[1] for v in stored if v is not None for t in json.loads(v)}
    return [lab for lab in order if split_tag(lab)[1] in kinds or (lab == "O" and kinds)]


def _refuse_ids_for_names(given: list[str], stored: list[str], *, source: str) -> None:
    """Refuse labels that are all integer ids (a 0/1 column) into a store whose classes are names, none of them
    among ``given``: a test file exported with ids beside a store built from names would add classes '0' and '1'
    and score every item wrong, where the user meant the names."""
    if not given or not stored or set(given) & set(stored):
        return
    if all(map(looks_like_class_id, given)) and not any(map(looks_like_class_id, stored)):
        from workbench.report import first_few

        raise LabelError(f"{source}: its labels ({first_few(map(repr, given))}) look like integer class ids, and none "
                         f"is one of the store's classes ({first_few(map(repr, stored))}): name them with "
                         "label_names=..., id 0 first, or, if they are classes of their own, declare them with "
                         "labels=...; nothing was imported")


def _entity_counts(stored: Iterable[str | None]) -> dict[str, int]:
    """Entity type -> how many entities the stored tag lists (JSON, IOB2) hold, largest first."""
    from collections import Counter

    counts = Counter(t[2:] for v in stored if v is not None for t in json.loads(v) if t.startswith("B-"))
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _item_records(table: pd.DataFrame, task: str, extras: list[str]) -> Iterator[dict[str, Any]]:
    tokens = task == "token-classification"
    content = table["tokens" if tokens else "text"].tolist()
    labels = table["tags" if tokens else "label"].tolist()
    splits = table["split"].tolist() if "split" in table.columns else [None] * len(table)
    extra_rows = table[extras].to_dict("records") if extras else [{}] * len(table)
    for item_id, c, lab, sp, h, ex in zip(table["item_id"].tolist(), content, labels, splits,
                                          table["content_hash"].tolist(), extra_rows):
        rec: dict[str, Any]
        if tokens:
            toks = list(c)
            label = json.dumps(list(lab)) if lab is not None else None
            rec = {"text": " ".join(toks), "tokens": json.dumps(toks)}
        else:
            # a missing label may arrive as NaN or pd.NA from a hand-built table: stored as NULL either way
            label = None if is_missing(lab) else lab
            rec = {"text": c, "tokens": None}
        rec.update(item_id=str(item_id), content_hash=h, split=None if sp is None or sp != sp else str(sp),
                   original_label=label, label=label, status="unreviewed",
                   extra=json.dumps({k: _jsonable(v) for k, v in ex.items()}) if ex else None)
        yield rec


def _jsonable(v: Any) -> Any:
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, float) and v != v:
        return None
    if v is pd.NA or v is pd.NaT:
        return None
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v
