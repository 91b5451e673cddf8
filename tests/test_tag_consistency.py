"""Tag consistency: spans read unlike the same words elsewhere, the model-free NER scan, and its CLI."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from workbench import LabelStore, load_dataset
from workbench.cli import main
from workbench.errors import DataError
from workbench.sample import make_ner_sample
from workbench.tag_consistency import SPAN_COLUMNS, apply_readings, inconsistent_spans
from workbench.token_scan import check_tag_consistency


def _corpus() -> tuple[list[list[str]], list[list[str]]]:
    """Paris: a place 9 times, a person once. May: untagged 9 times, a person once. Ada: a person 4 times, untagged
    once. New York Times: an organisation 5 times (its "York" is not a reading of "York"); York: a place once."""
    tokens, tags = [], []
    for k in range(10):
        tokens.append(["I", "saw", "Paris", "in", "May"])
        tags.append(["O", "O", "B-PER" if k == 3 else "B-LOC", "O", "B-PER" if k == 7 else "O"])
    for k in range(5):
        tokens.append(["Ada", "reads", "the", "New", "York", "Times"])
        tags.append(["O" if k == 2 else "B-PER", "O", "O", "B-ORG", "I-ORG", "I-ORG"])
    tokens.append(["York", "is", "old"])
    tags.append(["B-LOC", "O", "O"])
    return tokens, tags


def test_a_rare_reading_of_the_same_words_is_flagged_with_the_usual_one_suggested():
    tokens, tags = _corpus()
    found = inconsistent_spans(tokens, tags, item_ids=[f"s{k}" for k in range(len(tokens))])
    assert list(found.columns) == SPAN_COLUMNS
    got = {(r.item_id, r.surface, r.given, r.suggested) for r in found.itertuples()}
    assert got == {("s3", "Paris", "PER", "LOC"), ("s7", "May", "PER", "O"), ("s12", "Ada", "O", "PER")}
    paris = found[found["surface"] == "Paris"].iloc[0]
    assert (paris["start"], paris["end"], paris["occurrences"]) == (2, 3, 10)
    assert paris["given_share"] == pytest.approx(0.1) and paris["suggested_share"] == pytest.approx(0.9)
    assert found["given_share"].is_monotonic_increasing  # rarest reading first
    # "York" inside "New York Times" is the organisation's, not an untagged "York" (read so, the one place would be
    # a 1-in-6 minority)
    assert "York" not in set(found["surface"])


def test_thresholds_the_evidence_mask_and_untagged_sentences():
    tokens, tags = _corpus()
    assert set(inconsistent_spans(tokens, tags, max_share=0.15)["surface"]) == {"Paris", "May"}  # Ada's O is 1/5
    assert inconsistent_spans(tokens, tags, min_count=11).empty  # no surface is seen 11 times
    only_later = [k >= 10 for k in range(len(tokens))]  # the Paris/May sentences are evidence, not flagged
    assert set(inconsistent_spans(tokens, tags, flag=only_later)["surface"]) == {"Ada"}
    untagged = [None if k == 3 else t for k, t in enumerate(tags)]  # the PER reading of Paris not yet tagged
    assert "Paris" not in set(inconsistent_spans(tokens, untagged)["surface"])
    order = list(range(len(tokens)))[::-1]  # the order of the sentences changes nothing
    again = inconsistent_spans([tokens[k] for k in order], [tags[k] for k in order], item_ids=[str(k) for k in order])
    assert set(zip(again["item_id"], again["surface"])) == set(zip(
        inconsistent_spans(tokens, tags)["item_id"], inconsistent_spans(tokens, tags)["surface"]))


@pytest.mark.parametrize("change, message", [
    (dict(tags=[["O"]]), "1 tag lists"),
    (dict(max_share=0.5), "max_share=0.5"),
    (dict(min_count=1), "min_count=1"),
])
def test_bad_arguments_are_refused(change, message):
    tokens, tags = _corpus()
    args = {"tokens": tokens, "tags": tags, **change}
    with pytest.raises(DataError, match=message):
        inconsistent_spans(args.pop("tokens"), args.pop("tags"), **args)


def test_apply_readings_retags_spans_and_keeps_iob2_valid():
    found = pd.DataFrame({"start": [0, 3], "end": [1, 5], "suggested": ["PER", "O"]})
    assert apply_readings(["O", "O", "O", "B-ORG", "I-ORG", "I-ORG"], found) == ["B-PER", "O", "O", "O", "O", "B-ORG"]
    longer_wins = pd.DataFrame({"start": [0, 1], "end": [2, 2], "suggested": ["LOC", "PER"]})
    assert apply_readings(["O", "O"], longer_wins) == ["B-LOC", "I-LOC"]


def test_the_model_free_scan_finds_the_demo_data_s_planted_errors_and_writes_them(tmp_path: Path):
    sample = make_ner_sample(seed=0)
    with LabelStore.open(tmp_path / "ner.db") as store:
        store.import_dataset(load_dataset(sample, task="token-classification", id_column="id"))
        result = check_tag_consistency(store)
        assert check_tag_consistency(str(tmp_path / "ner.db"), write=False).sentences.equals(result.sentences)
        flagged = result.sentences[result.sentences["issues"].map(bool)]
        planted = set(sample.loc[sample["has_error"], "id"])
        # measured: 20 of the 24 planted errors, and nothing else
        assert len(set(flagged["item_id"]) & planted) >= 0.75 * len(planted)
        assert set(flagged["item_id"]) <= planted
        assert result.sentences["score"].is_monotonic_increasing and (result.sentences["score"] <= 1).all()
        truth = sample.set_index("id")["true_tags"]
        fixed = sum(list(s) == list(truth[i]) for i, s in zip(flagged["item_id"], flagged["suggested_label"]))
        assert fixed >= 0.75 * len(flagged)  # the suggestion is the right tagging for most
        assert store.count({"issue": "inconsistent_tag"}) == len(flagged)
        assert store.active_scan()["model"] == "tag consistency" and result.runs == []
        worst = result.tokens.iloc[0]
        assert worst["given_tag"] != worst["suggested_tag"] and worst["item_id"] in set(flagged["item_id"])
        # why, in the store and the sentence view: the words, their reading here and their usual one
        top = result.inconsistent.iloc[0]
        why = store.get(top["item_id"])["issue_details"]
        assert why.startswith("inconsistent_tag: ") and f"{top['surface']!r} {top['given']} here, {top['suggested']}" \
            in why
        from workbench.sentence_review import SentenceSession

        view = SentenceSession(store, filters={"item_ids": [top["item_id"]]}).view()
        assert view["why"].startswith("inconsistent_tag: ")


def test_workbench_scan_quick_on_sentences(tmp_path: Path, capsys):
    sample = make_ner_sample(seed=0)
    data = tmp_path / "ner.jsonl"
    sample[["id", "tokens", "tags"]].to_json(data, orient="records", lines=True)
    assert main(["scan", str(data), "--mode", "quick", "--id-column", "id", "--top", "3",
                 "--items", str(tmp_path / "s.csv")]) == 0
    out = capsys.readouterr().out
    assert "each tagged span against the same words elsewhere (no model)" in out
    assert "span(s) tagged unlike the same words elsewhere" in out and "sent-0199" in out
    assert len(pd.read_csv(tmp_path / "s.csv")) == len(sample)
    assert main(["scan", str(data), "--mode", "quick", "--folds", "3"]) == 2
    assert "--mode quick on token-classification data compares" in capsys.readouterr().err
    assert main(["scan", str(data), "--mode", "quick", "--html", str(tmp_path / "r.html")]) == 2
    assert "--html writes a text-classification scan's report" in capsys.readouterr().err
    clean = sample[~sample["has_error"]]
    clean[["id", "tokens", "tags"]].to_json(tmp_path / "clean.jsonl", orient="records", lines=True)
    assert main(["scan", str(tmp_path / "clean.jsonl"), "--mode", "quick", "--id-column", "id"]) == 0
    out = capsys.readouterr().out
    assert "no sentence has a suspect tag" in out and "0 span(s) tagged unlike" in out and "Empty DataFrame" not in out


def test_fold_taggers_on_a_store_without_a_train_split_name_the_splits_it_has(tmp_path: Path, capsys):
    """A dev file imported on its own (`--split validation`): the fold scan's default split (train) is empty, and the
    refusal says which splits there are and how to pick one, not only "0 sentences"."""
    from workbench.token_scan import scan_tokens

    db = tmp_path / "dev.db"
    table = load_dataset(make_ner_sample(n_sentences=30), task="token-classification", split="validation")
    with LabelStore.open(db) as store:
        store.import_dataset(table)
        with pytest.raises(DataError, match=r"only 0 sentences in split 'train'; need at least 2; .* has the "
                                            r"split\(s\) \['validation'\]: scan one of them with split=NAME"):
            scan_tokens(store, folds=2, runs_dir=tmp_path / "runs")
    assert main(["scan", str(db), "--no-progress"]) == 2
    assert "(workbench scan --split NAME)" in capsys.readouterr().err
