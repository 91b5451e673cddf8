"""Active learning against random sampling: labels needed to reach 95% of the full-pool head's accuracy.

TREC-6 and banking77 from ../shared/data; the quick head (logistic regression, C=10) on
packaged-MiniLM features (by default the sentence embedding, as ActiveLearner; --classifier-layers=-4,-3,-2,-1
for the top four hidden states); a stratified seed set (2 per class on TREC, 1 on banking77);
batches of 20 up to 3,000 labels; 5 seeds. Labels are revealed from each dataset's own
train labels, accuracy is read on its test split. Every strategy, random included, runs
in the same process pool, so the ratios compare like with like.

    python benchmarks/active_learning.py [--seeds 5] [--budget 3000] [--datasets trec,banking77]
                                         [--classifier-layers=-1] [--no-write]

Writes benchmarks/results/active_learning.{json,html,png} (a suffix names any non-default layers, datasets
or seeds) and appends a section to BENCHMARKS.md; --replot JSON renders a saved run again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import ROOT, SHARED, machine, record

DATASETS = {"trec": 2, "banking77": 1}  # initial labels per class
STRATEGIES = ["random", "least_confidence", "margin", "entropy", "density_weighted", "kmeans_margin",
              "coreset_margin", "sparse_regions"]
OUT = ROOT / "benchmarks" / "results"


def strategy(name: str) -> Any:
    from workbench.active import DiversitySampling, make_strategy

    if name == "kmeans_margin":
        return DiversitySampling(method="kmeans", shortlist=10)
    if name == "coreset_margin":
        return DiversitySampling(method="coreset", shortlist=10)
    return make_strategy(name)


def load(name: str, layers: tuple[int, ...]) -> dict[str, np.ndarray]:
    from workbench.active import head_features

    train = pd.read_parquet(SHARED / name / "train.parquet")
    test = pd.read_parquet(SHARED / name / "test.parquet")
    classes = sorted(train["label"].unique())
    index = {c: i for i, c in enumerate(classes)}
    x_pool, sentences = head_features(train["text"].tolist(), classifier_layers=layers, progress=False)
    return {"x_pool": x_pool, "sentences": sentences,
            "y_pool": train["label"].map(index).to_numpy(),
            "x_test": head_features(test["text"].tolist(), classifier_layers=layers, progress=False)[0],
            "y_test": test["label"].map(index).to_numpy()}


def run_one(job: tuple[str, str, int, int]) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    from workbench.active import simulate

    name, strategy_name, seed, budget = job
    data = np.load(OUT / f".{name}.npz")
    started = time.perf_counter()
    with threadpool_limits(1):
        result = simulate(data["x_pool"], data["y_pool"], data["x_test"], data["y_test"], strategy(strategy_name),
                          n_classes=int(data["y_pool"].max()) + 1, initial_per_class=DATASETS[name],
                          batch_size=20, budget=budget, seed=seed, embeddings=data["sentences"])
    return {"dataset": name, "strategy": strategy_name, "seed": seed, "labels": result.labels,
            "accuracy": result.accuracy, "query_seconds": result.query_seconds,
            "seconds": time.perf_counter() - started}


def full_pool_accuracy(data: dict[str, np.ndarray]) -> float:
    from sklearn.linear_model import LogisticRegression

    head = LogisticRegression(C=10.0, max_iter=1000).fit(data["x_pool"], data["y_pool"])
    return float(np.mean(head.predict(data["x_test"]) == data["y_test"]))


def labels_to_reach(labels: list[int], accuracy: list[float], target: float) -> int | None:
    return next((n for n, a in zip(labels, accuracy, strict=True) if a >= target), None)


def figure(runs: list[dict[str, Any]], full: dict[str, float]) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(full), subplot_titles=[f"{d} (full pool {a:.3f})" for d, a in full.items()])
    colours = dict(zip(STRATEGIES, ["#7f7f7f", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
                                    "#e377c2"], strict=True))
    for col, name in enumerate(full, start=1):
        for s in STRATEGIES:
            mine = [r for r in runs if r["dataset"] == name and r["strategy"] == s]
            if not mine:
                continue
            n = min(len(r["accuracy"]) for r in mine)
            mean = np.mean([r["accuracy"][:n] for r in mine], axis=0)
            fig.add_trace(go.Scatter(x=mine[0]["labels"][:n], y=mean, name=s, legendgroup=s, showlegend=col == 1,
                                     line={"color": colours[s], "width": 3 if s in ("random", "margin") else 1.5}),
                          row=1, col=col)
        fig.add_hline(y=0.95 * full[name], line_dash="dot", row=1, col=col)  # type: ignore[arg-type]
        fig.update_xaxes(title_text="labels", row=1, col=col)
        fig.update_yaxes(title_text="test accuracy (mean of seeds)", row=1, col=col)
    fig.update_layout(width=1300, height=520, title="Active learning: accuracy vs labels (quick head, MiniLM)")
    return fig


def summarise(runs: list[dict[str, Any]], full: dict[str, float]) -> list[dict[str, Any]]:
    """Per dataset and strategy: labels to 95% of the full-pool accuracy (mean, per seed, sd) and the ratio."""
    rows = []
    for name in full:
        target = 0.95 * full[name]
        needed = {}
        for s in STRATEGIES:
            mine = [r for r in runs if r["dataset"] == name and r["strategy"] == s]
            reach = [labels_to_reach(r["labels"], r["accuracy"], target) for r in mine]
            reached = [x for x in reach if x is not None]
            complete = len(reached) == len(reach)
            needed[s] = (float(np.mean(reached)) if complete else None,
                         float(np.std(reached, ddof=1)) if complete and len(reached) > 1 else None, reach,
                         max(q for r in mine for q in r["query_seconds"]))
        base = needed["random"][0]
        for s, (mean, sd, reach, q_max) in needed.items():
            ratio = mean / base if mean is not None and base else None
            rows.append({"dataset": name, "strategy": s, "labels_to_95": mean, "sd": sd, "per_seed": reach,
                         "ratio": ratio, "max_query_s": q_max})
    return rows


def output_stem(args: argparse.Namespace) -> str:
    """``active_learning`` for the default run; other settings get their own files."""
    stem = "active_learning"
    if args.classifier_layers != "-1":
        stem += "_layers" + args.classifier_layers.replace(",", "_")
    if args.datasets != ",".join(DATASETS):
        stem += "_" + args.datasets.replace(",", "_")
    if args.seeds != 5:
        stem += f"_seeds{args.seeds}"
    return stem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=3000)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--classifier-layers", default="-1",
                        help="hidden states the quick head reads, comma-separated (default -1: the sentence "
                             "embedding, as ActiveLearner; -4,-3,-2,-1: the top four)")
    parser.add_argument("--replot", metavar="JSON", help="re-render the table and figures of a saved run")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.replot:
        saved = json.loads(Path(args.replot).read_text())
        for key, value in saved["args"].items():
            setattr(args, key, value)
        full, runs, wall = saved["full_pool_accuracy"], saved["runs"], saved["wall_s"]
    layers = tuple(int(v) for v in args.classifier_layers.split(","))
    if not args.replot:
        full, runs, wall = simulate_all(args, layers)
    rows = summarise(runs, full)
    stem = output_stem(args)
    settings = {k: getattr(args, k) for k in ("seeds", "budget", "datasets", "classifier_layers")}
    (OUT / f"{stem}.json").write_text(json.dumps({"args": settings, "wall_s": wall, "full_pool_accuracy": full,
                                                  "table": rows, "runs": runs}, indent=1))
    fig = figure(runs, full)
    fig.write_html(OUT / f"{stem}.html", include_plotlyjs="cdn")

    lines = [f"\n## Active learning vs random ({dt.date.today()}, {machine()})\n",
             f"`python benchmarks/active_learning.py --seeds {args.seeds} --budget {args.budget} "
             f"--datasets {args.datasets} --classifier-layers={args.classifier_layers}` "
             f"({wall / 60:.1f} min on 2 worker processes). Quick head = logistic regression C=10 on packaged "
             f"MiniLM's mean-pooled hidden states {list(layers)} (rows unit length); strategies measure distances "
             "in the sentence embedding; batches of 20; labels to reach 95% of the full-pool head's test accuracy, "
             "mean and standard deviation over seeds (a seed that never reached it makes the mean '-'); "
             "ratio = that / random's.\n",
             "| dataset | full-pool acc | strategy | labels to 95% (mean) | sd | per seed | ratio to random | "
             "max query s |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mean = "-" if r["labels_to_95"] is None else f"{r['labels_to_95']:.0f}"
        sd = "-" if r["sd"] is None else f"{r['sd']:.0f}"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        lines.append(f"| {r['dataset']} | {full[r['dataset']]:.3f} | {r['strategy']} | {mean} | {sd} | "
                     f"{r['per_seed']} | {ratio} | {r['max_query_s']:.3f} |")
    lines.append(f"\nCurves: `benchmarks/results/{stem}.html` / `.png`.\n")
    record("\n".join(lines) + "\n", write=not args.no_write)
    # last: the PNG needs a browser (kaleido drives chromium); the results above are saved either way
    os.environ.setdefault("BROWSER_PATH", "/usr/bin/chromium")
    fig.write_image(OUT / f"{stem}.png")


def simulate_all(args: argparse.Namespace,
                 layers: tuple[int, ...]) -> tuple[dict[str, float], list[dict[str, Any]], float]:
    """Every (dataset, strategy, seed) simulation on two worker processes: full-pool accuracies, runs, wall s."""
    names = args.datasets.split(",")
    full = {}
    for name in names:
        data = load(name, layers)
        np.savez(OUT / f".{name}.npz", **data)
        full[name] = full_pool_accuracy(data)
    jobs = [(n, s, seed, args.budget) for n in names for s in STRATEGIES for seed in range(args.seeds)]
    # The slowest jobs first so the two workers finish together.
    jobs.sort(key=lambda j: (j[0] != "banking77", j[1] not in ("kmeans_margin", "margin", "entropy")))
    started = time.perf_counter()
    with mp.get_context("spawn").Pool(min(2, os.cpu_count() or 1)) as pool:
        runs = pool.map(run_one, jobs, chunksize=1)
    wall = time.perf_counter() - started
    for name in names:
        (OUT / f".{name}.npz").unlink()
    return full, runs, wall


if __name__ == "__main__":
    main()
