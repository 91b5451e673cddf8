"""Augmentation: seeded word noise, minority upsampling, nothing leaks into evaluation, wired into runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.augment import augment_frame, perturb_words
from workbench.config import AugmentConfig, FineTuneConfig
from workbench.errors import DataError
from workbench.splits import prepare_splits


def frame(n_major: int = 40, n_minor: int = 8) -> pd.DataFrame:
    rows = [(f"a{i}", f"where is my order number {i} please", "track") for i in range(n_major)]
    rows += [(f"b{i}", f"refund my card payment now {i}", "refund") for i in range(n_minor)]
    return pd.DataFrame(rows, columns=["item_id", "text", "label"]).assign(split="train")


def test_perturb_words_rates_and_seed():
    words = "one two three four five six seven eight nine ten".split()
    same = [perturb_words(words, delete_rate=0.3, insert_rate=0.2, swap_rate=0.2, rng=np.random.default_rng(1))
            for _ in range(2)]
    assert same[0] == same[1] and same[0] != words
    assert perturb_words(words, rng=np.random.default_rng(0)) == words
    assert len(perturb_words(words, insert_rate=0.5, rng=np.random.default_rng(0))) == 15
    assert sorted(perturb_words(words, swap_rate=0.5, rng=np.random.default_rng(0))) == sorted(words)
    kept = [len(perturb_words(words, delete_rate=0.99, rng=np.random.default_rng(s))) for s in range(20)]
    assert min(kept) >= 1  # a sentence never vanishes


def test_upsampling_reaches_the_target_and_copies_are_marked():
    out = augment_frame(frame(), AugmentConfig(upsample_to=1.0, swap_rate=0.3), seed=0)
    counts = out["label"].value_counts()
    assert counts["refund"] == counts["track"] == 40
    new = out[out["item_id"].str.contains("#aug")]
    assert len(new) == 32 and set(new["label"]) == {"refund"} and new["item_id"].is_unique
    again = augment_frame(frame(), AugmentConfig(upsample_to=1.0, swap_rate=0.3), seed=0)
    pd.testing.assert_frame_equal(out, again)  # seeded


def test_augmented_rows_never_join_an_evaluation_split():
    data = frame(60, 20)
    data.loc[data.index[-10:], "split"] = "test"
    config = FineTuneConfig(validation_fraction=0.2)
    split = prepare_splits(data.copy(), config)
    held = set(split.loc[split["split"] != "train", "item_id"])
    out = augment_frame(split, AugmentConfig(copies=2, delete_rate=0.2), seed=3)
    new = out[out["item_id"].str.contains("#aug")]
    assert len(new) == 2 * int((split["split"] == "train").sum()) and set(new["split"]) == {"train"}
    assert not {i.split("#")[0] for i in new["item_id"]} & held
    assert (out[out["split"] != "train"]["item_id"].tolist() == split[split["split"] != "train"]["item_id"].tolist())


def test_bad_augment_configs_say_what_is_wrong():
    with pytest.raises(DataError, match="delete_rate=1.5"):
        AugmentConfig(delete_rate=1.5)
    with pytest.raises(DataError, match="nothing to apply them to"):
        AugmentConfig(swap_rate=0.1)
    with pytest.raises(DataError, match="upsample_to=2"):
        AugmentConfig(upsample_to=2)
    ner = pd.DataFrame({"item_id": ["s"], "tokens": [["a"]], "label": [["O"]], "split": ["train"]})
    with pytest.raises(DataError, match="misalign tokens and tags"):
        augment_frame(ner, AugmentConfig(copies=1, swap_rate=0.1), task="token-classification")
    cfg = FineTuneConfig(augment={"copies": 1, "delete_rate": 0.1})
    assert FineTuneConfig.from_dict(cfg.to_dict()).augment == AugmentConfig(copies=1, delete_rate=0.1)


def test_a_run_trains_on_the_augmented_rows(tmp_path, tiny_bert):
    from workbench import load_dataset
    from workbench.launch import launch
    from workbench.sample import make_classification_sample

    table = load_dataset(make_classification_sample(n_items=200, seed=3), id_column="id")
    base = dict(model=str(tiny_bert), epochs=1, batch_size=16, max_length=32, precision="fp32", predict_splits=[])
    plain = launch(FineTuneConfig(**base), data=table, runs_dir=tmp_path, run_id="plain")
    noisy = launch(FineTuneConfig(**base, augment={"copies": 1, "swap_rate": 0.2}), data=table, runs_dir=tmp_path,
                   run_id="noisy")
    a, b = plain.wait(timeout=300), noisy.wait(timeout=300)
    assert a["state"] == b["state"] == "finished", noisy.logs()
    assert b["total_steps"] >= 2 * a["total_steps"] - 1  # twice the training rows, same evaluation rows
