"""The embedded demo data is deterministic, valid, and carries the planted errors it promises."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench import load_dataset
from workbench.bio import find_bio_error
from workbench.sample import INTENTS, make_classification_sample, make_ner_sample, write_samples


def test_classification_sample_is_deterministic_and_noisy_as_promised():
    a = make_classification_sample(seed=0)
    b = make_classification_sample(seed=0)
    assert a.equals(b)
    assert not a.equals(make_classification_sample(seed=1))
    assert len(a) == 3000 and set(a["label"]) == set(INTENTS)
    train = a[a["split"] == "train"]
    noise = (train["label"] != train["true_label"]).mean()
    assert 0.05 <= noise <= 0.07
    assert (a["is_noisy"] == (a["label"] != a["true_label"])).all()
    test = a[a["split"] == "test"]
    assert (test["label"] == test["true_label"]).all() and 0.15 < len(test) / len(a) < 0.25
    # most noise is systematic: the two confusable pairs carry it
    flips = train[train["is_noisy"]].groupby(["true_label", "label"]).size()
    assert flips.loc[("change_address", "delivery_status")] > 40
    assert flips.loc[("invoice_request", "payment_failed")] > 25
    counts = a["true_label"].value_counts()
    assert counts.max() / counts.min() > 2.5  # imbalanced on purpose
    assert a["text"].duplicated().sum() >= 10  # exact duplicates
    lengths = a["text"].str.len()
    assert lengths.min() < 40 and lengths.max() > 150


def test_ner_sample_is_valid_iob2_with_planted_errors():
    frame = make_ner_sample(seed=0)
    assert len(frame) == 300
    assert make_ner_sample(seed=0).equals(frame)
    for tokens, tags, true in zip(frame["tokens"], frame["tags"], frame["true_tags"]):
        assert len(tokens) == len(tags) == len(true)
        assert find_bio_error(tags) is None and find_bio_error(true) is None
    assert 15 <= frame["has_error"].sum() <= 30
    kinds = {t[2:] for tags in frame["true_tags"] for t in tags if t != "O"}
    assert kinds == {"PER", "ORG", "LOC", "MISC"}


def test_written_samples_load(tmp_path):
    paths = write_samples(tmp_path)
    table = load_dataset(paths["classification"], id_column="id")
    assert table.attrs["workbench"]["labels"] == sorted(INTENTS)
    ner = load_dataset(paths["ner"], task="token-classification", id_column="id")
    assert len(ner) == 300


def test_prepare_dataset_samples_any_file_and_says_when_no_test_split_fits(tmp_path, capsys):
    # SAMPLE_SIZE was applied to Parquet files only: a CSV kept every row
    from workbench.errors import DataError
    from workbench.prepare import prepare_dataset

    frame = make_classification_sample(n_items=400, seed=2)
    frame.to_csv(tmp_path / "data.csv", index=False)
    frame.to_parquet(tmp_path / "data.parquet")
    for name in ("data.csv", "data.parquet"):
        table = prepare_dataset(tmp_path / name, out_dir=tmp_path, id_column="id", sample_size=120, seed=3)
        assert len(table) == 120 and set(table["split"]) == {"train", "test"}
    ids = [prepare_dataset(tmp_path / n, out_dir=tmp_path, id_column="id", sample_size=120, seed=3)["item_id"].tolist()
           for n in ("data.csv", "data.parquet")]
    assert ids[0] == ids[1]  # the same rows whatever the format
    # a Parquet file written by datasets: its ClassLabel ids read as their names, as load_dataset reads them
    import datasets

    names = sorted(frame["label"].unique())
    datasets.Dataset.from_dict(
        {"text": frame["text"].tolist(), "label": [names.index(c) for c in frame["label"]]},
        features=datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)}),
    ).to_parquet(str(tmp_path / "hub.parquet"))
    table = prepare_dataset(tmp_path / "hub.parquet", out_dir=tmp_path, sample_size=120, seed=3)
    assert set(table["label"]) <= set(names) and len(table) == 120
    # a workbook with more than one sheet: the notebook's output says which it read
    with pd.ExcelWriter(tmp_path / "book.xlsx") as book:
        frame.head(40).to_excel(book, sheet_name="labels", index=False)
        pd.DataFrame({"note": ["by ana"]}).to_excel(book, sheet_name="notes", index=False)
    capsys.readouterr()
    assert len(prepare_dataset(tmp_path / "book.xlsx", out_dir=tmp_path, id_column="id")) == 40
    assert "read sheet 'labels' of" in capsys.readouterr().out
    assert len(prepare_dataset(tmp_path / "book.xlsx", out_dir=tmp_path, id_column="id", sheet="labels")) == 40
    # a validation split the data brings is kept: the test items come out of train only (it used to be re-split)
    frame.assign(split=["validation" if i % 5 == 0 else "train" for i in range(len(frame))]).to_csv(
        tmp_path / "with_validation.csv", index=False)
    table = prepare_dataset(tmp_path / "with_validation.csv", out_dir=tmp_path, id_column="id")
    assert table["split"].value_counts().to_dict() == {"train": 256, "test": 64, "validation": 80}
    tiny = frame.groupby("label").head(2).drop(columns=["split"], errors="ignore")
    tiny.to_csv(tmp_path / "tiny.csv", index=False)
    assert not (prepare_dataset(tmp_path / "tiny.csv", out_dir=tmp_path, id_column="id")["split"] == "test").any()
    with pytest.raises(DataError, match=r"tiny.csv: no test items to score a model on: its 16 items are too few"):
        prepare_dataset(tmp_path / "tiny.csv", out_dir=tmp_path, id_column="id", require_test=True)
