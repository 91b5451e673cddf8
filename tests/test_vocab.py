"""The share of a dataset's text a model's vocabulary cannot read, and what the scan's report says of it."""

from __future__ import annotations

import pandas as pd

from workbench.cli import main
from workbench.vocab import count_unknown_tokens

# Chinese product reviews: the packaged English MiniLM knows a few of these characters, most are [UNK]
REVIEWS = {"正面": ["质量很好，推荐购买", "物流很快，包装完好", "做工精细，很喜欢", "性价比高，好评"],
           "负面": ["质量很差，退货了", "物流太慢，差评", "客服态度恶劣", "用了两天就坏了"]}


def test_unknown_word_pieces_are_counted_on_an_even_sample(tiny_bert, tiny_roberta):
    texts = ["where is my order", "refund please", "退货了", "where is my 退货"]
    counts = count_unknown_tokens(texts, tiny_bert)
    # the tiny vocabulary: 4 + 2 known pieces, 3 unknown characters, 3 known + 2 unknown
    assert counts == {"n_unknown": 5, "n_tokens": 14, "n_mostly_unknown": 1, "n_read": 4, "n_texts": 4,
                      "examples": ["退货了"]}
    sampled = count_unknown_tokens(texts * 50, tiny_bert, sample=20)
    assert sampled["n_read"] == 20 and sampled["n_texts"] == 200
    assert count_unknown_tokens([], tiny_bert) is None
    assert count_unknown_tokens(texts, tiny_roberta) is None  # byte-level BPE reads every byte: nothing unknown


def test_a_tokenizer_file_it_cannot_read_gives_no_count_rather_than_a_failed_scan(tmp_path):
    (tmp_path / "tokenizer.json").write_text('{"model": {"type": "WordPiece"')
    assert count_unknown_tokens(["where is my order"], tmp_path) is None
    assert count_unknown_tokens(["where is my order"], tmp_path / "nowhere") is None


def test_a_scan_of_texts_the_model_cannot_read_says_so_and_names_the_remedy(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    rows = [{"id": f"r{i}-{label}", "text": f"{text}{'！' * (i % 3)}", "label": label}
            for i in range(15) for label, texts in REVIEWS.items() for text in texts[i % 4:i % 4 + 1]]
    pd.DataFrame(rows).to_csv(tmp_path / "reviews.csv", index=False)
    assert main(["scan", str(tmp_path / "reviews.csv"), "--id-column", "id", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "word pieces are unknown to the model's vocabulary" in out, out
    assert "workbench scan --model PATH" in out and "'质量很好，推荐购买" in out



def test_a_run_on_texts_its_model_cannot_read_says_so(tiny_bert, tmp_path, capsys):
    rows = [{"id": f"r{i}-{label}", "text": texts[i % 4] + ("！" if i % 2 else ""), "label": label}
            for i in range(40) for label, texts in REVIEWS.items()]
    rows += [{"id": f"e{i}", "text": "where is my order", "label": "正面"} for i in range(10)]  # read in full
    pd.DataFrame(rows).to_csv(tmp_path / "reviews.csv", index=False)
    flags = [f for k, v in {"model": tiny_bert, "epochs": 1, "max_length": 32, "precision": "fp32"}.items()
             for f in ("--set", f"{k}={v}")]
    assert main(["train", str(tmp_path / "reviews.csv"), "--id-column", "id", "--runs-dir", str(tmp_path / "runs"),
                 "--run-id", "zh", "--no-progress", *flags]) == 0
    out = capsys.readouterr().out
    assert "unknown words: " in out and "training items are mostly unknown" in out, out
    assert "workbench train --set model=PATH" in out
    from workbench.launch import Run

    run = Run(tmp_path / "runs" / "zh")
    unknown = run.status()["unknown_tokens"]
    held_out = set(run.predictions("validation")["item_id"])
    english = sum(r["id"].startswith("e") and r["id"] not in held_out for r in rows)
    assert unknown["n_read"] == run.status()["n_train"] == unknown["n_mostly_unknown"] + english
    assert 0.5 < unknown["n_unknown"] / unknown["n_tokens"] < 1


def test_a_token_scan_whose_taggers_cannot_read_the_sentences_says_so(tiny_bert, tmp_path, capsys):
    places = [["北", "京"], ["上", "海"], ["广", "州"]]
    rows = [{"tokens": ["我", "住", "在", *places[i % 3], "市", str(i)],
             "tags": ["O", "O", "O", "B-LOC", "I-LOC", "O", "O"]} for i in range(30)]
    pd.DataFrame(rows).to_parquet(tmp_path / "ner.parquet")
    assert main(["scan", str(tmp_path / "ner.parquet"), "--no-progress", "--model", str(tiny_bert),
                 "--finetune-set", "epochs=1", "--finetune-set", "precision=fp32"]) == 0
    out = capsys.readouterr().out
    assert "unknown words: " in out and "training items are mostly unknown" in out, out
    assert "workbench scan --model PATH" in out
