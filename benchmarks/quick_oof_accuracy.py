"""Quick-mode out-of-fold accuracy against the anchor recipe, measured in the same run.

Baseline (the anchor of issue #3): frozen all-MiniLM-L6-v2 embeddings + scikit-learn's default logistic
regression, 5-fold stratified. Ours: ``out_of_fold_probs(mode="quick")`` (embedding view on the scan's
classifier layers, TF-IDF view, nested regularisation, pooled, clean refit). Same folds seed; the baseline's
embeddings are the sentence embeddings of the same forward pass.

Usage: python benchmarks/quick_oof_accuracy.py [--sets sst2,trec,banking77,20news] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import SHARED, add_mode_arguments, machine, mode_flags, oof_options, record  # noqa: E402

from workbench.crossval import VIEWS, encode_labels, out_of_fold_probs  # noqa: E402
from workbench.embed import embed_views, embed_views_with_tokens  # noqa: E402

FILES = {"sst2": "sst2/train.parquet", "trec": "trec/train.parquet", "banking77": "banking77/train.parquet",
         "20news": "20news_test_errors/test.parquet"}
TARGETS = {"sst2": 0.857, "trec": 0.857, "banking77": 0.921, "20news": 0.876}


def baseline(emb: np.ndarray, y: np.ndarray, *, seed: int = 0) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = cross_val_predict(LogisticRegression(max_iter=1000), emb, y,
                                 cv=StratifiedKFold(5, shuffle=True, random_state=seed))
    return float((pred == y).mean())


def spread(values: list[float]) -> str:
    """One seed: the value; several: mean, standard deviation and each seed's value."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return (f"{np.mean(values):.3f} (sd {np.std(values, ddof=1):.3f}; "
            f"{' / '.join(f'{v:.3f}' for v in values)})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default=",".join(FILES))
    ap.add_argument("--classifier-layers", default="-1",
                    help="hidden states of the embedding view, comma-separated (the scan's default: -1)")
    ap.add_argument("--views", default=",".join(VIEWS),
                    help="quick mode's views, comma-separated (the scan's default: embedding,tfidf,attention; "
                         "embedding,tfidf leaves out the head over the token vectors)")
    add_mode_arguments(ap)  # how ours makes its probabilities
    ap.add_argument("--seeds", type=int, default=1,
                    help="fold seeds 0..N-1 for both recipes (default 1: seed 0 only); the table shows mean and sd")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    layers = tuple(int(v) for v in args.classifier_layers.split(","))
    view_names = tuple(args.views.split(","))
    rows = []
    for name in args.sets.split(","):
        frame = pd.read_parquet(SHARED / FILES[name])
        texts, labels = frame["text"].tolist(), frame["label"].tolist()
        # one forward pass, as a scan's: the sentence embedding for the anchor recipe, the scan's classifier features
        # and (for the attention view) the token vectors for ours; its time is reported apart
        t = time.perf_counter()
        if "attention" in view_names:
            features, emb, states = embed_views_with_tokens(texts, classifier_layers=layers, progress=False)
        else:
            (features, emb), states = embed_views(texts, classifier_layers=layers, progress=False), None
        print(f"{name}: embedded in {time.perf_counter() - t:.1f} s", flush=True)
        y, _ = encode_labels(labels)
        base, ours, t_base, t_ours = [], [], [], []
        for seed in range(args.seeds):
            t = time.perf_counter()
            base.append(baseline(emb, y, seed=seed))
            t_base.append(time.perf_counter() - t)
            t = time.perf_counter()
            extra = {"views": view_names, "token_states": states} if args.mode == "quick" else {}
            oof = out_of_fold_probs(texts, labels, seed=seed, **extra,
                                    **oof_options(args.mode, name, args.finetune_set, embeddings=features))
            t_ours.append(time.perf_counter() - t)
            ours.append(oof.accuracy())
            if seed == 0:
                views = ", ".join(f"{k} {float((v.argmax(1) == oof.labels).mean()):.3f}" for k, v in oof.views.items())
        rows.append((name, len(y), spread(base), float(np.mean(t_base)), spread(ours), float(np.mean(t_ours)), views,
                     TARGETS[name]))
        print(rows[-1], flush=True)
    ours = ("the scan's quick mode (embedding view on the hidden states named in the command, from the same forward "
            "pass; TF-IDF view; " + ("the attention view over the top four layers' token vectors, from the same "
                                     "forward pass, not in the time column; " if "attention" in view_names else "")
            + "pooled; the clean refit)" if args.mode == "quick" else
            "finetune mode: 5 fine-tunes of the packaged MiniLM, each trained on four folds (10% of them held out for "
            "its per-epoch evaluation) with finetune_accuracy.py's recipe for the set, predicting the fifth")
    lines = [f"\n## {args.mode.capitalize()}-mode out-of-fold accuracy vs the anchor recipe "
             f"({dt.date.today().isoformat()})\n",
             f"Machine: {machine()}. Command: `python benchmarks/quick_oof_accuracy.py --sets {args.sets} "
             f"--classifier-layers={args.classifier_layers}"
             f"{f' --views {args.views}' if view_names != VIEWS else ''}"
             f"{mode_flags(args.mode, args.finetune_set)}"
             f"{f' --seeds {args.seeds}' if args.seeds > 1 else ''}`. "
             "Baseline: frozen MiniLM sentence embeddings + default logistic regression, 5-fold (the issue's anchor "
             f"recipe), same run. Ours: {ours}. Target: the issue's "
             "(anchor + 5 pt for SST-2 and 20news, anchor for the others).\n",
             f"| set | items | baseline OOF acc | baseline s | {args.mode} OOF acc | {args.mode} s | views | target |",
             "|---|---|---|---|---|---|---|---|"]
    if args.seeds > 1:
        lines.insert(2, f"Each accuracy: mean over the fold seeds 0-{args.seeds - 1} (sd; per seed); times: mean per "
                        "seed; views: seed 0.\n")
    lines += [f"| {n} | {m} | {b} | {tb:.0f} | {q} | {tq:.0f} | {v} | {tg:.3f} |"
              for n, m, b, tb, q, tq, v, tg in rows]
    record("\n".join(lines) + "\n", write=not args.no_write)


if __name__ == "__main__":
    main()
