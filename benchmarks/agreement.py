"""Agreement on md_agreement against the reference packages, and Dawid-Skene against majority vote.

1. ../shared/data/md_agreement (5 raters per item, 819 raters): Krippendorff's alpha against the
   `krippendorff` package and every pair's Cohen's kappa against scikit-learn's
   `cohen_kappa_score`, with the time each takes (ours and theirs).
2. Simulated annotators with known confusion matrices (good, mediocre, random and two
   adversarial ones who say the next class on purpose): consensus accuracy of majority vote and
   Dawid-Skene, and the rank correlation between estimated and true annotator quality.

    python benchmarks/agreement.py [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
import warnings

import numpy as np
import pandas as pd
from _common import SHARED, machine, record
from scipy.stats import spearmanr


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - started


def md_agreement_rows() -> list[str]:
    import krippendorff
    from sklearn.metrics import cohen_kappa_score

    from workbench.agreement import (
        annotations_from_frame,
        cohen_kappa_pairs,
        consistency,
        fleiss_kappa,
        krippendorff_alpha,
        percent_agreement,
    )

    rows = []
    for split in ("train", "validation", "test"):
        frame = pd.read_parquet(SHARED / "md_agreement" / f"{split}.parquet")
        # The test split has one repeated (item, annotator) pair with the same label twice: kept once.
        ann = annotations_from_frame(frame, repeats="first")
        frame = frame.drop_duplicates(subset=["item_id", "annotator"])
        alpha, t_alpha = timed(krippendorff_alpha, ann)
        matrix = np.full((len(ann.annotators), len(ann.items)), np.nan)
        matrix[ann.annotator, ann.item] = ann.label
        ref_alpha, t_ref_alpha = timed(krippendorff.alpha, reliability_data=matrix, level_of_measurement="nominal")
        pairs, t_pairs = timed(cohen_kappa_pairs, ann, min_items=2)
        wide = frame.pivot(index="item_id", columns="annotator", values="label")
        started = time.perf_counter()
        worst = 0.0
        for row in pairs.itertuples():
            both = wide[[row.annotator_a, row.annotator_b]].dropna()
            ref = cohen_kappa_score(both[row.annotator_a], both[row.annotator_b])
            if not (np.isnan(ref) and np.isnan(row.kappa)):
                worst = max(worst, abs(ref - row.kappa))
        t_ref_pairs = time.perf_counter() - started
        rows.append(f"| {split} | {len(ann.items)} | {len(ann.annotators)} | {percent_agreement(ann):.4f} | "
                    f"{consistency(ann):.4f} | {fleiss_kappa(ann):.6f} | {alpha:.12f} | {ref_alpha:.12f} | "
                    f"{abs(alpha - ref_alpha):.1e} | {t_alpha * 1000:.1f} / {t_ref_alpha * 1000:.0f} | {len(pairs)} | "
                    f"{worst:.1e} | {t_pairs:.2f} / {t_ref_pairs:.1f} |")
    return rows


def panel(k: int) -> tuple[np.ndarray, list[str]]:
    def accurate(acc: float) -> np.ndarray:
        return np.full((k, k), (1 - acc) / (k - 1)) + np.eye(k) * (acc - (1 - acc) / (k - 1))

    swap = np.roll(np.eye(k), 1, axis=1) * 0.85 + np.full((k, k), 0.15 / k)
    swap /= swap.sum(axis=1, keepdims=True)
    kinds = ["0.90", "0.80", "0.70", "0.60", "random", "adversarial", "adversarial"]
    mats = [accurate(0.9), accurate(0.8), accurate(0.7), accurate(0.6), np.full((k, k), 1.0 / k), swap, swap]
    return np.stack(mats), kinds


def simulation_rows() -> list[str]:
    from workbench.agreement import annotations_from_frame
    from workbench.consensus import dawid_skene, majority_vote, simulate_annotators

    rows = []
    for k, per_item in ((2, 3), (3, 5), (5, 5)):
        confusions, _ = panel(k)
        for seed in range(3):
            frame, truth = simulate_annotators(3000, confusions, per_item=per_item, seed=seed)
            ann = annotations_from_frame(frame)
            order = np.array([int(i[4:]) for i in ann.items])
            truth_names = np.array([f"c{t}" for t in truth[order]])
            vote_acc = float(np.mean(majority_vote(ann)["label"].to_numpy() == truth_names))
            ds, seconds = timed(dawid_skene, ann)
            ds_acc = float(np.mean(ds.labels["label"].to_numpy() == truth_names))
            true_q = np.array([confusions[int(a[1:])].diagonal().mean() for a in ds.annotators["annotator"]])
            rho = spearmanr(ds.annotators["quality"], true_q).statistic
            rows.append(f"| {k} | {per_item} | {seed} | {vote_acc:.4f} | {ds_acc:.4f} | {ds_acc - vote_acc:+.4f} | "
                        f"{rho:.3f} | {ds.n_iter} | {seconds:.2f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # scikit-learn warns on every pair whose raters used one class
    lines = [f"\n## Annotator agreement and consensus ({dt.date.today()}, {machine()})\n",
             "`python benchmarks/agreement.py`. md_agreement, nominal labels; times are ours / the reference "
             "package's on the same table (alpha in ms, all pairs' kappas in s; scikit-learn is called once per "
             "pair).\n",
             "| split | items | annotators | percent agreement | consistency | Fleiss kappa | alpha ours | "
             "alpha krippendorff | abs diff | alpha ms ours / ref | pairs (>=2 shared) | max kappa diff vs sklearn "
             "| pairs s ours / sklearn |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|", *md_agreement_rows(),
             "\nSimulated annotators (3,000 items; 7 annotators: accuracy 0.9, 0.8, 0.7, 0.6, one random, two "
             "adversarial who give the next class 85% of the time; `per item` drawn at random per item). "
             "rho = Spearman correlation of Dawid-Skene's estimated quality with the true accuracy.\n",
             "| classes | per item | seed | majority vote acc | Dawid-Skene acc | gain | rho quality | EM rounds | "
             "DS s |", "|---|---|---|---|---|---|---|---|---|", *simulation_rows()]
    record("\n".join(lines) + "\n", write=not args.no_write)


if __name__ == "__main__":
    main()
