"""NER data as character-offset spans (Doccano, spaCy, Prodigy, Label Studio): read into tokens and IOB2 tags,
corrected in the store, written back as spans at the same offsets."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest

from workbench import LabelStore, load_dataset
from workbench.cli import main
from workbench.errors import ValueProblem
from workbench.spans import read_spans, spans_to_tokens, split_words, tokens_to_spans

TEXT = "Ana Lopez flew to Paris-based iPhone15 maker, in the U.S. today."


def test_spans_become_tokens_and_iob2_tags():
    spans = read_spans([[0, 9, "PER"], [18, 23, "LOC"], [30, 36, "PROD"], [53, 58, "LOC"]], where="row 0")
    tokens, tags, starts = spans_to_tokens(TEXT, spans, where="row 0")
    tagged = dict(zip(tokens, tags))
    assert tokens[:7] == ["Ana", "Lopez", "flew", "to", "Paris", "-", "based"]  # words and punctuation apart
    assert tags[:5] == ["B-PER", "I-PER", "O", "O", "B-LOC"]
    assert tagged["iPhone"] == "B-PROD" and tagged["15"] == "O"  # a span edge inside a word cuts it there
    assert [(t, g) for t, g in zip(tokens, tags) if g.endswith("LOC")][1:] == [
        ("U", "B-LOC"), (".", "I-LOC"), ("S", "I-LOC"), (".", "I-LOC")]  # the span's trailing space left out
    assert all(TEXT[s:s + len(t)] == t for s, t in zip(starts, tokens))
    assert split_words("Paris-based iPhone15 maker.") == ["Paris", "-", "based", "iPhone15", "maker", "."]
    text, back = tokens_to_spans(tokens, tags, text=TEXT, starts=starts)
    assert text == TEXT
    assert [(s["start"], s["end"], s["label"], s["text"]) for s in back] == [
        (0, 9, "PER", "Ana Lopez"), (18, 23, "LOC", "Paris"), (30, 36, "PROD", "iPhone"), (53, 57, "LOC", "U.S.")]


def test_every_span_layout_tools_write_is_read():
    layouts = [
        [[0, 3, "PER"]],  # Doccano's classic export
        [{"start": 0, "end": 3, "label": "PER"}],  # spaCy / Prodigy
        [{"start_offset": 0, "end_offset": 3, "label": "PER", "id": 7}],  # Doccano
        [{"start": 0, "end": 3, "labels": ["PER"]}],  # Label Studio's value
        [{"start_char": 0, "end_char": 3, "entity_group": "PER"}],  # a transformers pipeline
        [{"start": 0.0, "end": 3.0, "label": "PER", "start_offset": float("nan")}],  # a Parquet struct with gaps
    ]
    for layout in layouts:
        assert read_spans(layout, where="row 0") == [(0, 3, "PER")], layout


@pytest.mark.parametrize(("spans", "says"), [
    ([[0, 99, "PER"]], "lies outside the text, which has 64 characters"),
    ([[0, 9, "PER"], [4, 12, "LOC"]], "'Ana Lopez' (0-9, PER) and 'Lopez fl' (4-12, LOC) overlap"),
    ([[3, 4, "PER"]], "covers only whitespace"),
    ([[0, 3, ""]], "has no label"),
    ([[0, 3]], "give [start, end, label]"),
    ([["a", 3, "PER"]], "whole-number start and end offsets"),
    ([{"start": 0.5, "end": 3, "label": "PER"}], "whole-number start and end offsets"),
])
def test_bad_spans_are_named(spans, says):
    with pytest.raises(ValueProblem, match="row 4") as info:
        spans_to_tokens(TEXT, read_spans(spans, where="row 4"), where="row 4")
    assert says in str(info.value)


def test_random_spans_come_back_at_their_offsets():
    rng = random.Random(0)
    words = ["Ana", "flew", "to", "New", "York's", "U.N.", "office", "(again)", "--", "3pm", "café", "naïve"]
    for _ in range(200):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 12)))
        spans, pos = [], 0
        while pos < len(text) - 1:
            start = rng.randint(pos, len(text) - 1)
            end = rng.randint(start + 1, min(len(text), start + 12))
            if text[start:end].strip():
                spans.append((start, end, rng.choice(["PER", "LOC"])))
            pos = end + 1
        tokens, tags, starts = spans_to_tokens(text, spans, where="row 0")
        _, back = tokens_to_spans(tokens, tags, text=text, starts=starts)
        trimmed = [(s + len(text[s:e]) - len(text[s:e].lstrip()), e - len(text[s:e]) + len(text[s:e].rstrip()), k)
                   for s, e, k in spans]
        assert [(b["start"], b["end"], b["label"]) for b in back] == trimmed, (text, spans)


def test_a_span_file_is_corrected_and_written_back_as_spans(tmp_path: Path, capsys):
    rows = [
        {"id": 1, "text": "Ana Lopez flew to Paris on Monday.", "label": [[0, 9, "PER"], [18, 23, "LOC"]],
         "source": "web"},
        {"id": 2, "text": "Apple hired Bob.", "label": [[0, 5, "ORG"], [12, 15, "PER"]], "source": "app"},
        {"id": 3, "text": "Nothing  to see here.", "label": [], "source": "web"},
    ]
    source = tmp_path / "doccano.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = load_dataset(source, id_column="id")
    assert table.attrs["workbench"]["task"] == "token-classification"
    assert table["tags"].tolist()[1] == ["B-ORG", "O", "B-PER", "O"] and table["source"].tolist()[0] == "web"
    db = tmp_path / "ner.db"
    with LabelStore.open(db) as store:
        store.import_dataset(table)
        store.set_label("2", ["B-ORG", "O", "O", "O"], author="ana")  # Bob was never a person
    out = tmp_path / "clean.jsonl"
    assert main(["export", str(db), str(out), "--format", "spans", "--keep-original"]) == 0
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [w["text"] for w in written] == [r["text"] for r in rows]  # the texts as given, spacing and all
    assert [[(s["start"], s["end"], s["label"]) for s in w["spans"]] for w in written] == [
        [(0, 9, "PER"), (18, 23, "LOC")], [(0, 5, "ORG")], []]
    assert [(s["start"], s["end"]) for s in written[1]["original_spans"]] == [(0, 5), (12, 15)]
    assert written[0]["source"] == "web" and "token_starts" not in written[0] and "tags" not in written[0]
    # read back (as another tool would hand the file back): the same items, ids and tags
    again = load_dataset(out)
    assert again["item_id"].tolist() == ["1", "2", "3"]
    assert again["tags"].tolist() == [table["tags"][0], ["B-ORG", "O", "O", "O"], table["tags"][2]]


def test_tokens_from_a_tokens_store_survive_a_trip_through_spans(tmp_path: Path, shared_data: Path):
    """CoNLL tokens such as 'U.S.' are kept: the span export carries them and the import reads them back."""
    frame = pd.read_parquet(shared_data / "conll2003" / "test.parquet").head(200)
    table = load_dataset(frame[["tokens", "tags"]], task="token-classification")
    with LabelStore.open(tmp_path / "c.db") as store:
        store.import_dataset(table)
        store.export(tmp_path / "c.jsonl", format="spans", with_log=False)
    back = load_dataset(tmp_path / "c.jsonl")
    assert back["item_id"].tolist() == table["item_id"].tolist()
    assert [list(t) for t in back["tokens"]] == [list(t) for t in table["tokens"]]
    assert [list(t) for t in back["tags"]] == [list(t) for t in table["tags"]]
    first = json.loads((tmp_path / "c.jsonl").read_text().splitlines()[0])
    assert first["text"] == " ".join(first["tokens"])  # no text was kept: the tokens joined by spaces
    assert all(first["text"][s["start"]:s["end"]] == s["text"] for s in first["spans"])
    # tokens that do not spell the text are refused, naming the row
    broken = dict(first, tokens=["nowhere", *first["tokens"][1:]])
    (tmp_path / "broken.jsonl").write_text(json.dumps(broken) + "\n")
    with pytest.raises(ValueProblem, match=r"object 1.*token 0 \('nowhere'\) is not next in the text"):
        load_dataset(tmp_path / "broken.jsonl")


def test_spans_read_from_csv_and_parquet_and_plain_texts_to_tag(tmp_path: Path):
    per, loc = {"start": 0, "end": 3, "label": "PER"}, {"start": 0, "end": 5, "label": "LOC"}
    frame = pd.DataFrame({"Text": ["Ana met Bob.", "Paris is big."],
                          "entities": [[per, {"start": 8, "end": 11, "label": "PER"}], [loc]]})
    frame.to_parquet(tmp_path / "e.parquet")
    frame.assign(entities=frame["entities"].map(json.dumps)).to_csv(tmp_path / "e.csv", index=False)
    for name in ("e.parquet", "e.csv"):
        table = load_dataset(tmp_path / name)
        assert table["tags"].tolist() == [["B-PER", "O", "B-PER", "O"], ["B-LOC", "O", "O", "O"]], name
        assert table["source_text"].tolist() == ["Ana met Bob.", "Paris is big."]
    # texts alone, as a tagger's input: cut into tokens, untagged
    frame[["Text"]].to_csv(tmp_path / "t.csv", index=False)
    pool = load_dataset(tmp_path / "t.csv", task="token-classification", allow_missing_labels=True,
                        labels=["PER", "LOC"])
    assert pool["tokens"].tolist() == [["Ana", "met", "Bob", "."], ["Paris", "is", "big", "."]]
    assert pool["tags"].tolist() == [None, None]
    with pytest.raises(ValueProblem, match=r"line 3, column 'entities': spans 'Paris' .* overlap"):
        (tmp_path / "o.csv").write_text('text,entities\nAna.,"[[0, 3, ""PER""]]"\nParis.,"[[0, 5, ""LOC""], '
                                        '[2, 4, ""PER""]]"\n')
        load_dataset(tmp_path / "o.csv")


def test_a_span_row_with_an_empty_text_is_named_or_left_out(tmp_path: Path):
    """drop_empty_texts=True leaves such rows out, as it does for text classification; later errors still name the
    file's own lines."""
    path = tmp_path / "gaps.csv"
    path.write_text('text,entities\n"Ana met Bob.","[[0, 3, ""PER""]]"\n,[]\n"Paris.","[[0, 5, ""LOC""]]"\n')
    with pytest.raises(ValueProblem, match=r"line 3, column 'text': the text is empty; .*drop_empty_texts=True"):
        load_dataset(path)
    table = load_dataset(path, drop_empty_texts=True)
    assert table["tokens"].tolist() == [["Ana", "met", "Bob", "."], ["Paris", "."]]
    assert table["source_text"].tolist() == ["Ana met Bob.", "Paris."]
    assert table.attrs["workbench"]["n_dropped_empty"] == 1
    with pytest.raises(ValueProblem, match=r"line 4, token 0: tag 'B-LOC' is not in labels"):
        load_dataset(path, drop_empty_texts=True, labels=["PER"])
