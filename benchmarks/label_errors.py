"""Label-error detection quality: our scores and filters against cleanlab 2.x on the same probabilities.

(a) 20news test set: the published out-of-fold probabilities against the human-verified errors.
(b) SST-2, TREC-6, banking77 train splits with asymmetric synthetic noise (10% and 20%) from a fixed
    pair-flip noise matrix and seed; probabilities from our quick mode (computed once per row and
    handed to both libraries), or with ``--mode finetune`` from k-fold fine-tunes.
(c) CoNLL-2003 token errors: needs a token classifier from the fine-tuning engine; reported as not run.

Usage: python benchmarks/label_errors.py [--rows 20news,sst2,trec,banking77,emotion] [--rates 0.1,0.2]
       [--noise pair,uniform] [--views embedding,tfidf,attention] [--mode quick|finetune [--finetune-set FIELD=JSON]]
       [--no-write]
cleanlab is a benchmark/dev dependency only; workbench never imports it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import SHARED, add_mode_arguments, machine, mode_flags, oof_options, record  # noqa: E402

from workbench import quality as Q  # noqa: E402
from workbench.crossval import VIEWS as DEFAULT_VIEWS  # noqa: E402
from workbench.crossval import encode_labels, out_of_fold_probs  # noqa: E402
from workbench.embed import embed_texts, embed_views, embed_views_with_tokens  # noqa: E402

SCORES = ("self_confidence", "normalized_margin", "confidence_weighted_entropy")
# The issue's single scores: SCORES and the neighbourhood score. label_posterior is ours alone (cleanlab has
# no such score) and an ingredient of `combined`; its own column in the comparison table.
ISSUE_SINGLE = (*SCORES, "neighbor_agreement")


LAYERS: tuple[int, ...] = (-1,)  # the scan's default classifier layers; --classifier-layers changes it
MODE: tuple[str, list[str]] = ("quick", [])  # --mode and --finetune-set
VIEWS: tuple[str, ...] = DEFAULT_VIEWS  # --views

def pair_flip_noise(y: np.ndarray, k: int, rate: float, seed: int) -> np.ndarray:
    """Asymmetric noise: each true class j is relabelled as one fixed other class pi(j) with probability ``rate``."""
    rng = np.random.default_rng(seed)
    target = (np.arange(k) + rng.integers(1, k, size=k)) % k  # a fixed wrong class per true class
    flip = rng.random(len(y)) < rate
    out = y.copy()
    out[flip] = target[y[flip]]
    return out


def uniform_noise(y: np.ndarray, k: int, rate: float, seed: int) -> np.ndarray:
    """Symmetric noise: with probability ``rate`` an item's class is replaced by any other class, uniformly."""
    rng = np.random.default_rng(seed)
    flip = rng.random(len(y)) < rate
    out = y.copy()
    out[flip] = (y[flip] + rng.integers(1, k, size=int(flip.sum()))) % k
    return out


NOISE = {"pair": pair_flip_noise, "uniform": uniform_noise}


def lift_at_k(truth: np.ndarray, score: np.ndarray) -> float:
    k = int(truth.sum())
    top = np.argsort(score, kind="stable")[:k]
    return float(truth[top].mean() / max(truth.mean(), 1e-12))


def score_row(name: str, method: str, who: str, truth: np.ndarray, score: np.ndarray) -> dict:
    """One table row: how well ``score (n,)`` (lower = more likely wrong) ranks the items where ``truth``."""
    return {"row": name, "what": f"score {method}", "who": who, "AUROC": roc_auc_score(truth, -score),
            "AUPRC": average_precision_score(truth, -score), "lift@K": lift_at_k(truth, score)}


def evaluate(name: str, y: np.ndarray, p: np.ndarray, truth: np.ndarray, emb: np.ndarray | None) -> list[dict]:
    import cleanlab.filter
    import cleanlab.rank

    rows = []
    for method in SCORES:
        ours = Q.label_quality_scores(y, p, method=method)
        theirs = cleanlab.rank.get_label_quality_scores(y, p, method=method)
        rows += [score_row(name, method, who, truth, s) for who, s in (("ours", ours), ("cleanlab", theirs))]
    # ours alone: cleanlab has no such scores; the neighbour ones need embeddings
    for method in ("label_posterior", *(("neighbor_agreement", "combined") if emb is not None else ())):
        rows.append(score_row(name, method, "ours", truth, Q.label_quality_scores(y, p, method=method,
                                                                                  embeddings=emb)))
    for filter_by in Q.FILTERS:
        ours = Q.find_label_issues(y, p, filter_by=filter_by)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = cleanlab.filter.find_label_issues(y, p, filter_by=filter_by)
        for who, m in (("ours", ours), ("cleanlab", theirs)):
            rows.append({"row": name, "what": f"filter {filter_by}", "who": who, "flagged": int(m.sum()),
                         "precision": precision_score(truth, m, zero_division=0),
                         "recall": recall_score(truth, m), "F1": f1_score(truth, m)})
    return rows


def row_20news() -> list[dict]:
    d = SHARED / "20news_test_errors"
    p = np.load(d / "cv_pred_probs.npy")
    y = np.load(d / "original_labels.npy").astype(np.int64)
    table = pd.read_parquet(d / "test.parquet")
    truth = table["verified_error"].to_numpy().astype(bool)
    p = p / p.sum(1, keepdims=True)
    # The neighbour view reads our packaged-MiniLM embeddings of the same texts; the probabilities stay the paper's.
    emb = embed_texts(table["text"].tolist(), progress=False)
    return evaluate("20news (paper's probabilities)", y, p, truth, emb)


def row_synthetic(dataset: str, rate: float, cache: dict, seed: int = 0,
                  noise: str = "pair") -> tuple[list[dict], dict]:
    frame = pd.read_parquet(SHARED / dataset / "train.parquet")
    texts = frame["text"].tolist()
    y_true, classes = encode_labels(frame["label"].tolist())
    y = NOISE[noise](y_true, len(classes), rate, seed)
    if dataset not in cache:
        # as in a scan: the classifier layers for the classifier view, the sentence embedding for neighbours, the
        # token vectors for the attention view, from one forward pass
        cache[dataset] = (embed_views_with_tokens(texts, classifier_layers=LAYERS, progress=False)
                          if "attention" in VIEWS else (*embed_views(texts, classifier_layers=LAYERS, progress=False),
                                                         None))
    features, emb, token_states = cache[dataset]
    t = time.perf_counter()
    quick = {"views": VIEWS, "token_states": token_states} if MODE[0] == "quick" else {}
    oof = out_of_fold_probs(texts, [classes[i] for i in y], classes=classes, seed=seed, **quick,
                            **oof_options(MODE[0], dataset, MODE[1], embeddings=features))
    seconds = time.perf_counter() - t
    truth = y != y_true
    name = f"{dataset} {int(rate * 100)}%" + ("" if noise == "pair" else f" {noise}")
    info = {"row": name, "oof_accuracy_vs_noisy": oof.accuracy(),
            "oof_accuracy_vs_true": float((oof.pred_probs.argmax(1) == y_true).mean()), "crossval_s": seconds,
            "views": {k: float((v.argmax(1) == y).mean()) for k, v in oof.views.items()}}
    return evaluate(name, y, oof.pred_probs, truth, emb), info


def to_markdown(rows: list[dict], infos: list[dict]) -> str:
    frame = pd.DataFrame(rows)
    out = []
    scores = frame[frame["what"].str.startswith("score")]
    piv = scores.pivot_table(index=["row", "what"], columns="who", values=["AUROC", "AUPRC", "lift@K"],
                             sort=False)
    out.append("| row | score | AUROC ours | AUROC cleanlab | AUPRC ours | AUPRC cleanlab | lift@K ours |")
    out.append("|---|---|---|---|---|---|---|")
    for (row, what), r in piv.iterrows():
        cl = r.get(("AUROC", "cleanlab"), np.nan)
        clp = r.get(("AUPRC", "cleanlab"), np.nan)
        out.append(f"| {row} | {what[6:]} | {r[('AUROC', 'ours')]:.4f} | "
                   f"{'' if pd.isna(cl) else f'{cl:.4f}'} | {r[('AUPRC', 'ours')]:.4f} | "
                   f"{'' if pd.isna(clp) else f'{clp:.4f}'} | {r[('lift@K', 'ours')]:.2f} |")
    out.append("")
    out.append("The scan's default score is `combined`. Against the best of the issue's single scores of the same "
               "row (ours: self-confidence, normalized margin, confidence-weighted entropy, neighbour agreement), "
               "and beside the label posterior alone:")
    out.append("")
    out.append("| row | best single score | its AUROC / AUPRC | combined AUROC / AUPRC | combined >= best | "
               "label_posterior AUROC / AUPRC |")
    out.append("|---|---|---|---|---|---|")
    ours = scores[scores["who"] == "ours"]
    for row, part in ours.groupby("row", sort=False):
        combined = part[part["what"] == "score combined"]
        if combined.empty:
            continue
        issue_single = part[part["what"].isin([f"score {m}" for m in ISSUE_SINGLE])]
        single = issue_single.sort_values("AUROC", ascending=False).iloc[0]
        c = combined.iloc[0]
        post = part[part["what"] == "score label_posterior"].iloc[0]
        ok = c["AUROC"] >= single["AUROC"] and c["AUPRC"] >= single["AUPRC"]
        out.append(f"| {row} | {single['what'][6:]} | {single['AUROC']:.4f} / {single['AUPRC']:.4f} | "
                   f"{c['AUROC']:.4f} / {c['AUPRC']:.4f} | {'yes' if ok else '**no**'} | "
                   f"{post['AUROC']:.4f} / {post['AUPRC']:.4f} |")
    out.append("")
    filters = frame[frame["what"].str.startswith("filter")]
    out.append("| row | filter | flagged ours / cleanlab | P ours / cleanlab | R ours / cleanlab | "
               "F1 ours | F1 cleanlab |")
    out.append("|---|---|---|---|---|---|---|")
    for (row, what), part in filters.groupby(["row", "what"], sort=False):
        o = part[part["who"] == "ours"].iloc[0]
        c = part[part["who"] == "cleanlab"].iloc[0]
        out.append(f"| {row} | {what[7:]} | {int(o['flagged'])} / {int(c['flagged'])} | {o['precision']:.3f} / "
                   f"{c['precision']:.3f} | {o['recall']:.3f} / {c['recall']:.3f} | {o['F1']:.3f} | {c['F1']:.3f} |")
    if infos:
        out.append("")
        out.append("| row | OOF accuracy vs noisy labels | vs true labels | per view (vs noisy) | cross-val s |")
        out.append("|---|---|---|---|---|")
        for i in infos:
            views = ", ".join(f"{k} {v:.3f}" for k, v in i["views"].items())
            out.append(f"| {i['row']} | {i['oof_accuracy_vs_noisy']:.3f} | {i['oof_accuracy_vs_true']:.3f} | "
                       f"{views} | {i['crossval_s']:.0f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", default="20news,sst2,trec,banking77")
    ap.add_argument("--rates", default="0.1,0.2")
    ap.add_argument("--noise", default="pair", help="comma-separated: pair (the issue's rows), uniform")
    ap.add_argument("--classifier-layers", default="-1",
                    help="hidden states of the embedding view, comma-separated (the scan's default: -1)")
    ap.add_argument("--views", default=",".join(DEFAULT_VIEWS),
                    help="quick mode's views, comma-separated (the scan's default: embedding,tfidf,attention; "
                         "embedding,tfidf leaves out the head over the token vectors)")
    add_mode_arguments(ap)  # how the synthetic rows' probabilities are made
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    global LAYERS, MODE, VIEWS
    LAYERS = tuple(int(v) for v in args.classifier_layers.split(","))
    VIEWS = tuple(args.views.split(","))
    if args.mode != "quick" and VIEWS != DEFAULT_VIEWS:
        raise SystemExit("--views chooses quick mode's views; drop it with --mode finetune")
    MODE = (args.mode, args.finetune_set)
    wanted = args.rows.split(",")
    rows: list[dict] = []
    infos: list[dict] = []
    if "20news" in wanted:
        rows += row_20news()
    cache: dict = {}
    for dataset in [d for d in ("sst2", "trec", "banking77", "emotion") if d in wanted]:
        for noise in args.noise.split(","):
            for rate in [float(r) for r in args.rates.split(",")]:
                r, info = row_synthetic(dataset, rate, cache, noise=noise)
                rows += r
                infos.append(info)
                print(json.dumps(info), flush=True)
    table = to_markdown(rows, infos)
    machine_name = machine()
    text = (f"\n## Label-error detection vs cleanlab ({dt.date.today().isoformat()})\n\n"
            f"Machine: {machine_name}. Command: `python benchmarks/label_errors.py --rows {args.rows} "
            f"--rates {args.rates} --noise {args.noise} --classifier-layers={args.classifier_layers}"
            f"{'' if VIEWS == DEFAULT_VIEWS else ' --views ' + args.views}"
            f"{mode_flags(args.mode, args.finetune_set)}`. "
            "Same probabilities for both libraries in every row. Synthetic noise: each true class is flipped to "
            "one fixed other class (seeded) at the given rate (rows marked `uniform`: to any other class, "
            "uniformly). (c) CoNLL-2003 token errors: "
            "`benchmarks/conll_token_errors.py`, its own section.\n\n" + table + "\n")
    record(text, write=not args.no_write)


if __name__ == "__main__":
    main()
