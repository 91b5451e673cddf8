"""Label-store speed on 1,000,000 synthetic items, against an in-memory pandas baseline.

Measures: load + import time, ``page()`` p50/p95 without and with a filter, sorted by
score (first pages and anywhere), filter + sort by score, ``count()``, and
``set_label`` p50/p95 (durable: WAL, synchronous=FULL). Baselines in the same run:
pandas filtering/sorting a DataFrame held in memory (what a notebook does without a
store) and a durable SQLite write without WAL (rollback journal, synchronous=FULL).

Usage: python benchmarks/store_bench.py [--items 1000000] [--no-write]
Appends a section to BENCHMARKS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, record  # noqa: E402

from workbench import LabelStore, load_dataset  # noqa: E402

WORDS = ("order refund delivery package card account password invoice address cancel broken late charge "
         "help please thanks urgent again still never wrong new old box screen phone laptop shoes").split()


def synth(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    words = np.array(WORDS)
    lengths = rng.integers(4, 16, n)
    picks = rng.integers(0, len(words), lengths.sum())
    texts, start = [], 0
    for i, k in enumerate(lengths):
        texts.append(f"{i} " + " ".join(words[picks[start:start + k]]))
        start += k
    labels = np.array([f"class_{j:02d}" for j in range(20)])
    return pd.DataFrame({"id": [f"it-{i:07d}" for i in range(n)], "text": texts,
                         "label": labels[rng.integers(0, 20, n)]})


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    n = args.items
    rng = random.Random(0)
    rows: list[tuple[str, str, str, str]] = []  # (what, ours, baseline, ratio)

    frame = synth(n)
    t = time.perf_counter()
    table = load_dataset(frame, id_column="id")
    t_load = time.perf_counter() - t
    tmp = Path(tempfile.mkdtemp(prefix="store-bench-"))
    store = LabelStore.open(tmp / "bench.db")
    t = time.perf_counter()
    store.import_dataset(table)
    t_import = time.perf_counter() - t
    scores = pd.DataFrame({"item_id": table["item_id"], "score": np.random.default_rng(1).random(n)})
    t = time.perf_counter()
    store.write_scores("bench", scores)
    t_scores = time.perf_counter() - t
    print(f"load_dataset {t_load:.1f}s, import {t_import:.1f}s, write_scores {t_scores:.1f}s for {n:,} items")

    # the baseline: the same table in memory, filtered and sorted with pandas
    df = table[["item_id", "text", "label"]].copy()
    df["score"] = scores["score"].to_numpy()
    label = "class_07"
    max_page = n // 50

    def case(what: str, ours, base, repeat: int = args.repeat) -> None:
        a = timed(ours, repeat)
        b = timed(base, max(10, repeat // 10))
        rows.append((what, f"{pct(a, 50):.1f} / {pct(a, 95):.1f}", f"{pct(b, 50):.1f} / {pct(b, 95):.1f}",
                     f"{pct(b, 95) / pct(a, 95):.1f}x"))
        print(rows[-1])

    case("page, import order, first 200 pages",
         lambda: store.page(50 * rng.randrange(200), 50, order_by="pos"),
         lambda: df.iloc[50 * rng.randrange(200):][:50])
    case("page, import order, anywhere",
         lambda: store.page(50 * rng.randrange(max_page), 50, order_by="pos"),
         lambda: df.iloc[50 * rng.randrange(max_page):][:50])
    case("page, sorted by score (default), first 200 pages",
         lambda: store.page(50 * rng.randrange(200), 50),
         lambda: df.sort_values("score").iloc[50 * rng.randrange(200):][:50])
    case("page, filter label, first 200 pages",
         lambda: store.page(50 * rng.randrange(200), 50, filters={"label": label}, order_by="pos"),
         lambda: df[df["label"] == label].iloc[50 * rng.randrange(200):][:50])
    case("filter label + sort by score, first page",
         lambda: store.page(0, 50, filters={"label": label}),
         lambda: df[df["label"] == label].sort_values("score")[:50])
    case("filter score < 0.1 + label + sort by score",
         lambda: store.page(0, 50, filters={"label": label, "score_max": 0.1}),
         lambda: df[(df["label"] == label) & (df["score"] <= 0.1)].sort_values("score")[:50], repeat=50)
    case("count with filter (label)",
         lambda: store.count({"label": label}),
         lambda: int((df["label"] == label).sum()), repeat=50)

    ids = table["item_id"].tolist()
    labels = store.labels

    def ours_write() -> None:
        i = rng.randrange(n)
        store.set_label(ids[i], labels[rng.randrange(len(labels))], author="bench")

    base_path = tmp / "baseline.db"
    con = sqlite3.connect(base_path, isolation_level=None)
    con.execute("PRAGMA journal_mode=DELETE")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE items (item_id TEXT PRIMARY KEY, label TEXT)")
    con.execute("CREATE TABLE log (id INTEGER PRIMARY KEY, item_id TEXT, old TEXT, new TEXT, author TEXT, t REAL)")
    con.execute("BEGIN")
    con.executemany("INSERT INTO items VALUES (?, ?)", zip(ids, table["label"]))
    con.execute("COMMIT")

    def base_write() -> None:
        i = rng.randrange(n)
        new = labels[rng.randrange(len(labels))]
        con.execute("BEGIN IMMEDIATE")
        old = con.execute("SELECT label FROM items WHERE item_id = ?", (ids[i],)).fetchone()[0]
        con.execute("UPDATE items SET label = ? WHERE item_id = ?", (new, ids[i]))
        con.execute("INSERT INTO log (item_id, old, new, author, t) VALUES (?, ?, ?, ?, ?)",
                    (ids[i], old, new, "bench", time.time()))
        con.execute("COMMIT")

    a = timed(ours_write, 500)
    b = timed(base_write, 100)
    rows.append(("set_label (durable)", f"{pct(a, 50):.1f} / {pct(a, 95):.1f}",
                 f"{pct(b, 50):.1f} / {pct(b, 95):.1f}", f"{pct(b, 95) / pct(a, 95):.1f}x"))
    print(rows[-1])
    store.close()
    con.close()
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)

    machine_name = f"{machine()}, SQLite {sqlite3.sqlite_version}"
    lines = [
        f"\n## Label store on {n:,} synthetic items ({dt.date.today().isoformat()})\n",
        f"Machine: {machine_name}. Command: `python benchmarks/store_bench.py --items {n}`.\n",
        f"load_dataset {t_load:.1f} s, import into the store {t_import:.1f} s, write_scores {t_scores:.1f} s.\n",
        "Times in ms as p50 / p95. Baseline: pandas on the same table held in memory (pages, filters, sorts); "
        "for set_label, a durable SQLite write without WAL (rollback journal, synchronous=FULL). "
        "Ratio = baseline p95 / ours p95.\n",
        "| operation | ours p50 / p95 | baseline p50 / p95 | ratio |",
        "|---|---|---|---|",
    ]
    lines += [f"| {w} | {o} | {b} | {r} |" for w, o, b, r in rows]
    text = "\n".join(lines) + "\n"
    record(text, write=not args.no_write)


if __name__ == "__main__":
    main()
