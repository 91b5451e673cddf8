"""Agreement and consensus: equal to the reference packages on md_agreement, right on known cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from workbench.agreement import (
    agreement_report,
    annotations_from_frame,
    annotator_agreement,
    class_agreement,
    cohen_kappa_pairs,
    consistency,
    fleiss_kappa,
    krippendorff_alpha,
    percent_agreement,
)
from workbench.consensus import dawid_skene, majority_vote, simulate_annotators
from workbench.errors import DataError


@pytest.fixture(scope="module")
def md_train(shared_data):
    return pd.read_parquet(shared_data / "md_agreement" / "train.parquet")


def reliability_matrix(ann):
    """annotators x items, NaN where missing: the krippendorff package's input."""
    out = np.full((len(ann.annotators), len(ann.items)), np.nan)
    out[ann.annotator, ann.item] = ann.label
    return out


def test_krippendorff_alpha_equals_the_reference_package_on_md_agreement(md_train):
    import krippendorff

    ann = annotations_from_frame(md_train)
    assert len(ann.items) == 6592 and len(ann.annotators) == 670
    ours = krippendorff_alpha(ann)
    reference = krippendorff.alpha(reliability_data=reliability_matrix(ann), level_of_measurement="nominal")
    assert abs(ours - reference) < 1e-9


def test_cohen_kappa_per_pair_equals_scikit_learn_on_md_agreement(md_train):
    from sklearn.metrics import cohen_kappa_score

    ann = annotations_from_frame(md_train)
    pairs = cohen_kappa_pairs(ann, min_items=20)
    assert len(pairs) > 20
    wide = md_train.pivot(index="item_id", columns="annotator", values="label")
    for row in pairs.sample(40, random_state=0).itertuples():
        both = wide[[row.annotator_a, row.annotator_b]].dropna()
        assert len(both) == row.n_items
        reference = cohen_kappa_score(both[row.annotator_a], both[row.annotator_b])
        assert (np.isnan(row.kappa) and np.isnan(reference)) or abs(row.kappa - reference) < 1e-9


def test_fleiss_kappa_on_the_textbook_example_and_on_md_agreement(md_train):
    # Fleiss (1971) as reproduced on Wikipedia: 10 items, 14 raters, 5 classes, kappa = 0.210.
    table = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                      [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    rows = [(f"i{i}", f"r{i}_{j}_{c}", f"c{c}") for i, counts in enumerate(table) for c, n in enumerate(counts)
            for j in range(n)]
    ann = annotations_from_frame(pd.DataFrame(rows, columns=["item_id", "annotator", "label"]))
    assert round(fleiss_kappa(ann), 3) == 0.210
    assert round(percent_agreement(ann), 3) == 0.378  # P-bar in the same example
    md = annotations_from_frame(md_train)
    counts = md.counts()
    n = 5
    p_bar = ((counts * (counts - 1)).sum(1) / (n * (n - 1))).mean()
    p_e = ((counts.sum(0) / counts.sum()) ** 2).sum()
    assert abs(fleiss_kappa(md) - (p_bar - p_e) / (1 - p_e)) < 1e-12


def test_consistency_class_and_annotator_agreement_on_a_small_case():
    frame = pd.DataFrame({"item_id": ["a", "a", "a", "b", "b", "c", "c", "d"],
                          "annotator": ["x", "y", "z", "x", "y", "x", "z", "x"],
                          "label": ["p", "p", "p", "p", "n", "n", "n", "p"]})
    ann = annotations_from_frame(frame)
    assert consistency(ann) == pytest.approx(2 / 3)  # d has one label and does not count
    assert percent_agreement(ann) == pytest.approx((1 + 0 + 1) / 3)
    per_class = class_agreement(ann).set_index("class")["agreement"]
    # n: pairs involving n: item b (1 of 1 pair with n disagrees), item c (2 ordered agreeing) -> 2 / 3
    assert per_class["n"] == pytest.approx(2 / 3) and per_class["p"] == pytest.approx(6 / 7)
    table = annotator_agreement(ann, ["p", "p", "n", "p"]).set_index("annotator")
    assert table.loc["y", "agreement"] == 0.5 and table.loc["x", "agreement"] == 1.0


def test_majority_vote_tie_rules():
    frame = pd.DataFrame({"item_id": ["a", "a", "b", "b", "b", "c", "c"],
                          "annotator": ["x", "y", "x", "y", "z", "x", "y"],
                          "label": ["p", "n", "n", "n", "p", "n", "p"]})
    ann = annotations_from_frame(frame)
    vote = majority_vote(ann).set_index("item_id")
    # Overall n=4, p=3: ties go to n.
    assert vote.loc["a", "label"] == "n" and vote.loc["a", "tied"] and vote.loc["b", "share"] == pytest.approx(2 / 3)
    assert majority_vote(ann, tie="none").set_index("item_id").loc["a", "label"] is None
    with pytest.raises(DataError, match="unknown tie rule"):
        majority_vote(ann, tie="coin")


def adversarial_panel(k: int = 3) -> np.ndarray:
    def accurate(acc: float) -> np.ndarray:
        return np.full((k, k), (1 - acc) / (k - 1)) + np.eye(k) * (acc - (1 - acc) / (k - 1))

    swap = np.roll(np.eye(k), 1, axis=1) * 0.85 + np.full((k, k), 0.05)  # says the next class, on purpose
    swap /= swap.sum(axis=1, keepdims=True)
    return np.stack([accurate(0.9), accurate(0.8), accurate(0.7), accurate(0.6), accurate(0.5), swap, swap])


def test_dawid_skene_beats_majority_vote_with_two_adversarial_annotators():
    confusions = adversarial_panel()
    frame, truth = simulate_annotators(1500, confusions, per_item=5, seed=0)
    ann = annotations_from_frame(frame)
    order = np.array([int(i[4:]) for i in ann.items])
    truth_names = np.array([f"c{t}" for t in truth[order]])
    vote_acc = np.mean(majority_vote(ann)["label"].to_numpy() == truth_names)
    ds = dawid_skene(ann)
    ds_acc = np.mean(ds.labels["label"].to_numpy() == truth_names)
    assert ds.converged and ds_acc > vote_acc + 0.05 and ds_acc > 0.9
    true_quality = np.array([confusions[int(a[1:])].diagonal().mean() for a in ds.annotators["annotator"]])
    assert spearmanr(ds.annotators["quality"], true_quality).statistic > 0.9
    # The swapping annotators are recognised as the worst.
    worst = set(ds.annotators.nsmallest(2, "quality")["annotator"])
    assert worst == {"a5", "a6"}
    assert np.allclose(ds.posterior.sum(axis=1), 1.0) and (ds.labels["confidence"] <= 1.0).all()


def test_model_probabilities_as_the_prior_break_ties_the_annotators_cannot():
    frame = pd.DataFrame({"item_id": ["a", "a"], "annotator": ["x", "y"], "label": ["p", "n"]})
    ann = annotations_from_frame(frame)
    model = np.array([[0.1, 0.9]])  # classes sorted: n, p
    assert dawid_skene(ann, model_probs=model).labels["label"].iloc[0] == "p"
    with pytest.raises(DataError, match="expected \\(1, 2\\)"):
        dawid_skene(ann, model_probs=np.ones((3, 2)))


def test_report_and_bad_tables():
    frame, _ = simulate_annotators(200, adversarial_panel(), per_item=3, seed=1)
    report = agreement_report(annotations_from_frame(frame), min_pair_items=1)
    assert set(report.summary) == {"percent_agreement", "consistency", "fleiss_kappa", "krippendorff_alpha"}
    assert report.n_items == 200 and report.n_labels == 600 and len(report.per_annotator) == 7
    assert set(report.seconds) >= {"krippendorff_alpha", "cohen_kappa_pairs"}
    with pytest.raises(DataError, match="no column 'rater'"):
        annotations_from_frame(frame, annotator="rater")
    twice = pd.concat([frame.iloc[:1], frame.iloc[:1]])
    with pytest.raises(DataError, match="more than once"):
        annotations_from_frame(twice)
    with pytest.raises(DataError, match="not one of the classes"):
        annotations_from_frame(frame, classes=["c0"])
    single = annotations_from_frame(frame.drop_duplicates("item_id"))
    with pytest.raises(DataError, match="no item has two or more labels"):
        krippendorff_alpha(single)


# ------------------------------------------------------------------------------------- store: import, adjudicate
def test_long_and_wide_imports_give_the_same_store(tmp_path):
    from workbench import LabelStore
    from workbench.annotations import import_annotations

    frame, _ = simulate_annotators(60, adversarial_panel(), per_item=3, seed=2)
    frame["text"] = "text of " + frame["item_id"]
    wide = frame.pivot(index="item_id", columns="annotator", values="label").add_prefix("rater_").reset_index()
    wide["text"] = "text of " + wide["item_id"]
    wide.to_csv(tmp_path / "wide.csv", index=False)
    stores = []
    for name, source, options in (("long", frame, {}), ("wide", tmp_path / "wide.csv",
                                                          {"layout": "wide", "annotator_columns": "rater_"})):
        store = LabelStore.open(tmp_path / f"{name}.db")
        summary = import_annotations(store, source, consensus="majority", **options)
        assert summary["items"] == 60 and summary["annotations"] == 180 and summary["added"] == 60
        stores.append(store)
    a, b = (s.annotations().sort_values(["item_id", "annotator"])[["item_id", "annotator", "label"]]
            .reset_index(drop=True) for s in stores)
    pd.testing.assert_frame_equal(a, b)
    assert stores[0].to_pandas()["label"].tolist() == stores[1].to_pandas()["label"].tolist()
    again = import_annotations(stores[0], frame, consensus="majority")  # a re-import adds nothing
    assert again["annotations"] == 0 and again["unchanged"] == 60
    for s in stores:
        s.close()
    # a path: a new store made as an import makes one, then closed (a later open sees what was written)
    by_path = import_annotations(str(tmp_path / "by-path.db"), frame, consensus="majority")
    assert by_path["annotations"] == 180
    with LabelStore.open(tmp_path / "by-path.db", create=False) as store:
        assert len(store.annotations()) == 180
    from workbench.annotations import refresh_consensus

    assert len(refresh_consensus(tmp_path / "by-path.db", method="majority")) == 60
    with pytest.raises(DataError, match="refresh_consensus takes a label store; .*wide.csv is a dataset file"):
        refresh_consensus(tmp_path / "wide.csv")
    with pytest.raises(DataError, match="needs annotator_columns"):
        import_annotations(LabelStore.open(tmp_path / "x.db"), wide, layout="wide")
    with pytest.raises(DataError, match="no column starts with 'judge_'"):
        import_annotations(LabelStore.open(tmp_path / "y.db"), wide, layout="wide", annotator_columns="judge_")


def test_a_csv_with_numeric_ids_and_empty_cells_imports_as_written(tmp_path):
    """Item ids that look like numbers were read as ints for the texts and as text for the labels, so every item
    'had no text'; annotation files now go through the dataset reader (text cells, its encodings and errors)."""
    from workbench import LabelStore
    from workbench.annotations import import_annotations

    long = tmp_path / "long.csv"
    long.write_text("item_id,text,annotator,label\n1,hi,A,x\n1,hi,B,y\n2,yo,A,x\n2,yo,B,\n", encoding="utf-16")
    with LabelStore.open(tmp_path / "s.db") as store:
        summary = import_annotations(store, long)
        assert (summary["items"], summary["annotations"], summary["annotators"]) == (2, 3, 2)
        assert store.to_pandas()["text"].tolist() == ["hi", "yo"]
    wide = tmp_path / "wide.csv"
    wide.write_text("id,text,rater_A,rater_B\n7,hi,x,\n", encoding="utf-8")
    with pytest.raises(DataError, match="no column 'item_id'.*item_column="):
        import_annotations(LabelStore.open(tmp_path / "w.db"), wide, layout="wide", annotator_columns="rater_")
    with LabelStore.open(tmp_path / "w2.db") as store:
        summary = import_annotations(store, wide, layout="wide", annotator_columns="rater_", item_column="id")
        assert (summary["items"], summary["annotations"]) == (1, 1)
    # a long table with an item_id column of its own, read through another: that one gives way (it crashed the
    # consensus with 'array is not broadcastable', two columns being called item_id)
    both = tmp_path / "both.csv"
    both.write_text("item_id,id,text,annotator,label\nr1,7,hi,A,x\nr2,7,hi,B,y\nr3,8,yo,A,x\n", encoding="utf-8")
    with LabelStore.open(tmp_path / "b.db") as store:
        summary = import_annotations(store, both, item_column="id")
        assert (summary["items"], summary["annotations"], summary["disagreements"]) == (2, 3, 1)


def test_items_nobody_labelled_yet_are_stored_without_a_label(tmp_path, capsys):
    """A wide sheet with rows no annotator reached: those items were dropped without a word."""
    from workbench import LabelStore
    from workbench.cli import main

    wide = tmp_path / "wide.csv"
    wide.write_text("item_id,text,rater_a,rater_b\n1,great,pos,pos\n2,awful,neg,pos\n3,meh,,\n")
    assert main(["import-annotations", str(wide), str(tmp_path / "s.db"), "--layout", "wide",
                 "--annotator-prefix", "rater_"]) == 0
    out = capsys.readouterr().out
    assert "imported 4 labels from 2 annotators on 2 items (3 items new to the store)" in out
    assert "1 item(s) no annotator labelled (e.g. '3') were stored without a label" in out
    with LabelStore.open(tmp_path / "s.db") as store:
        table = store.to_pandas().set_index("item_id")
        assert table["text"].to_dict() == {"1": "great", "2": "awful", "3": "meh"}
        assert store.get("3")["label"] is None and store.annotations("3").empty


def test_adjudication_through_the_browser_keeps_the_annotators_labels(tmp_path, shared_data):
    from widgets import LabelBrowser
    from workbench import LabelStore
    from workbench.annotations import import_annotations

    md = pd.read_parquet(shared_data / "md_agreement" / "validation.parquet")
    store = LabelStore.open(tmp_path / "md.db")
    summary = import_annotations(store, md)
    assert summary["items"] == 1104 and summary["annotations"] == 5520 and summary["disagreements"] > 300
    w = LabelBrowser(store, author="judge", source="adjudication", filters={"disagree": True}, order_by="score",
                     page_size=10)
    assert w.total == summary["disagreements"] and w.title == "Adjudication"
    row = w.rows[0]
    assert len(row["annotators"]) == 5 and row["score"] == min(r["score"] for r in w.rows)  # least certain first
    item = row["item_id"]
    before = store.annotations(item).sort_values("annotator")[["annotator", "label"]].to_numpy().tolist()
    other = next(lab for lab in store.labels if lab != store.get(item)["label"])
    w._on_msg(w, {"type": "key", "key": str(store.labels.index(other) + 1)}, [])
    assert w.error == "" and store.get(item)["label"] == other
    last = store.history(item).iloc[-1]
    assert last["source"] == "adjudication" and last["author"] == "judge" and last["new_value"] == other
    after = store.annotations(item).sort_values("annotator")[["annotator", "label"]].to_numpy().tolist()
    assert after == before  # the annotators' own labels are untouched
    store.close()


def test_the_quality_report_has_an_agreement_section(tmp_path, shared_data):
    from workbench import LabelStore
    from workbench.annotations import import_annotations, store_annotations
    from workbench.scan import scan

    md = pd.read_parquet(shared_data / "md_agreement" / "validation.parquet")
    store = LabelStore.open(tmp_path / "md.db")
    import_annotations(store, md, consensus="majority")
    emb = np.random.default_rng(0).normal(size=(len(store), 16)).astype(np.float32)
    report = scan(store, embeddings=emb / np.linalg.norm(emb, axis=1, keepdims=True), progress=False).report
    section = report.overall["agreement"]
    assert section["n_annotators"] == 534 and section["n_items_multi"] == 1104
    assert abs(section["krippendorff_alpha"] - krippendorff_alpha(store_annotations(store))) < 1e-12
    assert report.overall["annotator_consistency"] == section["consistency"]
    assert "annotator_agreement" in report.per_class.columns and "Krippendorff alpha" in str(report)
    store.close()


def test_model_probabilities_join_the_consensus_in_the_store(tmp_path):
    from workbench import LabelStore
    from workbench.annotations import import_annotations, refresh_consensus

    frame = pd.DataFrame({"item_id": ["a", "a", "b", "b"], "annotator": ["x", "y", "x", "y"],
                          "label": ["pos", "neg", "pos", "pos"],
                          "text": ["first text", "first text", "second", "second"]})
    store = LabelStore.open(tmp_path / "s.db")
    import_annotations(store, frame)
    model = pd.DataFrame({"neg": [0.95], "pos": [0.05]}, index=["a"])  # the model is sure about a; b unscored
    scores = refresh_consensus(store, model_probs=model).set_index("item_id")
    assert scores.loc["a", "suggested_label"] == "neg" and scores.loc["b", "suggested_label"] == "pos"
    assert store.page(0, 5, filters={"issue": "disagreement"})["suggested_label"].tolist() == ["neg"]
    # why, for the adjudicator: the votes and the consensus; an item everyone agrees on has none
    why = scores.loc["a", "issue_details"]
    assert why.startswith("disagreement: votes ") and "'neg' 1" in why and "'pos' 1" in why
    assert why.endswith(f"consensus 'neg' at {scores.loc['a', 'score']:.2f}")
    assert pd.isna(scores.loc["b", "issue_details"])
    assert store.get("a")["issue_details"] == why
    with pytest.raises(DataError, match="no column for class 'pos'"):
        refresh_consensus(store, model_probs=model[["neg"]])
    with pytest.raises(DataError, match="through Dawid-Skene"):
        refresh_consensus(store, method="majority", model_probs=model)
    store.close()
