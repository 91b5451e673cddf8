"""Metrics equal scikit-learn and seqeval; confusion cells hold every item; comparison finds a planted regression."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import classification_report

from workbench import metrics as M
from workbench.bio import decode_tags, entity_types, find_bio_error
from workbench.cli import main
from workbench.errors import DataError


@pytest.mark.parametrize("seed", range(5))
def test_per_class_equals_sklearn_including_empty_classes(seed):
    rng = np.random.default_rng(seed)
    labels = [f"c{i}" for i in range(7)]
    y_true = rng.choice(labels[:5], 300)  # c5, c6 have zero support
    y_pred = rng.choice(labels[:4] + ["c6"], 300)  # c4, c5 are never predicted
    ours = M.per_class_metrics(y_true, y_pred, labels=labels)
    ref = classification_report(y_true, y_pred, labels=labels, output_dict=True, zero_division=0)
    if "micro avg" not in ref:  # sklearn prints micro avg as "accuracy" when the labels cover every value
        ref["micro avg"] = {k: ref["accuracy"] for k in ("precision", "recall", "f1-score")}
        ref["micro avg"]["support"] = ref["macro avg"]["support"]
    for name in [*labels, "micro avg", "macro avg", "weighted avg"]:
        for metric, key in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert ours.loc[name, metric] == pytest.approx(ref[name][key], abs=1e-12), (name, metric)
        assert ours.loc[name, "support"] == ref[name]["support"]


def test_bootstrap_intervals_bracket_the_estimate_and_are_seeded():
    rng = np.random.default_rng(0)
    labels = ["a", "b", "c"]
    y_true = rng.choice(labels, 500)
    y_pred = np.where(rng.random(500) < 0.8, y_true, rng.choice(labels, 500))
    ci = M.bootstrap_intervals(y_true, y_pred, labels=labels, n_resamples=300, seed=1)
    point = M.per_class_metrics(y_true, y_pred, labels=labels)
    for c in labels:
        assert ci.loc[c, "f1_low"] <= point.loc[c, "f1"] <= ci.loc[c, "f1_high"]
        assert 0 < ci.loc[c, "f1_high"] - ci.loc[c, "f1_low"] < 0.2
    assert ci.equals(M.bootstrap_intervals(y_true, y_pred, labels=labels, n_resamples=300, seed=1))


def test_entity_metrics_equal_seqeval_and_token_report_prints():
    from seqeval.metrics import classification_report as seqeval_report
    from seqeval.scheme import IOB2

    true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-MISC", "I-MISC"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "B-MISC", "O"]]
    ours = M.entity_metrics(true, pred)
    ref = seqeval_report(true, pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    for name, row in ref.items():
        assert ours.loc[name, "f1"] == pytest.approx(row["f1-score"])
        assert ours.loc[name, "support"] == row["support"]
    tokens = M.token_metrics(true, pred)
    assert tokens.index.tolist()[-4:] == ["O", "micro avg", "macro avg", "weighted avg"]
    assert tokens.loc["O", "support"] == 2


def test_conll_report_layout(shared_data):
    """The classic CoNLL tables: CoNLL-2003 test tags scored against the CoNLL++ corrections."""
    frame = pd.read_parquet(shared_data / "conll2003" / "test.parquet")
    tables = {"token": M.token_metrics(frame["tags_conllpp"], frame["tags"]),
              "entity": M.entity_metrics(frame["tags_conllpp"], frame["tags"])}
    assert {"B-LOC", "I-PER", "O", "micro avg", "macro avg", "weighted avg"} <= set(tables["token"].index)
    assert {"LOC", "MISC", "ORG", "PER"} <= set(tables["entity"].index)
    assert 0.95 < tables["entity"].loc["micro avg", "f1"] < 1  # 186 of 3,453 sentences differ
    print(tables["token"].round(4).to_string(), tables["entity"].round(4).to_string(), sep="\n\n")


def test_confusion_cells_hold_every_item_once():
    rng = np.random.default_rng(0)
    labels = list("abcd")
    t, p = rng.choice(labels, 200), rng.choice(labels, 200)
    ids = [f"i{k}" for k in range(200)]
    conf = M.confusion(t, p, labels=labels, item_ids=ids)
    assert conf.counts.to_numpy().sum() == 200
    assert sorted(i for cell in conf.cells.values() for i in cell) == sorted(ids)
    for (a, b), cell in conf.cells.items():
        assert conf.counts.loc[a, b] == len(cell)
    assert np.allclose(conf.normalized.sum(axis=1), 1)
    top = conf.top_confused(3)
    assert len(top) == 3 and (top["true"] != top["predicted"]).all()
    assert top["count"].is_monotonic_decreasing


def make_run(folder: Path, name: str, y_true, y_pred, labels, *, original=None) -> Path:
    run = folder / name
    (run / "predictions").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"task": "text-classification", "model": "test"}))
    (run / "status.json").write_text(json.dumps({"state": "finished"}))
    (run / "labels.json").write_text(json.dumps(list(labels)))
    frame = pd.DataFrame({"item_id": [f"i{k}" for k in range(len(y_true))], "label": y_true, "pred": y_pred})
    if original is not None:
        frame["original_label"] = original
    for c in labels:
        frame[f"prob_{c}"] = (frame["pred"] == c).astype(float)
    frame.to_parquet(run / "predictions" / "test.parquet")
    return run


@pytest.fixture
def two_runs(tmp_path):
    rng = np.random.default_rng(0)
    labels = ["a", "b", "c", "d"]
    y = rng.choice(labels, 2000)
    base = np.where(rng.random(2000) < 0.85, y, rng.choice(labels, 2000))
    new = base.copy()
    hurt = (y == "c") & (rng.random(2000) < 0.5)  # planted: half of class c now predicted wrong
    new[hurt] = "a"
    return make_run(tmp_path, "base", y, base, labels), make_run(tmp_path, "new", y, new, labels)


def test_compare_runs_finds_exactly_the_planted_regression(two_runs):
    # recall isolates the planted change (class c's items now predicted wrong) ...
    comp = M.compare_runs(*two_runs, metric="recall", n_resamples=300)
    assert comp.same_items and comp.n_items == 2000
    assert comp.regressed == ["c"] and comp.improved == []
    assert comp.table.loc["c", "delta"] < -0.3
    # ... F1 also sees the precision that class a lost by absorbing them
    f1 = M.compare_runs(*two_runs, n_resamples=300)
    assert f1.table["delta"].idxmin() == "c" and set(f1.regressed) == {"a", "c"}
    assert comp.table.loc["c", "delta_low"] <= comp.table.loc["c", "delta"] <= comp.table.loc["c", "delta_high"]


def test_compare_runs_refuses_different_items_and_labels(tmp_path):
    a = make_run(tmp_path, "a", ["x", "y", "x"], ["x", "y", "y"], ["x", "y"])
    b = make_run(tmp_path, "b", ["x", "y"], ["x", "y"], ["x", "y"])
    with pytest.raises(DataError, match="different items"):
        M.compare_runs(a, b)
    comp = M.compare_runs(a, b, allow_different_items=True, n_resamples=50)
    assert comp.n_items == 2 and "shared items" in comp.notes[0]
    c = make_run(tmp_path, "c", ["x", "z", "x"], ["x", "z", "x"], ["x", "z"])
    with pytest.raises(DataError, match="different label sets"):
        M.compare_runs(a, c)


def test_corrected_and_original_gold(tmp_path):
    labels = ["a", "b"]
    original = ["a", "a", "b", "b"]
    corrected = ["a", "b", "b", "b"]
    before = make_run(tmp_path, "before", original, ["a", "a", "b", "b"], labels, original=original)
    after = make_run(tmp_path, "after", corrected, ["a", "b", "b", "b"], labels, original=original)
    on_corrected = M.compare_runs(before, after, n_resamples=50)
    assert "corrections" in on_corrected.notes[0] and "run after" in on_corrected.gold
    on_original = M.compare_runs(before, after, gold="original", n_resamples=50)
    assert "original" in on_original.gold
    assert on_original.table["f1_a"].mean() > on_original.table["f1_b"].mean()
    assert on_corrected.table["f1_b"].mean() > on_corrected.table["f1_a"].mean()
    with pytest.raises(DataError, match="different labels"):
        M.compare_runs(before, after, gold="own")


def test_check_regression_cli_exit_codes(two_runs, capsys):
    base, new = two_runs
    assert main(["check-regression", str(base), str(base), "--resamples", "100"]) == 0
    assert main(["check-regression", str(base), str(new), "--resamples", "100"]) == 1
    out = capsys.readouterr().out
    assert "regressed" in out and "c" in out
    # scores unsigned, differences and their interval signed, whatever their size
    row = next(line.split() for line in out.splitlines() if line.startswith("c "))
    assert all(re.fullmatch(r"\d\.\d{3}", v) for v in row[1:3]), row
    assert all(re.fullmatch(r"[+-]\d\.\d{3}", v) for v in row[3:6]), row
    assert main(["check-regression", str(base), str(new), "--classes", "b", "d", "--resamples", "100"]) == 0
    assert main(["check-regression", str(base), str(new), "--classes", "zzz"]) == 2
    assert "zzz" in capsys.readouterr().err
    assert main(["check-regression", str(base), str(new), "--max-drop", "1"]) == 2  # 1 point meant: nothing regresses
    assert "--max-drop 1: give the largest drop allowed as a share between 0 and 1 (0.01 for one point)" in \
        capsys.readouterr().err


def test_empty_predictions_are_an_error():
    with pytest.raises(DataError, match="empty"):
        M.per_class_metrics([], [], labels=["a"])


def test_the_run_table_says_how_far_each_run_got(tmp_path: Path):
    """A running run's share of its steps (from its last logged step), a finished one's 100%, nothing before a step."""
    from workbench.runs import list_runs

    def write_run(name: str, status: dict, steps: list[int]) -> None:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"task": "text-classification"}))
        (folder / "status.json").write_text(json.dumps(status))
        (folder / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 0.5}) + "\n" for s in steps))

    write_run("a", {"state": "running", "started": 1.0, "total_steps": 1000}, [10, 390])
    write_run("b", {"state": "finished", "started": 2.0, "total_steps": 1000}, [10, 600])  # stopped early
    write_run("c", {"state": "queued", "created": 3.0}, [])
    write_run("d", {"state": "failed", "started": 4.0, "total_steps": 200}, [10, 50])
    table = list_runs(tmp_path)
    assert table["run_id"].tolist() == ["a", "b", "c", "d"]
    assert table["progress"].tolist()[:2] == [0.39, 1.0] and np.isnan(table["progress"][2])
    assert table["progress"][3] == 0.25  # where the failed run stopped


def test_the_run_table_people_read_shows_local_start_times(monkeypatch):
    import time

    from workbench.runs import readable_runs

    # a zone far from UTC, so a table printed in UTC (what the panel showed before) cannot pass
    monkeypatch.setenv("TZ", "Asia/Kathmandu")
    time.tzset()
    try:
        raw = pd.DataFrame({"run_id": ["a", "b"], "started": [1_764_482_400.0, float("nan")],
                            "state": ["finished", "failed"],
                            "model": ["/models/my-encoder", None], "snapshot": ["0123456789abcdef", None],
                            "message": [None, "out of memory"], "progress": [1.0, 0.394]})
        shown = readable_runs(raw)
        assert shown["started"].tolist() == ["2025-11-30 11:45", ""]  # 06:00 UTC is 11:45 in Kathmandu
        assert shown["model"].tolist() == ["my-encoder", "all-MiniLM-L6-v2"]
        assert shown["snapshot"].tolist() == ["0123456789ab", ""] and shown["message"].tolist() == ["", "out of memory"]
        assert shown["progress"].tolist() == ["100%", "39%"]
        # a running run: the time left at its pace so far
        now = time.time()
        running = pd.DataFrame({"run_id": ["c", "d"], "state": ["running", "running"], "progress": [0.25, 0.5],
                                "started": [now - 600, now - 20]})
        assert readable_runs(running)["progress"].tolist() == ["25%, ~30 min left", "50%, ~20 s left"]
        assert raw["started"][0] == 1_764_482_400.0  # the raw table is left as code reads it
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def _random_tags(rng, n_sentences: int, types=("PER", "LOC", "ORG")) -> list[list[str]]:
    """Tag sequences with invalid IOB2 too (I- after O, I- of another type), as a weak tagger predicts them."""
    vocab = ["O", "O", "O", *(f"{p}-{t}" for t in types for p in "BI")]
    return [list(rng.choice(vocab, rng.integers(1, 12))) for _ in range(n_sentences)]


def test_entity_counts_match_seqeval_strict_on_invalid_sequences_too():
    rng = np.random.default_rng(3)
    gold = _random_tags(rng, 300)
    pred = [list(np.where(rng.random(len(g)) < 0.7, g, rng.choice(["O", "B-PER", "I-PER", "I-LOC"], len(g))))
            for g in gold]
    names = sorted(entity_types(["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]))
    whole, _, support = M._entity_scores(gold, pred, names, np.zeros((0, len(gold)), dtype=np.int64))
    reference = M.entity_metrics(gold, pred)
    for metric in M.METRICS:
        assert np.allclose(whole[metric], reference.loc[names, metric].astype(float).to_numpy()), metric
    assert support.tolist() == reference.loc[names, "support"].tolist()
    assert M.strict_entities(["I-PER", "B-PER", "I-PER", "I-LOC", "B-LOC"]) == {("PER", 1, 3), ("LOC", 4, 5)}


def make_tagger_run(folder: Path, name: str, gold, pred, *, original=None) -> Path:
    run = folder / name
    (run / "predictions").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"task": "token-classification", "model": "test"}))
    (run / "status.json").write_text(json.dumps({"state": "finished"}))
    (run / "labels.json").write_text(json.dumps(["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]))
    frame = pd.DataFrame({"item_id": [f"s{k}" for k in range(len(gold))], "tags": gold, "pred_tags": pred})
    if original is not None:
        frame["original_tags"] = original
    frame.to_parquet(run / "predictions" / "test.parquet")
    return run


def test_tagger_runs_are_compared_entity_type_by_type(tmp_path, capsys):
    rng = np.random.default_rng(1)
    gold = [["B-PER", "I-PER", "O", "B-LOC"] if k % 2 else ["O", "B-LOC", "I-LOC", "O"] for k in range(400)]
    base = [list(g) for g in gold]
    for g in base[::10]:  # the base tagger misses one sentence in ten
        g[:] = ["O"] * len(g)
    new = [list(g) for g in base]
    for k in range(1, 400, 2):  # planted: the new tagger loses half of the PER entities
        if rng.random() < 0.5:
            new[k][:2] = ["O", "O"]
    a, b = make_tagger_run(tmp_path, "base", gold, base), make_tagger_run(tmp_path, "new", gold, new)
    comp = M.compare_runs(a, b, n_resamples=300)
    assert comp.table.index.name == "entity" and comp.table.index.tolist() == ["LOC", "PER"]
    assert comp.regressed == ["PER"] and comp.improved == []
    reference = M.entity_metrics(gold, new)
    assert np.isclose(comp.table.loc["PER", "f1_b"], float(reference.loc["PER", "f1"]))
    assert comp.table.loc["PER", "support"] == 200 and comp.table.loc["LOC", "support"] == 400
    # the gate from the shell names entities; corrected tags between the runs are a note, scored against run b's
    assert main(["check-regression", str(a), str(b), "--resamples", "200"]) == 1
    out = capsys.readouterr().out
    assert "f1 per entity, new vs base" in out and "regressed beyond 0.01 and beyond noise: PER" in out
    # the HTML report compares them the same way: scores unsigned, differences signed
    from workbench.run_report import write_report

    page = Path(write_report(b, tmp_path / "report.html", compare_to=a, n_resamples=50)["html"]).read_text()
    assert "Compared with base" in page and "<td>PER</td>" in page and "<td>-0." in page
    assert re.search(r"<td>0\.9\d{3}</td>", page) and not re.search(r"<td>\+0\.9\d{3}</td>", page)  # LOC's F1
    fixed = [list(g) for g in gold]
    fixed[0] = ["O", "O", "O", "O"]
    c = make_tagger_run(tmp_path, "fixed", fixed, base, original=gold)
    comp = M.compare_runs(a, c, n_resamples=50)
    assert "1 evaluation items carry different labels" in comp.notes[0]
    assert M.compare_runs(a, c, gold="original", n_resamples=50).gold == "the original labels (before corrections)"
    text = make_run(tmp_path, "text", ["a"], ["a"], ["a", "b"])
    with pytest.raises(DataError, match="is token-classification and run text is text-classification"):
        M.compare_runs(a, text)


@pytest.mark.parametrize("seed", range(20))
def test_decoded_tags_are_the_most_probable_valid_sequence(seed):
    # brute force over every tag sequence of a short sentence: the decoder returns the valid one of highest
    # probability, and the per-word argmax itself when that is valid
    rng = np.random.default_rng(seed)
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    n = int(rng.integers(1, 5))
    probs = rng.dirichlet(np.full(len(labels), 0.3), size=n)
    valid = [seq for seq in itertools.product(range(len(labels)), repeat=n)
             if find_bio_error([labels[k] for k in seq]) is None]
    best = max(valid, key=lambda seq: float(np.prod(probs[np.arange(n), list(seq)])))
    decoded = decode_tags(probs, labels)
    assert decoded == [labels[k] for k in best]
    argmax = [labels[k] for k in probs.argmax(1)]
    if find_bio_error(argmax) is None:
        assert decoded == argmax


def test_decoding_mends_a_stray_inside_tag_by_the_probabilities():
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    # "in New York": the argmax says O I-LOC I-LOC; the entity is kept, as B-LOC I-LOC
    assert decode_tags(np.array([[.9, 0, 0, .05, .05], [.3, 0, 0, .2, .5], [.2, 0, 0, .1, .7]]), labels) == [
        "O", "B-LOC", "I-LOC"]
    # a weak stray I-PER after O goes, where keeping it as B-PER costs more than dropping it
    assert decode_tags(np.array([[.9, .02, .02, .03, .03], [.40, .01, .59, 0, 0]]), labels) == ["O", "O"]
    assert decode_tags(np.zeros((0, 5)), labels) == []
