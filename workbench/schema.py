"""The label store's tables, as SQLAlchemy Core, portable between SQLite and PostgreSQL.

Labels are stored as text: a class name for text classification, a JSON list of tags
for token classification. A multi-label task can store a JSON list of class names in
the same columns (``meta.label_kind = "multi"``), so no table needs rewriting for it.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

#: Bump when a table changes, and add the step to :data:`MIGRATIONS` in store.py.
SCHEMA_VERSION = 4

#: ``queued``: chosen by active learning and waiting for a person to label it.
REVIEW_STATUSES = ("unreviewed", "reviewed", "skipped", "flagged", "queued")
SOURCES = ("human", "suggestion", "rule", "import", "adjudication", "active-learning", "undo")

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

labels = Table(
    "labels",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("position", Integer, nullable=False),
)

items = Table(
    "items",
    metadata,
    # Import order; in SQLite an INTEGER primary key is the rowid, the cheapest order there is.
    Column("pos", Integer, primary_key=True, autoincrement=False),
    Column("item_id", String(255), nullable=False, unique=True),
    Column("content_hash", String(64), nullable=False),
    Column("text", Text, nullable=False),  # the text as given; for NER the tokens joined by spaces
    Column("tokens", Text),  # JSON list of tokens (token classification only)
    Column("split", String(64)),
    Column("original_label", Text),
    Column("label", Text),  # the current label; NULL for an unlabelled pool item
    Column("status", String(16), nullable=False, server_default="unreviewed"),
    # The active scan's results, copied here so paging can sort and filter without a join.
    Column("score", Float),
    Column("suggested_label", Text),
    Column("suggested_prob", Float),
    Column("issues", Text),  # ",dup,outlier," so that LIKE '%,dup,%' finds one type
    Column("extra", Text),  # JSON object of the source's other columns
    Column("issue_details", Text),  # why the active scan flagged it: "issue: reason | ..." (schema version 3)
)
Index("ix_items_hash", items.c.content_hash)
#: The items whose label differs from the one first imported: the browser recounts them after every correction, and
#: this partial index turns that count from a table scan (19 ms at 100,000 items) into a walk over the corrected ones
#: (0.1 ms). The store's "changed" condition is this same expression (schema version 4).
CHANGED = items.c.label.is_distinct_from(items.c.original_label)
changed_index = Index("ix_items_changed", items.c.pos, sqlite_where=CHANGED, postgresql_where=CHANGED)
Index("ix_items_label_pos", items.c.label, items.c.pos)
Index("ix_items_status_pos", items.c.status, items.c.pos)
Index("ix_items_score", items.c.score, items.c.pos)
Index("ix_items_label_score", items.c.label, items.c.score, items.c.pos)
Index("ix_items_suggested", items.c.suggested_label, items.c.score)

log = Table(
    "log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch", Integer, nullable=False),  # rows written by one action share it; undo works per batch
    Column("item_id", String(255), nullable=False),
    Column("field", String(16), nullable=False),  # "label" or "status"
    Column("old_value", Text),
    Column("new_value", Text),
    Column("author", String(255), nullable=False),
    Column("source", String(32), nullable=False),
    Column("time", Float, nullable=False),  # seconds since the epoch, UTC
    Column("note", Text),
    Column("undo_of", Integer),  # the batch this row undoes
)
Index("ix_log_item", log.c.item_id, log.c.id)
Index("ix_log_author_batch", log.c.author, log.c.batch)
Index("ix_log_undo_of", log.c.undo_of)

item_annotations = Table(
    "annotations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", String(255), nullable=False),
    Column("annotator", String(255), nullable=False),
    Column("label", Text, nullable=False),
    Column("time", Float, nullable=False),
)
Index("ix_annotations_item", item_annotations.c.item_id)

scans = Table(
    "scans",
    metadata,
    Column("scan_id", String(64), primary_key=True),
    Column("created", Float, nullable=False),
    Column("model", Text),
    Column("params", Text),  # JSON
)

scores = Table(
    "scores",
    metadata,
    Column("scan_id", String(64), nullable=False),
    Column("item_id", String(255), nullable=False),
    Column("name", String(64), nullable=False),
    Column("value", Float),
    Column("suggested_label", Text),
    Column("suggested_prob", Float),
    PrimaryKeyConstraint("scan_id", "item_id", "name"),
)
#: The browser's "d" key looks an item's duplicate group up by value; only those rows are indexed, so writing a
#: scan's other scores costs nothing more (schema version 2).
duplicate_group_index = Index("ix_scores_duplicate_group", scores.c.scan_id, scores.c.value,
                              sqlite_where=scores.c.name == "duplicate_group",
                              postgresql_where=scores.c.name == "duplicate_group")

snapshots = Table(
    "snapshots",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("hash", String(64), nullable=False),
    Column("created", Float, nullable=False),
    Column("n_items", Integer, nullable=False),
    Column("log_id", Integer, nullable=False),  # the last log row included: labels can be replayed
    Column("author", String(255)),
    Column("note", Text),
)
