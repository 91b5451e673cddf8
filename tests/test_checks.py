"""Data checks: each finds what it promises on small crafted data; the registry takes new checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench import checks as C
from workbench.errors import DataError


def _ctx(texts, labels, embeddings=None):
    return C.CheckContext(item_ids=[f"i{k}" for k in range(len(texts))], texts=texts, labels=labels,
                          embeddings=embeddings)


def test_exact_and_conflicting_duplicates():
    ctx = _ctx(["Where is my order?", "where  is my order?", "Where is my order?", "refund", "refund"],
               ["delivery", "delivery", "cancel", "refund", "refund"])
    res = C.run_checks(ctx, names=["exact_duplicate", "conflicting_duplicate"])
    assert set(res["exact_duplicate"].issues["item_id"]) == {"i0", "i2", "i3", "i4"}
    conflict = res["conflicting_duplicate"].issues
    assert set(conflict["item_id"]) == {"i0", "i2"}
    assert "'cancel'" in conflict.set_index("item_id").loc["i0", "detail"]


def test_near_duplicates_are_pairs_not_chains():
    rng = np.random.default_rng(0)
    base = rng.normal(size=16)
    far = rng.normal(size=16)
    emb = np.stack([base, base + 0.01, far, far + 0.01, rng.normal(size=16)])
    ctx = _ctx(["a b", "a b c", "x y", "x y z", "lonely"], ["p", "q", "r", "r", "s"], emb)
    res = C.run_checks(ctx, names=["near_duplicate", "conflicting_duplicate"])
    near = res["near_duplicate"].issues
    assert set(near["item_id"]) == {"i0", "i1", "i2", "i3"}
    assert near.groupby("group").size().tolist() == [2, 2]
    assert set(res["conflicting_duplicate"].issues["item_id"]) == {"i0", "i1"}


def test_outlier():
    rng = np.random.default_rng(0)
    center = rng.normal(size=32)
    emb = center + rng.normal(0, 0.05, (60, 32))
    emb[17] = -center
    res = C.run_checks(_ctx([f"t{i}" for i in range(60)], ["a"] * 60, emb), names=["outlier"])
    assert res["outlier"].issues["item_id"].tolist() == ["i17"]


def test_junk_texts():
    texts = ["please refund my order", "!!!", "https://spam.example/x", "ok", "где мой заказ сегодня",
             "where is my parcel", "1234 5678", "cancel it please"]
    res = C.run_checks(_ctx(texts, ["a"] * len(texts)), names=["junk_text"])
    flagged = dict(zip(res["junk_text"].issues["item_id"], res["junk_text"].issues["detail"]))
    assert set(flagged) == {"i1", "i2", "i3", "i4", "i6"}
    assert "Cyrillic" in flagged["i4"]



def test_junk_texts_know_how_east_asian_languages_are_written():
    # Japanese mixes hiragana, katakana and kanji: a loanword in katakana or a kanji-only address is Japanese too
    japanese = ["とても良い商品でした", "また買いたいです", "サービスが悪いです", "コンピューター", "東京都渋谷区",
                "届くのが遅かったです", "Great product", "良い"]
    res = C.run_checks(_ctx(japanese, ["a"] * len(japanese)), names=["junk_text"])["junk_text"]
    flagged = dict(zip(res.issues["item_id"], res.issues["detail"]))
    assert set(flagged) == {"i6"} and "Latin" in flagged["i6"], flagged
    # kanji-heavy Japanese (news headlines): the kana texts still belong
    headlines = ["日本銀行金融政策決定会合", "東京株式市場大幅続落", "政府経済対策閣議決定", "ニュースをお伝えします"]
    res = C.run_checks(_ctx(headlines, ["a"] * 4), names=["junk_text"])["junk_text"]
    assert res.issues.empty and res.summary["dominant_script"] == "CJK"
    # Chinese: a two-character review carries two words, one character is still very short; kana and Cyrillic are
    # foreign to it
    chinese = ["质量很好，推荐购买", "好评", "差", "物流太慢", "ありがとうございます", "где мой заказ",
               *["做工精细，很喜欢，性价比高"] * 10]
    res = C.run_checks(_ctx(chinese, ["a"] * len(chinese)), names=["junk_text"])["junk_text"]
    flagged = dict(zip(res.issues["item_id"], res.issues["detail"]))
    assert set(flagged) == {"i2", "i4", "i5"}, flagged
    assert "shorter" in flagged["i2"] and "Hiragana" in flagged["i4"] and "Cyrillic" in flagged["i5"]
    assert flagged["i5"].endswith("the dataset in CJK")

def test_label_variants_flag_the_rarer_spelling():
    labels = ["refund_request"] * 5 + ["Refund request", "refund-request ", "delivery", "Delivery", "Delivery",
                                       None, "billing"]
    res = C.run_checks(_ctx([f"t{i}" for i in range(len(labels))], labels), names=["label_variant"])["label_variant"]
    flagged = res.issues.set_index("item_id")
    assert flagged.index.tolist() == ["i5", "i6", "i7"]  # the majority spellings and unrelated labels stay
    assert flagged.loc["i5", "group"] == "refund_request" and flagged.loc["i7", "group"] == "Delivery"
    assert "'refund-request '" in flagged.loc["i6", "detail"] and "5 items" in flagged.loc["i6", "detail"]
    assert res.summary == {"items": 3, "variants": {"Refund request": "refund_request",
                                                    "refund-request ": "refund_request", "delivery": "Delivery"}}
    clean = C.run_checks(_ctx(["a", "b"], ["pos", "neg"]), names=["label_variant"])["label_variant"]
    assert clean.issues.empty and clean.summary["items"] == 0


def test_class_imbalance_summary():
    labels = ["a"] * 90 + ["b"] * 9 + ["c"] * 1
    res = C.run_checks(_ctx(["t"] * 100, labels), names=["class_imbalance"])["class_imbalance"].summary
    expected = 1 - ((0.9 - 1 / 3) ** 2 + (0.09 - 1 / 3) ** 2 + (0.01 - 1 / 3) ** 2)
    assert res["balance"] == pytest.approx(expected)
    assert res["rare_classes"] == ["c"] and res["largest_to_smallest"] == 90


def test_registry_takes_new_checks_and_refuses_clashes():
    @C.register("too_long_for_test")
    class TooLong(C.Check):
        def run(self, ctx):
            rows = [{"item_id": i, "issue": self.name, "group": None, "detail": ""}
                    for i, t in zip(ctx.item_ids, ctx.texts) if len(t) > 5]
            return C.CheckResult(self.name, pd.DataFrame(rows, columns=C.ISSUE_COLUMNS), {})

    try:
        res = C.run_checks(_ctx(["short", "much longer"], ["a", "b"]), names=["too_long_for_test"])
        assert res["too_long_for_test"].issues["item_id"].tolist() == ["i1"]
        with pytest.raises(ValueError, match="already registered"):
            C.register("too_long_for_test")(TooLong)
    finally:
        del C.CHECKS["too_long_for_test"]
    with pytest.raises(DataError, match="unknown check"):
        C.run_checks(_ctx(["a"], ["b"]), names=["spelling"])
    with pytest.raises(DataError, match="needs embeddings"):
        C.run_checks(_ctx(["a"], ["b"]), names=["outlier"])
