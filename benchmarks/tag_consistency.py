"""CoNLL-2003: the model-free tag-consistency check against the CoNLL++ corrections of the test split.

The check (``workbench.token_scan.check_tag_consistency``, ``workbench scan NER --mode quick``) reads the whole
store (train, validation and test sentences as evidence) and flags test sentences with a span tagged unlike the same
words elsewhere. Truth: the 186 test sentences (309 tokens) CoNLL++ changed. Baseline, same run: flagging the same
number of test sentences at random (1,000 draws), whose precision is the base rate; the ratio is the lift. Also: the
test split alone as evidence, other ``max_share`` values, and (``--tagger-sentences N``) a MiniLM tagger trained on
N train sentences, its sentences ranked by the softmin of token self-confidence, at the same number flagged.

Usage: python benchmarks/tag_consistency.py [--tagger-sentences 4000] [--no-write]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import SHARED, machine, record  # noqa: E402

from workbench import LabelStore, load_dataset  # noqa: E402
from workbench.token_scan import check_tag_consistency  # noqa: E402


def conll_table(splits: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The named CoNLL-2003 splits as one loaded table (ids ``<split>-<sent_id>``), and the raw test split."""
    frames = []
    for split in splits:
        frame = pd.read_parquet(SHARED / "conll2003" / f"{split}.parquet").assign(split=split)
        frame["sent_id"] = split + "-" + frame["sent_id"].astype(str)
        frames.append(frame[["sent_id", "tokens", "tags", "split"]])
    test = pd.read_parquet(SHARED / "conll2003" / "test.parquet")
    test["sent_id"] = "test-" + test["sent_id"].astype(str)
    table = load_dataset(pd.concat(frames, ignore_index=True), task="token-classification", id_column="sent_id")
    return table, test


def scan_row(table: pd.DataFrame, test: pd.DataFrame, *, evidence: str, max_share: float,
             rng: np.random.Generator) -> tuple[str, set[str]]:
    """One markdown row: the check on a fresh store of ``table``, scored on the test sentences."""
    with tempfile.TemporaryDirectory() as tmp, LabelStore.open(Path(tmp) / "conll.db") as store:
        store.import_dataset(table)
        started = time.perf_counter()
        result = check_tag_consistency(store, max_share=max_share)
        seconds = time.perf_counter() - started
    changed = set(test.loc[test["conllpp_changed"].astype(bool), "sent_id"])
    flagged = {i for i, issues in zip(result.sentences["item_id"], result.sentences["issues"]) if issues}
    flagged &= set(test["sent_id"])
    hits = len(flagged & changed)
    precision = hits / max(len(flagged), 1)
    base = np.mean([len(set(rng.choice(test["sent_id"].to_numpy(), len(flagged), replace=False)) & changed)
                    / max(len(flagged), 1) for _ in range(1000)]) if flagged else 0.0
    fixes = _token_fixes(result.tokens, test)
    return (f"| {evidence} | {max_share} | {len(flagged)} | {hits} | {precision:.3f} | {hits / len(changed):.3f} | "
            f"{base:.3f} | {precision / base if base else float('nan'):.1f}x | {fixes} | {seconds:.1f} |", flagged)


def _token_fixes(tokens: pd.DataFrame, test: pd.DataFrame) -> str:
    """Of the test tokens the check would retag: how many CoNLL++ changed, and how many to CoNLL++'s tag."""
    truth = test.set_index("sent_id")
    rows = tokens[tokens["item_id"].isin(truth.index)]
    changed = sum(truth.loc[i, "tags"][j] != truth.loc[i, "tags_conllpp"][j]
                  for i, j in zip(rows["item_id"], rows["token"]))
    right = sum(truth.loc[i, "tags_conllpp"][j] == tag
                for i, j, tag in zip(rows["item_id"], rows["token"], rows["suggested_tag"]))
    return f"{len(rows)} / {changed} / {right}"


def tagger_row(n_train: int, test: pd.DataFrame, k: int, flagged: set[str]) -> str:
    """A short MiniLM tagger on ``n_train`` train sentences; its k worst test sentences against the check's."""
    from workbench import quality as Q
    from workbench.config import FineTuneConfig
    from workbench.launch import launch

    d = SHARED / "conll2003"
    parts = [pd.read_parquet(d / "train.parquet").head(n_train).assign(split="train"),
             pd.read_parquet(d / "validation.parquet").head(1000).assign(split="validation"),
             pd.read_parquet(d / "test.parquet").assign(split="test")]  # the same set-up as conll_token_errors.py
    frame = pd.concat([p[["sent_id", "tokens", "tags", "split"]] for p in parts], ignore_index=True)
    frame["sent_id"] = frame["split"] + "-" + frame["sent_id"].astype(str)
    chosen = load_dataset(frame, task="token-classification", id_column="sent_id")
    config = FineTuneConfig(task="token-classification", epochs=1, batch_size=16, learning_rate=1e-4,
                            max_length=128, predict_splits=["test"], log_every=50)
    started = time.perf_counter()
    run = launch(config, data=chosen, runs_dir=tempfile.mkdtemp())
    status = run.wait()
    if status["state"] != "finished":
        raise SystemExit(run.logs())
    seconds = time.perf_counter() - started
    pred = run.predictions("test").set_index("item_id")
    index = {c: n for n, c in enumerate(run.labels())}
    ids = test["sent_id"].tolist()
    given = [[index[t] for t in tags] for tags in test["tags"]]
    probs = [np.asarray(pred.loc[i, "token_probs"].tolist(), dtype=np.float64) for i in ids]
    scores = Q.sentence_scores(Q.token_scores(given, [p / p.sum(1, keepdims=True) for p in probs]), method="softmin")
    worst = {ids[j] for j in np.argsort(scores, kind="stable")[:k]}
    changed = set(test.loc[test["conllpp_changed"].astype(bool), "sent_id"])
    hits, both = len(worst & changed), len(worst & flagged & changed)
    union = worst | flagged
    return (f"MiniLM tagger on the first {n_train} train sentences (1 epoch, {seconds:.0f} s), its {k} worst test "
            f"sentences (softmin of token self-confidence): {hits} changed in CoNLL++ (precision {hits / k:.3f}); "
            f"{both} of those the consistency check also flags. Union of the two lists: {len(union)} sentences, "
            f"{len(union & changed)} changed (precision {len(union & changed) / len(union):.3f}, recall "
            f"{len(union & changed) / len(changed):.3f}).\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tagger-sentences", type=int, default=0,
                        help="also train a short tagger on this many train sentences and compare at equal K")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    everything, test = conll_table(["train", "validation", "test"])
    alone, _ = conll_table(["test"])
    rows, default_flagged = [], set()
    for evidence, table in [("train + validation + test", everything), ("test alone", alone)]:
        for share in (0.1, 0.2, 0.34):
            row, flagged = scan_row(table, test, evidence=evidence, max_share=share, rng=rng)
            rows.append(row)
            if evidence != "test alone" and share == 0.2:
                default_flagged = flagged
    command = "python benchmarks/tag_consistency.py" + (f" --tagger-sentences {args.tagger_sentences}"
                                                         if args.tagger_sentences else "")
    text = (f"\n## CoNLL-2003: tag consistency vs CoNLL++, no model ({dt.date.today()}, {machine()})\n\n"
            f"`{command}`. Test sentences flagged by `check_tag_consistency` (a span whose reading, entity type or "
            "untagged, covers at most `max_share` of the same words' occurrences, seen 3+ times) against the "
            f"{int(test['conllpp_changed'].sum())} test sentences CoNLL++ changed ({len(test)} in all). Random = "
            "the same number of test sentences drawn at random, 1,000 draws, in the same run; lift = precision / "
            "random's. Tokens: retagged by the suggestion / changed in CoNLL++ / retagged to CoNLL++'s tag. Time: "
            "the check alone, on a store of the sentences named.\n\n"
            "| evidence | max_share | flagged | changed in CoNLL++ | precision | recall | random precision | lift | "
            "tokens retagged / changed / to CoNLL++'s tag | s |\n|---|---|---|---|---|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n")
    if args.tagger_sentences:
        text += "\n" + tagger_row(args.tagger_sentences, test, len(default_flagged), default_flagged)
    record(text, write=not args.no_write)


if __name__ == "__main__":
    main()
