"""Label-browser responsiveness on a 100,000-item store, Python side: what one key press or click costs.

Measures ``LabelBrowser`` (store read/write + widget state update) for page change, filter change,
sort change and a correction, p50/p95 over many repetitions. Baseline, same run: the same view
computed the way a notebook without a store does it, from a pandas DataFrame held in memory
(filter, sort, slice a page, and for a correction rewrite the labels to Parquet, the usual way
to make it last).

Usage: python benchmarks/panel_latency.py [--items 100000] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, record  # noqa: E402
from store_bench import synth, timed  # noqa: E402

from widgets import LabelBrowser  # noqa: E402
from workbench import LabelStore, load_dataset  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=100)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    rng = random.Random(0)
    tmp = Path(tempfile.mkdtemp())
    table = load_dataset(synth(args.items), id_column="id")
    store = LabelStore.open(tmp / "panel.db")
    store.import_dataset(table)
    scores = np.random.default_rng(1).random(args.items)
    store.write_scores("bench", pd.DataFrame({"item_id": table["item_id"], "score": scores,
                                              "suggested_label": table["label"], "suggested_prob": 0.9}))
    w = LabelBrowser(store, author="bench", page_size=25)
    labels = store.labels
    df = table[["item_id", "text", "label"]].assign(score=scores)

    def ours_page() -> None:
        w.go_to_page(rng.randrange(200))

    def ours_filter() -> None:
        w.set_filters({"label": rng.choice(labels)})

    def ours_sort() -> None:
        w.set_order(rng.choice(["score", "-score", "text", "-pos"]))

    def ours_fix() -> None:
        w.press(str(rng.randrange(1, 10)))

    def base_page() -> None:
        df.sort_values("score").iloc[25 * rng.randrange(200):][:25]

    def base_filter() -> None:
        part = df[df["label"] == rng.choice(labels)].sort_values("score")
        part.iloc[:25]
        len(part)

    def base_sort() -> None:
        df.sort_values(rng.choice(["score", "text"]), ascending=rng.random() < 0.5).iloc[:25]

    def base_fix() -> None:
        df.loc[rng.randrange(len(df)), "label"] = rng.choice(labels)
        df[["item_id", "label"]].to_parquet(tmp / "labels.parquet")

    rows = []
    for name, ours, base in (("page change", ours_page, base_page), ("filter change", ours_filter, base_filter),
                             ("sort change", ours_sort, base_sort), ("correction (durable)", ours_fix, base_fix)):
        if name == "correction (durable)":
            w.set_filters(None)
            w.set_order(None)
        a = timed(ours, args.repeat)
        b = timed(base, max(10, args.repeat // 5))
        rows.append((name, np.percentile(a, 50), np.percentile(a, 95), np.percentile(b, 50), np.percentile(b, 95)))
        print(rows[-1], flush=True)
    store.close()
    lines = [f"\n## Label-browser latency, Python side, {args.items:,} items ({dt.date.today().isoformat()})\n",
             f"Machine: {machine()}. Command: `python benchmarks/panel_latency.py --items {args.items}`. Ours: "
             "LabelBrowser actions (store query or durable write, then widget state). Baseline: the same view "
             "from a pandas DataFrame in memory; its correction rewrites a labels Parquet file.\n",
             "| action | ours p50 / p95 ms | baseline p50 / p95 ms | ratio (p95) |", "|---|---|---|---|"]
    lines += [f"| {n} | {a50:.1f} / {a95:.1f} | {b50:.1f} / {b95:.1f} | {b95 / a95:.1f}x |"
              for n, a50, a95, b50, b95 in rows]
    lines.append("\nIn the browser test (JupyterLab + Chromium), key press to grid update took 66-121 ms "
                 "(build/artifacts/key_latency_ms.json).\n")
    record("\n".join(lines) + "\n", write=not args.no_write)


if __name__ == "__main__":
    main()
