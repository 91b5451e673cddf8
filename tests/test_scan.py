"""The quick scan on the embedded sample, end to end through the store (uses the packaged MiniLM)."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import sys

import numpy as np
import pandas as pd
import pytest

from workbench import LabelStore, load_dataset
from workbench.cli import main
from workbench.errors import DataError
from workbench.sample import make_classification_sample


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    from workbench import scan as scan_module

    folder = tmp_path_factory.mktemp("scan")
    frame = make_classification_sample(seed=0)
    store = LabelStore.open(folder / "labels.db")
    store.import_dataset(load_dataset(frame, id_column="id"))
    seen: dict[str, tuple[int, ...]] = {}
    real_oof, real_context = scan_module.out_of_fold_probs, scan_module.CheckContext

    def oof(*args, **kw):
        seen["classifier"] = kw["embeddings"].shape
        return real_oof(*args, **kw)

    def context(**kw):
        seen["neighbours"] = kw["embeddings"].shape
        return real_context(**kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scan_module, "out_of_fold_probs", oof)
        mp.setattr(scan_module, "CheckContext", context)
        result = scan_module.scan(store, progress=False, cache_dir=folder / "cache")
    yield frame, store, result, seen
    store.close()


def test_classifier_and_neighbours_read_the_sentence_embedding_by_default(scanned):
    *_, seen = scanned
    assert seen == {"classifier": (3000, 384), "neighbours": (3000, 384)}


def test_planted_errors_rank_in_the_top_twice_their_number(scanned):
    frame, _, result, _ = scanned
    planted = set(frame.loc[frame["is_noisy"], "id"])
    top = set(result.items["item_id"][: 2 * len(planted)])
    assert len(planted & top) / len(planted) >= 0.8
    flagged = set(result.label_issues()["item_id"])
    assert len(flagged & planted) / len(flagged) > 0.7  # what is flagged is mostly really wrong


def test_scan_writes_scores_suggestions_and_issues_into_the_store(scanned):
    frame, store, result, _ = scanned
    page = store.page(0, 20)
    assert page["item_id"].tolist() == result.items["item_id"][:20].tolist()
    assert page["score"].is_monotonic_increasing
    assert store.count({"issue": "label"}) == int(result.items["is_label_issue"].sum())
    worst = page.iloc[0]
    assert worst["suggested_label"] in store.labels and 0 < worst["suggested_prob"] <= 1
    truth = frame.set_index("id")["true_label"]
    hits = page[page["issues"].map(lambda v: "label" in v)]
    assert (hits["suggested_label"] == truth[hits["item_id"]].to_numpy()).mean() > 0.8


def test_every_flagged_item_says_why_in_the_items_the_store_and_the_browser(scanned):
    from workbench.review import ReviewSession

    _, store, result, _ = scanned
    items = result.items.set_index("item_id")
    assert items.loc[items["issues"].map(len) == 0, "issue_details"].isna().all()
    flagged = items[items["issues"].map(len) > 0]
    assert flagged["issue_details"].notna().all()
    for _, row in flagged.iterrows():  # one "issue: reason" per issue type, in the same order
        assert [part.split(":")[0] for part in row["issue_details"].split(" | ")] == sorted(row["issues"])
    label = flagged[flagged["issues"].map(lambda i: "label" in i)].iloc[0]
    given = label["self_confidence"]  # the probability the model gave the given label
    assert f"out-of-fold probability of the given label {label['given_label']!r} {given:.2f}" in label["issue_details"]
    assert f"of {label['suggested_label']!r} {label['suggested_prob']:.2f}" in label["issue_details"]
    # and how many of its 10 nearest neighbours carry the suggestion: with those carrying the given label (the
    # neighbour agreement score) never more than 10, and for planted errors often most of them
    counts = []
    for _, row in flagged[flagged["issues"].map(lambda i: "label" in i)].iterrows():
        suggestion = re.escape(repr(row["suggested_label"]))
        found = re.search(rf"; (\d+) of its 10 nearest neighbours are labelled {suggestion}", row["issue_details"])
        assert found, row["issue_details"]
        if row["suggested_label"] != row["given_label"]:
            assert int(found[1]) + round(row["neighbor_agreement"] * 10) <= 10
        counts.append(int(found[1]))
    assert max(counts) >= 5, counts
    near = flagged[flagged["issues"].map(lambda i: "near_duplicate" in i)]
    if len(near):  # the detail names a twin the store also knows
        twin = near["issue_details"].iloc[0].split("near_duplicate: cosine ")[1].split(" with ")[1].split(" |")[0]
        assert twin in store.duplicates_of(near.index[0])
    page = store.page(0, len(store)).set_index("item_id")
    assert page.loc[flagged.index, "issue_details"].tolist() == flagged["issue_details"].tolist()
    session = ReviewSession(store, page_size=5, filters={"item_ids": [label.name]})
    assert session.rows()[0]["why"].startswith("label: out-of-fold probability")


def test_the_html_report_lists_the_worst_labels_issues_and_duplicate_groups_with_why(scanned, tmp_path):
    from workbench.scan_report import write_scan_report

    frame, _, result, _ = scanned
    page = write_scan_report(result, tmp_path / "r" / "scan.html", top=10).read_text()
    assert page.startswith("<!doctype html>") and "<script" not in page.lower()
    worst = result.label_issues().iloc[0]
    assert worst["item_id"] in page and "out-of-fold probability of the given label" in page
    n_flagged = int(result.items["is_label_issue"].sum())
    assert f"Likely wrong labels ({n_flagged}; the 10 least likely shown)" in page
    assert "Duplicate groups (" in page and "<b>different labels</b>" in page  # the sample plants conflicts
    for kind in result.report.overall["issue_counts"]:
        assert kind in page
    # the noise matrix, shaded without a script; its largest mix-up has its cell
    matrix = result.report.noise_matrix
    off = matrix.where(~np.eye(len(matrix), dtype=bool)).stack()
    given, true = off.idxmax()
    assert "<h2>Estimated noise matrix</h2>" in page
    assert f"title='P(given {given} | true {true}) = {off.max():.3f}'>{off.max():.0%}</td>" in page
    # dataset text is escaped: markup in a text, a label or a reason reads as text
    items = result.items.copy()
    row = items.index[items["is_label_issue"]][0]
    items.loc[row, ["text", "given_label", "issue_details"]] = ['<img src=x onerror="alert(1)">', "<b>x</b>",
                                                                "label: <script>alert(2)</script>"]
    page = write_scan_report(dataclasses.replace(result, items=items), tmp_path / "markup.html").read_text()
    assert "<img" not in page and "<script" not in page and "<b>x</b>" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page and "&lt;script&gt;alert(2)" in page


def test_a_wide_noise_matrix_shows_its_noisiest_classes():
    from workbench.scan_report import MATRIX_CLASSES, noise_matrix_html

    names = [f"c{i:02d}" for i in range(40)]
    matrix = pd.DataFrame(np.eye(40), index=names, columns=names)
    matrix.loc["c31", "c31"], matrix.loc["c05", "c31"] = 0.6, 0.4  # 40% of c31's items carry c05
    page = noise_matrix_html(matrix)
    assert f"Shown: the {MATRIX_CLASSES} of 40 classes whose items keep their label least often" in page
    assert page.count("<tr><th>c") == MATRIX_CLASSES and "<th>c31</th>" in page
    assert "title='P(given c05 | true c31) = 0.400'>40%</td>" in page
    assert noise_matrix_html(pd.DataFrame()) == ""


def test_duplicates_share_a_group_and_the_review_session_shows_them_on_d(scanned):
    from workbench.errors import UnknownItemError
    from workbench.normalize import normalize_text
    from workbench.review import ReviewSession

    _, store, result, _ = scanned
    items = result.items
    linked = items["issues"].map(lambda i: bool({"exact_duplicate", "near_duplicate"} & set(i)))
    assert linked.sum() >= 2 and items.loc[linked, "duplicate_group"].notna().all()
    assert items.loc[~linked, "duplicate_group"].isna().all()
    exact = items[items["issues"].map(lambda i: "exact_duplicate" in i)].iloc[0]
    twins = store.duplicates_of(exact["item_id"])
    group = items[(items["duplicate_group"] == exact["duplicate_group"]) & (items["item_id"] != exact["item_id"])]
    assert twins == sorted(group["item_id"]) and twins
    same_text = items[items["text"].map(normalize_text) == normalize_text(exact["text"])]["item_id"]
    assert set(same_text) - {exact["item_id"]} <= set(twins)
    assert store.count({"duplicate_of": exact["item_id"]}) == len(twins) + 1
    with pytest.raises(UnknownItemError):
        store.duplicates_of("no-such-item")
    # the browser's "d": the cursor's item and its twins, then back to the list it came from
    shown_ids = [exact["item_id"], *items.loc[~linked, "item_id"][:3]]
    session = ReviewSession(store, page_size=5, filters={"item_ids": shown_ids})
    session.cursor = session.frame["item_id"].tolist().index(exact["item_id"])
    shown = session.press("d")
    assert shown.ok and f"its {len(twins)} duplicate(s)" in shown.message
    assert sorted(session.frame["item_id"]) == sorted([exact["item_id"], *twins]) and session.total == len(twins) + 1
    assert session.press("d").ok and session.total == 4  # back, on the same row
    assert session.current()["item_id"] == exact["item_id"]
    session.cursor = next(i for i, v in enumerate(session.frame["item_id"]) if v != exact["item_id"])
    alone = session.press("d")
    assert not alone.ok and "no duplicate" in alone.message and session.total == 4
    # back from the "d" view to the page it left, not the first one
    paged = ReviewSession(store, page_size=1, filters={"item_ids": shown_ids})
    in_order = store.page(0, 4, filters={"item_ids": shown_ids}, order_by=paged.order_by)["item_id"].tolist()
    paged.go_to_page(in_order.index(exact["item_id"]))
    page = paged.page
    assert page > 0  # the item sits past the first page (on the sample: the last of the four)
    assert paged.press("d").ok and paged.press("d").ok
    assert (paged.page, paged.total, paged.current()["item_id"]) == (page, 4, exact["item_id"])


def test_report_has_every_section(scanned):
    _, _, result, _ = scanned
    o = result.report.overall
    assert o["n_items"] == 3000 and o["n_classes"] == 8
    assert 0 < o["class_balance"] <= 1 and 0.02 < o["estimated_noise_rate"] < 0.12
    assert 0.9 < o["coverage"] < 1
    assert {"label", "exact_duplicate"} <= set(o["issue_counts"])
    assert set(result.report.per_class.columns) >= {"count", "share", "estimated_noise", "label"}
    json.dumps(result.report.to_dict())
    assert "estimated noise rate" in str(result.report)
    # English texts, an English model: every word piece known, and no note on unknown words
    assert o["unknown_tokens"]["n_unknown"] == 0 and o["unknown_tokens"]["n_read"] == 2000
    assert "unknown" not in str(result.report)


def test_the_planted_systematic_mix_ups_lead_the_likely_mix_ups(scanned, tmp_path):
    from workbench.scan_report import write_scan_report

    frame, _, result, _ = scanned
    planted = frame[frame["is_noisy"]].groupby(["label", "true_label"]).size().sort_values(ascending=False)
    mixups = result.report.mixups
    # the sample's two systematic confusions (59 and 38 items planted) are the two most frequent pairs, in either
    # order (about 33 of each are found: one item more or less swaps them)
    assert set(zip(mixups["given"][:2], mixups["suggested"][:2])) == set(planted.index[:2])
    flagged = result.items[result.items["is_label_issue"]]
    assert mixups["items"].sum() == (flagged["given_label"] != flagged["suggested_label"]).sum()
    first = mixups.iloc[0]
    assert first["share_of_given"] == first["items"] / (frame["label"] == first["given"]).sum()
    assert f"likely mix-ups (given -> suggested: flagged items, share of the given label): '{first['given']}' -> " \
           f"'{first['suggested']}' {first['items']} (" in str(result.report)
    assert result.report.to_dict()["mixups"][0] == first.to_dict()
    page = write_scan_report(result, tmp_path / "scan.html", top=3).read_text()
    assert f"Likely mix-ups ({len(mixups)} pairs of given and suggested label; the first 3 shown)" in page


def test_label_mixups_counts_flagged_pairs_most_first():
    from workbench.report import label_mixups

    labels = ["a", "a", "a", "a", "b", "b", None]
    suggested = ["b", "b", "c", "b", "a", "b", "a"]
    flagged = [True, True, True, False, True, True, True]  # unflagged, same-label and unlabelled rows do not count
    table = label_mixups(labels, suggested, flagged)
    assert table.values.tolist() == [["a", "b", 2, 0.5], ["a", "c", 1, 0.25], ["b", "a", 1, 0.5]]
    assert label_mixups(labels, suggested, [False] * 7).empty


def test_cli_scan_prints_the_report(scanned, tmp_path, capsys):
    frame, *_ = scanned
    data = tmp_path / "small.parquet"
    frame.sample(600, random_state=0).to_parquet(data)
    assert main(["scan", str(data), "--store", str(tmp_path / "s.db"), "--id-column", "id", "--no-progress",
                 "--json", str(tmp_path / "report.json")]) == 0
    out = capsys.readouterr().out
    assert "estimated noise rate" in out and "worst labels by combined" in out
    assert json.loads((tmp_path / "report.json").read_text())["overall"]["n_items"] == 600
    assert main(["scan", str(tmp_path / "s.db"), "--score", "self_confidence", "--no-progress", "--top", "3"]) == 0
    assert "worst labels by self_confidence" in capsys.readouterr().out


def test_cli_scans_a_dataset_file_without_a_store(scanned, tmp_path, capsys, monkeypatch):
    import pandas as pd

    frame, *_ = scanned
    data = tmp_path / "small.csv"
    frame.sample(300, random_state=1).to_csv(data, index=False)
    monkeypatch.chdir(tmp_path)
    items = tmp_path / "scores.csv"
    assert main(["scan", str(data), "--id-column", "id", "--no-progress", "--items", str(items)]) == 0
    out = capsys.readouterr().out
    assert "worst labels by combined" in out and "no store holds these scores" in out and "--store" in out
    table = pd.read_csv(items)
    assert len(table) == 300 and table["item_id"].is_unique
    assert table["text"].tolist() == frame.set_index("id").loc[table["item_id"], "text"].tolist()
    assert table["score"].is_monotonic_increasing and {"suggested_label", "issues", "combined"} <= set(table.columns)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv", "small.csv"]  # no store was created
    # the item table in the other formats; an unknown one is a one-line error that names the flag
    for name in ("scores.parquet", "scores.jsonl"):
        assert main(["scan", str(data), "--id-column", "id", "--no-progress", "--items", str(tmp_path / name)]) == 0
    assert pd.read_parquet(tmp_path / "scores.parquet")["issues"].map(list).tolist() == [
        json_list for json_list in pd.read_json(tmp_path / "scores.jsonl", lines=True)["issues"]]
    capsys.readouterr()
    assert main(["scan", str(data), "--id-column", "id", "--no-progress", "--items", str(tmp_path / "s.xlsx")]) == 2
    assert "--items" in capsys.readouterr().err
    assert main(["scan", str(data), "--id-column", "id", "--no-progress", "--html", str(tmp_path / "s.htm")]) == 2
    assert "--html" in capsys.readouterr().err
    assert main(["scan", str(data), "--id-column", "id", "--no-progress", "--html", str(tmp_path / "s.html")]) == 0
    assert f"html report: {tmp_path / 's.html'}" in capsys.readouterr().out
    assert "Likely wrong labels" in (tmp_path / "s.html").read_text()

    class ClosedPipe(io.StringIO):  # `workbench scan ... | head -1` after head has gone
        def write(self, text: str) -> int:
            raise BrokenPipeError

        def fileno(self) -> int:
            return os.open(os.devnull, os.O_WRONLY)

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["scan", str(data), "--id-column", "id", "--no-progress", "--items", str(tmp_path / "piped.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "piped.csv")) == 300  # the files are written before the first line is printed


def test_cli_picks_the_classifier_layers(scanned, tmp_path, monkeypatch, capsys):
    from workbench import scan as scan_module

    frame, *_ = scanned
    data = tmp_path / "small.parquet"
    frame.sample(300, random_state=0).to_parquet(data)
    seen = []
    real = scan_module.out_of_fold_probs

    def oof(*args, **kw):
        seen.append(kw["embeddings"])
        refits.append(kw["refit_clean"])
        return real(*args, **kw)

    refits: list[bool] = []
    monkeypatch.setattr(scan_module, "out_of_fold_probs", oof)
    base = ["scan", str(data), "--store", str(tmp_path / "s.db"), "--id-column", "id", "--no-progress"]
    assert main([*base, "--classifier-layers", "-4", "-3", "-2", "-1"]) == 0
    assert main([*base, "--classifier-layers", "-2", "--no-refit"]) == 0
    # MiniLM: 384 per layer, each block pooled and normalised on its own; the last block is the sentence embedding
    assert seen[0].shape == (300, 4 * 384) and seen[1].shape == (300, 384) and refits == [True, False]
    assert np.allclose(np.linalg.norm(seen[0][:, -384:], axis=1), 1, atol=1e-5)
    assert np.allclose(seen[0][:, -2 * 384:-384], seen[1], atol=1e-5)  # layer -2 alone = its block of the four
    assert not np.allclose(seen[0][:, -384:], seen[1], atol=1e-2)
    assert main([*base, "--classifier-layers", "9"]) != 0
    assert "hidden states 0..6" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["scan", str(tmp_path / "s.db"), "--score", "no_such_score"])


def test_a_finetune_scan_passes_its_model_and_fields_to_the_fold_fine_tunes(tiny_bert, tmp_path):
    from workbench.errors import DataError
    from workbench.scan import scan

    table = load_dataset(make_classification_sample(n_items=80, seed=5), id_column="id")
    result = scan(table, mode="finetune", folds=2, model=tiny_bert, progress=False, cache_dir=tmp_path / "cache",
                  finetune={"epochs": 1, "max_length": 32, "precision": "fp32"})
    params = result.oof.params
    assert params["mode"] == "finetune" and params["model"] == str(tiny_bert)
    assert (params["epochs"], params["max_length"]) == (1, 32) and result.oof.pred_probs.shape[0] == 80
    with pytest.raises(DataError, match="mode='finetune'"):
        scan(table, finetune={"epochs": 1}, progress=False, cache_dir=tmp_path / "cache")


def test_scan_takes_a_store_s_path_or_a_dataset_file_s(tmp_path):
    """scan('labels.db') raised "'str' object has no attribute 'columns'"; now the store is opened for the scan (and
    closed), a dataset file is read and scanned as it is, and a path that names no store is refused."""
    from workbench.errors import StoreNotFoundError
    from workbench.scan import scan

    frame = make_classification_sample(n_items=120, seed=3)
    frame.to_csv(tmp_path / "data.csv", index=False)
    embeddings = np.random.default_rng(0).normal(size=(120, 16)).astype(np.float32)
    from_file = scan(str(tmp_path / "data.csv"), embeddings=embeddings, progress=False, cache_dir=tmp_path)
    assert from_file.report.overall["n_items"] == 120
    with LabelStore.open(tmp_path / "labels.db") as store:
        store.import_dataset(load_dataset(tmp_path / "data.csv"))
    result = scan(tmp_path / "labels.db", embeddings=embeddings, progress=False, cache_dir=tmp_path,
                  scan_id="by-path")
    with LabelStore.open(tmp_path / "labels.db") as store:
        assert store.active_scan()["scan_id"] == "by-path"  # written to the store the path names
    assert np.allclose(result.oof.pred_probs, from_file.oof.pred_probs)
    with pytest.raises(StoreNotFoundError, match="there is no store at"):
        scan(str(tmp_path / "typo.db"), progress=False)
    assert not (tmp_path / "typo.db").exists()


def test_a_table_of_ones_own_is_scanned_as_load_dataset_would_read_it(tmp_path):
    # text and integer class ids, no ids: before, a KeyError 'item_id' (and int labels would have read as unlabelled)
    from workbench.scan import scan

    frame = make_classification_sample(n_items=300, seed=5)[["text", "label"]]
    classes = sorted(frame["label"].unique())
    own = frame.assign(label=frame["label"].map(classes.index))
    embeddings = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32)
    result = scan(own, embeddings=embeddings, progress=False, cache_dir=tmp_path)
    loaded = load_dataset(own).set_index("item_id")
    items = result.items.set_index("item_id").loc[loaded.index]  # worst first there; the table's order here
    assert items["given_label"].tolist() == [str(classes.index(c)) for c in frame["label"]]
    assert items["score"].notna().all()
    with pytest.raises(DataError, match="row 3"):  # and refused as load_dataset refuses it
        scan(own.assign(text=own["text"].where(own.index != 3, "")), embeddings=embeddings, progress=False,
             cache_dir=tmp_path)


def test_a_class_with_one_item_is_left_unscored_and_the_rest_is_scanned(tmp_path, capsys):
    # a long-tailed label set: before, one single-item class refused the whole scan
    from workbench.scan import scan

    frame = make_classification_sample(n_items=300, seed=5)
    frame.loc[[0, 1], "label"] = ["solo_a", "solo_b"]
    table = load_dataset(frame, id_column="id")
    rng = np.random.default_rng(0)
    result = scan(table, embeddings=rng.normal(size=(len(table), 16)).astype(np.float32), progress=False,
                  cache_dir=tmp_path)
    items = result.items.set_index("item_id")
    solo = [frame["id"][0], frame["id"][1]]
    assert items.loc[solo, "score"].isna().all() and not items.loc[solo, "is_label_issue"].any()
    assert items.drop(index=solo)["score"].notna().all()
    assert result.report.overall["unscored_classes"] == ["solo_a", "solo_b"]
    assert "not scored: the items of the 2 class(es) with a single item ('solo_a', 'solo_b')" in str(result.report)
    assert result.oof is not None and result.oof.params["folds"] == 5
    # nothing left to learn from but one class: the plain error, naming the single-item classes
    two = frame.head(40).copy()
    two["label"] = ["solo_a", *(["x"] * 39)]
    with pytest.raises(DataError, match=r"the class\(es\) \['solo_a'\] have a single item"):
        scan(load_dataset(two, id_column="id"), embeddings=np.zeros((40, 4), np.float32), progress=False,
             cache_dir=tmp_path)
    # too few items once they are set aside: the count the error gives is explained, and a typo named
    tickets = pd.DataFrame({"text": [f"ticket {i}" for i in range(7)],
                            "label": ["Billing", "Billing", "Bug", "Bug", "bug ", "account", "billing"]})
    with pytest.raises(DataError, match=r"4 items cannot be split into 5 folds; .* \(3 more items, of the class\(es\) "
                                        r"with a single item \['account', 'billing', 'bug '\], are left out of a scan; "
                                        r"'billing' looks like 'Billing' spelled another way; 'bug ' looks like 'Bug'"):
        scan(load_dataset(tickets), embeddings=np.zeros((7, 4), np.float32), progress=False, cache_dir=tmp_path)


def test_a_label_corrected_while_the_scan_runs_counts_as_changed_since_it(tmp_path, monkeypatch):
    # the panels scan in the background while the analyst keeps labelling: a label set mid-scan is judged by
    # scores of the label before, so the store must not call the ranking fresh
    from workbench import scan as scan_module

    store = LabelStore.open(tmp_path / "labels.db")
    store.import_dataset(load_dataset(make_classification_sample(n_items=200, seed=5), id_column="id"))
    item = store.page(0, 1)["item_id"][0]
    other = next(lab for lab in store.labels if lab != store.get(item)["label"])
    real_oof = scan_module.out_of_fold_probs

    def oof_while_labelling(*args, **kw):
        store.set_label(item, other, author="ann")
        return real_oof(*args, **kw)

    monkeypatch.setattr(scan_module, "out_of_fold_probs", oof_while_labelling)
    embeddings = np.random.default_rng(0).normal(size=(200, 16)).astype(np.float32)
    scan_module.scan(store, embeddings=embeddings, progress=False, cache_dir=tmp_path)
    assert store.active_scan()["labels_changed_since"] == 1


def test_texts_past_the_embedding_s_max_length_are_counted_and_it_can_be_raised(scanned, tmp_path, monkeypatch,
                                                                                  capsys):
    """E-mails and tickets run past the 128 tokens the embedding reads: the report says how many, and --max-length
    reaches the embedding (and the scan's recorded parameters)."""
    import workbench.embed as embed_module
    from workbench.report import count_long_texts
    from workbench.sample import make_ner_sample

    assert count_long_texts(["one two three", "one two", "x"], 4) == {"n_long": 1, "n_texts": 3, "max_length": 4}
    frame, *_ = scanned
    small = frame.sample(200, random_state=1).reset_index(drop=True)
    small.loc[:19, "text"] = small.loc[:19, "text"] + " and more detail" * 12  # 36 more words each
    small.to_parquet(tmp_path / "long.parquet")
    lengths: list[int] = []
    def spying(real):
        def spy(*args, **kw):
            lengths.append(kw["max_length"])
            return real(*args, **kw)
        return spy

    for name in ("embed_views", "embed_views_with_tokens"):  # the scan's forward pass, with token vectors or not
        monkeypatch.setattr(embed_module, name, spying(getattr(embed_module, name)))
    db = tmp_path / "s.db"
    base = ["scan", str(tmp_path / "long.parquet"), "--store", str(db), "--id-column", "id", "--no-progress"]
    assert main([*base, "--max-length", "32"]) == 0
    out = capsys.readouterr().out
    assert lengths == [32]
    n_long = sum(len(text.split()) > 30 for text in small["text"])  # 30 words past [CLS] and [SEP]
    assert n_long >= 20
    assert (f"long texts: {n_long} of 200 texts ({n_long / 200:.0%}) run past the 32 tokens the embedding reads (at "
            "least: counted in words)") in out and "workbench scan --max-length 256" in out
    with LabelStore.open(db) as store:
        assert store.active_scan()["params"]["max_length"] == 32
    assert main(base) == 0
    assert lengths == [32, 128] and "long texts" not in capsys.readouterr().out
    ner = tmp_path / "ner.parquet"
    make_ner_sample(n_sentences=20).to_parquet(ner)
    assert main(["scan", str(ner), "--max-length", "64", "--no-progress"]) == 2
    assert "--finetune-set max_length=N" in capsys.readouterr().err


def test_classes_with_few_labelled_items_are_named_as_weak_in_the_report(tmp_path):
    # a pool with a few labels per class: the folds learn each class from a handful, which the report must say
    from workbench.scan import scan
    from workbench.scan_report import write_scan_report

    frame = make_classification_sample(n_items=300, seed=5)
    frame.loc[frame.index[frame["label"] == "refund_request"][4:], "label"] = None  # 4 labelled refund requests
    table = load_dataset(frame, id_column="id", allow_missing_labels=True)
    embeddings = np.random.default_rng(0).normal(size=(len(table), 16)).astype(np.float32)
    result = scan(table, embeddings=embeddings, progress=False, cache_dir=tmp_path)
    assert result.report.overall["thin_classes"] == {"refund_request": 4}
    note = "few examples: 1 class(es) have fewer than 10 labelled items ('refund_request' 4)"
    assert note in str(result.report)
    write_scan_report(result, tmp_path / "scan.html")
    assert note.replace("'", "&#x27;") in (tmp_path / "scan.html").read_text()
    # probabilities from the user's own model: how it learnt each class is not the scan's to judge
    classes = sorted(frame["label"].dropna().unique())
    given = scan(table, embeddings=embeddings, progress=False, cache_dir=tmp_path,
                 pred_probs=np.full((len(table), len(classes)), 1 / len(classes)))
    assert given.report.overall["thin_classes"] == {} and "few examples" not in str(given.report)


def _true_label_probs(frame, classes, *, sure: float = 0.9):
    """Probabilities that know the true label: ``sure`` on it, the rest spread evenly."""
    probs = np.full((len(frame), len(classes)), (1 - sure) / (len(classes) - 1))
    probs[np.arange(len(frame)), [classes.index(c) for c in frame["true_label"]]] = sure
    return probs


def test_given_probabilities_replace_the_cross_validation(tmp_path, monkeypatch):
    import pandas as pd

    from workbench import scan as scan_module

    frame = make_classification_sample(n_items=300, seed=5)
    frame.loc[0, ["label", "true_label"]] = "solo"  # a class with one item is scored when nothing is cross-validated
    frame.loc[1, "label"] = None
    table = load_dataset(frame, id_column="id", allow_missing_labels=True)
    classes = sorted(frame["label"].dropna().unique())
    probs = _true_label_probs(frame, classes)

    def no_cross_validation(*args, **kw):
        raise AssertionError("the scan cross-validated although probabilities were given")

    monkeypatch.setattr(scan_module, "out_of_fold_probs", no_cross_validation)
    embeddings = np.random.default_rng(0).normal(size=(len(table), 16)).astype(np.float32)
    options = {"embeddings": embeddings, "progress": False, "cache_dir": tmp_path}
    result = scan_module.scan(table, pred_probs=probs, **options)
    items = result.items.set_index("item_id")
    noisy = set(frame.loc[frame["is_noisy"], "id"])
    assert set(result.label_issues()["item_id"]) == noisy
    assert (items.loc[sorted(noisy), "suggested_label"] == frame.set_index("id").loc[sorted(noisy), "true_label"]).all()
    assert not np.isnan(items.loc[frame["id"][0], "score"]) and np.isnan(items.loc[frame["id"][1], "score"])
    assert result.oof.params == {"mode": "given"} and "crossval" not in result.seconds
    # the same as a table in another row order, with a class the data lacks and rows for other items
    shuffled = pd.DataFrame(probs, columns=[f"prob_{c}" for c in classes]).assign(item_id=frame["id"].tolist())
    shuffled = pd.concat([shuffled.sample(frac=1, random_state=0).drop(index=1).assign(prob_other=0.0),
                          pd.DataFrame({"item_id": ["elsewhere"], "prob_other": [1.0]})]).fillna(0.0)
    again = scan_module.scan(table, pred_probs=shuffled, **options)
    assert again.items["item_id"].tolist() == result.items["item_id"].tolist()
    # (the combined score moves a little with an extra class: its neighbour mixing smooths over one more)
    assert np.allclose(again.items["self_confidence"], result.items["self_confidence"], equal_nan=True)
    assert set(again.label_issues()["item_id"]) == noisy and again.oof.classes == [*classes, "other"]
    # into a store: the scores reach the pages
    store = LabelStore.open(tmp_path / "labels.db")
    store.import_dataset(table)
    scan_module.scan(store, pred_probs=shuffled, **options)
    assert store.page(0, 300)["score"].notna().sum() == 299  # all but the unlabelled item


@pytest.mark.parametrize(("change", "message"), [
    (lambda p, t: p[:, :-1], r"pred_probs has shape \(300, 7\); this data needs \(300, 8\)"),
    (lambda p, t: t.drop(columns="prob_refund_request"), r"has no \['prob_refund_request'\] column"),
    (lambda p, t: t.drop(index=7), "1 labelled item\\(s\\) have no row in the probabilities table, e.g. item_id"),
    (lambda p, t: pd_concat(t, t.head(1)), "on more than one row"),
    (lambda p, t: t.assign(prob_cancel_order=np.where(t.index == 3, np.nan, t["prob_cancel_order"])),
     "have NaN or infinite values"),
    (lambda p, t: np.log(p), r"have negative values \(300 of 300 labelled items\); pass probabilities, not logits"),
    (lambda p, t: p * 3, r"sum to 3.0000, not 1 \(300 of 300 labelled items\); pass probabilities"),
    (lambda p, t: t.rename(columns={"item_id": "id"}), "needs an item_id column and one prob_<class> column"),
    (lambda p, t: t.assign(prob_cancel_order="high"), "column 'prob_cancel_order' holds values that are not numbers"),
])
def test_given_probabilities_that_do_not_fit_are_refused(tmp_path, change, message):
    import pandas as pd

    from workbench.scan import scan

    frame = make_classification_sample(n_items=300, seed=5)
    table = load_dataset(frame, id_column="id")
    classes = sorted(frame["label"].unique())
    probs = _true_label_probs(frame, classes)
    as_table = pd.DataFrame(probs, columns=[f"prob_{c}" for c in classes]).assign(item_id=frame["id"].tolist())
    with pytest.raises(DataError, match=message):
        scan(table, pred_probs=change(probs, as_table), embeddings=np.zeros((300, 4), np.float32), progress=False,
             cache_dir=tmp_path)


def pd_concat(*frames):
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def test_cli_scans_with_given_probabilities(scanned, tmp_path, capsys):
    import pandas as pd

    frame, *_ = scanned
    part = frame.sample(300, random_state=2).reset_index(drop=True)
    part.to_csv(tmp_path / "data.csv", index=False)
    classes = sorted(part["label"].unique())
    probs = _true_label_probs(part, classes)
    pd.DataFrame(probs, columns=[f"prob_{c}" for c in classes]).assign(item_id=part["id"]).to_csv(
        tmp_path / "probs.csv", index=False)
    np.save(tmp_path / "probs.npy", probs)
    base = ["scan", str(tmp_path / "data.csv"), "--id-column", "id", "--no-progress"]
    for source in ("probs.csv", "probs.npy"):
        items = tmp_path / f"items-{source}.parquet"
        assert main([*base, "--pred-probs", str(tmp_path / source), "--items", str(items)]) == 0
        flagged = pd.read_parquet(items).query("is_label_issue")["item_id"]
        assert set(flagged) == set(part.loc[part["is_noisy"], "id"])
    # probabilities that agree with every given label: nothing flagged, and the output says so
    agreeing = _true_label_probs(part.assign(true_label=part["label"]), classes)
    np.save(tmp_path / "agree.npy", agreeing)
    capsys.readouterr()
    assert main([*base, "--pred-probs", str(tmp_path / "agree.npy")]) == 0
    out = capsys.readouterr().out
    assert "no label flagged as a likely error (filter prune_by_noise_rate)" in out and "Empty DataFrame" not in out
    for extra, message in [(["--mode", "quick"], "--pred-probs replaces the scan's own cross-validation"),
                           (["--folds", "3"], "drop --mode, --finetune-set, --folds and --no-refit")]:
        assert main([*base, "--pred-probs", str(tmp_path / "probs.csv"), *extra]) == 2
        assert message in capsys.readouterr().err
    for name, message in [("nothing.csv", "no such file of probabilities"), ("data.txt", "unknown file type '.txt'")]:
        (tmp_path / "data.txt").write_text("x")
        assert main([*base, "--pred-probs", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


def test_a_scan_of_one_split_scores_only_its_items(tmp_path, capsys):
    """`--split test` reviews the held-out labels apart from the training data: they are cross-validated among
    themselves, and the other items are left unscored by that scan."""
    from workbench.scan import scan

    frame = make_classification_sample(n_items=300, seed=5)
    store = LabelStore.open(tmp_path / "labels.db")
    store.import_dataset(load_dataset(frame, id_column="id"))
    test_ids = set(frame.loc[frame["split"] == "test", "id"])
    result = scan(store, split="test", progress=False, cache_dir=tmp_path / "cache")
    assert set(result.items["item_id"]) == test_ids and result.oof is not None
    assert len(result.oof.pred_probs) == len(test_ids)
    scored = store.page(0, len(store), order_by="pos").set_index("item_id")["score"]
    assert scored[list(test_ids)].notna().all() and scored.drop(index=list(test_ids)).isna().all()
    assert store.active_scan()["params"]["split"] == "test"
    with pytest.raises(DataError, match=r"no items of split 'dev' in the store .*; its splits are \['test', 'train'\]"):
        scan(store, split="dev", progress=False, cache_dir=tmp_path / "cache")
    # a table whose rows name no split is all training data
    table = load_dataset(frame.drop(columns="split").head(120), id_column="id")
    assert len(scan(table, split="train", progress=False, cache_dir=tmp_path / "cache").items) == 120
    with pytest.raises(DataError, match="its items carry no split, so all of them are train"):
        scan(table, split="test", progress=False, cache_dir=tmp_path / "cache")
    store.close()
    assert main(["scan", str(tmp_path / "labels.db"), "--split", "train", "--no-progress", "--top", "0"]) == 0
    assert f"items {len(frame) - len(test_ids)} (labelled" in capsys.readouterr().out
