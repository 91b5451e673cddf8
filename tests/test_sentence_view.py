"""NER review: BIO-preserving span retagging and the sentence view driven as the front end does."""

from __future__ import annotations

import pandas as pd
import pytest

from widgets import SentenceView
from workbench import LabelStore, load_dataset
from workbench.bio import entity_types, find_bio_error, retag_span
from workbench.errors import DataError
from workbench.sample import make_ner_sample


def test_retag_span_changes_whole_spans_and_keeps_bio():
    tags = ["B-ORG", "I-ORG", "O", "B-PER", "O"]
    assert retag_span(tags, 1, "LOC") == ["B-LOC", "I-LOC", "O", "B-PER", "O"]
    assert retag_span(tags, 0, None) == ["O", "O", "O", "B-PER", "O"]
    assert retag_span(tags, 2, "MISC") == ["B-ORG", "I-ORG", "B-MISC", "B-PER", "O"]
    assert retag_span(tags, 4, "O") == tags
    for i in range(len(tags)):
        for kind in (None, "LOC"):
            assert find_bio_error(retag_span(tags, i, kind)) is None
    with pytest.raises(IndexError, match="out of range"):
        retag_span(tags, 5, "LOC")
    assert entity_types(["O", "B-PER", "I-PER", "B-LOC"]) == ["PER", "LOC"]


@pytest.fixture
def ner_store(tmp_path):
    table = load_dataset(make_ner_sample(n_sentences=30, seed=2), task="token-classification", id_column="id")
    store = LabelStore.open(tmp_path / "ner.db")
    store.import_dataset(table)
    frame = store.to_pandas()
    # A scan's suggestion for the first sentence: its first entity retyped.
    first = list(frame["tags"][0])
    start = next(i for i, t in enumerate(first) if t.startswith("B-"))
    other = next(t for t in entity_types(store.labels) if t != first[start][2:])
    suggested = retag_span(first, start, other)
    store.write_scores("tokens-test", pd.DataFrame({
        "item_id": frame["item_id"], "score": [0.1] + [0.9] * (len(frame) - 1),
        "suggested_label": [suggested] + [list(t) for t in frame["tags"][1:]], "suggested_prob": 0.8,
        "issues": [["label"]] + [[]] * (len(frame) - 1)}))
    yield store, frame["item_id"][0], start, suggested
    store.close()


def send(w, **content):
    w._on_msg(w, content, [])


def test_keys_retag_a_span_accept_and_undo_through_the_widget(ner_store):
    store, item, start, suggested = ner_store
    w = SentenceView(store, author="ann")
    assert w.sentence["item_id"] == item and w.sentence["total"] == 30  # worst score first
    marked = [i for i, t in enumerate(w.sentence["tokens"]) if t["suggested"]]
    assert marked and marked[0] == start  # the suggested changes are marked on their tokens
    send(w, type="token", index=start)
    assert w.sentence["tokens"][start]["cursor"]
    loc = w.types.index("LOC") + 1
    send(w, type="key", key=str(loc))
    tags = store.get(item)["label"]
    assert tags[start] == "B-LOC" and find_bio_error(tags) is None and w.error == ""
    assert store.history(item).iloc[-1]["author"] == "ann"
    send(w, type="key", key="0")
    assert store.get(item)["label"][start] == "O"
    send(w, type="key", key="a")
    assert store.get(item)["label"] == suggested and store.history(item).iloc[-1]["source"] == "suggestion"
    send(w, type="key", key="u")
    assert store.get(item)["label"][start] == "O"
    send(w, type="key", key="9")
    assert "no entity type 9" in w.error
    send(w, type="key", key="j")
    assert w.sentence["index"] == 1 and w.sentence["item_id"] != item
    send(w, type="key", key="r")
    assert store.get(w.sentence["item_id"].replace("&amp;", "&"))["status"] == "reviewed"


def test_untagged_sentences_of_a_pool_are_tagged_in_the_view(tmp_path):
    # words alone, imported as a pool: the view shows them as O and says they are not tagged yet
    sentences = pd.DataFrame({"id": ["s1", "s2"], "tokens": [["Ana", "visits", "Oslo"], ["It", "rains"]]})
    store = LabelStore.open(tmp_path / "pool.db")
    store.import_dataset(load_dataset(sentences, task="token-classification", id_column="id",
                                      allow_missing_labels=True, labels=["PER", "LOC"]))
    w = SentenceView(store, author="ann", order_by="item_id")
    assert [t["tag"] for t in w.sentence["tokens"]] == ["O", "O", "O"] and "not tagged yet" in w.sentence["status"]
    send(w, type="token", index=2)
    send(w, type="key", key=str(w.types.index("LOC") + 1))
    assert store.get("s1")["label"] == ["O", "O", "B-LOC"] and w.error == ""
    # r on an untagged sentence says it has no entities: all O, reviewed; u, u takes both back
    send(w, type="key", key="j")
    send(w, type="key", key="r")
    assert store.get("s2")["label"] == ["O", "O"] and store.get("s2")["status"] == "reviewed"
    send(w, type="key", key="u")
    send(w, type="key", key="u")
    assert store.get("s2")["label"] is None
    store.close()


def test_the_view_escapes_tokens_and_refuses_text_stores(tmp_path, store):
    frame = pd.DataFrame({"id": ["s1"], "tokens": [["<script>alert(1)</script>", "Paris"]], "tags": [["O", "B-LOC"]]})
    ner = LabelStore.open(tmp_path / "x.db")
    ner.import_dataset(load_dataset(frame, task="token-classification", id_column="id"))
    w = SentenceView(ner)
    assert w.sentence["tokens"][0]["text"] == "&lt;script&gt;alert(1)&lt;/script&gt;"
    with pytest.raises(DataError, match="for token classification"):
        SentenceView(store)


def test_an_entity_type_past_the_ninth_is_typed_by_name(tmp_path):
    """OntoNotes has 18 entity types and 9 digit keys: "t" opens a box, and what is typed there names the type."""
    types = ["PERSON", "NORP", "FAC", "ORG", "GPE", "LOC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE",
             "DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL"]
    frame = pd.DataFrame({"tokens": [["Hamlet", "opened", "on", "Monday"]], "tags": [["B-PERSON", "O", "O", "O"]]})
    store = LabelStore.open(tmp_path / "onto.db")
    store.import_dataset(load_dataset(frame, task="token-classification", labels=types))
    w = SentenceView(store, author="ann")
    item = w.sentence["item_id"]
    send(w, type="retag_named", name="work of")  # as the box sends it: the text typed
    assert store.get(item)["label"] == ["B-WORK_OF_ART", "O", "O", "O"]
    send(w, type="token", index=3)
    send(w, type="retag_named", name="12")  # the type's number, as the buttons show it
    twelfth = w.types[11]
    assert store.get(item)["label"] == ["B-WORK_OF_ART", "O", "O", f"B-{twelfth}"]
    send(w, type="retag_named", name="p")  # three types start so: said, nothing written
    assert "'p' matches 3 entity types (PERCENT, PERSON, PRODUCT); type more" in w.error  # in the view's order
    send(w, type="retag_named", name="weather")
    assert "no entity type matches 'weather'" in w.error
    assert store.get(item)["label"] == ["B-WORK_OF_ART", "O", "O", f"B-{twelfth}"] and len(store.history()) == 2
    assert "t type one (part of its name, or its number)" in w.help
