"""The label store: corrections, the append-only log, undo, review status, paging, scores, snapshots."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from workbench import LabelStore, load_dataset
from workbench.errors import DataError, NothingToUndoError, StoreError
from workbench.sample import make_ner_sample


@pytest.fixture
def store_path(store_url):
    """Every test in this file runs on SQLite and on PostgreSQL (see ``store_url`` in conftest)."""
    return store_url


def _ids(store: LabelStore, n: int) -> list[str]:
    return store.page(0, n, order_by="pos")["item_id"].tolist()


def _other(store: LabelStore, item_id: str) -> str:
    current = store.get(item_id)["label"]
    return next(lab for lab in store.labels if lab != current)


def test_import_records_items_labels_and_meta(store, sample_table):
    assert len(store) == len(sample_table)
    assert store.task == "text-classification"
    assert store.labels == sample_table.attrs["workbench"]["labels"]
    item = store.get(sample_table["item_id"][5])
    assert item["text"] == sample_table["text"][5]
    assert item["label"] == item["original_label"] == sample_table["label"][5]
    assert item["status"] == "unreviewed"
    assert item["extra"]["true_label"] == sample_table["true_label"][5]
    assert store.history().empty


def test_summary_counts_splits_classes_reviews_and_annotations(store, sample_table):
    """`workbench info`'s numbers, from grouped counts (on both databases), against pandas on the same table."""
    item = _ids(store, 1)[0]
    store.set_label(item, _other(store, item), author="ann")
    store.set_status(item, "reviewed", author="ann")
    store.add_annotations(pd.DataFrame({"item_id": [item, item], "annotator": ["a1", "a2"],
                                        "label": [store.labels[0], store.labels[1]]}))
    summary = store.summary()
    current = store.to_pandas()
    assert summary["info"].n_items == len(sample_table)
    assert summary["splits"] == current["split"].value_counts(dropna=False).to_dict()
    expected = current["label"].value_counts()
    assert summary["classes"] == expected.to_dict()
    assert list(summary["classes"].values()) == sorted(expected, reverse=True)  # largest first
    assert summary["unlabelled"] == 0 and (summary["annotations"], summary["annotators"]) == (2, 2)
    assert summary["info"].counts == {"unreviewed": len(sample_table) - 1, "reviewed": 1, "corrected": 1}
    assert summary["snapshots"].empty and summary["scan"] is None


def test_set_label_logs_old_new_author_source_note(store):
    item = _ids(store, 1)[0]
    old = store.get(item)["label"]
    new = _other(store, item)
    log_id = store.set_label(item, new, author="ann", note="typo")
    assert store.get(item)["label"] == new
    row = store.history(item).iloc[-1]
    assert (row["id"], row["old_value"], row["new_value"], row["author"], row["source"], row["note"]) == (
        log_id, old, new, "ann", "human", "typo")
    assert row["field"] == "label"
    assert store.set_label(item, new, author="ann") is None  # unchanged: no row
    assert len(store.history(item)) == 1


def test_undo_writes_rows_and_walks_back(store):
    a, b = _ids(store, 2)
    a0, b0 = store.get(a)["label"], store.get(b)["label"]
    store.set_label(a, _other(store, a), author="ann")
    store.set_labels({a: b0 if b0 != store.get(a)["label"] else a0, b: _other(store, b)}, author="ann")
    store.set_label(b, _other(store, b), author="bob")  # bob's action is not ann's to undo
    n_before = len(store.history())
    undo_rows = store.undo(author="ann")  # the bulk change, both items
    assert len(undo_rows) == 2
    store.undo(author="ann")  # the first change
    assert store.get(a)["label"] == a0
    with pytest.raises(NothingToUndoError):
        store.undo(author="ann")
    hist = store.history()
    assert len(hist) == n_before + 3  # nothing deleted, three undo rows added
    assert (hist["source"] == "undo").sum() == 3
    assert hist["id"].is_monotonic_increasing


def test_merging_labels_relabels_in_one_undo_step_and_undo_brings_the_names_back(store_path):
    from workbench.errors import LabelError

    frame = pd.DataFrame({"text": [f"text {i}" for i in range(8)],
                          "label": ["Refund", "refund_request", "refund", "other"] * 2})
    with LabelStore.open(store_path) as store:
        store.import_dataset(load_dataset(frame))
        before = store.to_pandas()["label"].tolist()
        written = store.merge_labels(["Refund", "refund"], "refund_request", author="ann")
        assert len(written) == 4
        assert store.labels == ["other", "refund_request"]
        assert store.to_pandas()["label"].tolist() == (["refund_request"] * 3 + ["other"]) * 2
        assert store.to_pandas(keep_original=True)["original_label"].tolist() == before
        store.undo(author="ann")
        assert store.to_pandas()["label"].tolist() == before
        assert sorted(store.labels) == ["Refund", "other", "refund", "refund_request"]
        store.merge_labels("other", "misc", author="ann")  # a new target joins the label set
        assert "misc" in store.labels and "other" not in store.labels
        # re-importing the file (or a grown copy) keeps the merge: its unchanged rows keep their stored labels, so
        # they must not bring the merged-away class back into the label set (it came back with no items)
        assert store.import_dataset(load_dataset(frame))["unchanged"] == 8
        assert "other" not in store.labels
        grown = pd.concat([frame, pd.DataFrame({"text": ["text 8"], "label": ["other"]})], ignore_index=True)
        assert store.import_dataset(load_dataset(grown))["added"] == 1
        assert "other" in store.labels  # a new row that carries it does
        store.set_label_set([*store.labels, "spare"])
        declared = load_dataset(frame.assign(label=None), labels=["spare", "extra"], allow_missing_labels=True)
        store.import_dataset(declared)  # classes named by the caller join it with or without rows
        assert "extra" in store.labels
        for sources, into, says in [(["nope"], "x", "not in the label set"), (["Refund"], "Refund", "into itself"),
                                    ([], "x", "at least one")]:
            with pytest.raises(LabelError, match=says):
                store.merge_labels(sources, into, author="ann")


def test_status_changes_are_logged_and_undoable(store):
    item = _ids(store, 1)[0]
    store.set_status(item, "flagged", author="ann")
    assert store.get(item)["status"] == "flagged"
    assert store.info().counts["flagged"] == 1
    store.undo(author="ann")
    assert store.get(item)["status"] == "unreviewed"
    assert list(store.history(item)["field"]) == ["status", "status"]


def test_page_filters_and_sorting(store):
    ids = _ids(store, 10)
    target = store.labels[0]
    page = store.page(0, 1000, filters={"label": target})
    assert len(page) == store.count({"label": target}) > 0
    assert set(page["label"]) == {target}
    assert store.page(0, 5, order_by="pos")["item_id"].tolist() == ids[:5]
    assert store.page(5, 5, order_by="pos")["item_id"].tolist() == ids[5:10]
    texts = store.page(0, 50, order_by="-text")["text"].tolist()
    assert texts == sorted(texts, reverse=True)
    word = store.get(ids[0])["text"].split()[-1]
    found = store.page(0, 1000, filters={"search": word.upper()})
    assert ids[0] in set(found["item_id"]) and all(word.lower() in t.lower() for t in found["text"])
    rx = store.page(0, 1000, filters={"regex": r"#\d{5}"})
    assert len(rx) > 0 and all(pd.Series(rx["text"]).str.contains(r"#\d{5}"))
    store.set_label(ids[3], _other(store, ids[3]), author="ann")
    assert store.page(0, 10, filters={"changed": True})["item_id"].tolist() == [ids[3]]
    assert store.count({"changed": False}) == len(store) - 1
    assert store.count({"item_ids": ids[:4]}) == 4
    # a literal % in a search is not a wildcard
    assert store.count({"search": "%"}) == sum("%" in t for t in store.to_pandas()["text"])


def test_scores_drive_default_order_and_filters(store):
    frame = store.to_pandas()
    scores = pd.DataFrame({
        "item_id": frame["item_id"],
        "score": [(i * 37 % 101) / 100 for i in range(len(frame))],
        "suggested_label": [store.labels[i % len(store.labels)] for i in range(len(frame))],
        "suggested_prob": 0.9,
        "issues": [["label"] if i % 7 == 0 else [] for i in range(len(frame))],
        "margin": 0.5,
    })
    store.write_scores("scan-1", scores, model="test")
    page = store.page(0, 20)
    assert page["score"].tolist() == sorted(scores["score"])[:20]
    assert store.count({"issue": "label"}) == sum(i % 7 == 0 for i in range(len(frame)))
    sub = store.page(0, 1000, filters={"score_max": 0.1, "suggested_label": store.labels[0]})
    assert len(sub) > 0 and (sub["score"] <= 0.1).all() and set(sub["suggested_label"]) == {store.labels[0]}
    assert page["issues"].map(type).eq(list).all()


def test_the_active_scan_says_when_it_ran_and_how_many_labels_changed_since(store):
    assert store.active_scan() is None
    frame = store.to_pandas()
    store.write_scores("scan-1", pd.DataFrame({"item_id": frame["item_id"][:30], "score": 0.5}), model="m",
                       params={"folds": 5})
    scan = store.active_scan()
    assert (scan["scan_id"], scan["model"], scan["params"], scan["n_scored"]) == ("scan-1", "m", {"folds": 5}, 30)
    assert scan["labels_changed_since"] == 0 and abs(scan["time"] - pd.Timestamp.now(tz="UTC")).total_seconds() < 60
    a, b = frame["item_id"][:2]
    store.set_label(a, next(lab for lab in store.labels if lab != frame["label"][0]), author="ann")
    store.set_label(b, next(lab for lab in store.labels if lab != frame["label"][1]), author="ann")
    store.set_status(a, "reviewed", author="ann")  # a status is not a label
    assert store.active_scan()["labels_changed_since"] == 2
    store.undo(author="ann")  # a's status back: a status is not a label
    assert store.active_scan()["labels_changed_since"] == 2
    store.undo(author="ann")  # b's label back: the label the scan judged, so its score holds again
    assert store.active_scan()["labels_changed_since"] == 1
    store.set_label(a, frame["label"][0], author="ann")  # set back by hand: the same
    assert store.active_scan()["labels_changed_since"] == 0
    store.write_scores("scan-2", pd.DataFrame({"item_id": frame["item_id"], "score": 0.5}), model="m")
    assert store.active_scan()["scan_id"] == "scan-2" and store.active_scan()["labels_changed_since"] == 0
    assert store.active_scan()["n_scored"] == len(frame)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_an_older_store_is_migrated_when_opened(store_path, sample_table, version):
    import sqlalchemy as sa

    from workbench import schema

    with LabelStore.open(store_path) as old:
        old.import_dataset(sample_table)
        with old._write() as conn:  # what a store written at that schema version looks like
            if version < 2:
                conn.execute(sa.text("DROP INDEX ix_scores_duplicate_group"))
            if version < 3:
                conn.execute(sa.text("ALTER TABLE items DROP COLUMN issue_details"))
            conn.execute(sa.text("DROP INDEX ix_items_changed"))
            conn.execute(sa.update(schema.meta).where(schema.meta.c.key == "schema_version")
                         .values(value=str(version)))
    with LabelStore.open(store_path) as store:
        assert "ix_scores_duplicate_group" in {i["name"] for i in sa.inspect(store._engine).get_indexes("scores")}
        assert "ix_items_changed" in {i["name"] for i in sa.inspect(store._engine).get_indexes("items")}
        assert store._meta()["schema_version"] == str(schema.SCHEMA_VERSION) == "4"
        assert len(store) == len(sample_table)
        assert "issue_details" in {c["name"] for c in sa.inspect(store._engine).get_columns("items")}
        store.write_scores("s", pd.DataFrame({"item_id": sample_table["item_id"][:2], "score": [0.1, 0.9],
                                              "issue_details": ["outlier: far", None]}))
        why = store.page(0, 2)["issue_details"]
        assert why[0] == "outlier: far" and pd.isna(why[1])


def test_items_without_a_score_come_last_in_either_direction(store):
    """A scan scores labelled items only: the unscored ones (a pool to label) no longer head "worst first"."""
    frame = store.to_pandas()
    scored = frame["item_id"][10:]
    store.write_scores("scan-1", pd.DataFrame({"item_id": scored, "score": np.linspace(0.9, 0.1, len(scored)),
                                               "issues": [[] for _ in scored]}), model="test")
    worst_first = store.page(0, len(frame))
    assert worst_first["score"].iloc[:-10].is_monotonic_increasing and worst_first["score"].iloc[-10:].isna().all()
    best_first = store.page(0, len(frame), order_by="-score")
    assert best_first["score"].iloc[:-10].is_monotonic_decreasing and best_first["score"].iloc[-10:].isna().all()
    assert store.page(len(frame) - 10, 10)["item_id"].tolist() == frame["item_id"][:10].tolist()  # then by position


def test_snapshot_hash_tracks_labels_and_names_are_immutable(store):
    h1 = store.snapshot("before", author="ann")
    assert store.snapshot("before") == h1
    item = _ids(store, 1)[0]
    store.set_label(item, _other(store, item), author="ann")
    h2 = store.snapshot_hash()
    assert h2 != h1
    with pytest.raises(StoreError, match="before"):
        store.snapshot("before")
    store.undo(author="ann")
    assert store.snapshot_hash() == h1
    snaps = store.snapshots()
    assert snaps["name"].tolist() == ["before"] and snaps["hash"][0] == h1


def test_a_table_and_its_hash_are_read_as_of_one_moment(store, store_path, monkeypatch):
    """What launch() snapshots: a label another process writes between the two reads changes neither."""
    from workbench import LabelStore

    before, item = store.snapshot_hash(), _ids(store, 1)[0]
    other = LabelStore.open(store_path)
    read_frame = LabelStore._frame

    def frame_then_a_write_elsewhere(self, conn, **kw):
        frame = read_frame(self, conn, **kw)
        other.set_label(item, _other(store, item), author="bob")  # commits while this read is still open
        return frame

    monkeypatch.setattr(LabelStore, "_frame", frame_then_a_write_elsewhere)
    table, digest = store.to_pandas_with_hash(keep_original=True)
    monkeypatch.undo()
    other.close()
    assert digest == before  # the hash of the rows in the table, not of the label written after them
    assert table.set_index("item_id").loc[item, "label"] == table.set_index("item_id").loc[item, "original_label"]
    assert store.snapshot_hash() != before and store.to_pandas().equals(store.to_pandas_with_hash()[0])


def test_annotations_kept_apart_from_current_label(store):
    a, b = _ids(store, 2)
    lab = store.labels
    store.add_annotations([{"item_id": a, "annotator": "x", "label": lab[0]},
                           {"item_id": a, "annotator": "y", "label": lab[1]},
                           {"item_id": b, "annotator": "x", "label": lab[2]}])
    ann = store.annotations(a)
    assert sorted(ann["annotator"]) == ["x", "y"]
    assert store.get(a)["label"] == store.get(a)["original_label"]
    assert store.history().empty


def test_reimport_unchanged_skip_and_update(store):
    frame = store.to_pandas()
    assert store.import_dataset(frame)["unchanged"] == len(frame)
    changed = frame.copy()
    changed.loc[0, "label"] = next(lab for lab in store.labels if lab != frame["label"][0])
    assert store.import_dataset(changed, on_conflict="skip")["skipped"] == 1
    stats = store.import_dataset(changed, on_conflict="update", author="sync")
    assert stats["updated"] == 1
    row = store.history().iloc[-1]
    assert (row["source"], row["author"], row["new_value"]) == ("import", "sync", changed["label"][0])


def test_a_row_without_a_label_never_changes_a_stored_label(store):
    # a reviewed queue comes back with the rows nobody reached left blank: those keep their label and corrections
    frame = store.to_pandas()
    first, second = frame["item_id"][0], frame["item_id"][1]
    other = next(lab for lab in store.labels if lab != frame["label"][1])
    store.set_label(first, next(lab for lab in store.labels if lab != frame["label"][0]), author="ann")
    corrected = store.get(first)["label"]
    queue = frame.head(3).copy()
    queue["label"] = [None, other, None]
    with pytest.raises(DataError, match=f"item {second!r} is already in the store with another label"):
        store.import_dataset(queue)  # the filled-in row is the conflict; the blank ones are not
    assert store.import_dataset(queue, on_conflict="skip") == {"added": 0, "unchanged": 2, "updated": 0, "skipped": 1,
                                                                       "replaced_corrections": 0}
    stats = store.import_dataset(queue, on_conflict="update")
    assert stats == {"added": 0, "unchanged": 2, "updated": 1, "skipped": 0, "replaced_corrections": 0}
    assert store.get(first)["label"] == corrected and store.get(second)["label"] == other
    assert store.get(frame["item_id"][2])["label"] == frame["label"][2]
    assert store.history()["item_id"].tolist() == [first, second]

def test_a_review_queue_can_put_back_the_label_first_imported(store):
    # an item corrected, queued again by a later scan, and the reviewer decides the first label was right
    frame = store.to_pandas()
    item, first = frame["item_id"][0], frame["label"][0]
    other = next(lab for lab in store.labels if lab != first)
    store.set_label(item, other, author="ann")
    queue = frame.head(2).assign(given_label=[other, frame["label"][1]], label=[first, frame["label"][1]])
    assert store.import_dataset(queue, on_conflict="update", author="rev") == {
        "added": 0, "unchanged": 1, "updated": 1, "skipped": 0, "replaced_corrections": 0}
    assert store.get(item)["label"] == first
    assert store.history()[["author", "old_value", "new_value"]].values.tolist()[-1] == ["rev", other, first]
    # without given_label the same table is a re-import of the first labels: the correction stays
    store.set_label(item, other, author="ann")
    assert store.import_dataset(queue.drop(columns="given_label"), on_conflict="update")["unchanged"] == 2
    assert store.get(item)["label"] == other


def test_a_label_filled_into_a_queue_file_answers_the_queue(store):
    # active learning headless: the queue goes out as a file, comes back with labels; left "queued", the learner
    # would never train on those labels
    frame = store.to_pandas()
    answered, blank = frame["item_id"][0], frame["item_id"][1]
    store.set_status([answered, blank], "queued", author="al", source="active-learning")
    queue = frame.head(2).assign(label=[_other(store, answered), None])
    assert store.import_dataset(queue, on_conflict="update", author="rev")["updated"] == 1
    assert (store.get(answered)["status"], store.get(blank)["status"]) == ("reviewed", "queued")
    assert store.history()[["field", "author"]].values.tolist()[-2:] == [["label", "rev"], ["status", "rev"]]
    store.undo(author="rev")  # label and status in one step
    assert (store.get(answered)["label"], store.get(answered)["status"]) == (frame["label"][0], "queued")


def test_an_update_over_a_correction_is_counted_and_undo_puts_the_correction_back(store):
    frame = store.to_pandas()
    item, first = frame["item_id"][0], frame["label"][0]
    mine, theirs = [lab for lab in store.labels if lab != first][:2]
    store.set_label(item, mine, author="ann")
    upstream = frame.head(3).copy()
    upstream.loc[0, "label"] = theirs  # relabelled upstream too
    upstream.loc[1, "label"] = next(lab for lab in store.labels if lab != frame["label"][1])  # not corrected here
    stats = store.import_dataset(upstream, on_conflict="update", author="sync")
    assert (stats["updated"], stats["replaced_corrections"]) == (2, 1)
    assert store.get(item)["label"] == theirs
    store.undo(author="sync")  # the import's label updates, both of them
    assert store.get(item)["label"] == mine and store.get(frame["item_id"][1])["label"] == frame["label"][1]
    assert len(store) == len(frame)
    # a review queue: a decision over the label it was queued with replaces nothing; over a label changed
    # since the queue was written, it does
    queue = frame.head(2).assign(given_label=[mine, frame["label"][1]], label=[theirs, frame["label"][1]])
    assert store.import_dataset(queue, on_conflict="update", author="rev")["replaced_corrections"] == 0
    store.set_label(item, mine, author="ann")
    store.set_label(item, first, author="bob")  # after the queue was written
    assert store.import_dataset(queue, on_conflict="update", author="rev")["replaced_corrections"] == 1


def test_edited_texts_are_refused_all_named_at_once(store):
    frame = store.to_pandas()
    edited = frame.head(5).copy()
    edited["text"] = edited["text"] + " (edited)"
    edited["content_hash"] = [h[::-1] for h in edited["content_hash"]]
    with pytest.raises(DataError, match=r"5 items \('.+', '.+', '.+' and 2 more\) are already in the store with "
                                        r"another text; an import never changes a stored text"):
        store.import_dataset(edited, on_conflict="update")
    assert store.to_pandas()["text"].tolist() == frame["text"].tolist()
    # ids that start again in a second split's own file: the refusal says how to keep both
    with pytest.raises(DataError, match=r"If the file is the 'test' split and its ids start again where another "
                                        r"split's did, leave the id column out"):
        store.import_dataset(edited.assign(split="test"))


def test_token_classification_store(store_path):
    table = load_dataset(make_ner_sample(n_sentences=40), task="token-classification", id_column="id")
    store = LabelStore.open(store_path)
    store.import_dataset(table)
    item = store.get(table["item_id"][0])
    assert item["tokens"] == list(table["tokens"][0])
    tags = list(item["label"])
    j = next(i for i, t in enumerate(tags) if t.startswith("B-"))
    kind = tags[j][2:]
    new_kind = next(t for t in ("PER", "ORG", "LOC", "MISC") if t != kind)
    k = j
    while k < len(tags) and (k == j or tags[k] == f"I-{kind}"):
        tags[k] = ("B-" if k == j else "I-") + new_kind
        k += 1
    store.set_label(item["item_id"], tags, author="ann")
    assert store.get(item["item_id"])["label"] == tags
    assert json.loads(store.history().iloc[-1]["new_value"]) == tags
    with pytest.raises(Exception, match="tokens but"):
        store.set_label(item["item_id"], tags[:-1], author="ann")
    with pytest.raises(Exception, match="token 0"):
        store.set_label(item["item_id"], ["I-PER"] + tags[1:], author="ann")
    labels = store.labels
    store.import_dataset(table)  # nothing new: the tag set stays as it was
    assert store.labels == labels
    store.close()


def test_store_reopens_with_everything(store_path, sample_table):
    with LabelStore.open(store_path) as s:
        s.import_dataset(sample_table)
        item = sample_table["item_id"][0]
        new = next(lab for lab in s.labels if lab != sample_table["label"][0])
        s.set_label(item, new, author="ann")
        s.snapshot("v1")
    with LabelStore.open(store_path) as s:
        assert s.get(item)["label"] == new
        assert len(s.history()) == 1 and s.snapshots()["name"].tolist() == ["v1"]


def test_migrate_a_sqlite_store_into_postgresql_with_one_command(tmp_path, sample_table, postgres_server, capsys):
    from conftest import fresh_postgres_database

    from workbench.cli import main

    source = tmp_path / "local.db"
    with LabelStore.open(source) as s:
        s.import_dataset(sample_table)
        ids = _ids(s, 3)
        s.set_label(ids[0], _other(s, ids[0]), author="ann")
        s.set_status(ids[1], "flagged", author="bob")
        s.add_annotations([{"item_id": ids[2], "annotator": "x", "label": s.labels[0]}])
        s.snapshot("before-move", author="ann")
        expected_hash = s.snapshot_hash()
    url = fresh_postgres_database(postgres_server)
    assert main(["migrate", str(source), url]) == 0
    assert "labels hash" in capsys.readouterr().out
    with LabelStore.open(url) as copy:
        assert copy.snapshot_hash() == expected_hash and len(copy) == len(sample_table)
        assert copy.history()["author"].tolist() == ["ann", "bob"]
        assert copy.snapshots()["name"].tolist() == ["before-move"] and len(copy.annotations()) == 1
        copy.undo(author="ann")  # ids and batches came along: undo and new writes work on the copy
        copy.set_label(ids[1], _other(copy, ids[1]), author="carol")
        assert copy.history()["id"].is_unique
    assert main(["migrate", str(source), url]) == 2  # never into a store that holds items
    assert "already holds" in capsys.readouterr().err
