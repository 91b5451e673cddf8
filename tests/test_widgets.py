"""Panels without a browser: drive them as the front end does and check the store and the widget state."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from widgets import LabelBrowser
from workbench import LabelStore, load_dataset
from workbench.errors import StoreBusyError
from workbench.review import ReviewSession
from workbench.sample import make_classification_sample


@pytest.fixture
def scored_store(tmp_path):
    import pandas as pd

    frame = make_classification_sample(n_items=120, seed=5)
    frame.loc[0, "text"] = '<img src=x onerror="window.__pwned=1"> and <script>alert(1)</script>'
    store = LabelStore.open(tmp_path / "labels.db")
    store.import_dataset(load_dataset(frame, id_column="id"))
    table = store.to_pandas()
    labels = store.labels
    store.write_scores("test-scan", pd.DataFrame({
        "item_id": table["item_id"], "score": [i / 200 for i in range(len(table))],
        "suggested_label": [labels[(labels.index(v) + 1) % len(labels)] for v in table["label"]],
        "suggested_prob": 0.95, "issues": [["label"] if i < 10 else [] for i in range(len(table))]}))
    yield store
    store.close()


def test_the_browser_opens_a_store_by_its_path(scored_store, tmp_path):
    from workbench.errors import DataError, StoreNotFoundError

    browser = LabelBrowser(str(tmp_path / "labels.db"))
    assert len(browser.session.store) == len(scored_store)
    with pytest.raises(StoreNotFoundError):
        LabelBrowser(tmp_path / "typo.db")
    (tmp_path / "data.csv").write_text("text,label\na,x\n")
    with pytest.raises(DataError, match="LabelBrowser takes a label store; .*data.csv is a dataset file"):
        LabelBrowser(tmp_path / "data.csv")


def send(widget, **content):
    widget._on_msg(widget, content, [])


def test_keys_move_assign_accept_undo(scored_store):
    w = LabelBrowser(scored_store, author="ann", page_size=10)
    assert len(w.rows) == 10 and w.rows[0]["cursor"] and w.total == 120
    first, second = w.rows[0]["item_id"], w.rows[1]["item_id"]
    send(w, type="key", key="j")
    assert w.rows[1]["cursor"]
    send(w, type="key", key="2")
    assert scored_store.get(second)["label"] == scored_store.labels[1]
    assert w.rows[1]["label"] == scored_store.labels[1] and w.counts["corrected"] == 1
    send(w, type="key", key="k")
    send(w, type="key", key="a")
    row = scored_store.get(first)
    assert row["label"] == w.rows[0]["suggested_label"]
    assert scored_store.history().iloc[-1]["source"] == "suggestion"
    send(w, type="key", key="u")
    assert scored_store.get(first)["label"] == row["original_label"]
    send(w, type="key", key="ctrl+z")
    assert scored_store.get(second)["label"] == scored_store.get(second)["original_label"]
    assert w.counts["corrected"] == 0
    assert list(scored_store.history()["source"]) == ["human", "suggestion", "undo", "undo"]


def test_status_keys_counters_help_and_pages(scored_store):
    w = LabelBrowser(scored_store, author="ann", page_size=10)
    send(w, type="key", key="r")
    send(w, type="key", key="j")
    send(w, type="key", key="f")
    send(w, type="key", key="j")
    send(w, type="key", key="s")
    assert (w.counts["reviewed"], w.counts["flagged"], w.counts["skipped"]) == (1, 1, 1)
    send(w, type="key", key="?")
    assert w.show_help and "accept" in w.help
    send(w, type="key", key="n")
    assert w.page == 1 and w.rows[0]["cursor"]
    for _ in range(10):
        send(w, type="key", key="j")
    assert w.page == 2  # moving past the last row turns the page


def test_multi_select_relabels_at_once_and_undoes_as_one(scored_store):
    w = LabelBrowser(scored_store, author="ann", page_size=10)
    ids = [r["item_id"] for r in w.rows[:3]]
    for _ in range(3):
        send(w, type="key", key="x")
        send(w, type="key", key="j")
    assert sum(r["selected"] for r in w.rows) == 3
    send(w, type="assign", index=4)
    target = scored_store.labels[4]
    assert all(scored_store.get(i)["label"] == target for i in ids)
    assert not any(r["selected"] for r in w.rows)
    send(w, type="key", key="u")
    assert all(scored_store.get(i)["label"] == scored_store.get(i)["original_label"] for i in ids)



def test_select_the_page_then_accept_takes_every_suggestion_on_it_in_one_undo_step(scored_store):
    # one likely mix-up filtered, X, a: the whole page relabelled to its suggestions
    w = LabelBrowser(scored_store, author="ann", page_size=4, filters={"issue": "label"})
    send(w, type="key", key="X")
    assert all(r["selected"] for r in w.rows) and len(w.rows) == 4
    send(w, type="key", key="X")  # again: none
    assert not any(r["selected"] for r in w.rows)
    send(w, type="key", key="X")
    rows = {r["item_id"]: r["suggested_label"] for r in w.rows}
    send(w, type="key", key="a")
    assert all(scored_store.get(i)["label"] == s for i, s in rows.items())
    send(w, type="key", key="u")
    assert all(scored_store.get(i)["label"] == scored_store.get(i)["original_label"] for i in rows)
    assert "X select the page" in w.help


def test_filters_sort_and_clicks(scored_store):
    w = LabelBrowser(scored_store, page_size=50)
    w.set_filters({"issue": "label"})
    assert w.total == 10 and all("label" in r["issues"] for r in w.rows)
    w.set_filters({"search": "refund"})
    assert all("refund" in r["text"].lower() for r in w.rows)
    w.set_filters(None)
    w.set_order("-score")
    scores = [r["score"] for r in w.rows]
    assert scores == sorted(scores, reverse=True)
    send(w, type="click", row=7)
    assert w.rows[7]["cursor"]


def test_dataset_text_is_escaped(scored_store):
    w = LabelBrowser(scored_store, page_size=200, order_by="pos")
    texts = " ".join(r["text"] for r in w.rows)
    assert "<img" not in texts and "<script>" not in texts
    assert "&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;" in texts


def test_failed_write_shows_the_error_and_keeps_the_label(scored_store, monkeypatch):
    w = LabelBrowser(scored_store, author="ann", page_size=10)
    before = w.rows[0]["label"]

    def locked(*a, **k):
        raise StoreBusyError("labels.db stayed locked by another writer past the timeout")

    monkeypatch.setattr(scored_store, "set_labels", locked)
    send(w, type="key", key="3")
    assert "locked" in w.error
    assert w.rows[0]["label"] == before
    assert scored_store.history().empty


def test_review_session_without_a_widget(scored_store):
    s = ReviewSession(scored_store, author="bob", page_size=5)
    assert s.assign_nth(99).ok is False
    assert s.press("1").ok
    assert scored_store.history().iloc[-1]["author"] == "bob"


def test_a_class_past_the_ninth_is_typed_by_name(tmp_path):
    """banking77 has 77 classes and 9 digit keys: "l" opens a box, and what is typed there names the class."""
    from workbench.errors import DataError
    from workbench.review import match_label

    labels = ["card_arrival", "card_linking", "exchange_rate", "Refund-not-showing", "top_up_failed", *[
        f"intent_{i:02d}" for i in range(12)]]
    assert match_label("card arr", labels) == "card_arrival"  # "_", "-" and spaces alike, case aside
    assert match_label("EXCHANGE RATE", labels) == "exchange_rate"
    assert match_label("refund not", labels) == "Refund-not-showing"  # the start of the name
    assert match_label("failed", labels) == "top_up_failed"  # else the one name that holds it
    assert match_label("12", labels) == "intent_06"  # the class's number, as the buttons show it
    for query, says in (("card", "'card' matches 2 classes (card_arrival, card_linking); type more"),
                        ("intent", "matches 12 classes (intent_00, intent_01, intent_02, intent_03, intent_04, "
                                   "intent_05 and 6 more)"),
                        ("99", "there is no class 99; the classes are 1-17"), ("pizza", "no class matches 'pizza'"),
                        ("  ", "type part of a class name")):
        with pytest.raises(DataError, match=re.escape(says)):
            match_label(query, labels)
    store = LabelStore.open(tmp_path / "many.db")
    store.import_dataset(load_dataset(pd.DataFrame({"text": [f"text {i}" for i in range(34)],
                                                    "label": labels * 2}), labels=labels))
    w = LabelBrowser(store, author="ann", page_size=10)
    first = w.rows[0]["item_id"]
    send(w, type="assign_named", name="intent 11")  # as the box sends it: the text typed
    assert store.get(first)["label"] == "intent_11" and "1 labelled intent_11" in w.message
    send(w, type="assign_named", name="card")  # ambiguous: said in the status line, nothing written
    assert "matches 2 classes" in w.error and store.get(first)["label"] == "intent_11"
    assert len(store.history()) == 1


def test_filter_bar_sorting_and_bad_filters_shown_in_the_panel(scored_store):
    w = LabelBrowser(scored_store, author="ann", page_size=10)
    assert w.issue_types == ["label"] and "queued" in w.statuses
    first_label = scored_store.labels[0]
    send(w, type="filter", filters={"label": first_label, "status": "", "score_min": "", "search": ""})
    assert w.total == scored_store.count({"label": first_label}) and all(r["label"] == first_label for r in w.rows)
    assert w.filters == {"label": first_label}
    send(w, type="filter", filters={"issue": "label", "score_max": "0.02"})
    assert w.total == 5 and w.filters == {"issue": "label", "score_max": 0.02}
    send(w, type="filter", filters={"search": "^(please|hi)", "regex": True})
    assert w.total == scored_store.count({"regex": "^(please|hi)"}) and w.filters == {"regex": "^(please|hi)"}
    shown = w.total
    send(w, type="filter", filters={"search": "([unclosed", "regex": True})
    assert "not a valid regular expression" in w.error and w.total == shown  # the view stays as it was
    send(w, type="filter", filters={"score_min": "low"})
    assert "score min must be a number" in w.error
    send(w, type="filter", filters={})
    assert w.error == "" and w.total == 120
    # the store's splits are offered, and one narrows the grid
    assert w.splits == scored_store.splits() == ["test", "train"]
    send(w, type="filter", filters={"split": "test"})
    assert w.filters == {"split": "test"} and w.total == scored_store.count({"split": "test"}) > 0
    send(w, type="filter", filters={})
    send(w, type="sort", column="score")
    assert w.order_by == "score" and w.rows[0]["score"] == 0.0
    send(w, type="sort", column="score")
    assert w.order_by == "-score" and w.rows[0]["score"] == round(119 / 200, 3)
    send(w, type="sort", column="nonsense")
    assert "cannot sort by 'nonsense'" in w.error
