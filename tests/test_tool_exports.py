"""Annotation tools' exports read as tables: Label Studio's tasks (data fields, each control's latest annotation),
Prodigy's accepted decisions, Doccano's one-item label lists."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from workbench import LabelStore, load_dataset
from workbench.annotations import import_annotations
from workbench.cli import main
from workbench.data import reading_notes
from workbench.errors import DataError


def _choice(label: str, *, control: str = "sentiment", when: str = "2026-01-01T10:00:00", cancelled: bool = False):
    return {"result": [{"from_name": control, "to_name": "text", "type": "choices", "value": {"choices": [label]}}],
            "updated_at": when, "was_cancelled": cancelled}


def _write(tmp_path: Path, tasks: list, name: str = "export.json") -> Path:
    path = tmp_path / name
    if name.endswith(".jsonl"):
        path.write_text("".join(json.dumps(t) + "\n" for t in tasks), encoding="utf-8")
    else:
        path.write_text(json.dumps(tasks), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["export.json", "export.jsonl"])
def test_a_classification_export_reads_its_texts_and_latest_labels(name: str, tmp_path: Path):
    """Before, the export failed: 'no text column ...; its columns are ['id', 'data', 'annotations']'."""
    tasks = [
        {"id": 1, "data": {"text": "I love it"}, "annotations": [_choice("Positive")]},
        # two annotators disagree: the latest is read, and the reading says so
        {"id": 2, "data": {"text": "Awful service"}, "annotations": [
            _choice("Negative", when="2026-01-02T09:00:00"), _choice("Positive", when="2026-01-01T09:00:00")]},
        # a cancelled annotation is no label; the model's predictions are none either
        {"id": 3, "data": {"text": "Not yet"}, "annotations": [_choice("Positive", cancelled=True)],
         "predictions": [_choice("Negative")]},
    ]
    path = _write(tmp_path, tasks, name)
    with pytest.raises(DataError, match=r"object 3, column 'label': the label is missing"):
        load_dataset(path)
    table = load_dataset(path, allow_missing_labels=True)
    assert table["text"].tolist() == ["I love it", "Awful service", "Not yet"]
    assert table["label"].tolist() == ["Positive", "Negative", None]
    assert table["id"].tolist() == [1, 2, 3]  # the task ids, kept beside the items
    assert reading_notes(table) == [f"1 task(s) of {path} have annotations that disagree; the latest of each was "
                                    "read (workbench import-annotations FILE STORE reads every annotator's label, "
                                    "for agreement)"]


def test_every_annotator_of_a_label_studio_export_imports_for_agreement(tmp_path: Path):
    """As the import's note says: import-annotations reads every annotation, each with its annotator (before, it got
    each task's latest only, with no annotator column)."""
    def by(label: str, who: object) -> dict:
        return {**_choice(label), "completed_by": who}

    path = _write(tmp_path, [
        {"id": 1, "data": {"text": "I love it"}, "annotations": [by("Positive", 1), by("Positive", 2)]},
        {"id": 2, "data": {"text": "Awful service"}, "annotations": [
            by("Negative", {"id": 1, "email": "ann@example.com"}), by("Positive", 2), {**by("Negative", 3),
                                                                                     "was_cancelled": True}]},
    ])
    with LabelStore.open(tmp_path / "team.db") as store:
        stats = import_annotations(store, path)  # the task ids are the items' ids
        assert (stats["annotations"], stats["annotators"], stats["items"], stats["disagreements"]) == (4, 3, 2, 1)
        assert sorted(store.annotations()["annotator"].astype(str).unique()) == ["1", "2", "ann@example.com"]
    # named as the task ids' own column too (the table also has them as item_id, which gives way)
    with LabelStore.open(tmp_path / "again.db") as store:
        stats = import_annotations(store, path, item_column="id")
        assert (stats["annotations"], stats["annotators"], stats["items"], stats["disagreements"]) == (4, 3, 2, 1)


def test_several_questions_are_columns_named_by_their_controls(tmp_path: Path):
    both = {"result": [
        {"from_name": "sentiment", "type": "choices", "value": {"choices": ["Positive"]}},
        {"from_name": "topic", "type": "choices", "value": {"choices": ["billing"]}},
        {"from_name": "stars", "type": "rating", "value": {"rating": 4}}]}  # not a label: left out
    path = _write(tmp_path, [{"id": 1, "data": {"review": "Great", "lang": "en"}, "annotations": [both]},
                             {"id": 2, "data": {"review": "Bad", "lang": "en"}, "annotations": [
                                 {"result": [{"from_name": "sentiment", "type": "choices",
                                              "value": {"choices": ["Negative"]}},
                                             {"from_name": "topic", "type": "choices",
                                              "value": {"choices": ["delivery"]}}]}]}])
    with pytest.raises(DataError, match=r"no text column .+ its columns are \['id', 'review', 'lang', 'sentiment', "
                                        r"'topic'\]"):
        load_dataset(path)
    table = load_dataset(path, text_column="review", label_column="topic")
    assert table["text"].tolist() == ["Great", "Bad"] and table["label"].tolist() == ["billing", "delivery"]
    assert table["sentiment"].tolist() == ["Positive", "Negative"]


def test_an_entity_export_reads_as_tagged_tokens(tmp_path: Path):
    def span(start: int, end: int, label: str) -> dict:
        return {"from_name": "label", "to_name": "text", "type": "labels",
                "value": {"start": start, "end": end, "text": "x", "labels": [label]}}

    path = _write(tmp_path, [
        {"id": 7, "data": {"text": "Peter Blackburn visits Paris"},
         "annotations": [{"result": [span(0, 15, "PER"), span(23, 28, "LOC")]}]},
        {"id": 8, "data": {"text": "Nothing here"}, "annotations": [{"result": []}]},
    ])
    table = load_dataset(path)
    assert table["tokens"].map(list).tolist() == [["Peter", "Blackburn", "visits", "Paris"], ["Nothing", "here"]]
    assert table["tags"].map(list).tolist() == [["B-PER", "I-PER", "O", "B-LOC"], ["O", "O"]]


def _min_row(task: int, annotation: int, **fields) -> dict:
    """A row of Label Studio's JSON-MIN / CSV export: the task's data, each control's value, the annotation's ids."""
    return {"id": task, **fields, "annotator": "ann@example.com", "annotation_id": annotation,
            "created_at": "2026-01-01T10:00:00Z", "updated_at": "2026-01-01T10:00:00Z", "lead_time": 3.5}


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_a_one_row_per_annotation_export_reads_its_one_control_as_the_label(suffix: str, tmp_path: Path, capsys):
    """Label Studio's JSON-MIN and CSV exports name the label's column after the control: before, 'no label column
    ... its columns are ['id', 'text', 'sentiment', 'annotator', ...]' unless --label-column named it."""
    rows = [_min_row(1, 10, text="I love it", sentiment="Positive"),
            _min_row(2, 11, text="Awful", sentiment="Negative"),
            {**_min_row(1, 12, text="I love it", sentiment="Negative"), "annotator": "bob@example.com"}]
    path = tmp_path / f"min{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    else:
        pd.DataFrame(rows).to_csv(path, index=False)
    table = load_dataset(path)
    assert table["label"].tolist() == ["Positive", "Negative", "Negative"]
    assert reading_notes(table) == [
        f"{path}: 1 row(s) annotate a task an earlier row annotates too (Label Studio writes one row per annotation), "
        "and are read as items of their own; to keep each annotator's label for agreement, use workbench "
        "import-annotations FILE STORE --item-column id --annotator-column annotator",
        f"{path}: read as Label Studio's one-row-per-annotation export; its control 'sentiment' is the label"]
    assert load_dataset(path, label_column="sentiment")["label"].tolist() == table["label"].tolist()  # as before
    # the control's name goes back with the labels; the annotation's own ids do not
    with LabelStore.open(tmp_path / "s.db") as store:
        store.import_dataset(table)
        store.export(tmp_path / "back.json", format="label-studio")
    task = json.loads((tmp_path / "back.json").read_text(encoding="utf-8"))[0]
    assert task["annotations"][0]["result"][0]["from_name"] == "sentiment"
    assert "annotation_id" not in task["data"] and "lead_time" not in task["data"]
    assert main(["info", str(tmp_path / "s.db")]) == 0
    assert "from Label Studio: control 'sentiment', text in the task field 'text'" in capsys.readouterr().out
    # as the note says: every annotator's label, for agreement
    with LabelStore.open(tmp_path / "team.db") as store:
        stats = import_annotations(store, path, item_column="id", annotator_column="annotator")
        assert (stats["annotations"], stats["annotators"], stats["items"], stats["disagreements"]) == (3, 2, 2, 1)


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_a_one_row_per_annotation_entity_export_reads_as_tagged_tokens(suffix: str, tmp_path: Path):
    """A Labels control's spans; a row without them is an annotation with no entities, not an untagged sentence."""
    spans = [{"start": 0, "end": 5, "text": "Peter", "labels": ["PER"]},
             {"start": 15, "end": 20, "text": "Paris", "labels": ["LOC"]}]
    rows = [_min_row(1, 10, text="Peter lives in Paris", ner=spans), _min_row(2, 11, text="Nothing here")]
    path = tmp_path / f"min{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    else:  # the CSV export writes a control's JSON as the cell's text
        pd.DataFrame([{**r, "ner": json.dumps(r["ner"]) if "ner" in r else ""} for r in rows]).to_csv(path, index=False)
    table = load_dataset(path)
    assert table["tags"].map(list).tolist() == [["B-PER", "O", "O", "B-LOC"], ["O", "O"]]
    assert table.attrs["workbench"]["label_studio"]["from_name"] == "ner"


def test_a_one_row_per_annotation_export_with_several_controls_is_named_by_label_column(tmp_path: Path):
    rows = [_min_row(1, 10, text="Great", sentiment="Positive", topic="billing"),
            _min_row(2, 11, text="Bad", sentiment="Negative", topic="delivery")]
    path = tmp_path / "min.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    with pytest.raises(DataError, match=r"no label column .+ its columns are \['id', 'text', 'sentiment', 'topic'"):
        load_dataset(path)
    assert load_dataset(path, label_column="topic")["label"].tolist() == ["billing", "delivery"]


def test_a_json_list_names_its_rows_as_objects(tmp_path: Path):
    """As JSON Lines does, counted from 1 (it said 'row 1' for the second object)."""
    path = tmp_path / "plain.json"
    path.write_text(json.dumps([{"text": "a", "label": "x"}, {"text": "", "label": "y"}]), encoding="utf-8")
    with pytest.raises(DataError, match=r"plain.json: object 2, column 'text': the text is empty"):
        load_dataset(path)


def test_a_task_without_a_data_text_is_named(tmp_path: Path):
    path = _write(tmp_path, [{"id": 1, "data": {"image": "a.png"}, "annotations": [_choice("cat")]}])
    with pytest.raises(DataError, match=r"no text column .+ its columns are \['id', 'image', 'label'\]"):
        load_dataset(path)


def test_a_doccano_classification_export_reads_its_one_item_label_lists(tmp_path: Path):
    """Doccano writes a single-label project's class as a list of one ('label': ['positive']), which failed as
    multi-label data; an empty list is an item not labelled yet, and two classes are still refused."""
    path = tmp_path / "doccano.jsonl"
    rows = [{"id": 1, "text": "I love it", "label": ["positive"]}, {"id": 2, "text": "Awful", "label": ["negative"]},
            {"id": 3, "text": "Meh", "label": []}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert load_dataset(path, allow_missing_labels=True)["label"].tolist() == ["positive", "negative", None]
    rows[2]["label"] = ["positive", "negative"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DataError, match=r"object 3, column 'label': the label is a list \(\['positive', 'negati"):
        load_dataset(path)


def _jsonl(tmp_path: Path, rows: list, name: str = "db-out.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_prodigy_decisions_keep_only_the_accepted_ones(tmp_path: Path):
    """A binary textcat file's rejected 'Awful' / POSITIVE was imported as POSITIVE: a wrong label, silently."""
    path = _jsonl(tmp_path, [{"text": "I love it", "label": "POSITIVE", "answer": "accept", "_task_hash": 1},
                             {"text": "Awful", "label": "POSITIVE", "answer": "reject", "_task_hash": 2},
                             {"text": "Fine", "label": "NEGATIVE", "answer": "ignore", "_task_hash": 3},
                             {"text": "Bad", "label": "NEGATIVE", "answer": "accept", "_task_hash": 4}])
    table = load_dataset(path)
    assert table["text"].tolist() == ["I love it", "Bad"] and table["label"].tolist() == ["POSITIVE", "NEGATIVE"]
    assert reading_notes(table) == [f"{path}: 2 Prodigy decision(s) (1 reject and 1 ignore) were left out: a reject "
                                    "says which class a text is not, or that its spans are wrong, an ignore says "
                                    "nothing; 2 accepted ones were read"]
    # a message names the file's own object, not the row's place among the accepted ones
    _jsonl(tmp_path, [{"text": "Awful", "label": "POSITIVE", "answer": "reject"},
                      {"text": "ok", "label": "POSITIVE", "answer": "accept"},
                      {"text": " ", "label": "NEGATIVE", "answer": "accept"}])
    with pytest.raises(DataError, match=r"object 3, column 'text': the text is empty"):
        load_dataset(path)
    _jsonl(tmp_path, [{"text": "Awful", "label": "POSITIVE", "answer": "reject"}])
    with pytest.raises(DataError, match=r"none of its 1 Prodigy decisions is an accept \(1 reject\)"):
        load_dataset(path)


def test_prodigy_choices_and_entities_read_as_labels_and_tags(tmp_path: Path):
    """A choice interface's label is its 'accept' list ('no label column' before); NER token dicts are their texts
    (before: 'token 0 ({'text': 'Peter', ...}) is not next in the text')."""
    options = [{"id": "POS", "text": "positive"}, {"id": "NEG", "text": "negative"}]
    path = _jsonl(tmp_path, [{"text": "I love it", "options": options, "accept": ["POS"], "answer": "accept"},
                             {"text": "Awful", "options": options, "accept": ["NEG"], "answer": "accept"}])
    assert load_dataset(path)["label"].tolist() == ["POS", "NEG"]

    def token(text: str, start: int, i: int) -> dict:
        return {"text": text, "start": start, "end": start + len(text), "id": i}

    path = _jsonl(tmp_path, [
        {"text": "Peter lives in Paris", "answer": "accept",
         "tokens": [token("Peter", 0, 0), token("lives", 6, 1), token("in", 12, 2), token("Paris", 15, 3)],
         "spans": [{"start": 0, "end": 5, "token_start": 0, "token_end": 0, "label": "PER"},
                   {"start": 15, "end": 20, "token_start": 3, "token_end": 3, "label": "LOC"}]},
        {"text": "Bad one", "answer": "reject", "tokens": [token("Bad", 0, 0), token("one", 4, 1)], "spans": []},
    ], name="ner.jsonl")
    table = load_dataset(path)
    assert table["tokens"].map(list).tolist() == [["Peter", "lives", "in", "Paris"]]
    assert table["tags"].map(list).tolist() == [["B-PER", "O", "O", "B-LOC"]]


def test_prodigy_sessions_import_as_annotators(tmp_path: Path):
    """Several annotators' decisions on one text (Prodigy's _session_id) go in as annotations. The table's record of
    each row's place in the file once made pandas raise 'truth value of an array is ambiguous' here."""
    path = _jsonl(tmp_path, [
        {"text": "I love it", "label": "POSITIVE", "answer": "accept", "_session_id": "s-alice", "_input_hash": 11},
        {"text": "I love it", "label": "POSITIVE", "answer": "accept", "_session_id": "s-bob", "_input_hash": 11},
        {"text": "Awful", "label": "NEGATIVE", "answer": "accept", "_session_id": "s-alice", "_input_hash": 12},
        {"text": "Awful", "label": "POSITIVE", "answer": "reject", "_session_id": "s-bob", "_input_hash": 12},
        {"text": "Awful", "label": "POSITIVE", "answer": "accept", "_session_id": "s-carol", "_input_hash": 12},
    ])
    # a plain import reads each decision as an item, and says where the annotators' labels go instead
    assert reading_notes(load_dataset(path))[1] == (
        f"{path}: 2 text(s) were decided in more than one of its 3 sessions and are read as that many items; to keep "
        "each annotator's label for agreement, use workbench import-annotations FILE STORE --annotator-column "
        "_session_id --item-column _input_hash")
    with LabelStore.open(tmp_path / "team.db") as store:
        stats = import_annotations(store, path, item_column="_input_hash", annotator_column="_session_id")
        assert (stats["annotations"], stats["annotators"], stats["items"], stats["disagreements"]) == (4, 3, 2, 1)


def test_binary_ner_decisions_are_named(tmp_path: Path):
    """ner.teach accepts one suggested span: read as a fully tagged sentence, which the import now says."""
    path = _jsonl(tmp_path, [{"text": "Peter lives in Paris", "answer": "accept", "_view_id": "ner",
                              "spans": [{"start": 0, "end": 5, "label": "PER"}]}])
    table = load_dataset(path)
    assert list(table["tags"][0]) == ["B-PER", "O", "O", "O"]
    assert "1 accepted decision(s) come from a binary NER recipe (ner.teach" in reading_notes(table)[0]


def test_object_cells_export_to_csv_as_json(tmp_path: Path):
    """A tool's meta objects went into a CSV as Python's repr ({'source': 'web'}), which no JSON reader takes back;
    a list column's gap (a row without the field) stays an empty cell."""
    path = _jsonl(tmp_path, [
        {"text": "I love it", "label": "POSITIVE", "answer": "accept", "meta": {"source": "web"}, "ids": [1, 2]},
        {"text": "Bad", "label": "NEGATIVE", "answer": "accept", "meta": {"source": "app"}}])
    with LabelStore.open(tmp_path / "labels.db") as store:
        store.import_dataset(load_dataset(path))
        out = store.export(tmp_path / "out.csv")[0]
    table = pd.read_csv(out, keep_default_na=False)
    assert [json.loads(v) for v in table["meta"]] == [{"source": "web"}, {"source": "app"}]
    assert table["ids"].tolist() == ["[1, 2]", ""]


def _review_tasks() -> list:
    def said(label: str) -> dict:
        return {"result": [{"from_name": "sentiment", "to_name": "review", "type": "choices",
                            "value": {"choices": [label]}}]}

    return [{"id": 11, "data": {"review": "I love it", "lang": "en"}, "annotations": [said("Positive")]},
            {"id": 12, "data": {"review": "Awful", "lang": "en"}, "annotations": [said("Negative")]},
            {"id": 13, "data": {"review": "meh", "lang": "en"}, "annotations": []}]


def test_a_store_goes_back_to_label_studio_under_the_names_it_came_with(tmp_path: Path, capsys):
    """The way back: the corrected labels as annotations, the scan's other suggestions as scored predictions, all
    under the project's own control, object and data field (before, there was no Label Studio export at all)."""
    table = load_dataset(_write(tmp_path, _review_tasks()), text_column="review", allow_missing_labels=True)
    with LabelStore.open(tmp_path / "team.db") as store:
        store.import_dataset(table)
        ids = store.to_pandas()["item_id"].tolist()
        store.write_scores("scan-1", pd.DataFrame({"item_id": ids, "score": [0.9, 0.1, 0.5],
                                                   "suggested_label": ["Positive", "Positive", "Negative"],
                                                   "suggested_prob": [0.9, 0.8, 0.6]}))
        store.set_label(ids[0], "Negative", author="ann")  # corrected after the scan
        store.export(tmp_path / "back.json", format="label-studio")
    assert main(["info", str(tmp_path / "team.db")]) == 0
    assert ("from Label Studio: control 'sentiment' on 'review', text in the task field 'review'"
            in capsys.readouterr().out)
    tasks = json.loads((tmp_path / "back.json").read_text(encoding="utf-8"))

    def result(task: dict, key: str) -> list:
        return [(r["from_name"], r["to_name"], r["type"], r["value"]["choices"]) for r in task[key][0]["result"]]

    assert [t["data"]["review"] for t in tasks] == ["I love it", "Awful", "meh"]
    assert [t["data"]["item_id"] for t in tasks] == ids
    assert [t["data"]["lang"] for t in tasks] == ["en"] * 3  # the task's other fields go back with it
    assert result(tasks[0], "annotations") == [("sentiment", "review", "choices", ["Negative"])]
    assert result(tasks[1], "annotations") == [("sentiment", "review", "choices", ["Negative"])]
    assert "annotations" not in tasks[2]  # still to label
    # a suggestion other than the current label is a prediction, scored by its probability
    assert result(tasks[0], "predictions") == [("sentiment", "review", "choices", ["Positive"])]
    assert [t["predictions"][0]["score"] for t in tasks] == [0.9, 0.8, 0.6]
    assert {t["predictions"][0]["model_version"] for t in tasks} == {"workbench scan scan-1"}
    assert [t["data"]["workbench_score"] for t in tasks] == [0.9, 0.1, 0.5]  # sortable in the data manager
    # and read again, it is the corrected dataset; the next export back writes its own workbench_ fields
    again = load_dataset(tmp_path / "back.json", text_column="review", allow_missing_labels=True)
    assert again["label"].tolist() == ["Negative", "Negative", None]
    assert not [c for c in again.columns if c.startswith("workbench_")]  # the scan's, not data
    assert again.attrs["workbench"]["label_studio"]["from_name"] == "sentiment"
    with LabelStore.open(tmp_path / "round.db") as store:
        store.import_dataset(again)
        store.export(tmp_path / "twice.json", format="label-studio")
    twice = json.loads((tmp_path / "twice.json").read_text(encoding="utf-8"))
    assert [t["data"]["item_id"] for t in twice] == store.to_pandas()["item_id"].tolist()
    assert "workbench_score" not in twice[0]["data"] and "predictions" not in twice[0]  # no scan in this store


def test_labels_changed_in_label_studio_update_the_store_they_were_exported_from(tmp_path: Path):
    """The round trip: the project's next export names its tasks by the store's own ids, so an import updates those
    items instead of adding each as a new one (ids from the texts would not match a store with ids of its own)."""
    from workbench.sample import make_classification_sample

    with LabelStore.open(tmp_path / "s.db") as store:
        store.import_dataset(load_dataset(make_classification_sample(n_items=20, seed=0), id_column="id"))
        store.export(tmp_path / "to_ls.json", format="label-studio")
        before = store.to_pandas().set_index("item_id")["label"]
    tasks = json.loads((tmp_path / "to_ls.json").read_text(encoding="utf-8"))
    other = next(c for c in sorted(set(before)) if c != before.iloc[0])
    tasks[0]["annotations"].append({"result": [{**tasks[0]["annotations"][0]["result"][0],
                                                "value": {"choices": [other]}}],
                                    "updated_at": "2030-01-01T00:00:00"})  # a reviewer's later answer
    for n, task in enumerate(tasks):  # as Label Studio exports them: its own task ids
        task["id"] = 1000 + n
    (tmp_path / "from_ls.json").write_text(json.dumps(tasks), encoding="utf-8")
    table = load_dataset(tmp_path / "from_ls.json")
    assert table["item_id"].tolist() == before.index.tolist()
    with LabelStore.open(tmp_path / "s.db") as store:
        stats = store.import_dataset(table, on_conflict="update")
        assert (stats["added"], stats["updated"]) == (0, 1)
        assert store.get(before.index[0])["label"] == other


def test_entities_go_back_to_label_studio_at_their_offsets_in_the_original_text(tmp_path: Path):
    def span(start: int, end: int, label: str) -> dict:
        return {"from_name": "ner", "to_name": "doc", "type": "labels",
                "value": {"start": start, "end": end, "text": "x", "labels": [label]}}

    path = _write(tmp_path, [
        {"id": 7, "data": {"body": "Peter  Blackburn visits Paris."},  # two spaces: offsets into this text
         "annotations": [{"result": [span(0, 16, "PER"), span(24, 29, "LOC")]}]},
        {"id": 8, "data": {"body": "Nothing here"}, "annotations": [{"result": []}]},
        {"id": 9, "data": {"body": "Not labelled yet"}, "annotations": []},
    ])
    table = load_dataset(path, text_column="body", allow_missing_labels=True)
    with LabelStore.open(tmp_path / "ner.db") as store:
        store.import_dataset(table)
        ids = store.to_pandas()["item_id"].tolist()
        # a scan that would drop Paris and tag Blackburn alone, and agrees with the second sentence
        store.write_scores("scan-1", pd.DataFrame({
            "item_id": ids[:2], "score": [0.2, 0.9], "suggested_prob": [0.7, 0.9],
            "suggested_label": [["O", "B-PER", "O", "O", "O"], ["O", "O"]]}))
        store.export(tmp_path / "back.json", format="label-studio")
    tasks = json.loads((tmp_path / "back.json").read_text(encoding="utf-8"))
    suggested = tasks[0]["predictions"][0]
    assert [(r["type"], r["value"]["start"], r["value"]["end"], r["value"]["text"], r["value"]["labels"])
            for r in suggested["result"]] == [("labels", 7, 16, "Blackburn", ["PER"])]  # offsets in the text as given
    assert suggested["score"] == 0.7 and tasks[0]["data"]["workbench_score"] == 0.2
    assert "predictions" not in tasks[1] and "predictions" not in tasks[2]  # agrees; not scanned
    first = tasks[0]["annotations"][0]["result"]
    assert [(r["from_name"], r["to_name"], r["type"]) for r in first] == [("ner", "doc", "labels")] * 2
    assert [(r["value"]["start"], r["value"]["end"], r["value"]["labels"]) for r in first] == [
        (0, 16, ["PER"]), (24, 29, ["LOC"])]
    assert tasks[0]["data"]["body"][0:16] == "Peter  Blackburn"
    assert tasks[1]["annotations"] == [{"result": []}]  # annotated: no entities
    assert "annotations" not in tasks[2]
    again = load_dataset(tmp_path / "back.json", text_column="body", allow_missing_labels=True)
    assert again["tags"].map(lambda t: None if t is None else list(t)).tolist() == [
        ["B-PER", "I-PER", "O", "B-LOC", "O"], ["O", "O"], None]


def test_a_store_from_elsewhere_goes_to_label_studio_under_names_given_or_the_defaults(tmp_path: Path):
    from workbench.sample import make_classification_sample

    with LabelStore.open(tmp_path / "s.db") as store:
        store.import_dataset(load_dataset(make_classification_sample(n_items=20, seed=0)))
        first = store.to_pandas().iloc[0]
    assert main(["export", str(tmp_path / "s.db"), str(tmp_path / "plain.json"), "--format", "label-studio"]) == 0
    task = json.loads((tmp_path / "plain.json").read_text(encoding="utf-8"))[0]
    assert task["data"]["text"] == first["text"]
    assert {k: v for k, v in task["annotations"][0]["result"][0].items() if k != "id"} == {
        "from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [first["label"]]}}
    assert main(["export", str(tmp_path / "s.db"), str(tmp_path / "named.json"), "--format", "label-studio",
                 "--control", "intent", "--to-name", "utterance", "--data-field", "query"]) == 0
    task = json.loads((tmp_path / "named.json").read_text(encoding="utf-8"))[0]
    assert task["data"]["query"] == first["text"] and "text" not in task["data"]
    assert (task["annotations"][0]["result"][0]["from_name"], task["annotations"][0]["result"][0]["to_name"]) == (
        "intent", "utterance")
    assert main(["export", str(tmp_path / "s.db"), str(tmp_path / "x.csv"), "--control", "intent"]) == 2
    with LabelStore.open(tmp_path / "s.db") as store, pytest.raises(DataError, match=r"x\.json.+label-studio"):
        store.export(tmp_path / "x.json")


def test_a_store_goes_back_to_prodigy_as_choice_decisions(tmp_path: Path):
    """The way back to Prodigy: textcat.manual's choice tasks with the current label accepted, the scan on the card's
    meta, an unlabelled item ignored (a db-in of a task without an answer accepts it with no label); read again, the
    same items and labels, under the same ids (before, there was no Prodigy export at all)."""
    decisions = [{"text": "I love it", "label": "POS", "answer": "accept", "meta": {"source": "web"},
                  "_input_hash": 11, "_task_hash": 111, "_session_id": "s-ann"},
                 {"text": "Awful", "label": "NEG", "answer": "accept", "_input_hash": 12, "_task_hash": 112},
                 {"text": "meh", "label": None, "answer": "accept", "_input_hash": 13, "_task_hash": 113}]
    table = load_dataset(_jsonl(tmp_path, decisions), allow_missing_labels=True)
    with LabelStore.open(tmp_path / "team.db") as store:
        store.import_dataset(table)
        ids = store.to_pandas()["item_id"].tolist()
        store.write_scores("scan-1", pd.DataFrame({"item_id": ids[:2], "score": [0.9, 0.1],
                                                   "suggested_label": ["POS", "POS"], "suggested_prob": [0.9, 0.8],
                                                   "issues": [[], ["label"]]}))
        store.set_label(ids[0], "NEG", author="ann")  # corrected after the scan
    assert main(["export", str(tmp_path / "team.db"), str(tmp_path / "back.jsonl"), "--format", "prodigy"]) == 0
    tasks = [json.loads(line) for line in (tmp_path / "back.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [t["text"] for t in tasks] == ["I love it", "Awful", "meh"]
    assert [t["options"] for t in tasks] == [[{"id": "NEG", "text": "NEG"}, {"id": "POS", "text": "POS"}]] * 3
    assert [t.get("accept") for t in tasks] == [["NEG"], ["NEG"], None]
    assert [t["answer"] for t in tasks] == ["accept", "accept", "ignore"]
    assert {t["_view_id"] for t in tasks} == {"choice"} and [t["item_id"] for t in tasks] == ids
    # the scan, on the card: its score, issues, and a suggestion where it differs from the label now
    assert [t.get("meta") for t in tasks] == [
        {"source": "web", "workbench_score": 0.9, "workbench_suggestion": "POS (0.90)"},
        {"workbench_score": 0.1, "workbench_issues": "label", "workbench_suggestion": "POS (0.80)"}, None]
    # the text's hash stays; the task's is Prodigy's to compute again (its label changed), the session was another's
    assert [t["_input_hash"] for t in tasks] == [11, 12, 13]
    assert not [k for t in tasks for k in t if k in ("_task_hash", "_session_id", "label")]
    again = load_dataset(tmp_path / "back.jsonl")
    assert again["label"].tolist() == ["NEG", "NEG"] and again["item_id"].tolist() == ids[:2]
    assert reading_notes(again)[0].startswith(f"{tmp_path / 'back.jsonl'}: 1 Prodigy decision(s) (1 ignore)")
    # the scan's meta and how Prodigy showed the task are not data
    assert again["meta"].tolist() == [{"source": "web"}, None]
    assert not {"options", "config", "answer", "_view_id", "accept"} & set(again.columns)


def test_entities_go_back_to_prodigy_as_ner_manual_tokens_and_spans(tmp_path: Path):
    path = _jsonl(tmp_path, [{"text": "Peter  Blackburn visits Paris.",  # two spaces: offsets into this text
                              "spans": [{"start": 0, "end": 16, "label": "PER"}, {"start": 24, "end": 29,
                                                                                 "label": "LOC"}]},
                             {"text": "Nothing here", "spans": []}], name="spans.jsonl")
    with LabelStore.open(tmp_path / "ner.db") as store:
        store.import_dataset(load_dataset(path))
        ids = store.to_pandas()["item_id"].tolist()
        store.write_scores("scan-1", pd.DataFrame({  # a scan that would drop Paris and tag Blackburn alone
            "item_id": ids, "score": [0.2, 0.9], "suggested_prob": [0.7, 0.9],
            "suggested_label": [["O", "B-PER", "O", "O", "O"], ["O", "O"]]}))
        store.export(tmp_path / "back.jsonl", format="prodigy")
    first, second = [json.loads(line) for line in (tmp_path / "back.jsonl").read_text(encoding="utf-8").splitlines()]
    assert first["text"] == "Peter  Blackburn visits Paris." and first["_view_id"] == "ner_manual"
    assert [(t["text"], t["start"], t["end"], t["id"], t["ws"]) for t in first["tokens"]] == [
        ("Peter", 0, 5, 0, True), ("Blackburn", 7, 16, 1, True), ("visits", 17, 23, 2, True),
        ("Paris", 24, 29, 3, False), (".", 29, 30, 4, False)]
    assert first["spans"] == [{"start": 0, "end": 16, "token_start": 0, "token_end": 1, "label": "PER"},
                              {"start": 24, "end": 29, "token_start": 3, "token_end": 3, "label": "LOC"}]
    assert first["meta"] == {"workbench_score": 0.2, "workbench_suggestion": "PER: Blackburn (0.70)"}
    assert second["spans"] == [] and second["answer"] == "accept" and "workbench_suggestion" not in second["meta"]
    again = load_dataset(tmp_path / "back.jsonl")
    assert again["tags"].map(list).tolist() == [["B-PER", "I-PER", "O", "B-LOC", "O"], ["O", "O"]]
    assert again["item_id"].tolist() == ids


def test_a_store_goes_back_to_doccano_as_its_import_jsonl(tmp_path: Path):
    """Doccano's dataset import: a label list per text (empty: not labelled), [start, end, type] per entity (no label
    key: a sentence not tagged yet); read here again, the same items, labels and tags (before: no Doccano export; the
    span export's {'start', 'end', 'label'} objects under 'spans' are not what Doccano's import takes)."""
    with LabelStore.open(tmp_path / "c.db") as store:
        table = pd.DataFrame({"text": ["I love it", "Awful", "meh"], "label": ["POS", "NEG", None],
                              "lang": ["en", "en", None]})
        store.import_dataset(load_dataset(table, allow_missing_labels=True))
        ids = store.to_pandas()["item_id"].tolist()
    assert main(["export", str(tmp_path / "c.db"), str(tmp_path / "c.jsonl"), "--format", "doccano"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "c.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows == [{"text": "I love it", "label": ["POS"], "item_id": ids[0], "lang": "en"},
                    {"text": "Awful", "label": ["NEG"], "item_id": ids[1], "lang": "en"},
                    {"text": "meh", "label": [], "item_id": ids[2]}]
    again = load_dataset(tmp_path / "c.jsonl", allow_missing_labels=True)
    assert again["label"].tolist() == ["POS", "NEG", None] and again["item_id"].tolist() == ids

    path = _jsonl(tmp_path, [{"text": "Peter  Blackburn visits Paris.", "spans": [[0, 16, "PER"], [24, 29, "LOC"]]},
                             {"text": "Nothing here", "spans": []}, {"text": "Not tagged yet"}], name="spans.jsonl")
    with LabelStore.open(tmp_path / "n.db") as store:
        store.import_dataset(load_dataset(path, allow_missing_labels=True))
        store.export(tmp_path / "n.jsonl", format="doccano")
    rows = [json.loads(line) for line in (tmp_path / "n.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["text"], r.get("label")) for r in rows] == [
        ("Peter  Blackburn visits Paris.", [[0, 16, "PER"], [24, 29, "LOC"]]), ("Nothing here", []),
        ("Not tagged yet", None)]
    assert not {"tokens", "source_text", "token_starts", "spans"} & {k for r in rows for k in r}
    again = load_dataset(tmp_path / "n.jsonl", allow_missing_labels=True)
    assert again["tags"].map(lambda t: None if t is None else list(t)).tolist() == [
        ["B-PER", "I-PER", "O", "B-LOC", "O"], ["O", "O"], None]


def _argilla_records() -> pd.DataFrame:
    """Records as Argilla 2's ``to_datasets()`` lays them out (and ``to_hub`` writes them to Parquet)."""
    return pd.DataFrame({
        "id": ["r1", "r2", "r3", "r4"], "status": ["completed", "completed", "completed", "pending"],
        "review": ["Great phone", "Terrible battery", "It is ok", "Meh"],
        "sentiment.responses": [["positive"], ["negative", "positive", "negative"], ["neutral", "positive"], None],
        "sentiment.responses.users": [["u1"], ["u1", "u2", "u3"], ["u2", "u3"], None],
        "sentiment.responses.status": [["submitted"], ["submitted"] * 3, ["submitted", "draft"], None],
        "sentiment.suggestion": ["positive", "negative", "positive", "negative"],  # a model's: not a label
        "sentiment.suggestion.score": [0.9, 0.8, 0.7, 0.6]})


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".csv"])
def test_an_argilla_export_reads_its_submitted_answers_as_labels(suffix: str, tmp_path: Path):
    """Before, the answers were a list column nothing found: 'no label column ...' unless named with --label-column
    sentiment.responses, and then drafts counted and disagreeing annotators made a list, not a class."""
    path = tmp_path / f"records{suffix}"
    records = _argilla_records()
    if suffix == ".parquet":
        records.to_parquet(path)
    elif suffix == ".csv":  # the lists as pandas writes them: Python's repr
        records.to_csv(path, index=False)
    else:
        records.to_json(path, orient="records", lines=True)
    table = load_dataset(path, text_column="review", allow_missing_labels=True)
    assert table["text"].tolist() == ["Great phone", "Terrible battery", "It is ok", "Meh"]
    # the majority of the submitted answers; a draft is no answer; nobody answered r4
    assert table["label"].tolist() == ["positive", "negative", "neutral", None]
    assert table["sentiment.suggestion"].tolist() == ["positive", "negative", "positive", "negative"]
    assert not [c for c in table.columns if ".responses" in c]
    assert reading_notes(table)[-1].startswith("1 record(s) of ") and "disagree" in reading_notes(table)[-1]
    with LabelStore.open(tmp_path / "team.db") as store:  # every annotator's answer, for agreement
        stats = import_annotations(store, path, text_column="review")
        assert (stats["annotations"], stats["annotators"], stats["items"], stats["disagreements"]) == (5, 3, 3, 1)
        assert sorted(store.annotations()["item_id"].unique()) == ["r1", "r2", "r3"]


def test_several_argilla_questions_are_columns_named_by_their_questions(tmp_path: Path):
    records = _argilla_records().assign(**{
        "topic.responses": [["battery"], ["battery"], ["price"], None],
        "topic.responses.users": [["u1"], ["u1"], ["u2"], None],
        "topic.responses.status": [["submitted"], ["submitted"], ["submitted"], None]})
    table = load_dataset(records, text_column="review", label_column="topic", allow_missing_labels=True)
    assert table["label"].tolist() == ["battery", "battery", "price", None]
    assert table["sentiment"].tolist()[:3] == ["positive", "negative", "neutral"] and table["sentiment"].isna()[3]


def test_an_argilla_span_question_reads_as_tagged_tokens(tmp_path: Path):
    records = pd.DataFrame({
        "id": ["a", "b"], "text": ["Peter visits Paris", "Nothing here"],
        "entities.responses": [[[{"start": 0, "end": 5, "label": "PER"}, {"start": 13, "end": 18, "label": "LOC"}]],
                               [[]]],  # answered: no entities
        "entities.responses.users": [["u1"], ["u1"]], "entities.responses.status": [["submitted"], ["submitted"]]})
    records.to_parquet(tmp_path / "spans.parquet")
    table = load_dataset(tmp_path / "spans.parquet")
    assert table["tokens"].map(list).tolist() == [["Peter", "visits", "Paris"], ["Nothing", "here"]]
    assert table["tags"].map(list).tolist() == [["B-PER", "O", "B-LOC"], ["O", "O"]]
