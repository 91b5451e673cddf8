"""Quick-scan speed on 10,000 short texts: cold (empty embedding cache) and warm, against an fp32 baseline.

The texts are the first 10,000 of emotion's train split (short, SST-2-like sentences).
Ours: ``scan()`` with precision "auto" (bf16 autocast on a CPU with AVX-512 bf16) and its default views (embedding,
TF-IDF, attention). Baseline, same run: the same scan in fp32 (the embedding and the heads). Also the embedding speed
alone, and the scan with the options: no clean refit (``refit_clean=False``), the top four layers
(``classifier_layers=TOP_LAYERS``) and without the attention view (``views=("embedding", "tfidf")``).

Usage: python benchmarks/scan_speed.py [--items 10000] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import SHARED, machine, record  # noqa: E402

from workbench import load_dataset  # noqa: E402
from workbench.crossval import BASE_VIEWS  # noqa: E402
from workbench.embed import TOP_LAYERS, Encoder, choose_precision  # noqa: E402
from workbench.scan import scan  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    frame = pd.read_parquet(SHARED / "emotion" / "train.parquet").head(args.items)
    table = load_dataset(frame)
    texts = table["text"].tolist()
    auto = choose_precision("auto", "cpu")
    rows = []
    embed_speed = {}
    # the default scan in the chosen precision and in fp32, then options that trade time for ranking quality
    settings: list[tuple[str, tuple[int, ...], bool, tuple[str, ...] | None]] = [
        (auto, (-1,), True, None), ("fp32", (-1,), True, None), (auto, (-1,), False, None),
        (auto, TOP_LAYERS, True, None), (auto, (-1,), True, BASE_VIEWS)]
    if auto == "fp32":  # a CPU without bf16: the baseline row is the default row
        settings = [s for s in settings if s[0] == "fp32"]
    for precision, layers, refit, views in settings:
        if precision not in embed_speed:
            enc = Encoder(precision=precision, device="cpu")
            enc.encode(texts[:64], progress=False)  # warm-up
            t = time.perf_counter()
            enc.encode(texts, progress=False)
            embed_speed[precision] = len(texts) / (time.perf_counter() - t)
        with tempfile.TemporaryDirectory() as cache:
            t = time.perf_counter()
            cold = scan(table, precision=precision, cache_dir=cache, progress=False, classifier_layers=layers,
                        refit_clean=refit, views=views)
            t_cold = time.perf_counter() - t
            t = time.perf_counter()
            scan(table, precision=precision, cache_dir=cache, progress=False, classifier_layers=layers,
                 refit_clean=refit, views=views)
            t_warm = time.perf_counter() - t
        setting = ("top four layers" if layers == TOP_LAYERS else "sentence embedding") + (
            ", clean refit" if refit else ", no refit") + (", without the attention view" if views else "") + (
            " (default)" if (layers, refit, views) == ((-1,), True, None) else "")
        rows.append((precision, setting,
                     t_cold, t_warm, cold.seconds, cold.oof.accuracy() if cold.oof else float("nan")))
        print(rows[-1], f"embedding {embed_speed[precision]:.0f} texts/s", flush=True)
    machine_name = machine()
    lines = [f"\n## Quick-scan speed, {len(texts):,} short texts ({dt.date.today().isoformat()})\n",
             f"Machine: {machine_name}. Command: `python benchmarks/scan_speed.py --items {args.items}`. "
             "Texts: emotion train, first rows. Cold = empty embedding cache (model load included); "
             "warm = the same scan again. The precision column is `scan(precision=...)`: fp32 keeps the heads' "
             "products in float32 too, the others leave them to the CPU (bf16 where it is native).\n",
             "| precision | classifier view | embedding alone, texts/s | scan cold, s | scan warm, s | "
             "stages (cold), s | OOF accuracy |",
             "|---|---|---|---|---|---|---|"]
    for precision, layers, t_cold, t_warm, stages, acc in rows:
        st = ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
        lines.append(f"| {precision} | {layers} | {embed_speed[precision]:.0f} | {t_cold:.1f} | {t_warm:.1f} | {st} | "
                     f"{acc:.3f} |")
    if auto != "fp32":
        lines.append(f"\nRatio fp32 / {auto}: embedding {embed_speed[auto] / embed_speed['fp32']:.2f}x faster, "
                     f"cold scan {rows[1][2] / rows[0][2]:.2f}x faster.\n")
    text = "\n".join(lines) + "\n"
    record(text, write=not args.no_write)


if __name__ == "__main__":
    main()
