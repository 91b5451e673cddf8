"""CoNLL-2003: a token classifier from our engine, the classic report tables, and token-error detection.

1. Fine-tunes the packaged MiniLM as a tagger on the first N CoNLL-2003 train sentences (validation for
   evaluation), predicting the test split.
2. Prints the classic layout: the token-level per-tag table (B-LOC ... O with micro/macro/weighted
   averages) and the entity-level table (seqeval, strict IOB2), against the original test tags.
3. Token-level label-error detection against CoNLL++: a token is wrong when ``tags != tags_conllpp``;
   AUROC/AUPRC of our token self-confidence against cleanlab's token scores on the same probabilities.

Usage: python benchmarks/conll_token_errors.py [--train-sentences 4000] [--epochs 1] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import SHARED, machine, record  # noqa: E402

from workbench import load_dataset  # noqa: E402
from workbench import metrics as M  # noqa: E402
from workbench import quality as Q  # noqa: E402
from workbench.config import FineTuneConfig  # noqa: E402
from workbench.launch import launch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-sentences", type=int, default=4000)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    d = SHARED / "conll2003"
    train = pd.read_parquet(d / "train.parquet").head(args.train_sentences).assign(split="train")
    val = pd.read_parquet(d / "validation.parquet").head(1000).assign(split="validation")
    test = pd.read_parquet(d / "test.parquet").assign(split="test")
    cols = ["sent_id", "tokens", "tags", "split"]
    frame = pd.concat([train[cols], val[cols], test[cols]], ignore_index=True)
    frame["sent_id"] = frame["split"] + "-" + frame["sent_id"].astype(str)
    table = load_dataset(frame, task="token-classification", id_column="sent_id")
    config = FineTuneConfig(task="token-classification", epochs=args.epochs, batch_size=16, learning_rate=1e-4,
                            max_length=128, predict_splits=["test"], log_every=20)
    t = time.perf_counter()
    run = launch(config, data=table, runs_dir=tempfile.mkdtemp())
    status = run.wait()
    seconds = time.perf_counter() - t
    if status["state"] != "finished":
        raise SystemExit(run.logs())
    pred = run.predictions("test").set_index("item_id")
    labels = run.labels()
    gold = [list(t) for t in test["tags"]]
    ids = ("test-" + test["sent_id"].astype(str)).tolist()
    predicted = [list(pred.loc[i, "pred_tags"]) for i in ids]
    token_table = M.token_metrics(gold, predicted)
    entity_table = M.entity_metrics(gold, predicted)

    # token errors: given = original test tags, truth of error = differs from CoNLL++
    index = {c: k for k, c in enumerate(labels)}
    given = [[index[t] for t in s] for s in gold]
    probs = [np.asarray(pred.loc[i, "token_probs"].tolist(), dtype=np.float64) for i in ids]
    probs = [p / p.sum(1, keepdims=True) for p in probs]
    ours = np.concatenate(Q.token_scores(given, probs))
    truth = np.concatenate([np.asarray(a) != np.asarray(b) for a, b in zip(test["tags"], test["tags_conllpp"])])
    from cleanlab.token_classification.rank import get_label_quality_scores

    _, token_info = get_label_quality_scores(given, probs)
    theirs = np.concatenate([np.asarray(s) for s in token_info])
    rows = [("ours, token self-confidence", roc_auc_score(truth, -ours), average_precision_score(truth, -ours)),
            ("cleanlab token scores", roc_auc_score(truth, -theirs), average_precision_score(truth, -theirs))]
    sentence = Q.sentence_scores(Q.token_scores(given, probs), method="softmin")
    sent_truth = np.array([bool(x) for x in test["conllpp_changed"]])
    text = (f"\n## CoNLL-2003: tagger from our engine, classic tables, token errors vs CoNLL++ "
            f"({dt.date.today().isoformat()})\n\nMachine: {machine()}. Command: `python "
            f"benchmarks/conll_token_errors.py --train-sentences {args.train_sentences} --epochs {args.epochs}`. "
            f"MiniLM tagger trained on the first {args.train_sentences} train sentences, {args.epochs} epoch(s), "
            f"{seconds:.0f} s in all. Test entity F1 (strict) {entity_table.loc['micro avg', 'f1']:.3f}: a short "
            "CPU run, not the full fine-tune of the accuracy benchmark.\n\n"
            f"Token-level table (test, original tags):\n\n```\n{token_table.round(4).to_string()}\n```\n\n"
            f"Entity-level table (seqeval strict IOB2):\n\n```\n{entity_table.round(4).to_string()}\n```\n\n"
            f"Token errors ({int(truth.sum())} of {len(truth)} test tokens differ in CoNLL++), same probabilities:\n\n"
            "| score | AUROC | AUPRC |\n|---|---|---|\n"
            + "".join(f"| {n} | {a:.4f} | {p:.4f} |\n" for n, a, p in rows)
            + f"\nSentence level (softmin of token scores) against the {int(sent_truth.sum())} changed sentences: "
            f"AUROC {roc_auc_score(sent_truth, -sentence):.4f}.\n")
    record(text, write=not args.no_write)


if __name__ == "__main__":
    main()
